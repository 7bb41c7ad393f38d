// Attribute operations: setattr (mode, owner, size, times), xattrs, statfs.
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>

#include <algorithm>
#include <cstring>

#include "fusefs/engine/acl.h"
#include "fusefs/engine/fs.h"
#include "fusefs/store/volume.h"
#include "fusefs/engine/mutation.h"

namespace roam {

namespace {

// chmod of an inode with an access ACL: the ACL follows the new mode.
Status chmod_access_acl(Mutation& m, const Inode& inode) {
  ROAM_ASSIGN(auto value, m.txn().get_xattr(inode.ino, kAclAccessXattr));
  if (!value) return Status::ok();
  ROAM_ASSIGN(Acl acl, parse_acl(*value));
  acl_chmod(acl, inode.mode);
  return m.set_xattr(inode.ino, kAclAccessXattr, encode_acl(acl));
}

// setfacl: the mode's permission bits follow the ACL, which is stored only
// when it says more than they do (else any stored one goes). `inode` is
// changed, not stored.
Status set_access_acl(Mutation& m, Inode& inode, std::string_view value, bool kill_sgid) {
  ROAM_ASSIGN(Acl acl, parse_acl(value));
  bool extended = false;
  const uint32_t perms = acl_mode(acl, &extended);
  inode.mode = (inode.mode & ~0777u) | perms;
  if (kill_sgid) inode.mode &= ~static_cast<uint32_t>(S_ISGID);
  m.record().mode = inode.mode;
  if (extended) return m.set_xattr(inode.ino, kAclAccessXattr, value);
  ROAM_ASSIGN(auto stored, m.txn().get_xattr(inode.ino, kAclAccessXattr));
  return stored ? m.del_xattr(inode.ino, kAclAccessXattr) : Status::ok();
}

// A directory's default ACL, which new inodes in it inherit.
Status set_default_acl(Mutation& m, const Inode& inode, std::string_view value) {
  if (!S_ISDIR(inode.mode)) return Status::error(EACCES, "only directories have a default ACL");
  ROAM_TRY(parse_acl(value).take_status());
  return m.set_xattr(inode.ino, kAclDefaultXattr, value);
}

}  // namespace

Result<Inode> Fs::setattr(const Caller& c, uint64_t ino, const SetattrArgs& a) {
  ROAM_ASSIGN(Mutation m, Mutation::begin(store_, OpKind::kSetattr, c));
  ROAM_ASSIGN(Inode inode, m.inode(ino));
  OpRecord& rec = m.record();
  rec.ino = ino;
  rec.flags = a.mask;
  ROAM_ASSIGN(rec.path, m.txn().path_of(ino));
  const Timespec now = now_timespec();
  if (a.kill_privs) ROAM_TRY(kill_privileges(m, inode, a.outside_group).take_status());
  if (a.mask & kSetMode) {  // after the kill: an explicit mode wins (the kernel never sends both)
    inode.mode = (inode.mode & S_IFMT) | (a.mode & 07777);
    rec.mode = inode.mode;
    ROAM_TRY(chmod_access_acl(m, inode));
  }
  if (a.mask & kSetUid) inode.uid = rec.uid = a.uid;
  if (a.mask & kSetGid) inode.gid = rec.gid = a.gid;
  if (a.mask & kSetSize) {
    if (S_ISDIR(inode.mode)) return Status::error(EISDIR, "cannot truncate a directory");
    if (!S_ISREG(inode.mode)) return Status::invalid("can only truncate regular files");
    if (a.size < inode.size) ROAM_TRY(m.remap(ino, a.size, inode.size - a.size, std::nullopt));
    if (a.size != inode.size && !(a.mask & kSetMtime)) inode.mtime = now;
    inode.size = rec.size = a.size;
  }
  if (a.mask & kSetAtime) inode.atime = rec.atime = a.atime_now ? now : a.atime;
  if (a.mask & kSetMtime) inode.mtime = rec.mtime = a.mtime_now ? now : a.mtime;
  inode.ctime = (a.mask & kSetCtime) ? a.ctime : now;
  ROAM_TRY(m.put_inode(inode));
  ROAM_TRY(finish(m).take_status());
  return inode;
}

Result<bool> Fs::kill_privileges(Mutation& m, Inode& inode, bool outside_group) {
  if (S_ISDIR(inode.mode)) return false;
  uint32_t mode = inode.mode & ~static_cast<uint32_t>(S_ISUID);
  if ((mode & S_IXGRP) || outside_group) mode &= ~static_cast<uint32_t>(S_ISGID);
  bool changed = mode != inode.mode;
  inode.mode = mode;
  constexpr std::string_view kCaps = "security.capability";
  ROAM_ASSIGN(auto caps, m.txn().get_xattr(inode.ino, kCaps));
  if (caps) {
    ROAM_TRY(m.del_xattr(inode.ino, kCaps));  // its before-image goes into the record
    changed = true;
  }
  if (changed) {
    m.record().flags |= kKilledPrivileges;
    m.record().mode = inode.mode;
  }
  return changed;
}

Status Fs::setxattr(const Caller& c, uint64_t ino, std::string_view name, std::string_view value, int flags,
                    bool kill_sgid) {
  if (name.empty() || name.size() > XATTR_NAME_MAX) return Status::error(ERANGE, "bad xattr name length");
  if (value.size() > XATTR_SIZE_MAX) return Status::error(E2BIG, "xattr value too large");
  ROAM_ASSIGN(Mutation m, Mutation::begin(store_, OpKind::kSetxattr, c));
  ROAM_ASSIGN(Inode inode, m.inode(ino));
  ROAM_ASSIGN(auto existing, m.txn().get_xattr(ino, name));
  if ((flags & XATTR_CREATE) && existing) return Status::error(EEXIST, "extended attribute exists");
  if ((flags & XATTR_REPLACE) && !existing) return Status::error(ENODATA, "no such extended attribute");
  OpRecord& rec = m.record();
  rec.ino = ino;
  rec.name = std::string(name);
  rec.length = value.size();
  rec.flags = static_cast<uint32_t>(flags);
  ROAM_ASSIGN(rec.path, m.txn().path_of(ino));
  if (name == kAclAccessXattr) {
    ROAM_TRY(set_access_acl(m, inode, value, kill_sgid));
  } else if (name == kAclDefaultXattr) {
    ROAM_TRY(set_default_acl(m, inode, value));
  } else {
    ROAM_TRY(m.set_xattr(ino, name, value));
  }
  inode.ctime = now_timespec();
  ROAM_TRY(m.put_inode(inode));
  return finish(m).take_status();
}

Result<std::string> Fs::getxattr(uint64_t ino, std::string_view name) {
  ROAM_ASSIGN(ReadTxn txn, store_.begin_read());
  PastView at = view(txn);
  ROAM_ASSIGN(auto v, at.xattr(ino, name));
  if (!v) {
    ROAM_TRY(at.existing_inode(ino).take_status());  // ENOENT for a bad inode, not ENODATA
    return Status::error(ENODATA, "no such extended attribute");
  }
  return std::move(*v);
}

Result<std::vector<std::string>> Fs::listxattr(uint64_t ino) {
  ROAM_ASSIGN(ReadTxn txn, store_.begin_read());
  if (!at_seq_) return txn.list_xattrs(ino);
  PastView v = view(txn);
  ROAM_ASSIGN(auto all, v.xattrs(ino));
  std::vector<std::string> names;
  for (auto& [name, value] : all) names.push_back(name);
  return names;
}

Status Fs::removexattr(const Caller& c, uint64_t ino, std::string_view name) {
  ROAM_ASSIGN(Mutation m, Mutation::begin(store_, OpKind::kRemovexattr, c));
  ROAM_ASSIGN(Inode inode, m.inode(ino));
  OpRecord& rec = m.record();
  rec.ino = ino;
  rec.name = std::string(name);
  ROAM_ASSIGN(rec.path, m.txn().path_of(ino));
  ROAM_TRY(m.del_xattr(ino, name));
  inode.ctime = now_timespec();
  ROAM_TRY(m.put_inode(inode));
  return finish(m).take_status();
}

Result<struct statvfs> Fs::statfs() {
  struct statvfs st {};
  if (::statvfs(store_.dir().c_str(), &st) < 0)
    return Status::error(errno, std::string("statvfs of the store: ") + std::strerror(errno));
  // Files as of the last checkpoint (at most seconds old), with no lock: a
  // statfs (df, a file manager, the agent's look for fenced homes) must not
  // wait behind a restore that holds the store's writer lock for seconds.
  ROAM_ASSIGN(ReadTxn snapshot, store_.begin_snapshot());
  MDB_stat ms{};
  if (int rc = mdb_stat(snapshot.raw().get(), snapshot.dbis().inodes, &ms); rc != 0)
    return Status::error(EIO, std::string("statfs: counting inodes: ") + mdb_strerror(rc));
  // Inode numbers are never exhausted.
  st.f_files = ms.ms_entries + st.f_ffree;
  st.f_namemax = kNameMax;
  // Space is the volume's, less the reserve growing writes leave free...
  const uint64_t unit = st.f_frsize ? st.f_frsize : 1;
  const uint64_t reserve = growth_reserve(static_cast<uint64_t>(st.f_blocks) * unit) / unit;
  st.f_bavail = st.f_bavail > reserve ? st.f_bavail - reserve : 0;
  // ...or, with a quota, the quota: what a writer on this disk can use.
  // Live data and quota as of the last commit, also with no lock.
  const uint64_t quota = store_.quota_bytes();
  if (quota > 0) {
    const uint64_t live = store_.live_bytes();
    const uint64_t left = (quota > live ? quota - live : 0) / unit;
    st.f_blocks = quota / unit;
    st.f_bfree = std::min<uint64_t>(left, st.f_bfree);
    st.f_bavail = std::min<uint64_t>(left, st.f_bavail);
  }
  return st;
}

}  // namespace roam
