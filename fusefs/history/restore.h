// Restore: gives a path (file, symlink, directory tree, or the whole disk)
// the state it had after a given op log record, as one logged operation.
//
// What it promises (docs/restore.md):
// - Exact: content, mode, owner, atime/mtime, symlink target, xattrs and the
//   directory entries of every restored inode are as they were; hard links
//   inside the restored tree are links again. ctime is the restore's time
//   (the inode did change now; backup tools rely on that).
// - Copy-on-write: data is never copied; restored extents name the same blobs.
//   Only what differs is written: an unchanged file in a restored directory
//   costs a comparison, a 1 GiB file with one changed block costs one range.
// - Confined: nothing outside the restored path changes, except the entry of
//   the path itself in its parent (and that parent's times and link count).
//   An inode that also has names outside the path is restored as a copy.
// - Undoable: the restore is one op log record (kind restore) with the
//   before-image of everything it changed, so restoring to just before it
//   undoes it. Entries that go away are kept in history, not destroyed.
// - All or nothing: it commits once; on any error nothing has changed.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "fusefs/oplog/record.h"
#include "fusefs/store/store.h"

namespace roam {

struct RestoreRequest {
  std::string path;                // absolute disk path ("/a/b"); "/" is the whole disk
  uint64_t at_seq = 0;             // restore to the state after this record
  std::optional<std::string> to;   // restore a copy here instead (must not exist)
  bool dry_run = false;            // compute and report the changes, commit nothing
  std::string source;              // how the moment was named ("2026-…Z", "before op 42"), logged
};

struct RestoreChange {
  // kKept: an undo (undo.h) left the path as it is; `what` says why.
  enum class Kind : char { kBack = '+', kGone = '-', kChanged = '~', kKept = '=' };
  Kind kind;
  std::string path;  // disk path after the restore (for kGone: before it)
  std::string what;  // kChanged: "content, mode, …"; kKept: why
};

struct RestoreResult {
  std::vector<RestoreChange> changes;
  std::optional<OpRecord> record;  // the logged restore; absent for a dry run or no change
  // What kernel caches must forget: inodes whose attributes changed, the
  // byte ranges of files whose data changed (ino, offset, length), and
  // directory entries added, removed or replaced.
  std::vector<uint64_t> changed_inodes;
  std::vector<std::tuple<uint64_t, uint64_t, uint64_t>> changed_data;
  std::vector<std::pair<uint64_t, std::string>> changed_entries;
  // Disk paths, before the restore, of the files with data that lost their
  // names (replaced by new inodes, or gone): the kernel may cache their pages.
  std::vector<std::string> retired_files;
};

// A path that did not exist at that moment but exists now is removed (its
// contents stay in history): that is how a restore that brought it back is
// undone.
//
// Errors, each with a sentence for the user: ENOENT when `path` did not exist
// at that moment and does not now (or, with `to`, did not exist then), or its
// parent does not exist now; EEXIST when `to` exists;
// ENOTDIR/EINVAL for malformed paths. The caller checks that `at_seq` is
// inside retention. Blocks other writers for its duration (one transaction).
Result<RestoreResult> restore(Store& store, const Caller& caller, const RestoreRequest& req);

// "/a/b" for any spelling the user may give relative to the disk root
// ("a/b", "/a//b/"); EINVAL for "." or ".." components.
Result<std::string> normalize_disk_path(std::string_view path);

}  // namespace roam
