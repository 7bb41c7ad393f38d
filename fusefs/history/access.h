// Permission checks for a desktop user's requests (`roam history`, `log`,
// `restore`): what the kernel would let that user do, checked by roamfs on
// the ids the store holds.
//
// The ids: a disk served with --userns keeps the ids of the desktop's user
// namespace (alice = 1000), and the agent reads its caller's ids in that same
// namespace (SO_PEERCRED, /proc/PID/status), so they are compared as they
// come. Root (uid 0) is the desktop's root, which the kernel lets read,
// search and write anything on the disk (CAP_DAC_OVERRIDE in the namespace
// that owns the connection): it passes every check here too.
//
// The rules are the kernel's generic_permission with POSIX ACLs
// (fs/namei.c, acl_permission_check): the owner's bits for the owner; else
// a named-user ACL entry (masked); else the owning group or any named-group
// entry that matches one of the caller's groups (masked: granted when any
// matching entry grants it); else the other bits.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "fusefs/engine/acl.h"
#include "fusefs/oplog/past_view.h"
#include "fusefs/oplog/record.h"

namespace roam {

// Who asks, as the desktop's kernel knows them.
struct Identity {
  uint32_t uid = 0;
  uint32_t gid = 0;
  std::vector<uint32_t> groups;  // supplementary groups
  uint32_t pid = 0;
  std::string comm;  // the process name, for the op log
  bool operator==(const Identity&) const = default;
};

// The access bits of access(2).
inline constexpr int kMayRead = 4;
inline constexpr int kMayWrite = 2;
inline constexpr int kMaySearch = 1;  // execute, for a directory

// Whether `who` may access an inode with owner/mode `i` and access ACL `acl`
// (nullopt: none) for every bit of `mask`.
bool permits(const Identity& who, const Inode& i, const std::optional<Acl>& acl, int mask);

// Whether `who` may access inode `ino` of `view` for `mask`; EACCES with a
// sentence naming `path` when not; ENOENT when the inode did not exist.
Status check_inode(PastView& view, const Identity& who, uint64_t ino, const std::string& path, int mask);

// The inode at `path` ("/a/b", normalised) in `view` after checking that
// `who` could search every directory on the way (the root included); nullopt
// when the path did not exist there. EACCES naming the first directory `who`
// could not search.
Result<std::optional<uint64_t>> walk_as(PastView& view, const Identity& who, const std::string& path);

// Reading the past: `who` may read `path` as `view` shows it (search on every
// directory, read on the path; for a directory, read and search on it and on
// every directory and file below it, since restoring it brings them all
// back). A path that did not exist there needs read on its parent (the
// caller could see that it was absent). EACCES naming what was refused.
Status check_readable(PastView& view, const Identity& who, const std::string& path);

// Writing now: `who` may create or remove `path` in the live tree `live`
// (PastView::kNow): search on the way and write on its parent; when it
// exists, write on it too. EACCES naming what was refused.
Status check_writable(PastView& live, const Identity& who, const std::string& path);

// The caller as the op log records it.
inline Caller caller_of(const Identity& who) { return Caller{who.uid, who.gid, who.pid, who.comm}; }

}  // namespace roam
