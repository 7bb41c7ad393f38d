// Processes of this desktop that hold files under a directory, and making
// them let go before the user disk is unmounted.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "base/status.h"

namespace roam::agent {

struct BusyProcess {
  pid_t pid = 0;
  std::string comm;
};

// Processes (other than this one) with an open file, a working or root
// directory, or a mapped file under `dir`, as /proc shows them.
std::vector<BusyProcess> processes_using(const std::string& dir);

// Without `force`: EBUSY naming the processes when there are any. With it:
// SIGTERM to each, SIGKILL to those still there after grace_ms, and wait
// (bounded) until they are gone.
Status release_busy(const std::string& dir, bool force, int grace_ms);

}  // namespace roam::agent
