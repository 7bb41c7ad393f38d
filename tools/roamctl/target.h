// What roamctl's STORE|MOUNTPOINT argument names.
#pragma once

#include <string>

#include "base/status.h"

namespace roam::ctl {

struct Target {
  std::string store;       // absolute path of the store directory
  std::string mountpoint;  // where it is mounted, or empty when not mounted
};

// A store directory (has a FORMAT file) or the mount point of a running
// roamfs (found in /proc/self/mountinfo as fuse.roamfs with source
// "roamfs:STORE"). A store that a roamfs serves gets that mount point too.
// Anything else is an error that says what was expected.
Result<Target> resolve_target(const std::string& arg);

// A path inside the disk ("/a/b") from what the user typed: "/a/b", "a/b", or
// an absolute path under the mount point ("/home/u/a/b").
std::string disk_path(const Target& t, const std::string& user_path);

}  // namespace roam::ctl
