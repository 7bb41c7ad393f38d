// Writing and reading the operation log (tables oplog and log_by_ino).
//
// Records are stored in chunks of consecutive seqs (chunk.h). There is no
// time index: timestamps increase with seq, so a time bound is found by
// binary search over seq (records are only ever dropped from the oldest end,
// so the seqs that remain are contiguous).
//
// append() runs inside the write transaction of the operation it records, so an
// operation and its log record commit together or not at all.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "fusefs/oplog/chunk.h"
#include "fusefs/oplog/record.h"
#include "fusefs/store/store.h"

namespace roam::oplog {

// Assigns rec.seq and rec.ts_ns (wall-clock time, forced to be strictly greater
// than the previous record's so that "the state at time T" is unambiguous),
// appends the record to the newest chunk (or starts a chunk) and indexes it
// by every inode it touched.
Status append(WriteTxn& txn, OpRecord& rec);

// Retention drops records oldest first, a chunk (chunk.h) at a time.
// The records of the oldest chunk, except the newest record of the log (the
// next seq derives from it; format.h) unless `with_newest`; nullopt when
// there is nothing else.
Result<std::optional<std::vector<OpRecord>>> oldest_droppable(const StoreTxn& txn, bool with_newest = false);
// Removes the first records of the oldest chunk — `records` are some of what
// oldest_droppable returned, from the first on — in the same transaction:
// their index values, the blob references their undo payloads held, and
// their part of the chunk (the rest is written back as a chunk of its own).
// Dropping the newest record (space pressure: it may be the unlink that
// keeps a removed file's data) leaves the log empty and stores its seq and
// time in meta `oplog_last` (kMetaOplogLast), so that the next record
// continues after it: a seq is never handed out twice.
Status drop_oldest(WriteTxn& txn, const std::vector<OpRecord>& records);
// The seq and time of the newest record when GC dropped it and left the log
// empty; nullopt if it never did.
Result<std::optional<std::pair<uint64_t, int64_t>>> last_dropped(const StoreTxn& txn);

// The inodes a record is indexed under in log_by_ino (sorted, no zeros).
std::vector<uint64_t> indexed_inodes(const OpRecord& rec);

// The seqs of the records that touched one inode, ascending, from the
// per-inode index (log_by_ino; `log_ino` in a format-1 store open read-only).
// Borrows the transaction.
class InodeRecords {
 public:
  // Starts at the first record at or after `from_seq`.
  static Result<InodeRecords> open(const StoreTxn& txn, uint64_t ino, uint64_t from_seq = 0);
  // The next seq; nullopt after the last.
  Result<std::optional<uint64_t>> next();

 private:
  InodeRecords(lmdb::Cursor cur, uint64_t ino, uint64_t from_seq, bool v1)
      : cur_(std::move(cur)), ino_(ino), from_seq_(from_seq), v1_(v1) {}
  lmdb::Cursor cur_;
  uint64_t ino_, from_seq_;
  bool v1_;
  bool started_ = false, done_ = false;
};

// True when some record touched `ino` (GC keeps such an inode).
Result<bool> has_records(const StoreTxn& txn, uint64_t ino);

struct Filter {
  std::optional<int64_t> since_ns;  // inclusive
  std::optional<int64_t> until_ns;  // inclusive
  std::optional<OpKind> kind;
  // Records whose path or path2 is this path or lies below it.
  std::optional<std::string> path;
  std::optional<uint64_t> ino;      // records that touched this inode
  size_t limit = SIZE_MAX;
};

// Calls `visit` for each matching record in seq order; stops early when it
// returns false.
Status scan(const StoreTxn& txn, const Filter& filter, const std::function<bool(const OpRecord&)>& visit);

// Record `seq`; nullopt when the log does not hold it. For one record: to
// read many, use a RecordReader.
Result<std::optional<OpRecord>> get(const StoreTxn& txn, uint64_t seq);

// Reads records by seq and keeps the chunk it parsed last, so that reading
// records that share a chunk (the records of one inode, of one restore, of
// one `rm -rf`) finds and parses it once.
// Borrows `txn` as Chunk borrows a value: use it while the transaction is
// open and has not written to the op log (it may be destroyed after the
// transaction ends). One thread at a time.
class RecordReader {
 public:
  explicit RecordReader(const StoreTxn& txn) : txn_(txn) {}
  // Like oplog::get.
  Result<std::optional<OpRecord>> get(uint64_t seq);

 private:
  const StoreTxn& txn_;
  std::optional<Chunk> chunk_;  // the chunk parsed last
};

// The first seq whose record is at or after `ts_ns` (one past the newest when
// none is; 1 for an empty log). A binary search over seq.
Result<uint64_t> first_seq_at(const StoreTxn& txn, int64_t ts_ns);

// The oldest and newest seq in the log; nullopt when it is empty.
Result<std::optional<std::pair<uint64_t, uint64_t>>> seq_bounds(const StoreTxn& txn);
// Only the oldest seq (nullopt when the log is empty): one cursor step, where
// seq_bounds also parses the newest chunk.
Result<std::optional<uint64_t>> oldest_seq(const StoreTxn& txn);

// True when `path` equals `prefix` or lies below it ("/a" covers "/a/b", not "/ab").
bool path_within(std::string_view path, std::string_view prefix);

}  // namespace roam::oplog
