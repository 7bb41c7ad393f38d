#include "fusefs/history/access.h"

#include <sys/stat.h>

#include <algorithm>

namespace roam {

namespace {

bool in_group(const Identity& who, uint32_t gid) {
  return who.gid == gid || std::find(who.groups.begin(), who.groups.end(), gid) != who.groups.end();
}

// The bits an ACL with named entries grants `who` who is not the owner
// (acl_permission_check and posix_acl_permission in the kernel).
int acl_grants(const Identity& who, const Inode& i, const Acl& acl, int mask) {
  int mask_bits = 7;
  for (const auto& e : acl)
    if (e.tag == kAclMask) mask_bits = e.perm;
  for (const auto& e : acl)
    if (e.tag == kAclUser && e.id == who.uid) return e.perm & mask_bits;
  bool group_matched = false;
  for (const auto& e : acl) {
    const bool matches = (e.tag == kAclGroupObj && in_group(who, i.gid)) || (e.tag == kAclGroup && in_group(who, e.id));
    if (!matches) continue;
    group_matched = true;
    if ((e.perm & mask_bits & mask) == mask) return mask;
  }
  if (group_matched) return 0;
  for (const auto& e : acl)
    if (e.tag == kAclOther) return e.perm;
  return 0;
}

std::string describe(int mask) {
  std::string s;
  if (mask & kMayRead) s += "read";
  if (mask & kMayWrite) s += s.empty() ? "write" : " and write";
  if (mask & kMaySearch) s += s.empty() ? "search" : " and search";
  return s;
}

Result<std::optional<Acl>> access_acl(PastView& view, uint64_t ino) {
  ROAM_ASSIGN(auto value, view.xattr(ino, kAclAccessXattr));
  if (!value) return std::optional<Acl>();
  ROAM_ASSIGN(Acl acl, parse_acl(*value));
  return std::optional<Acl>(std::move(acl));
}

// Read on every file and read and search on every directory below `dir`.
Status check_tree_readable(PastView& view, const Identity& who, uint64_t dir, const std::string& path) {
  ROAM_ASSIGN(auto entries, view.list_dir(dir));
  for (const auto& [name, d] : entries) {
    const std::string child = join_path(path, name);
    ROAM_ASSIGN(Inode i, view.existing_inode(d.ino));
    const bool is_dir = S_ISDIR(i.mode);
    ROAM_TRY(check_inode(view, who, d.ino, child, is_dir ? kMayRead | kMaySearch : kMayRead));
    if (is_dir) ROAM_TRY(check_tree_readable(view, who, d.ino, child));
  }
  return Status::ok();
}

}  // namespace

bool permits(const Identity& who, const Inode& i, const std::optional<Acl>& acl, int mask) {
  if (who.uid == 0) return true;
  const auto mode = static_cast<int>(i.mode & 0777);
  if (who.uid == i.uid) return ((mode >> 6) & mask) == mask;
  bool extended = false;
  if (acl) acl_mode(*acl, &extended);
  if (acl && extended) return (acl_grants(who, i, *acl, mask) & mask) == mask;
  if (in_group(who, i.gid)) return ((mode >> 3) & mask) == mask;
  return (mode & mask) == mask;
}

Status check_inode(PastView& view, const Identity& who, uint64_t ino, const std::string& path, int mask) {
  ROAM_ASSIGN(Inode i, view.existing_inode(ino));
  ROAM_ASSIGN(auto acl, access_acl(view, ino));
  if (permits(who, i, acl, mask)) return Status::ok();
  return Status::error(EACCES, "uid " + std::to_string(who.uid) + " may not " + describe(mask) + " " + path);
}

Result<std::optional<uint64_t>> walk_as(PastView& view, const Identity& who, const std::string& path) {
  uint64_t ino = kRootIno;
  std::string walked = "/";
  size_t pos = 1;
  while (pos < path.size()) {
    ROAM_TRY(check_inode(view, who, ino, walked, kMaySearch));
    const size_t slash = std::min(path.find('/', pos), path.size());
    const std::string name = path.substr(pos, slash - pos);
    ROAM_ASSIGN(auto d, view.dirent(ino, name));
    if (!d) return std::optional<uint64_t>();
    ino = d->ino;
    walked = join_path(walked, name);
    pos = slash + 1;
  }
  return std::optional<uint64_t>(ino);
}

Status check_readable(PastView& view, const Identity& who, const std::string& path) {
  const auto [parent, name] = split_path(path);
  ROAM_ASSIGN(auto ino, walk_as(view, who, path));
  if (!ino) {
    ROAM_ASSIGN(auto dir, walk_as(view, who, parent));
    if (!dir) return Status::not_found(parent + " did not exist then");
    return check_inode(view, who, *dir, parent, kMayRead);
  }
  ROAM_ASSIGN(Inode i, view.existing_inode(*ino));
  if (!S_ISDIR(i.mode)) return check_inode(view, who, *ino, path, kMayRead);
  ROAM_TRY(check_inode(view, who, *ino, path, kMayRead | kMaySearch));
  return check_tree_readable(view, who, *ino, path);
}

Status check_writable(PastView& live, const Identity& who, const std::string& path) {
  if (path == "/") return check_inode(live, who, kRootIno, path, kMayWrite | kMaySearch);
  const auto [parent, name] = split_path(path);
  ROAM_ASSIGN(auto dir, walk_as(live, who, parent));
  if (!dir) return Status::ok();  // the restore makes it: a directory of the caller's own request
  ROAM_TRY(check_inode(live, who, *dir, parent, kMayWrite | kMaySearch));
  ROAM_ASSIGN(auto existing, live.dirent(*dir, name));
  if (!existing) return Status::ok();
  return check_inode(live, who, existing->ino, path, kMayWrite);
}

}  // namespace roam
