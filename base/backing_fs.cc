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

}  // namespace

BackingFs classify_backing_fs(const std::string& fstype, const std::string& super_options) {
  BackingFs fs{fstype, "", WriteOrder::kNotKept};
  if (fstype == "ext4" || fstype == "ext3") {
    const std::string data = option_value(super_options, "data");
    fs.mode = "data=" + (data.empty() ? std::string("ordered") : data);  // ordered is the default
    if (data == "journal") fs.order = WriteOrder::kKept;
  } else if (fstype == "zfs") {
    fs.order = WriteOrder::kKept;
  } else if (fstype == "tmpfs" || fstype == "ramfs") {
    fs.order = WriteOrder::kVolatile;
  }
  return fs;
}

BackingFs backing_fs_of(const std::string& store_dir) {
  auto mount = mount_holding(store_dir);
  if (!mount) return BackingFs{"unknown", "", WriteOrder::kNotKept};
  return classify_backing_fs(mount->fstype, mount->super_options);
}

std::string describe(const BackingFs& fs) { return fs.mode.empty() ? fs.fstype : fs.fstype + " (" + fs.mode + ")"; }

std::string power_loss_warning(const std::string& store_dir, const BackingFs& fs) {
  switch (fs.order) {
    case WriteOrder::kKept:
      return {};
    case WriteOrder::kVolatile:
      return store_dir + " is on " + describe(fs) + ": the whole disk is lost when the machine restarts";
    case WriteOrder::kNotKept:
      break;
  }
  return store_dir + " is on " + describe(fs) +
         ", which may write data out of order: a power loss or kernel crash between syncs can damage "
         "this disk beyond repair. Keep stores on ext4 mounted with data=journal, or on ZFS "
         "(docs/crash-model.md)";
}

}  // namespace roam
