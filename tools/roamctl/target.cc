#include "tools/roamctl/target.h"

#include <sys/stat.h>
#include <unistd.h>

#include <climits>
#include <cstdlib>
#include <cstring>

#include "base/sys/mountinfo.h"

namespace roam::ctl {

namespace {

// Where a running roamfs serves `store` (a real path), or "" when none does:
// a store named by its directory is still reached through its roamfs, so
// that requests see the live disk (docs/crash-model.md: LMDB alone holds the
// last checkpoint).
std::string mount_point_of_store(const std::string& store) {
  for (const MountEntry& m : read_mountinfo()) {
    if (m.fstype == "fuse.roamfs" && m.source == "roamfs:" + store) return m.mount_point;
  }
  return {};
}

}  // namespace

Result<Target> resolve_target(const std::string& arg) {
  char real[PATH_MAX];
  if (!::realpath(arg.c_str(), real)) return Status::error(errno, arg + ": " + std::strerror(errno));
  const std::string path = real;
  // The mount first: a user's own file named FORMAT must not make a mount
  // point look like a store.
  if (auto m = mount_at(path); m && m->fstype == "fuse.roamfs" && m->source.rfind("roamfs:", 0) == 0)
    return Target{m->source.substr(7), path};
  struct stat st {};
  if (::stat((path + "/FORMAT").c_str(), &st) == 0) return Target{path, mount_point_of_store(path)};
  return Status::invalid(arg + " is neither a roamdisk store nor the mount point of a running roamfs");
}

std::string disk_path(const Target& t, const std::string& user_path) {
  std::string p = user_path;
  if (!t.mountpoint.empty() && p.rfind(t.mountpoint, 0) == 0 &&
      (p.size() == t.mountpoint.size() || p[t.mountpoint.size()] == '/'))
    p = p.substr(t.mountpoint.size());
  if (p.empty() || p[0] != '/') p = "/" + p;
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  return p;
}

}  // namespace roam::ctl
