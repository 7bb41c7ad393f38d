// The filesystem engine: POSIX semantics on top of the store, with no FUSE in
// it, so that unit tests can drive it directly. Every mutating method is one
// Mutation: it commits its change and its op log record together, and returns
// a Status (errno + sentence) on failure, having changed nothing.
//
// Permission checks are the kernel's (roamfs mounts with default_permissions);
// the engine enforces what the kernel leaves to filesystems: name lengths,
// existence, emptiness, types, rename rules, setgid inheritance.
//
// Thread safety: all methods may be called concurrently from libfuse's worker
// threads; reads use their own LMDB read transactions and mutations serialise
// on the store's writer lock.
#pragma once

#include <sys/statvfs.h>

#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "fusefs/oplog/past_view.h"
#include "fusefs/oplog/record.h"
#include "fusefs/store/store.h"
#include "fusefs/store/volume.h"

namespace roam {

// copy_file_range's arguments: `length` bytes at `off_in` of `ino_in` to
// `off_out` of `ino_out`.
struct CopyRange {
  uint64_t ino_in = 0, off_in = 0;
  uint64_t ino_out = 0, off_out = 0;
  uint64_t length = 0;
};
// The most one copy_range shares: 8,192 blobs' worth, one logged operation
// that holds the writer lock for milliseconds; the caller asks again for
// the rest, as it would after any short copy.
inline constexpr uint64_t kMaxCopyShared = 1ull << 30;

struct SetattrArgs {
  uint32_t mask = 0;  // SetattrMask bits
  uint32_t mode = 0;
  uint32_t uid = 0, gid = 0;
  uint64_t size = 0;
  Timespec atime, mtime, ctime;
  bool atime_now = false, mtime_now = false;
  // The kernel asks the filesystem to take away privileges (chown, or a
  // truncate by a caller without CAP_FSETID): see Fs::kill_privileges.
  bool kill_privs = false;
  // With kill_privs: the caller is not in the file's group, so setgid goes
  // even without group execute (Linux's setattr_should_drop_sgid).
  bool outside_group = false;
};

// Called with each logged record after it commits (roamfs uses it to log
// integrity events; tests use it to observe the log).
using CommitHook = std::function<void(const OpRecord&)>;
// Called by a write that would take the storage volume's free space under
// its reserve (fusefs/store/volume.h), before the write fails with ENOSPC:
// roamfs lets history give way there (GC under space pressure). Called with
// no lock of the store held, from the writer's thread.
using SpaceHook = std::function<void()>;

class Fs {
 public:
  // The live disk, or — with `at_seq` — a read-only view of the disk as it was
  // after that op log record (roamfs --at). A view's store is opened
  // read-only, so every mutating method fails with EROFS.
  explicit Fs(Store& store, std::optional<uint64_t> at_seq = std::nullopt)
      : store_(store), at_seq_(at_seq), volume_(store.dir()) {}

  Store& store() { return store_; }

  // --- namespace ---
  // `name` "." is inode `parent` itself, of any type while it has a name
  // (ENOENT once it has none), and ".." a directory's parent: how the kernel
  // resolves file handles (FUSE export support).
  Result<Inode> lookup(uint64_t parent, std::string_view name);
  Result<Inode> getattr(uint64_t ino);
  // Several inodes read in one transaction (readdirplus); a missing one is
  // nullopt (removed since the caller listed it).
  Result<std::vector<std::optional<Inode>>> getattrs(const std::vector<uint64_t>& inos);
  // Regular files, fifos, sockets and device nodes; `kind` is kCreate or kMknod.
  // The new inode's permission bits are `mode` masked by the parent's default
  // ACL, which it inherits (a directory also as its own default ACL), or, when
  // the parent has none, `mode` less `umask` (the caller's, which the kernel
  // leaves to roamfs once it enforces ACLs).
  Result<Inode> mknod(const Caller& c, uint64_t parent, std::string_view name, uint32_t mode, uint64_t rdev,
                      OpKind kind, uint32_t umask = 0);
  Result<Inode> mkdir(const Caller& c, uint64_t parent, std::string_view name, uint32_t mode, uint32_t umask = 0);
  // An unnamed regular file made in directory `parent` (open(O_TMPFILE)):
  // link count 0, permissions as mknod's, logged as a tmpfile op. It lives
  // while it is open (GC leaves open files alone), and link() may give it a
  // name, once: any other file without a name is ENOENT to link(), as on
  // Linux, where only a file opened with O_TMPFILE (without O_EXCL, which the
  // kernel checks) may be linked back. This roamfs process remembers which
  // files may (none survive it: their opens do not).
  Result<Inode> tmpfile(const Caller& c, uint64_t parent, uint32_t mode, uint32_t umask = 0);
  Result<Inode> symlink(const Caller& c, uint64_t parent, std::string_view name, std::string_view target);
  Result<Inode> link(const Caller& c, uint64_t ino, uint64_t new_parent, std::string_view new_name);
  Status unlink(const Caller& c, uint64_t parent, std::string_view name);
  Status rmdir(const Caller& c, uint64_t parent, std::string_view name);
  Status rename(const Caller& c, uint64_t parent, std::string_view name, uint64_t new_parent,
                std::string_view new_name, unsigned flags);
  Result<std::string> readlink(uint64_t ino);
  // Up to `limit` entries of directory `ino` after name `after` ("" = start).
  Result<std::vector<std::pair<std::string, Dirent>>> readdir(uint64_t ino, std::string_view after, size_t limit);

  // --- attributes ---
  // A mode change also rewrites the access ACL's owner, mask and other entries.
  Result<Inode> setattr(const Caller& c, uint64_t ino, const SetattrArgs& args);
  // Setting system.posix_acl_access also sets the mode's permission bits from
  // the ACL, and stores the ACL only when it says more than the mode (as the
  // kernel's filesystems do); `kill_sgid` (the kernel's
  // FUSE_SETXATTR_ACL_KILL_SGID: the caller is neither in the file's group
  // nor privileged) also clears setgid. system.posix_acl_default is for
  // directories only (EACCES). Malformed ACLs are EINVAL.
  Status setxattr(const Caller& c, uint64_t ino, std::string_view name, std::string_view value, int flags,
                  bool kill_sgid = false);
  Result<std::string> getxattr(uint64_t ino, std::string_view name);  // ENODATA when absent
  Result<std::vector<std::string>> listxattr(uint64_t ino);
  Status removexattr(const Caller& c, uint64_t ino, std::string_view name);
  // The volume's figures, less the reserve (volume.h) in what is available;
  // with a quota, the quota as the size, live data as used and what is left
  // of the quota (at most the volume's) as available.
  Result<struct statvfs> statfs();

  // --- data ---
  // Reads up to `size` bytes at `offset` (fewer at end of file) into `buf`.
  // Every byte comes from a blob whose checksum was verified; a mismatch is EIO.
  Result<size_t> read(uint64_t ino, uint64_t offset, size_t size, char* buf);
  // `kill_privs`: the writer lacks CAP_FSETID, so the write also takes away
  // privileges (see kill_privileges), in the same logged operation; then
  // `*mode_changed` (if given) says whether that changed the mode.
  // `outside_group`: as SetattrArgs::outside_group.
  // ENOSPC when the volume's free space would drop under its reserve (after
  // history had its chance to give way: set_space_hook); EDQUOT when the
  // file grows and live data would pass the disk's quota.
  Result<Inode> write(const Caller& c, uint64_t ino, uint64_t offset, std::string_view data,
                      bool kill_privs = false, bool* mode_changed = nullptr, bool outside_group = false);
  Status fallocate(const Caller& c, uint64_t ino, int mode, uint64_t offset, uint64_t length);
  // copy_file_range within the disk, without copying: the destination's
  // range comes to name the blobs that hold the source's (a hole stays a
  // hole), so the copy takes no space until either side changes, and it is
  // one logged copy operation (undo payload: what the destination's range
  // held). Returns the bytes copied: `length` cut at the source's end and at
  // kMaxCopyShared, 0 (nothing logged) from at or past the source's end.
  // EINVAL for overlapping ranges of one file or a file that is not
  // regular, EISDIR for a directory, EOVERFLOW for a range past the largest
  // offset, EDQUOT when the destination would grow past the quota.
  Result<uint64_t> copy_range(const Caller& c, const CopyRange& range);
  // Makes every change so far durable (fsync, fsyncdir).
  Status sync() { return store_.sync(); }

  void set_commit_hook(CommitHook hook) { commit_hook_ = std::move(hook); }
  // Set once, before serving requests.
  void set_space_hook(SpaceHook hook) { space_hook_ = std::move(hook); }
  // Under the kernel's writeback cache the kernel owns a regular file's mtime
  // and ctime: it sets them when the process writes and sends them later as a
  // setattr. write() then leaves them alone, so the stored times are the ones
  // processes saw (roamfs's clock at writeback time would differ). Set once,
  // before serving requests.
  void set_kernel_owns_write_times(bool yes) { kernel_owns_write_times_ = yes; }

 private:
  Result<Inode> make_node(const Caller& c, uint64_t parent, std::string_view name, uint32_t mode, uint64_t rdev,
                          std::string_view target, OpKind kind, uint32_t umask);
  // Whether `ino` is a tmpfile never linked; `take` forgets it (it is being linked).
  bool linkable_tmpfile(uint64_t ino, bool take);
  Result<OpRecord> finish(class Mutation& m);
  // ENOSPC unless `bytes` more data leave the volume's reserve free (after
  // the space hook had its chance to free some).
  Status admit_growth(uint64_t bytes);
  // EDQUOT when making `ino` `end` bytes long would take live data over the
  // quota: checked before a write's data goes to the segments (the commit
  // checks again, under the lock), so that writes refused for the quota
  // leave no bytes behind.
  Status admit_live_growth(uint64_t ino, uint64_t end);
  // What Linux does to a regular file (any non-directory) that is written or
  // truncated by a process without CAP_FSETID, or chowned: setuid goes;
  // setgid goes when group execute is set or the caller is `outside_group`
  // (else the bit marks mandatory locking, and stays); the file capabilities (the
  // security.capability xattr) go. With FUSE_HANDLE_KILLPRIV_V2 the kernel
  // leaves this to roamfs. Changes `inode` (not stored: the caller puts it)
  // and notes the new mode in the record; returns whether anything changed.
  Result<bool> kill_privileges(class Mutation& m, Inode& inode, bool outside_group);
  struct ReadPlan;
  Result<ReadPlan> plan_read(uint64_t ino, uint64_t offset, size_t size);
  Result<size_t> read_once(uint64_t ino, uint64_t offset, size_t size, char* buf);
  // What read methods see through `txn`: the current state, or the past one.
  PastView view(const StoreTxn& txn) const { return PastView(txn, at_seq_.value_or(PastView::kNow)); }

  Store& store_;
  const std::optional<uint64_t> at_seq_;
  bool kernel_owns_write_times_ = false;
  CommitHook commit_hook_;
  SpaceHook space_hook_;
  VolumeWatch volume_;  // admit_growth's view of the store's volume
  std::mutex tmpfiles_mu_;
  std::set<uint64_t> unlinked_tmpfiles_;  // made by tmpfile() and not linked yet
};

// The d_type-style type bits of a mode, stored in directory entries.
inline uint32_t type_of(uint32_t mode) { return mode & 0170000; }

}  // namespace roam
