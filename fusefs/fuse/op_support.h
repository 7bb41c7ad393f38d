// What the FUSE callbacks' files (ops.cc, privileges.cc, dir_ops.cc, history_ops.cc) share:
// the request's context and caller, the reply helpers, and the privilege
// rules the open, write and setattr callbacks apply. Only for those files;
// the rest of roamfs uses ops.h.
#pragma once

#include "fusefs/fuse/ops.h"

namespace roam {

// The FuseContext the session was created with.
inline FuseContext& ctx(fuse_req_t req) { return *static_cast<FuseContext*>(fuse_req_userdata(req)); }

// Who sent the request: uid, gid and pid from the kernel, and the process
// name (CommCache).
Caller caller_of(fuse_req_t req);

// The entry the kernel caches for `i`, with the mount's timeouts.
fuse_entry_param to_entry(fuse_req_t req, const Inode& i);
// Replies with `r`'s attributes, or its error.
void reply_attr(fuse_req_t req, const Result<Inode>& r);

// The callbacks of privileges.cc and dir_ops.cc, for the table (ops.cc).
void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat* attr, int to_set, fuse_file_info* fi);
void op_opendir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi);
void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi);
void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi);
void op_releasedir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi);
void op_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, fuse_file_info* fi);

// Taking away setuid and setgid (privileges.cc), as Linux's own filesystems do.
// Whether a file of this mode loses anything to Fs::kill_privileges.
bool has_killable_mode(uint32_t mode, bool outside_group);
// Whether the caller belongs to group `gid` (its own or a supplementary one);
// when its groups cannot be read, it counts as a member.
bool caller_in_group(fuse_req_t req, uint32_t gid);
// Whether the caller is outside inode `ino`'s group (setgid then goes even
// without group execute).
bool outside_group_of(fuse_req_t req, fuse_ino_t ino);
// Makes the kernel forget `ino`'s cached attributes (not its pages): after a
// request whose reply carries no attributes changed the mode. Call before
// replying.
void forget_cached_mode(fuse_req_t req, fuse_ino_t ino);
// Makes the kernel drop its cached pages of a range an O_DIRECT write just
// stored. Call before replying.
void forget_cached_pages(fuse_req_t req, fuse_ino_t ino, off_t off, size_t size);

}  // namespace roam
