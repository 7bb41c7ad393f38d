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
//
// An inode's before-image holds only the fields the operation changed; the
// rest are as after the operation — that is, as in the next record's
// before-image of the inode, or as the inode is now. Readers therefore walk
// an inode's records from the newest back (PastView, versions_of).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "fusefs/store/format.h"
#include "base/status.h"

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
  kTmpfile = 15,  // open(O_TMPFILE): a new file with no name
  kCopy = 16,     // copy_file_range: the destination shares the source's blobs (store format 5)
};
inline constexpr OpKind kLastOpKind = OpKind::kCopy;

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
  // The remote desktop whose process it was (its id, docs/remote.md), whose
  // pid namespace `pid` is in; empty: a process on the storage node.
  std::string desktop;
  bool operator==(const Caller&) const = default;
};

// "COMM[PID] uid UID", with "@DESKTOP" after the pid for a remote desktop's
// process: how roamctl and roam show who made a change.
std::string caller_text(const Caller& c);

// The fields (InodeField bits, fusefs/store/format.h) in which two inode
// records differ.
uint32_t inode_fields_differing(const Inode& a, const Inode& b);

// An inode record as it was before the operation.
struct InodeBefore {
  uint64_t ino = 0;
  std::optional<Inode> image;         // nullopt: the inode did not exist
  uint32_t fields = kAllInodeFields;  // the fields of `image` that hold the before-state

  // The inode before the operation, given the inode after it: `image` where
  // `fields` says so, `after` elsewhere. Fails (corrupt) when a partial image
  // has no inode after it to complete it.
  Result<std::optional<Inode>> before(const std::optional<Inode>& after) const;
  // Keeps only the fields that differ from `after` (all of them when the
  // operation deleted the inode). Writers call it once the operation is done.
  void narrow_to(const std::optional<Inode>& after);
  bool operator==(const InodeBefore&) const = default;
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
  uint64_t offset = 0;     // write/fallocate/truncate/copy: the range of data changed
  uint64_t length = 0;
  uint64_t size = 0;       // setattr size; write, copy: file size after
  uint32_t uid = 0, gid = 0;  // setattr owner
  Timespec atime, mtime;   // setattr times
  uint64_t rdev = 0;       // mknod; copy: the offset in the source
  std::string name;        // xattr name; symlink target for symlink; restore: source spec; copy: source path

  // Undo payload.
  std::vector<InodeBefore> inodes_before;
  std::vector<DirentBefore> dirents_before;
  std::vector<XattrBefore> xattrs_before;
  std::vector<DataBefore> data_before;  // one range for write/truncate/fallocate; many for restore
};

// What a record inside a chunk (fusefs/oplog/chunk.h) is encoded against:
// the time and caller of the record before it in the same chunk.
struct RecordContext {
  int64_t ts_ns = 0;
  Caller caller;
};

// The encoding of one record inside a chunk. `prev` is nullptr for a chunk's
// first record. Appends to `out`.
void encode_record(std::string& out, const OpRecord& r, const RecordContext* prev);
// Decodes what encode_record wrote, with the same `prev`. Malformed bytes are a
// corrupt Status naming `seq`, never a crash.
Result<OpRecord> decode_record(uint64_t seq, std::string_view bytes, const RecordContext* prev);
// What a chunk reads to step over a record, without decoding the rest: its
// time (absolute for a chunk's first record, else the step from the one
// before) and whether it borrows the previous record's caller.
struct RecordHead {
  int64_t ts = 0;
  bool same_caller = false;
  bool caller_desktop = false;  // the caller's desktop follows its comm (store format 4)
};
Result<RecordHead> decode_head(uint64_t seq, std::string_view bytes);
// The caller a record names itself (decode_head said !same_caller).
Result<Caller> decode_caller(uint64_t seq, std::string_view bytes);

// Format 1 stored each record as its own value, starting with byte 1, and
// every inode before-image whole. Stores written then are still read.
inline constexpr uint8_t kRecordV1 = 1;
Result<OpRecord> decode_record_v1(uint64_t seq, std::string_view value);
// Writes the format-1 value (tests build format-1 stores with it). Every
// inode image must be whole.
std::string encode_record_v1(const OpRecord& r);

}  // namespace roam
