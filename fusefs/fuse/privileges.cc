// Taking away setuid, setgid and capabilities as Linux's own filesystems do
// (FUSE_HANDLE_KILLPRIV_V2, device_io.h), and the setattr callback, where the
// kernel asks for it most often (op_support.h).
#include <sys/stat.h>
#include <syslog.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "fusefs/fuse/op_support.h"

namespace roam {

namespace {

// fuse_lowlevel_notify_inval_inode's offset for "the attributes only, not
// the cached pages".
constexpr off_t kInvalidateAttributesOnly = -1;

// The kernel's FATTR_KILL_SUIDGID (include/uapi/linux/fuse.h), which libfuse
// hands on as FUSE_SET_ATTR_KILL_SUID: chown, and truncate by a caller
// without CAP_FSETID.
constexpr int kFattrKillSuidgid = 1 << 11;
static_assert(FUSE_SET_ATTR_KILL_SUID == kFattrKillSuidgid, "FATTR_KILL_SUIDGID");

// Supplementary groups read at first (more are read when a caller has more).
constexpr size_t kGroupsGuess = 64;

}  // namespace

// Whether a file of this mode loses anything to Fs::kill_privileges.
bool has_killable_mode(uint32_t mode, bool outside_group) {
  const bool sgid_goes = (mode & S_ISGID) && ((mode & S_IXGRP) || outside_group);
  return !S_ISDIR(mode) && ((mode & S_ISUID) || sgid_goes);
}

// Whether the caller belongs to group `gid`: its group, or one of its
// supplementary groups (libfuse reads them from /proc). When they cannot be
// read (the process is gone), it counts as a member: the bit stays.
bool caller_in_group(fuse_req_t req, uint32_t gid) {
  if (fuse_req_ctx(req)->gid == gid) return true;
  std::vector<gid_t> groups(kGroupsGuess);
  int n = fuse_req_getgroups(req, static_cast<int>(groups.size()), groups.data());
  if (n > static_cast<int>(groups.size())) {
    groups.resize(static_cast<size_t>(n));
    n = fuse_req_getgroups(req, n, groups.data());
  }
  if (n < 0) return true;
  groups.resize(std::min(groups.size(), static_cast<size_t>(n)));
  return std::find(groups.begin(), groups.end(), gid) != groups.end();
}

// For a request in which the kernel asks to take away privileges because the
// caller lacks CAP_FSETID: whether the caller is outside inode `ino`'s group,
// so that setgid goes even without group execute (as Linux's
// setattr_should_drop_sgid).
bool outside_group_of(fuse_req_t req, fuse_ino_t ino) {
  auto r = ctx(req).fs.getattr(ino);
  return r && !caller_in_group(req, r->gid);
}

// The kernel caches a file's mode: after roamfs took away setuid/setgid in a
// request whose reply carries no attributes (WRITE, OPEN), it must forget it,
// before the reply (or exec would still see the bits). Only the attributes:
// cached pages stay.
void forget_cached_mode(fuse_req_t req, fuse_ino_t ino) {
  fuse_session* se = ctx(req).session;
  if (!se) return;
  int rc = fuse_lowlevel_notify_inval_inode(se, ino, kInvalidateAttributesOnly, 0);
  if (rc != 0 && rc != -ENOENT)
    syslog(LOG_WARNING, "roamfs: inode %llu: cached mode not invalidated: %s", static_cast<unsigned long long>(ino),
           std::strerror(-rc));
}

// An O_DIRECT write bypassed the page cache: the kernel dropped the range's
// pages before sending it, but a buffered read may have cached the old bytes
// again while the write was in flight, and after an asynchronous direct
// write the kernel drops nothing (generic/451). Dropped here, after the new
// bytes are stored and before the reply, so that every read that completes
// after the write sees them: a read still in flight holds its page locked,
// and the invalidation waits for it. Only for a write from a file opened
// with O_DIRECT that did not come from the page cache: the pages of a
// writeback WRITE (fi->writepage), and those of a write-through WRITE (the
// kernel's fallback for a buffered write that must drop setuid), stay
// locked or under writeback until this very reply.
void forget_cached_pages(fuse_req_t req, fuse_ino_t ino, off_t off, size_t size) {
  fuse_session* se = ctx(req).session;
  if (!se || size == 0) return;
  int rc = fuse_lowlevel_notify_inval_inode(se, ino, off, static_cast<off_t>(size));
  if (rc != 0 && rc != -ENOENT)
    syslog(LOG_WARNING, "roamfs: inode %llu: cached pages not invalidated after a direct write: %s",
           static_cast<unsigned long long>(ino), std::strerror(-rc));
}

void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat* attr, int to_set, fuse_file_info*) {
  SetattrArgs a;
  // With FUSE_HANDLE_KILLPRIV_V2, two more requests mean "take away
  // privileges", because the kernel drops its own kill bits before sending
  // them: a SETATTR setting nothing at all comes from the kernel's
  // file_remove_privs (fallocate, copy_file_range, a write it sends through
  // the page cache), and one setting only ctime from chown(f, -1, -1) (on a
  // regular file; elsewhere it sets nothing either). Linux clears setuid in
  // both cases.
  const bool v2 = ctx(req).device_io.killpriv_v2();
  a.kill_privs = v2 && ((to_set & FUSE_SET_ATTR_KILL_SUID) || (to_set & ~FUSE_SET_ATTR_CTIME) == 0);
  // A chown's kill may come from a caller with CAP_FSETID, who keeps setgid.
  const bool chown = to_set & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID);
  a.outside_group = a.kill_privs && !chown && outside_group_of(req, ino);
  if (to_set & FUSE_SET_ATTR_MODE) a.mask |= kSetMode, a.mode = attr->st_mode;
  if (to_set & FUSE_SET_ATTR_UID) a.mask |= kSetUid, a.uid = attr->st_uid;
  if (to_set & FUSE_SET_ATTR_GID) a.mask |= kSetGid, a.gid = attr->st_gid;
  if (to_set & FUSE_SET_ATTR_SIZE) a.mask |= kSetSize, a.size = static_cast<uint64_t>(attr->st_size);
  if (to_set & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_ATIME_NOW)) {
    a.mask |= kSetAtime;
    a.atime_now = to_set & FUSE_SET_ATTR_ATIME_NOW;
    a.atime = {attr->st_atim.tv_sec, static_cast<uint32_t>(attr->st_atim.tv_nsec)};
  }
  if (to_set & (FUSE_SET_ATTR_MTIME | FUSE_SET_ATTR_MTIME_NOW)) {
    a.mask |= kSetMtime;
    a.mtime_now = to_set & FUSE_SET_ATTR_MTIME_NOW;
    a.mtime = {attr->st_mtim.tv_sec, static_cast<uint32_t>(attr->st_mtim.tv_nsec)};
  }
  if (to_set & FUSE_SET_ATTR_CTIME) {
    a.mask |= kSetCtime;
    a.ctime = {attr->st_ctim.tv_sec, static_cast<uint32_t>(attr->st_ctim.tv_nsec)};
  }
  reply_attr(req, ctx(req).fs.setattr(caller_of(req), ino, a));
}

}  // namespace roam
