// The `bind` mount driver: a bind mount of the exported path at the home;
// and what every driver shares (mount_driver.h).
#include <fcntl.h>
#include <linux/magic.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <cstring>

#include "agent/mount_driver.h"
#include "agent/remote_driver.h"
#include "base/sys/files.h"
#include "base/sys/mountinfo.h"

namespace roam::agent {

namespace {

bool same_device(const std::string& a, const std::string& b) {
  struct stat sa {}, sb {};
  return ::stat(a.c_str(), &sa) == 0 && ::stat(b.c_str(), &sb) == 0 && sa.st_dev == sb.st_dev;
}

class BindDriver final : public MountDriver {
 public:
  Status attach(const std::string& export_path, const std::string& home) override {
    if (mounted(home)) {
      if (same_device(export_path, home)) return verify(export_path, home);
      ROAM_TRY(detach(home));
    }
    ROAM_TRY(make_dirs(home));
    if (::mount(export_path.c_str(), home.c_str(), nullptr, MS_BIND, nullptr) != 0)
      return errno_error("cannot bind-mount " + export_path + " at " + home);
    // The desktop's own mounts must not propagate back to the host.
    ::mount(nullptr, home.c_str(), nullptr, MS_PRIVATE, nullptr);
    return verify(export_path, home);
  }

  Status detach(const std::string& home) override { return unmount_home(home); }

  bool mounted(const std::string& home) const override { return home_mounted(home); }

 private:
  static Status verify(const std::string& export_path, const std::string& home) {
    ROAM_TRY(verify_fuse_home(home));
    if (!same_device(export_path, home)) return Status::io(home + " does not show the disk exported at " + export_path);
    return Status::ok();
  }
};

}  // namespace

bool home_mounted(const std::string& home) { return mount_at(home).has_value(); }

Status unmount_home(const std::string& home) {
  while (home_mounted(home)) {
    if (::umount2(home.c_str(), 0) == 0) continue;
    if (errno == EBUSY) return Status::error(EBUSY, "files under " + home + " are still in use");
    if (::umount2(home.c_str(), MNT_DETACH) != 0) return errno_error("cannot unmount " + home);
  }
  return Status::ok();
}

Status verify_fuse_home(const std::string& home) {
  struct statfs fs {};
  if (::statfs(home.c_str(), &fs) != 0) return errno_error("cannot statfs " + home);
  if (fs.f_type != FUSE_SUPER_MAGIC) return Status::io(home + " is not the user disk (not a FUSE filesystem)");
  if (::access(home.c_str(), R_OK | X_OK) != 0) return errno_error("cannot read " + home);
  return Status::ok();
}

Result<std::unique_ptr<MountDriver>> make_mount_driver(const std::string& name, const DriverContext& context) {
  if (name == "bind") return std::unique_ptr<MountDriver>(std::make_unique<BindDriver>());
  if (name == "remote") return make_remote_driver(context);
  return Status::invalid("unknown mount driver '" + name + "' (this build has: bind, remote)");
}

}  // namespace roam::agent
