// What the switch state machine (switch.h) needs of the host that serves the
// user disks: a directory per desktop to export into, and starting and ending
// the roamfs of an attachment epoch. Behind an interface so that unit tests
// can drive every switch path without processes or mounts; the real one is
// RoamfsHost (disk_server.h).
#pragma once

#include <sys/types.h>

#include <string>

#include "base/status.h"

namespace roam::broker {

class DiskHost {
 public:
  virtual ~DiskHost() = default;
  // The directory under which disks exported to `desktop` are mounted,
  // made ready (idempotent) if it is not yet.
  virtual Result<std::string> export_dir(const std::string& desktop) = 0;
  // Serves `user`'s store at `mount_point` (a new epoch) and returns the
  // server's pid once the mount is visible; an error when it exits or does
  // not mount in time.
  virtual Result<pid_t> start(const std::string& user, const std::string& store, const std::string& mount_point) = 0;
  // Ends the server `pid` of `mount_point`: gracefully, or, with `fence`, at
  // once so that nothing behind that mount can reach the store any more.
  // Returns once the server is gone and the mount point no longer mounted.
  // `pid` 0: whichever server serves `mount_point` (one started by a broker
  // that was killed before it learnt the pid), if any.
  virtual Status stop(pid_t pid, const std::string& mount_point, bool fence) = 0;
};

}  // namespace roam::broker
