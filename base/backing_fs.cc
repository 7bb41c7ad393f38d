#include "base/backing_fs.h"

#include <sstream>

#include "base/sys/mountinfo.h"

namespace roam {

namespace {

// The value of `key=` in a comma-separated option list, or "".
std::string option_value(const std::string& options, const std::string& key) {
  std::istringstream in(options);
  for (std::string opt; std::getline(in, opt, ',');) {
    if (opt.rfind(key + "=", 0) == 0) return opt.substr(key.size() + 1);
  }
  return {};
}

// Local disk filesystems whose fsync flushes the file's data and metadata
// and the device's write cache (all of Linux's journaling and copy-on-write
// filesystems do; ext4 data=ordered and XFS are the ones measured).
bool flushes_on_fsync(const std::string& fstype) {
  static constexpr const char* kLocalDiskFilesystems[] = {"ext4", "ext3", "xfs", "btrfs", "zfs", "f2fs", "jfs"};
  for (const char* name : kLocalDiskFilesystems) {
    if (fstype == name) return true;
  }
  return false;
}

}  // namespace

BackingFs classify_backing_fs(const std::string& fstype, const std::string& super_options) {
  BackingFs fs{fstype, "", PowerLoss::kUnverified};
  if (fstype == "ext4" || fstype == "ext3") {
    const std::string data = option_value(super_options, "data");
    fs.mode = "data=" + (data.empty() ? std::string("ordered") : data);  // ordered is the default
  }
  if (flushes_on_fsync(fstype)) {
    fs.power_loss = PowerLoss::kSafe;
  } else if (fstype == "tmpfs" || fstype == "ramfs") {
    fs.power_loss = PowerLoss::kVolatile;
  }
  return fs;
}

BackingFs backing_fs_of(const std::string& store_dir) {
  auto mount = mount_holding(store_dir);
  if (!mount) return BackingFs{"unknown", "", PowerLoss::kUnverified};
  return classify_backing_fs(mount->fstype, mount->super_options);
}

std::string describe(const BackingFs& fs) { return fs.mode.empty() ? fs.fstype : fs.fstype + " (" + fs.mode + ")"; }

std::string power_loss_warning(const std::string& store_dir, const BackingFs& fs) {
  switch (fs.power_loss) {
    case PowerLoss::kSafe:
      return {};
    case PowerLoss::kVolatile:
      return store_dir + " is on " + describe(fs) + ": the whole disk is lost when the machine restarts";
    case PowerLoss::kUnverified:
      break;
  }
  return store_dir + " is on " + describe(fs) +
         ", whose fsync roamdisk has not verified: if it does not put data on disk before it returns, a "
         "power loss can cost more than the unsynced seconds. Keep stores on a local disk filesystem "
         "(ext4, XFS, btrfs, ZFS; docs/crash-model.md)";
}

}  // namespace roam
