// Health checks: configured shell commands whose failure means the desktop's
// OS is damaged (a full root filesystem, a broken package database, a
// missing system binary...). The agent reports the first failing check to the
// broker, which moves the user elsewhere.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace roam::agent {

// Runs each command with /bin/sh -c, one after the other, each for at most
// timeout_ms (then SIGKILL, which counts as a failure). Returns a sentence
// naming the first failing check and its exit status, or nullopt if all pass.
std::optional<std::string> first_failing_check(const std::vector<std::string>& commands, int timeout_ms);

}  // namespace roam::agent
