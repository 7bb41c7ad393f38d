// How a user disk reaches a desktop. The broker exports each attachment epoch
// as a host path; a driver makes that export appear at the user's home inside
// the desktop and removes it again. Container desktops use `bind` (the export
// is visible in the desktop's mount namespace through mount propagation); VM
// desktops would use a virtiofs or NFS driver behind the same interface.
//
// Drivers are called from the agent's single thread. Every call is
// idempotent: attaching what is already attached, or detaching what is not
// mounted, succeeds.
#pragma once

#include <memory>
#include <string>

#include "base/status.h"

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

// The driver named `name` ("bind"); EINVAL for an unknown name.
Result<std::unique_ptr<MountDriver>> make_mount_driver(const std::string& name);

}  // namespace roam::agent
