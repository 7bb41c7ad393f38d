// The store's on-disk format: LMDB tables, their keys and values.
// docs/store-format.md is the prose version of this header; keep them together.
//
// A store directory holds:
//   FORMAT           text: "roamdisk store\nversion N\n" (checked before LMDB is opened)
//   data.mdb lock.mdb  the LMDB environment (all metadata and the op log) as of
//                    the last checkpoint
//   wal              the changes since (fusefs/store/wal_format.h, format 3)
//   segments/NNNNNNNN.seg  append-only data segments; bytes are never overwritten
//
// Tables (LMDB named databases):
//   meta       ascii key -> value        identity (kMeta* below)
//   inodes     be64 ino -> Inode          every inode, live or dead (nlink 0)
//   dirents    be64 parent ++ name -> Dirent
//   links      be64 ino ++ be64 parent ++ name -> ""   names of an inode beyond
//                                                     its primary (hard links)
//   xattrs     be64 ino ++ name -> raw value
//   extents    be64 ino ++ be64 file offset -> Extent  non-overlapping; holes absent
//   blobs      be64 blob -> Blob
//   oplog      be64 seq -> a chunk of records from that seq on (fusefs/oplog/chunk.h;
//              format 1: one record per value)
//   log_by_ino be64 ino -> be64 seq, MDB_DUPSORT|MDB_DUPFIXED: one value per
//              record that touched the inode, in seq order (format 2)
//
// Format 4 differs from 3 only in the op log: a record's caller may name a
// remote desktop (fusefs/oplog/record.h, head bit 16), which a format-3
// reader would misread. A writable open upgrades a format-3 store by
// rewriting FORMAT alone.
//
// Format 1 kept that index as `log_ino`, be64 ino ++ be64 seq -> "". A
// writable open upgrades a format-1 store (store_open.cc); a read-only open reads
// `log_ino` as it is.
//
// Counters are not stored: the next inode and blob numbers are one past the
// last key of `inodes` and `blobs`, the next seq one past the last record of
// the last chunk of `oplog` (so a commit writes no
// counter). Whatever deletes records (GC) must therefore never delete the
// highest-numbered inode or blob, lest a number be handed out twice; nor the
// newest op log record, except under space pressure, which then records its
// seq in meta (kMetaOplogLast).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "base/status.h"

namespace roam {

inline constexpr uint32_t kFormatVersion = 5;
inline constexpr const char* kFormatFile = "FORMAT";
inline constexpr const char* kFormatMagic = "roamdisk store";
inline constexpr uint64_t kRootIno = 1;
// Largest blob written; larger writes are split. A read verifies a whole blob,
// so this bounds read amplification (kernel readahead asks for 128 KiB too).
inline constexpr uint32_t kMaxBlobSize = 128 * 1024;
inline constexpr uint64_t kSegmentTargetSize = 256ull << 20;
// Zeros a sync keeps written ahead of the current segment's tail (segments.h).
inline constexpr uint64_t kSegmentReserve = 1ull << 20;
// Zeros kept written past LMDB's last page, for the next checkpoint's new
// pages (Store::keep_lmdb_reserve).
inline constexpr uint64_t kLmdbReserve = 8ull << 20;
inline constexpr size_t kNameMax = 255;
inline constexpr size_t kSymlinkMax = 4095;

// meta table keys
inline constexpr std::string_view kMetaCreated = "created_ns";
inline constexpr std::string_view kMetaUuid = "uuid";
// be64 seq ++ be64 ts_ns of the newest op log record, written only when GC
// dropped it (space pressure) and left the log empty: the next seq follows it.
inline constexpr std::string_view kMetaOplogLast = "oplog_last";
// be64: the disk's live data, live_bytes_of() summed over every inode; kept
// by every inode write (WriteTxn::put_inode), counted once by the first
// writable open of a store that lacks it.
inline constexpr std::string_view kMetaLiveBytes = "live_bytes";
// be64: the disk's quota on live data (absent or 0: none).
inline constexpr std::string_view kMetaQuota = "quota_bytes";

struct Timespec {
  int64_t sec = 0;
  uint32_t nsec = 0;
  int64_t ns() const { return sec * 1000000000LL + nsec; }
  static Timespec from_ns(int64_t ns) {
    int64_t s = ns / 1000000000LL, n = ns % 1000000000LL;
    if (n < 0) n += 1000000000LL, --s;
    return {s, static_cast<uint32_t>(n)};
  }
  bool operator==(const Timespec&) const = default;
};

struct Inode {
  uint64_t ino = 0;  // the key; not stored in the value
  uint32_t mode = 0;
  uint32_t uid = 0;
  uint32_t gid = 0;
  uint32_t nlink = 0;
  uint64_t size = 0;
  uint64_t rdev = 0;
  Timespec atime, mtime, ctime;
  // The primary name: used to name the inode in the op log. Other names of a
  // hard-linked inode are in the `links` table.
  uint64_t parent = 0;
  std::string name;
  std::string symlink_target;  // only for S_IFLNK

  bool operator==(const Inode&) const = default;
};

// The fields of an inode's value, as bits: an op log before-image says with
// them which fields it holds (fusefs/oplog/record.h).
enum InodeField : uint32_t {
  kFieldMode = 1 << 0,
  kFieldUid = 1 << 1,
  kFieldGid = 1 << 2,
  kFieldNlink = 1 << 3,
  kFieldSize = 1 << 4,
  kFieldRdev = 1 << 5,
  kFieldAtime = 1 << 6,
  kFieldMtime = 1 << 7,
  kFieldCtime = 1 << 8,
  kFieldParent = 1 << 9,
  kFieldName = 1 << 10,
  kFieldSymlink = 1 << 11,
};
inline constexpr uint32_t kAllInodeFields = (1u << 12) - 1;

// Every field of an inode's value (all but `ino`, the key), declared once for
// whatever reads, writes or compares them field by field: calls
// visit(bit, &Inode::member) for each, in the order every encoding stores
// them — the `inodes` table (encode below) and op log before-images
// (fusefs/oplog/record.cc). The order is on disk: a new field goes at the
// end, with the next bit.
template <typename Visit>
constexpr void for_each_inode_field(Visit&& visit) {
  visit(kFieldMode, &Inode::mode);
  visit(kFieldUid, &Inode::uid);
  visit(kFieldGid, &Inode::gid);
  visit(kFieldNlink, &Inode::nlink);
  visit(kFieldSize, &Inode::size);
  visit(kFieldRdev, &Inode::rdev);
  visit(kFieldAtime, &Inode::atime);
  visit(kFieldMtime, &Inode::mtime);
  visit(kFieldCtime, &Inode::ctime);
  visit(kFieldParent, &Inode::parent);
  visit(kFieldName, &Inode::name);
  visit(kFieldSymlink, &Inode::symlink_target);
}

std::string encode(const Inode& inode);
Result<Inode> decode_inode(uint64_t ino, std::string_view value);

// What an inode counts toward the disk's live data (its quota), as `du
// --apparent-size` and st_blocks see it: a regular file's size while it has
// a name. History (replaced and removed data) is counted apart (fusefs/gc).
inline uint64_t live_bytes_of(const Inode& i) { return (i.mode & 0170000) == 0100000 && i.nlink > 0 ? i.size : 0; }

struct Dirent {
  uint64_t ino = 0;
  uint32_t type = 0;  // S_IFMT bits of the target, for readdir without a lookup
};
std::string encode(const Dirent& d);
Result<Dirent> decode_dirent(std::string_view value);

// A piece of file data: `length` bytes at `blob_offset` inside blob `blob`.
struct Extent {
  uint64_t file_offset = 0;  // the key's second half
  uint64_t blob = 0;
  uint32_t blob_offset = 0;
  uint32_t length = 0;
  uint64_t end() const { return file_offset + length; }
  bool operator==(const Extent&) const = default;
};
std::string encode_extent_value(const Extent& e);
Result<Extent> decode_extent(uint64_t file_offset, std::string_view value);

// Where a blob's bytes are and how to check them. `refs` counts the extents
// (live in `extents`, or kept by op log undo payloads) that name this blob; a
// blob with refs == 0 may be freed by GC.
struct Blob {
  uint32_t segment = 0;
  uint64_t offset = 0;
  uint32_t length = 0;
  uint64_t xxh3 = 0;
  uint64_t refs = 0;
};
std::string encode(const Blob& b);
Result<Blob> decode_blob(std::string_view value);

// Keys
std::string inode_key(uint64_t ino);
std::string dirent_key(uint64_t parent, std::string_view name);
std::string link_key(uint64_t ino, uint64_t parent, std::string_view name);
std::string xattr_key(uint64_t ino, std::string_view name);
std::string extent_key(uint64_t ino, uint64_t file_offset);

}  // namespace roam
