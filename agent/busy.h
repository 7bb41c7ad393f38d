// Processes of this desktop that hold files under a directory, and making
// them let go before the user disk is unmounted.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "base/status.h"
#include "base/sys/mountinfo.h"

namespace roam::agent {

struct BusyProcess {
  pid_t pid = 0;
  std::string comm;
};

// Processes (other than this one) with an open file, a working or root
// directory, or a mapped file under any of `dirs`, as /proc shows them.
std::vector<BusyProcess> processes_using(const std::vector<std::string>& dirs);

// Every place where the filesystem mounted at `dir` is mounted in `mounts`
// (the same device), `dir` first: a user disk is reached through the home
// and through the export it was bound from. Just `dir` when it is not a
// mount point. By the mount table only: nothing here touches the mount.
std::vector<std::string> mounts_of_same_filesystem(const std::vector<MountEntry>& mounts, const std::string& dir);

// Without `force`: EBUSY naming the processes under any of `dirs` when
// there are any (the sentence names dirs[0]). With it: SIGTERM to each,
// SIGKILL to those still there after grace_ms, and wait (bounded) until
// they are gone.
Status release_busy(const std::vector<std::string>& dirs, bool force, int grace_ms);

}  // namespace roam::agent
