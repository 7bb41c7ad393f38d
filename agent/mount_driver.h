// How a user disk reaches a desktop. The broker exports each attachment epoch
// as a host path; a driver makes that export appear at the user's home inside
// the desktop and removes it again. Container desktops use `bind` (the export
// is visible in the desktop's mount namespace through mount propagation); VM
// desktops would use a virtiofs or NFS driver behind the same interface;
// `remote` (remote_driver.h) mounts FUSE in the desktop and relays its
// requests to the disk's roamfs over the network (docs/remote.md), and its
// "export" is where that roamfs listens.
//
// Drivers are called from the agent's single thread. Every call is
// idempotent: attaching what is already attached, or detaching what is not
// mounted, succeeds.
#pragma once

#include <memory>
#include <string>

#include "base/status.h"
#include "protocol/curve_keys.h"

namespace roam::agent {

class MountDriver {
 public:
  virtual ~MountDriver() = default;
  // Mounts `export_path` at `home` (created if missing), then verifies that
  // `home` is that disk (same device, a FUSE filesystem, readable root).
  virtual Status attach(const std::string& export_path, const std::string& home) = 0;
  // Unmounts `home`. EBUSY when files are still open there; a dead mount
  // (its connection aborted) is detached lazily.
  virtual Status detach(const std::string& home) = 0;
  // Whether something is mounted at `home`.
  virtual bool mounted(const std::string& home) const = 0;
};

// What the drivers share. Whether something is mounted at `home`.
bool home_mounted(const std::string& home);
// Unmounts everything at `home`: EBUSY when files there are still in use; a
// mount that cannot be unmounted otherwise (a dead connection) is detached
// lazily.
Status unmount_home(const std::string& home);
// Whether `home` is a FUSE filesystem whose root this process can read
// (the first access of a new FUSE mount waits for its server's INIT).
Status verify_fuse_home(const std::string& home);

// What a driver may need of the agent: who this desktop is and its key pair
// (the remote driver authenticates with it).
struct DriverContext {
  std::string desktop;
  proto::KeyPair keys;
};

// The driver named `name` ("bind" or "remote"); EINVAL for an unknown name.
Result<std::unique_ptr<MountDriver>> make_mount_driver(const std::string& name, const DriverContext& context);

}  // namespace roam::agent
