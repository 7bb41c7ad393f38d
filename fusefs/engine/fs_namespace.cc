// Namespace operations: lookup, create/mknod/mkdir/symlink, link, unlink,
// rmdir, rename, readdir, readlink.
#include <linux/fs.h>  // RENAME_NOREPLACE, RENAME_EXCHANGE
#include <sys/stat.h>

#include "fusefs/engine/acl.h"
#include "fusefs/engine/fs.h"
#include "fusefs/engine/mutation.h"
#include "fusefs/engine/names.h"

namespace roam {

namespace {

Status check_name(std::string_view name) {
  if (name.empty() || name == "." || name == ".." || name.find('/') != std::string_view::npos)
    return Status::invalid("invalid file name");
  if (name.size() > kNameMax) return Status::error(ENAMETOOLONG, "file name longer than 255 bytes");
  return Status::ok();
}

// A live directory, or the reason it cannot hold entries.
Result<Inode> live_dir(const StoreTxn& txn, uint64_t ino) {
  ROAM_ASSIGN(Inode dir, txn.inode(ino));
  if (!S_ISDIR(dir.mode)) return Status::error(ENOTDIR, "not a directory");
  if (dir.nlink == 0) return Status::not_found("directory has been removed");
  return dir;
}

Result<std::string> child_path(const StoreTxn& txn, uint64_t parent, std::string_view name) {
  ROAM_ASSIGN(std::string p, txn.path_of(parent));
  if (p != "/") p += "/";
  p.append(name);
  return p;
}

void touch(Inode& inode, Timespec now) { inode.mtime = inode.ctime = now; }

// A new inode's permissions (before it is stored): from the parent's default
// ACL, which it inherits, or else the mode less the umask. Symlinks are 0777
// and carry no ACL.
Status inherit_acls(Mutation& m, uint64_t parent, Inode& inode, uint32_t umask) {
  if (S_ISLNK(inode.mode)) return Status::ok();
  ROAM_ASSIGN(auto default_acl, m.txn().get_xattr(parent, kAclDefaultXattr));
  if (!default_acl) {
    inode.mode &= ~(umask & 0777);
    return Status::ok();
  }
  ROAM_ASSIGN(Acl acl, parse_acl(*default_acl));
  if (S_ISDIR(inode.mode)) ROAM_TRY(m.set_xattr(inode.ino, kAclDefaultXattr, *default_acl));
  if (acl_create_masq(acl, &inode.mode)) ROAM_TRY(m.set_xattr(inode.ino, kAclAccessXattr, encode_acl(acl)));
  return Status::ok();
}

// EINVAL when `dir` is `ancestor` or lies below it (a directory moved into itself).
Status check_not_below(const StoreTxn& txn, uint64_t dir, uint64_t ancestor) {
  for (int depth = 0; dir != kRootIno; ++depth) {
    if (dir == ancestor) return Status::invalid("cannot move a directory into itself");
    if (depth > 4096) return Status::corrupt("directory cycle");
    ROAM_ASSIGN(Inode i, txn.inode(dir));
    dir = i.parent;
  }
  return ancestor == kRootIno ? Status::invalid("cannot move the root") : Status::ok();
}

// The two names of a rename: from (parent, name) to (new_parent, new_name).
struct RenameEnds {
  uint64_t parent;
  std::string_view name;
  uint64_t new_parent;
  std::string_view new_name;
  bool across() const { return new_parent != parent; }  // between two directories
};

// RENAME_EXCHANGE, before `src` moves to the new name: `target` (entry
// `target_entry`) takes the old one. A directory that changes parent moves a
// link count with it. Does not store the inodes.
Status exchange_target(Mutation& m, const RenameEnds& ends, const Inode& src, Inode& target,
                       const Dirent& target_entry, Inode& src_dir, Inode& dst_dir) {
  if (S_ISDIR(target.mode) && ends.across()) ROAM_TRY(check_not_below(m.txn(), ends.parent, target.ino));
  ROAM_TRY(move_name(m, target, ends.new_parent, ends.new_name, ends.parent, ends.name));
  if (S_ISDIR(target.mode) != S_ISDIR(src.mode) && ends.across()) {
    // A directory changes parent in each direction; link counts follow.
    if (S_ISDIR(src.mode)) --src_dir.nlink, ++dst_dir.nlink;
    else ++src_dir.nlink, --dst_dir.nlink;
  }
  return m.put_dirent(ends.parent, ends.name, target_entry);
}

// A plain rename, before `src` moves to the new name: `target`, if any, loses
// that name (a directory must be empty, and dies), and the old name goes. Does
// not store the inodes.
Status replace_target(Mutation& m, const RenameEnds& ends, const Inode& src, std::optional<Inode>& target,
                      Inode& src_dir, Inode& dst_dir) {
  if (target) {
    if (S_ISDIR(src.mode) && !S_ISDIR(target->mode)) return Status::error(ENOTDIR, "target is not a directory");
    if (!S_ISDIR(src.mode) && S_ISDIR(target->mode)) return Status::error(EISDIR, "target is a directory");
    if (S_ISDIR(target->mode)) {
      ROAM_ASSIGN(bool empty, m.txn().dir_is_empty(target->ino));
      if (!empty) return Status::error(ENOTEMPTY, "target directory not empty");
      target->nlink = 0;
      --dst_dir.nlink;
    } else {
      ROAM_TRY(drop_name(m, *target, ends.new_parent, ends.new_name));
    }
  }
  if (S_ISDIR(src.mode) && ends.across()) --src_dir.nlink, ++dst_dir.nlink;
  return m.del_dirent(ends.parent, ends.name);
}

}  // namespace

Result<OpRecord> Fs::finish(Mutation& m) {
  ROAM_ASSIGN(OpRecord rec, m.commit());
  if (commit_hook_) commit_hook_(rec);
  return rec;
}

Result<Inode> Fs::lookup(uint64_t parent, std::string_view name) {
  if (name.size() > kNameMax) return Status::error(ENAMETOOLONG, "file name longer than 255 bytes");
  ROAM_ASSIGN(ReadTxn txn, store_.begin_read());
  PastView v = view(txn);
  if (name == ".") {  // any inode by its number: the kernel resolving a file handle
    ROAM_ASSIGN(Inode self, v.existing_inode(parent));
    if (self.nlink == 0) return Status::not_found("file has been removed");
    return self;
  }
  ROAM_ASSIGN(Inode dir, v.existing_inode(parent));
  if (!S_ISDIR(dir.mode)) return Status::error(ENOTDIR, "not a directory");
  if (dir.nlink == 0) return Status::not_found("directory has been removed");
  if (name == "..") return v.existing_inode(dir.parent);
  ROAM_ASSIGN(auto d, v.dirent(parent, name));
  if (!d) return Status::not_found("no such file or directory");
  return v.existing_inode(d->ino);
}

Result<Inode> Fs::getattr(uint64_t ino) {
  ROAM_ASSIGN(ReadTxn txn, store_.begin_read());
  return view(txn).existing_inode(ino);
}

Result<std::vector<std::optional<Inode>>> Fs::getattrs(const std::vector<uint64_t>& inos) {
  ROAM_ASSIGN(ReadTxn txn, store_.begin_read());
  PastView v = view(txn);
  std::vector<std::optional<Inode>> out;
  out.reserve(inos.size());
  for (uint64_t ino : inos) {
    ROAM_ASSIGN(auto inode, v.inode(ino));
    out.push_back(std::move(inode));
  }
  return out;
}

namespace {

// A new inode for directory `dir` (not stored): the caller's, with the
// directory's group when it is setgid (BSD group semantics), its permissions
// from the directory's default ACL or the umask; link count 0.
Result<Inode> new_child(Mutation& m, const Inode& dir, uint32_t mode, const Caller& c, Timespec now,
                        uint32_t umask) {
  Inode inode = m.new_inode(mode, c, now);
  inode.nlink = 0;
  if (dir.mode & S_ISGID) {
    inode.gid = dir.gid;
    if (S_ISDIR(mode)) inode.mode |= S_ISGID;
  }
  ROAM_TRY(inherit_acls(m, dir.ino, inode, umask));
  return inode;
}

}  // namespace

Result<Inode> Fs::make_node(const Caller& c, uint64_t parent, std::string_view name, uint32_t mode, uint64_t rdev,
                            std::string_view target, OpKind kind, uint32_t umask) {
  ROAM_TRY(check_name(name));
  ROAM_ASSIGN(Mutation m, Mutation::begin(store_, kind, c));
  ROAM_ASSIGN(Inode dir, live_dir(m.txn(), parent));
  ROAM_ASSIGN(auto existing, m.txn().get_dirent(parent, name));
  if (existing) return Status::error(EEXIST, "file exists");
  const Timespec now = now_timespec();
  ROAM_ASSIGN(Inode inode, new_child(m, dir, mode, c, now, umask));
  inode.rdev = rdev;
  inode.symlink_target = std::string(target);
  inode.size = target.size();
  ROAM_TRY(add_name(m, inode, parent, name));
  if (S_ISDIR(mode)) {
    inode.nlink = 2;
    ++dir.nlink;
  }
  touch(dir, now);
  ROAM_TRY(m.put_inode(inode));
  ROAM_TRY(m.put_dirent(parent, name, Dirent{inode.ino, type_of(mode)}));
  ROAM_TRY(m.put_inode(dir));
  OpRecord& rec = m.record();
  rec.ino = inode.ino;
  ROAM_ASSIGN(rec.path, child_path(m.txn(), parent, name));
  rec.mode = inode.mode;
  rec.rdev = rdev;
  rec.name = std::string(target);
  ROAM_TRY(finish(m).take_status());
  return inode;
}

Result<Inode> Fs::tmpfile(const Caller& c, uint64_t parent, uint32_t mode, uint32_t umask) {
  ROAM_ASSIGN(Mutation m, Mutation::begin(store_, OpKind::kTmpfile, c));
  ROAM_ASSIGN(Inode dir, live_dir(m.txn(), parent));
  // No name, so the directory does not change (Linux leaves its times too).
  ROAM_ASSIGN(Inode inode, new_child(m, dir, S_IFREG | (mode & 07777), c, now_timespec(), umask));
  ROAM_TRY(m.put_inode(inode));
  OpRecord& rec = m.record();
  rec.ino = inode.ino;
  ROAM_ASSIGN(rec.path, m.txn().path_of(parent));
  rec.mode = inode.mode;
  ROAM_TRY(finish(m).take_status());
  std::lock_guard lock(tmpfiles_mu_);
  unlinked_tmpfiles_.insert(inode.ino);
  return inode;
}

bool Fs::linkable_tmpfile(uint64_t ino, bool take) {
  std::lock_guard lock(tmpfiles_mu_);
  return take ? unlinked_tmpfiles_.erase(ino) > 0 : unlinked_tmpfiles_.count(ino) > 0;
}

Result<Inode> Fs::mknod(const Caller& c, uint64_t parent, std::string_view name, uint32_t mode, uint64_t rdev,
                        OpKind kind, uint32_t umask) {
  switch (mode & S_IFMT) {
    case S_IFREG:
    case S_IFIFO:
    case S_IFSOCK:
    case S_IFCHR:
    case S_IFBLK:
      break;
    case 0:
      mode |= S_IFREG;
      break;
    default:
      return Status::invalid("mknod of an unsupported file type");
  }
  if (!S_ISCHR(mode) && !S_ISBLK(mode)) rdev = 0;
  return make_node(c, parent, name, mode, rdev, {}, kind, umask);
}

Result<Inode> Fs::mkdir(const Caller& c, uint64_t parent, std::string_view name, uint32_t mode, uint32_t umask) {
  return make_node(c, parent, name, S_IFDIR | (mode & 07777), 0, {}, OpKind::kMkdir, umask);
}

Result<Inode> Fs::symlink(const Caller& c, uint64_t parent, std::string_view name, std::string_view target) {
  if (target.empty()) return Status::error(ENOENT, "empty symlink target");
  if (target.size() > kSymlinkMax) return Status::error(ENAMETOOLONG, "symlink target too long");
  return make_node(c, parent, name, S_IFLNK | 0777, 0, target, OpKind::kSymlink, 0);
}

Result<Inode> Fs::link(const Caller& c, uint64_t ino, uint64_t new_parent, std::string_view new_name) {
  ROAM_TRY(check_name(new_name));
  ROAM_ASSIGN(Mutation m, Mutation::begin(store_, OpKind::kLink, c));
  ROAM_ASSIGN(Inode inode, m.inode(ino));
  if (S_ISDIR(inode.mode)) return Status::error(EPERM, "cannot hard-link a directory");
  const bool tmpfile = inode.nlink == 0 && linkable_tmpfile(ino, false);
  if (inode.nlink == 0 && !tmpfile) return Status::not_found("file has been removed");
  if (inode.nlink >= 65000) return Status::error(EMLINK, "too many links");
  ROAM_ASSIGN(Inode dir, live_dir(m.txn(), new_parent));
  ROAM_ASSIGN(auto existing, m.txn().get_dirent(new_parent, new_name));
  if (existing) return Status::error(EEXIST, "file exists");
  OpRecord& rec = m.record();
  ROAM_ASSIGN(rec.path, m.txn().path_of(ino));
  ROAM_ASSIGN(rec.path2, child_path(m.txn(), new_parent, new_name));
  const Timespec now = now_timespec();
  ROAM_TRY(add_name(m, inode, new_parent, new_name));
  inode.ctime = now;
  touch(dir, now);
  ROAM_TRY(m.put_inode(inode));
  ROAM_TRY(m.put_dirent(new_parent, new_name, Dirent{ino, type_of(inode.mode)}));
  ROAM_TRY(m.put_inode(dir));
  rec.ino = ino;
  ROAM_TRY(finish(m).take_status());
  if (tmpfile) linkable_tmpfile(ino, true);  // named now: a later link needs a name, as any file's
  return inode;
}

Status Fs::unlink(const Caller& c, uint64_t parent, std::string_view name) {
  if (name.size() > kNameMax) return Status::error(ENAMETOOLONG, "file name longer than 255 bytes");
  ROAM_ASSIGN(Mutation m, Mutation::begin(store_, OpKind::kUnlink, c));
  ROAM_ASSIGN(Inode dir, live_dir(m.txn(), parent));
  ROAM_ASSIGN(auto d, m.txn().get_dirent(parent, name));
  if (!d) return Status::not_found("no such file");
  if (S_ISDIR(d->type)) return Status::error(EISDIR, "is a directory; use rmdir");
  ROAM_ASSIGN(Inode inode, m.inode(d->ino));
  OpRecord& rec = m.record();
  ROAM_ASSIGN(rec.path, child_path(m.txn(), parent, name));
  rec.ino = inode.ino;
  const Timespec now = now_timespec();
  ROAM_TRY(drop_name(m, inode, parent, name));
  inode.ctime = now;
  touch(dir, now);
  ROAM_TRY(m.put_inode(inode));
  ROAM_TRY(m.del_dirent(parent, name));
  ROAM_TRY(m.put_inode(dir));
  return finish(m).take_status();
}

Status Fs::rmdir(const Caller& c, uint64_t parent, std::string_view name) {
  if (name == ".") return Status::invalid("cannot remove '.'");
  if (name == "..") return Status::error(ENOTEMPTY, "cannot remove '..'");
  if (name.size() > kNameMax) return Status::error(ENAMETOOLONG, "file name longer than 255 bytes");
  ROAM_ASSIGN(Mutation m, Mutation::begin(store_, OpKind::kRmdir, c));
  ROAM_ASSIGN(Inode dir, live_dir(m.txn(), parent));
  ROAM_ASSIGN(auto d, m.txn().get_dirent(parent, name));
  if (!d) return Status::not_found("no such directory");
  if (!S_ISDIR(d->type)) return Status::error(ENOTDIR, "not a directory");
  ROAM_ASSIGN(bool empty, m.txn().dir_is_empty(d->ino));
  if (!empty) return Status::error(ENOTEMPTY, "directory not empty");
  ROAM_ASSIGN(Inode victim, m.inode(d->ino));
  OpRecord& rec = m.record();
  ROAM_ASSIGN(rec.path, child_path(m.txn(), parent, name));
  rec.ino = victim.ino;
  const Timespec now = now_timespec();
  victim.nlink = 0;
  victim.ctime = now;
  --dir.nlink;
  touch(dir, now);
  ROAM_TRY(m.put_inode(victim));
  ROAM_TRY(m.del_dirent(parent, name));
  ROAM_TRY(m.put_inode(dir));
  return finish(m).take_status();
}

Status Fs::rename(const Caller& c, uint64_t parent, std::string_view name, uint64_t new_parent,
                  std::string_view new_name, unsigned flags) {
  const bool exchange = flags & RENAME_EXCHANGE;
  const bool noreplace = flags & RENAME_NOREPLACE;
  if ((flags & ~(RENAME_EXCHANGE | RENAME_NOREPLACE)) || (exchange && noreplace))
    return Status::invalid("unsupported rename flags");
  if (name.size() > kNameMax) return Status::error(ENAMETOOLONG, "file name longer than 255 bytes");
  ROAM_TRY(check_name(new_name));
  const RenameEnds ends{parent, name, new_parent, new_name};
  ROAM_ASSIGN(Mutation m, Mutation::begin(store_, OpKind::kRename, c));
  StoreTxn& txn = m.txn();
  ROAM_ASSIGN(Inode src_dir, live_dir(txn, parent));
  Inode other_dir;
  if (ends.across()) {
    ROAM_ASSIGN(other_dir, live_dir(txn, new_parent));
  }
  Inode& dst_dir = ends.across() ? other_dir : src_dir;

  ROAM_ASSIGN(auto sd, txn.get_dirent(parent, name));
  if (!sd) return Status::not_found("no such file or directory");
  ROAM_ASSIGN(auto td, txn.get_dirent(new_parent, new_name));
  if (exchange && !td) return Status::not_found("rename exchange: target does not exist");
  if (noreplace && td) return Status::error(EEXIST, "target exists");
  if (td && td->ino == sd->ino) return Status::ok();  // two names of one file: POSIX says do nothing

  ROAM_ASSIGN(Inode src, txn.inode(sd->ino));
  if (S_ISDIR(src.mode) && ends.across()) ROAM_TRY(check_not_below(txn, new_parent, src.ino));
  OpRecord& rec = m.record();
  rec.ino = src.ino;
  rec.flags = flags;
  ROAM_ASSIGN(rec.path, child_path(txn, parent, name));
  ROAM_ASSIGN(rec.path2, child_path(txn, new_parent, new_name));
  const Timespec now = now_timespec();

  std::optional<Inode> target;
  if (td) {
    ROAM_ASSIGN(target, txn.inode(td->ino));
    rec.ino2 = target->ino;
  }
  if (exchange) ROAM_TRY(exchange_target(m, ends, src, *target, *td, src_dir, dst_dir));
  else ROAM_TRY(replace_target(m, ends, src, target, src_dir, dst_dir));
  if (target) target->ctime = now;
  ROAM_TRY(move_name(m, src, parent, name, new_parent, new_name));
  src.ctime = now;
  ROAM_TRY(m.put_dirent(new_parent, new_name, *sd));
  touch(src_dir, now);
  touch(dst_dir, now);
  ROAM_TRY(m.put_inode(src));
  if (target) ROAM_TRY(m.put_inode(*target));
  ROAM_TRY(m.put_inode(src_dir));
  if (ends.across()) ROAM_TRY(m.put_inode(other_dir));
  return finish(m).take_status();
}

Result<std::string> Fs::readlink(uint64_t ino) {
  ROAM_ASSIGN(ReadTxn txn, store_.begin_read());
  ROAM_ASSIGN(Inode inode, view(txn).existing_inode(ino));
  if (!S_ISLNK(inode.mode)) return Status::invalid("not a symbolic link");
  return inode.symlink_target;
}

Result<std::vector<std::pair<std::string, Dirent>>> Fs::readdir(uint64_t ino, std::string_view after, size_t limit) {
  ROAM_ASSIGN(ReadTxn txn, store_.begin_read());
  PastView v = view(txn);
  ROAM_ASSIGN(Inode dir, v.existing_inode(ino));
  if (!S_ISDIR(dir.mode)) return Status::error(ENOTDIR, "not a directory");
  return v.list_dir(ino, after, limit);
}

}  // namespace roam
