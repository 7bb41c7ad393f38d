// One entry of the operation log: what happened, when, to what, by whom, and
// the undo payload — the "before image" of every key the operation changed.
// docs/oplog-format.md describes the encoding; keep the two together.
//
// Undo by before-images: to undo an operation, put back each inode record in
// `inodes_before` (deleting those that did not exist), each directory entry in
// `dirents_before`, each xattr in `xattrs_before`, and for each data range in
// `data_before`, remove the extents in the range and put back its extents.
// Data is held by reference: each extent in `data_before` owns one blob
// reference until retention drops the record.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "fusefs/store/format.h"
#include "fusefs/store/status.h"

namespace roam {

enum class OpKind : uint8_t {
  kCreate = 1,
  kMknod = 2,
  kMkdir = 3,
  kSymlink = 4,
  kLink = 5,
  kUnlink = 6,
  kRmdir = 7,
  kRename = 8,
  kWrite = 9,
  kSetattr = 10,
  kFallocate = 11,
  kSetxattr = 12,
  kRemovexattr = 13,
  kRestore = 14,
};
inline constexpr OpKind kLastOpKind = OpKind::kRestore;

// "create", "write", ...; the names `roamctl log --op` accepts.
std::string_view op_kind_name(OpKind kind);
std::optional<OpKind> op_kind_from_name(std::string_view name);

// Setattr argument bits (which attributes the call set), and kKilledPrivileges.
enum SetattrMask : uint32_t {
  kSetMode = 1 << 0,
  kSetUid = 1 << 1,
  kSetGid = 1 << 2,
  kSetSize = 1 << 3,
  kSetAtime = 1 << 4,
  kSetMtime = 1 << 5,
  kSetCtime = 1 << 6,
  // setattr and write: the call also took away privileges, as Linux does for
  // a write, truncate or chown (see Fs::kill_privileges); `mode` is the mode
  // after. Set only when something changed.
  kKilledPrivileges = 1 << 7,
};

struct Caller {
  uint32_t uid = 0;
  uint32_t gid = 0;
  uint32_t pid = 0;
  std::string comm;  // the process name at the time (from /proc/PID/comm)
};

struct DirentBefore {
  uint64_t parent = 0;
  std::string name;
  std::optional<Dirent> entry;  // nullopt: the name did not exist
};

struct XattrBefore {
  uint64_t ino = 0;
  std::string name;
  std::optional<std::string> value;  // nullopt: the attribute did not exist
};

// The extents that mapped [offset, offset+length) of `ino` before the
// operation remapped that range (holes are absent). The ranges of one record
// never overlap.
struct DataBefore {
  uint64_t ino = 0;
  uint64_t offset = 0;
  uint64_t length = 0;
  std::vector<Extent> extents;
  bool operator==(const DataBefore&) const = default;
};

struct OpRecord {
  uint64_t seq = 0;
  int64_t ts_ns = 0;
  OpKind kind = OpKind::kCreate;
  Caller caller;

  // What it touched.
  uint64_t ino = 0;        // the inode acted on (for rename: the one moved)
  uint64_t ino2 = 0;       // rename: the inode replaced or exchanged at the target
  std::string path;        // path of `ino` (for namespace ops, the name acted on)
  std::string path2;       // rename/link: the new path

  // Arguments (meaning depends on kind; see docs/oplog-format.md).
  uint32_t mode = 0;       // create/mknod/mkdir, setattr mode
  uint32_t flags = 0;      // rename flags, fallocate mode, setxattr flags, setattr mask
  uint64_t offset = 0;     // write/fallocate/truncate: the range of data changed
  uint64_t length = 0;
  uint64_t size = 0;       // setattr size; write: file size after
  uint32_t uid = 0, gid = 0;  // setattr owner
  Timespec atime, mtime;   // setattr times
  uint64_t rdev = 0;       // mknod
  std::string name;        // xattr name; symlink target for symlink; restore: source spec

  // Undo payload.
  std::vector<std::pair<uint64_t, std::optional<Inode>>> inodes_before;
  std::vector<DirentBefore> dirents_before;
  std::vector<XattrBefore> xattrs_before;
  std::vector<DataBefore> data_before;  // one range for write/truncate/fallocate; many for restore
};

std::string encode(const OpRecord& r);
Result<OpRecord> decode_op(uint64_t seq, std::string_view value);

}  // namespace roam
