// A Mutation is one logged change to the filesystem: a write transaction plus
// the op log record that describes it. Every change goes through its methods,
// which capture the before-image of each key the first time it is touched, so
// the undo payload is complete by construction and no operation can forget to
// record what it replaced.
//
// Lifetime: holds the store's writer lock from begin() until commit() or
// destruction (which aborts: nothing is written, nothing is logged).
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>

#include "fusefs/oplog/record.h"
#include "fusefs/store/store.h"

namespace roam {

class Mutation {
 public:
  static Result<Mutation> begin(Store& store, OpKind kind, const Caller& caller);

  // Reads (through the transaction, so later reads see earlier changes).
  Result<Inode> inode(uint64_t ino) const { return txn_.inode(ino); }
  StoreTxn& txn() { return txn_; }

  // A new inode number and an Inode with it, owned by the caller's ids. The
  // record does not exist until put_inode().
  Inode new_inode(uint32_t mode, const Caller& caller, Timespec now);
  Status put_inode(const Inode& inode);
  Status put_dirent(uint64_t parent, std::string_view name, const Dirent& d);
  Status del_dirent(uint64_t parent, std::string_view name);
  Status set_xattr(uint64_t ino, std::string_view name, std::string_view value);
  Status del_xattr(uint64_t ino, std::string_view name);
  // Remaps data of `ino` (see WriteTxn::remap); the replaced pieces become the
  // record's data_before. Contiguous calls extend one range; a byte may be
  // remapped once per mutation (EINVAL otherwise).
  Status remap(uint64_t ino, uint64_t offset, uint64_t length, const std::optional<Extent>& replacement);
  // Gives `ino`, which must have no data (a new inode), these extents; the
  // record notes [0, end) as remapped from a hole.
  Status fill_new_file(uint64_t ino, const std::vector<Extent>& extents);
  Result<uint64_t> add_blob(SegmentLocation loc, uint32_t length, uint64_t xxh3) {
    return txn_.add_blob(loc, length, xxh3);
  }
  // The raw transaction, for changes that are not part of the undo payload:
  // the `links` table (derived from directory entries and primary names).
  WriteTxn& write_txn() { return txn_; }

  OpRecord& record() { return rec_; }
  // Appends the record to the op log and commits. Returns the record as logged.
  Result<OpRecord> commit();

 private:
  Mutation(WriteTxn txn, OpKind kind, const Caller& caller);
  Status remember_inode(uint64_t ino);
  Status remember_dirent(uint64_t parent, std::string_view name);

  WriteTxn txn_;
  OpRecord rec_;
  std::set<uint64_t> inodes_seen_;
  std::set<std::pair<uint64_t, std::string>> dirents_seen_;
  std::set<std::pair<uint64_t, std::string>> xattrs_seen_;
};

Timespec now_timespec();

}  // namespace roam
