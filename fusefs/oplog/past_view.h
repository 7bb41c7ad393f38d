// The disk as it was after a given op log record: read-only access to the
// inodes, directory entries, xattrs and file data of a past state, computed
// from the current state and the undo payloads of later records.
//
// Why it works: every record holds the before-image of each key it changed
// (record.h). So the value of a key after record S is the before-image in the
// first record after S that changed that key, or — if no later record changed
// it — its current value. Every such record is indexed under the key's inode
// in `log_by_ino`, so the state of one inode at S costs one index range scan over
// the records that touched that inode since S, not a replay of the whole log.
//
// Data ranges are resolved the same way, byte range by byte range: the first
// later record that remapped a byte holds the extent that mapped it at S.
//
// Inode numbers are never reused, so an inode number names the same file at
// every seq. A PastView is only as old as retention allows: records at or
// before `seq` may be gone, but every record after it must still be there
// (the caller checks against the oldest retained record; see history.h).
//
// With seq == kNow it reads the current state straight through `txn` (no
// index scans), so code can serve the live disk and a past view alike.
//
// Lifetime and threading: borrows `txn`, which must outlive it and must not
// change while it is used (read it before writing through the same WriteTxn).
// Caches what it computed; one thread at a time.
#pragma once

#include <cstdint>
#include <cstddef>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "fusefs/oplog/oplog.h"
#include "fusefs/oplog/record.h"
#include "fusefs/store/store.h"

namespace roam {

class PastView {
 public:
  // The state after record `seq` (0: before the first record; kNow: the
  // current state, for code that reads both through one interface).
  static constexpr uint64_t kNow = UINT64_MAX;
  PastView(const StoreTxn& txn, uint64_t seq) : txn_(txn), seq_(seq), records_(txn) {}

  uint64_t seq() const { return seq_; }

  // nullopt: the inode did not exist at seq.
  Result<std::optional<Inode>> inode(uint64_t ino);
  // Like inode(), but an inode that did not exist is ENOENT.
  Result<Inode> existing_inode(uint64_t ino);
  Result<std::optional<Dirent>> dirent(uint64_t parent, std::string_view name);
  // Entries of directory `dir` in name order, after `after` ("" = from the
  // start), at most `limit`.
  Result<std::vector<std::pair<std::string, Dirent>>> list_dir(uint64_t dir, std::string_view after = "",
                                                               size_t limit = SIZE_MAX);
  Result<std::optional<std::string>> xattr(uint64_t ino, std::string_view name);
  Result<std::map<std::string, std::string>> xattrs(uint64_t ino);
  // The file's extents in file order, clipped to its size at seq.
  Result<std::vector<Extent>> extents(uint64_t ino) { return extents_in(ino, 0, UINT64_MAX); }
  // Those overlapping [offset, offset+length), clipped to it.
  Result<std::vector<Extent>> extents_in(uint64_t ino, uint64_t offset, uint64_t length);
  // The inode at disk path `path` ("/a/b"), or nullopt if there was none.
  // ENOTDIR when a component was not a directory.
  Result<std::optional<uint64_t>> resolve(std::string_view path);

 private:
  // What the records after seq say about one inode: the first before-image of
  // each key they changed (nullopt inside: the key did not exist at seq).
  struct Overrides {
    bool inode_changed = false;
    std::optional<Inode> inode;
    std::map<std::string, std::optional<Dirent>, std::less<>> dirents;
    std::map<std::string, std::optional<std::string>, std::less<>> xattrs;
    std::vector<DataBefore> data;  // in seq order
  };
  Result<const Overrides*> overrides(uint64_t ino);

  const StoreTxn& txn_;
  uint64_t seq_;
  oplog::RecordReader records_;
  std::map<uint64_t, std::unique_ptr<Overrides>> cache_;
};

// "/a/b" -> ("/a", "b"); "/a" -> ("/", "a"). `path` is absolute and normalised.
std::pair<std::string, std::string> split_path(std::string_view path);
// Joins a directory path and a name.
std::string join_path(std::string_view dir, std::string_view name);

}  // namespace roam
