// The values of the `oplog` table: chunks of consecutive records.
// docs/oplog-format.md describes the layout; keep the two together.
//
//   key    be64 seq of the chunk's first record
//   value  byte 2, then for each record: varint length, the record (record.h)
//
// A record is appended to the newest chunk until it would take the value past
// kChunkBytes, one 4 KiB LMDB overflow page. Why chunks: an LMDB value costs
// about 18 bytes of node and key, and a record inside a chunk stores its time
// as the step from the record before and usually borrows that record's
// caller, so a chunk of ~40 records costs far less than 40 values. Format-1
// values (byte 1) hold one record each and read as chunks of one.
//
// Retention drops records oldest first (oplog.h): a whole chunk, or the
// first records of one, whose others are then written as a new chunk.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "fusefs/oplog/record.h"

namespace roam::oplog {

inline constexpr uint8_t kChunkV2 = 2;
// A chunk's largest size: one 4 KiB overflow page less LMDB's page header. A
// record bigger than that (a restore of many files) gets a chunk of its own.
inline constexpr size_t kChunkBytes = 4096 - 16;

// One parsed chunk. Borrows `value`: valid while the transaction it came from
// is open and has not written to the table.
class Chunk {
 public:
  // Splits the value into records and reads each one's time (a few varints
  // per record: cheap enough for every lookup of one record).
  // Malformed bytes are a corrupt Status.
  static Result<Chunk> parse(uint64_t first_seq, std::string_view value);
  static std::string encode(const std::vector<OpRecord>& records);

  uint64_t first() const { return first_; }
  uint64_t last() const { return first_ + entries_.size() - 1; }
  bool holds(uint64_t seq) const { return seq >= first_ && seq <= last(); }
  // The time of record `seq`; holds(seq) must be true.
  int64_t ts_of(uint64_t seq) const { return entries_[seq - first_].ts_ns; }
  int64_t last_ts() const { return entries_.back().ts_ns; }

  // Decodes record `seq`; holds(seq) must be true.
  Result<OpRecord> record(uint64_t seq) const;
  // The value with `r` (whose seq is last() + 1) appended; nullopt when the
  // chunk is full or is a format-1 value.
  Result<std::optional<std::string>> appended(const OpRecord& r) const;

 private:
  struct Entry {
    std::string_view bytes;
    int64_t ts_ns = 0;
    size_t caller_at = 0;  // the entry that names this record's caller
  };
  // The time and caller of entry `i`, which the record after it is encoded against.
  Result<RecordContext> context_of(size_t i) const;

  uint64_t first_ = 0;
  std::string_view value_;
  bool v1_ = false;
  std::vector<Entry> entries_;
};

}  // namespace roam::oplog
