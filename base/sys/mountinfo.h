// The mounts of this process's mount namespace, from /proc/self/mountinfo.
// Shared by roamfs (is the mount point busy?) and roamctl (which store is
// mounted at this path?).
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace roam {

struct MountEntry {
  std::string mount_point;    // absolute, octal escapes ("\040") undone
  std::string fstype;         // "fuse.roamfs", "ext4", ...
  std::string source;         // roamfs: "roamfs:/absolute/store"
  std::string device;         // "major:minor"
  std::string super_options;  // the filesystem's own options: "rw,data=journal"
};

// Parses one line of /proc/self/mountinfo; nullopt for a malformed line.
std::optional<MountEntry> parse_mountinfo_line(const std::string& line);

// Every mount, in mountinfo order; empty if /proc is not mounted.
std::vector<MountEntry> read_mountinfo();

// The mount whose mount point is exactly `real_path` (a realpath()), the
// last one when several are stacked.
std::optional<MountEntry> mount_at(const std::string& real_path);

// The mount that holds `path` (any existing file or directory): the deepest
// mount point above it on the same device. nullopt when none is found.
std::optional<MountEntry> mount_holding(const std::string& path);

}  // namespace roam
