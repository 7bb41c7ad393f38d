// The write-ahead log's on-disk format: STORE/wal. docs/wal-format.md is the
// prose version of this header; keep the two together.
//
// The WAL holds every change made since the last checkpoint (the last LMDB
// commit, store.h), one record per committed Mutation:
//
//   offset 0      header, kWalHeaderSize bytes:
//                   magic "roamdisk wal\n\0\0\0" (16), le32 version, le32 0,
//                   le64 generation, 16 bytes store uuid, le64 xxh3 of the 48
//                   bytes before it, zeros up to kWalHeaderSize
//   then records: le32 payload length, le32 0, le64 lsn,
//                 le64 xxh3 (seed: generation) of the 16 bytes before it and
//                 the payload, then the payload
//
// A record's payload is a sequence of operations, each one byte of kind and
// one byte of table (WalTable), then varint-prefixed strings:
//   kPut      key, value            put the value
//   kDel      key                   delete the key (every value of a dup key)
//   kPutDup   key, value            add one value of an MDB_DUPSORT key
//   kDelDup   key, value            delete one value of an MDB_DUPSORT key
//   kAppend   key, suffix           put (current value ++ suffix): the op
//                                   log's chunks grow by appending
//   kData     (table ignored) le32 segment, le64 offset, then bytes: a
//             small write's data, inline, so that an fsync flushes only the
//             WAL (the bytes were also written to the segment)
//
// Generations: each checkpoint commits `wal_generation` = G + 1 to LMDB's meta
// table, then rewrites the header with generation G + 1; records are written
// from kWalHeaderSize again over the old ones. Recovery replays the records
// of the header's generation when it equals the committed one, in lsn order
// from 1, and stops at the first record that is short, has a wrong lsn or a
// wrong checksum (an old generation's record fails the seeded checksum).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace roam {

inline constexpr std::string_view kWalFile = "wal";
inline constexpr std::string_view kWalMagic{"roamdisk wal\n\0\0\0", 16};
inline constexpr uint32_t kWalVersion = 1;
inline constexpr size_t kWalHeaderSize = 4096;
inline constexpr size_t kWalHeaderChecked = 48;  // bytes covered by the header's checksum
inline constexpr size_t kWalRecordHeader = 24;
// A record larger than this is damage, not a record (a restore of a whole
// disk logs a large record, far below it).
inline constexpr uint32_t kWalMaxRecord = 256u << 20;
// Zeros kept written ahead of the WAL's tail: an fsync then overwrites
// allocated blocks and commits no filesystem metadata (as segments.h).
inline constexpr uint64_t kWalReserve = 1ull << 20;
// At a checkpoint, a WAL file larger than this is cut back to it.
inline constexpr uint64_t kWalKeepSize = 64ull << 20;
// A Mutation whose new data is at most this many bytes puts the bytes in its
// WAL record too (kData), so that an fsync after it flushes only the WAL...
inline constexpr size_t kWalInlineData = 64 * 1024;
// ...while the data inlined since the last sync stays within this budget.
// Past it, a writer is not about to fsync a few small writes (a database's
// commit) but writes much without one: its bytes would go to disk twice, and
// fill the WAL towards a checkpoint. 20,000 random 4 KiB writes took 1.9x
// as long with every one inlined (docs/performance.md).
inline constexpr size_t kWalInlineBudget = 1 << 20;

enum class WalOp : uint8_t { kPut = 1, kDel = 2, kPutDup = 3, kDelDup = 4, kAppend = 5, kData = 6 };

// The tables, by a number that does not depend on the order LMDB opened them.
enum class WalTable : uint8_t {
  kMeta = 0,
  kInodes = 1,
  kDirents = 2,
  kLinks = 3,
  kXattrs = 4,
  kExtents = 5,
  kBlobs = 6,
  kOplog = 7,
  kLogByIno = 8,
  kNone = 255,  // kData
};

// LMDB's meta table: the generation of the WAL that continues the committed state.
inline constexpr std::string_view kMetaWalGeneration = "wal_generation";

}  // namespace roam
