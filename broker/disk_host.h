// What the switch state machine (switch.h) needs of the host that serves the
// user disks: a directory per desktop to export into (bind desktops), a
// host-private one for disks served to remote desktops, each disk's remote
// key pair, and starting and ending the roamfs of an attachment epoch. Behind an interface so that unit tests
// can drive every switch path without processes or mounts; the real one is
// RoamfsHost (disk_server.h).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>

#include "base/status.h"

namespace roam::broker {

// How an epoch's roamfs also serves a remote desktop (docs/remote.md): it
// listens on `port` and allows the one agent key `allow_key` (hex), in
// attachment epoch `epoch`. Nothing else can talk to it: fencing that
// epoch ends the process, and with it every session it served.
struct RemoteServe {
  uint16_t port = 0;
  std::string allow_key;
  uint64_t epoch = 0;
};

class DiskHost {
 public:
  virtual ~DiskHost() = default;
  // The directory under which disks exported to `desktop` are mounted,
  // made ready (idempotent) if it is not yet.
  virtual Result<std::string> export_dir(const std::string& desktop) = 0;
  // The directory under which disks served to remote desktops are mounted
  // on the host, made ready (idempotent): root's alone, in no desktop's
  // mount namespace.
  virtual Result<std::string> private_dir() = 0;
  // The public key (hex) of the key pair `user`'s roamfs serves remote
  // desktops with, made on first use and the same from then on.
  virtual Result<std::string> remote_key(const std::string& user) = 0;
  // Serves `user`'s store at `mount_point` (a new epoch), and with `remote`
  // to that remote desktop too, and returns the server's pid once the mount
  // is visible; an error when it exits or does not mount in time.
  virtual Result<pid_t> start(const std::string& user, const std::string& store, const std::string& mount_point,
                              const std::optional<RemoteServe>& remote) = 0;
  // Ends the server `pid` of `mount_point`: gracefully, or, with `fence`, at
  // once so that nothing behind that mount can reach the store any more.
  // Returns once the server is gone and the mount point no longer mounted.
  // `pid` 0: whichever server serves `mount_point` (one started by a broker
  // that was killed before it learnt the pid), if any.
  virtual Status stop(pid_t pid, const std::string& mount_point, bool fence) = 0;
};

}  // namespace roam::broker
