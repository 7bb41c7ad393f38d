#include "fusefs/oplog/record.h"

#include <array>

#include "fusefs/store/codec.h"

namespace roam {

using codec::put_bytes;
using codec::put_svarint;
using codec::put_varint;

namespace {

constexpr std::array<std::string_view, 15> kKindNames = {
    "?",     "create", "mknod", "mkdir",     "symlink",  "link",         "unlink", "rmdir",
    "rename", "write", "setattr", "fallocate", "setxattr", "removexattr", "restore"};

// Which arguments a record holds: bits 1.. of its head varint, in this order
// (bit 0 says the caller is the previous record's).
enum Arg : uint32_t {
  kArgIno = 1 << 0,
  kArgIno2 = 1 << 1,
  kArgPath = 1 << 2,
  kArgPath2 = 1 << 3,
  kArgMode = 1 << 4,
  kArgFlags = 1 << 5,
  kArgOffset = 1 << 6,
  kArgLength = 1 << 7,
  kArgSize = 1 << 8,
  kArgUid = 1 << 9,
  kArgGid = 1 << 10,
  kArgAtime = 1 << 11,
  kArgMtime = 1 << 12,
  kArgRdev = 1 << 13,
  kArgName = 1 << 14,
};
constexpr uint64_t kHeadSameCaller = 1;

// Undo entries: byte tag, bytes payload. A reader skips tags it does not know.
enum Undo : uint8_t {
  kUndoInode = 1,
  kUndoDirent = 2,
  kUndoXattr = 3,
  kUndoData = 4,
  kUndoDataOfArgs = 5,  // the range named by the record's ino, offset and length
};
constexpr uint32_t kInodeWhole = 1u << 12;  // in an inode image's head: absent fields are zero

// A time relative to the record's: even varint = zigzag ns before it; odd =
// absolute seconds and ns, for times more than 68 years away from it (set by
// utimensat), whose difference in ns could overflow.
constexpr int64_t kRelativeSeconds = int64_t{1} << 31;
constexpr int64_t kNsRangeSeconds = 9'000'000'000;

void put_time(std::string& out, const Timespec& t, int64_t base_ns) {
  const int64_t base_sec = base_ns / 1000000000;
  const bool in_ns_range = t.sec > -kNsRangeSeconds && t.sec < kNsRangeSeconds;  // t in ns fits int64
  if (in_ns_range && t.sec > base_sec - kRelativeSeconds && t.sec < base_sec + kRelativeSeconds) {
    const int64_t d = base_ns - (t.sec * 1000000000 + t.nsec);
    put_varint(out, ((static_cast<uint64_t>(d) << 1) ^ static_cast<uint64_t>(d >> 63)) << 1);
    return;
  }
  put_varint(out, 1);
  put_svarint(out, t.sec);
  put_varint(out, t.nsec);
}

Timespec get_time(codec::Reader& r, int64_t base_ns) {
  const uint64_t v = r.varint();
  if (v & 1) {
    Timespec t;
    t.sec = r.svarint();
    t.nsec = static_cast<uint32_t>(r.varint());
    return t;
  }
  const uint64_t z = v >> 1;
  const uint64_t d = (z >> 1) ^ (~(z & 1) + 1);  // unsigned: garbage wraps instead of overflowing
  return Timespec::from_ns(static_cast<int64_t>(static_cast<uint64_t>(base_ns) - d));
}

std::string_view basename_of(std::string_view path) {
  const size_t slash = path.find_last_of('/');
  return slash == std::string_view::npos ? path : path.substr(slash + 1);
}

// A name in an undo entry: 0 = the last component of the record's path, 1 =
// of path2, n >= 2 = n - 2 bytes follow.
void put_name(std::string& out, std::string_view name, const OpRecord& r) {
  if (!r.path.empty() && basename_of(r.path) == name) return put_varint(out, 0);
  if (!r.path2.empty() && basename_of(r.path2) == name) return put_varint(out, 1);
  put_varint(out, name.size() + 2);
  out.append(name);
}

std::string get_name(codec::Reader& r, const OpRecord& op) {
  const uint64_t n = r.varint();
  if (n == 0) return std::string(basename_of(op.path));
  if (n == 1) return std::string(basename_of(op.path2));
  std::string s;
  for (uint64_t i = 2; i < n && r.ok(); ++i) s.push_back(static_cast<char>(r.byte()));
  return s;
}

void put_ino(std::string& out, uint64_t ino, const OpRecord& r) { put_varint(out, ino == r.ino ? 0 : ino); }
uint64_t get_ino(codec::Reader& r, const OpRecord& op) {
  const uint64_t v = r.varint();
  return v == 0 ? op.ino : v;
}

void put_inode_image(std::string& out, const InodeBefore& b, int64_t ts) {
  const Inode& i = *b.image;
  uint32_t fields = b.fields;
  if (fields == kAllInodeFields) {  // whole: write only the fields that are not zero
    fields = kInodeWhole;
    const Inode zero;
    fields |= inode_fields_differing(i, zero);
  }
  put_varint(out, fields);
  if (fields & kFieldMode) put_varint(out, i.mode);
  if (fields & kFieldUid) put_varint(out, i.uid);
  if (fields & kFieldGid) put_varint(out, i.gid);
  if (fields & kFieldNlink) put_varint(out, i.nlink);
  if (fields & kFieldSize) put_varint(out, i.size);
  if (fields & kFieldRdev) put_varint(out, i.rdev);
  if (fields & kFieldAtime) put_time(out, i.atime, ts);
  if (fields & kFieldMtime) put_time(out, i.mtime, ts);
  if (fields & kFieldCtime) put_time(out, i.ctime, ts);
  if (fields & kFieldParent) put_varint(out, i.parent);
  if (fields & kFieldName) put_bytes(out, i.name);
  if (fields & kFieldSymlink) put_bytes(out, i.symlink_target);
}

InodeBefore get_inode_image(codec::Reader& r, uint64_t ino, int64_t ts) {
  InodeBefore b;
  b.ino = ino;
  if (r.at_end()) {
    b.image = std::nullopt;
    return b;
  }
  const auto head = static_cast<uint32_t>(r.varint());
  Inode i;
  i.ino = ino;
  if (head & kFieldMode) i.mode = static_cast<uint32_t>(r.varint());
  if (head & kFieldUid) i.uid = static_cast<uint32_t>(r.varint());
  if (head & kFieldGid) i.gid = static_cast<uint32_t>(r.varint());
  if (head & kFieldNlink) i.nlink = static_cast<uint32_t>(r.varint());
  if (head & kFieldSize) i.size = r.varint();
  if (head & kFieldRdev) i.rdev = r.varint();
  if (head & kFieldAtime) i.atime = get_time(r, ts);
  if (head & kFieldMtime) i.mtime = get_time(r, ts);
  if (head & kFieldCtime) i.ctime = get_time(r, ts);
  if (head & kFieldParent) i.parent = r.varint();
  if (head & kFieldName) i.name = std::string(r.bytes());
  if (head & kFieldSymlink) i.symlink_target = std::string(r.bytes());
  b.image = std::move(i);
  b.fields = (head & kInodeWhole) ? kAllInodeFields : (head & kAllInodeFields);
  return b;
}

void put_extents(std::string& out, const std::vector<Extent>& extents, uint64_t base) {
  for (const Extent& e : extents) {
    put_varint(out, e.file_offset - base);
    put_bytes(out, encode_extent_value(e));
  }
}

Status get_extents(codec::Reader& r, DataBefore& d) {
  while (r.ok() && !r.at_end()) {
    const uint64_t file_offset = d.offset + r.varint();
    auto e = decode_extent(file_offset, r.bytes());
    if (!e) return e.status();
    d.extents.push_back(*e);
  }
  return Status::ok();
}

void undo_entry(std::string& out, Undo tag, const std::string& payload) {
  out.push_back(static_cast<char>(tag));
  put_bytes(out, payload);
}

}  // namespace

std::string_view op_kind_name(OpKind kind) {
  auto i = static_cast<size_t>(kind);
  return i < kKindNames.size() ? kKindNames[i] : "?";
}

std::optional<OpKind> op_kind_from_name(std::string_view name) {
  for (size_t i = 1; i < kKindNames.size(); ++i)
    if (kKindNames[i] == name) return static_cast<OpKind>(i);
  return std::nullopt;
}

uint32_t inode_fields_differing(const Inode& a, const Inode& b) {
  uint32_t f = 0;
  if (a.mode != b.mode) f |= kFieldMode;
  if (a.uid != b.uid) f |= kFieldUid;
  if (a.gid != b.gid) f |= kFieldGid;
  if (a.nlink != b.nlink) f |= kFieldNlink;
  if (a.size != b.size) f |= kFieldSize;
  if (a.rdev != b.rdev) f |= kFieldRdev;
  if (!(a.atime == b.atime)) f |= kFieldAtime;
  if (!(a.mtime == b.mtime)) f |= kFieldMtime;
  if (!(a.ctime == b.ctime)) f |= kFieldCtime;
  if (a.parent != b.parent) f |= kFieldParent;
  if (a.name != b.name) f |= kFieldName;
  if (a.symlink_target != b.symlink_target) f |= kFieldSymlink;
  return f;
}

Result<std::optional<Inode>> InodeBefore::before(const std::optional<Inode>& after) const {
  if (!image || fields == kAllInodeFields) return image;
  if (!after) {
    return Status::corrupt("op log: a partial before-image of inode " + std::to_string(ino) +
                           " has no later state to complete it");
  }
  Inode i = *after;
  const Inode& b = *image;
  if (fields & kFieldMode) i.mode = b.mode;
  if (fields & kFieldUid) i.uid = b.uid;
  if (fields & kFieldGid) i.gid = b.gid;
  if (fields & kFieldNlink) i.nlink = b.nlink;
  if (fields & kFieldSize) i.size = b.size;
  if (fields & kFieldRdev) i.rdev = b.rdev;
  if (fields & kFieldAtime) i.atime = b.atime;
  if (fields & kFieldMtime) i.mtime = b.mtime;
  if (fields & kFieldCtime) i.ctime = b.ctime;
  if (fields & kFieldParent) i.parent = b.parent;
  if (fields & kFieldName) i.name = b.name;
  if (fields & kFieldSymlink) i.symlink_target = b.symlink_target;
  return std::optional<Inode>{std::move(i)};
}

void InodeBefore::narrow_to(const std::optional<Inode>& after) {
  fields = image && after ? inode_fields_differing(*image, *after) : kAllInodeFields;
}

void encode_record(std::string& out, const OpRecord& r, const RecordContext* prev) {
  const bool same_caller = prev && prev->caller.uid == r.caller.uid && prev->caller.gid == r.caller.gid &&
                           prev->caller.pid == r.caller.pid && prev->caller.comm == r.caller.comm;
  uint64_t args = 0;
  if (r.ino) args |= kArgIno;
  if (r.ino2) args |= kArgIno2;
  if (!r.path.empty()) args |= kArgPath;
  if (!r.path2.empty()) args |= kArgPath2;
  if (r.mode) args |= kArgMode;
  if (r.flags) args |= kArgFlags;
  if (r.offset) args |= kArgOffset;
  if (r.length) args |= kArgLength;
  if (r.size) args |= kArgSize;
  if (r.uid) args |= kArgUid;
  if (r.gid) args |= kArgGid;
  if (!(r.atime == Timespec{})) args |= kArgAtime;
  if (!(r.mtime == Timespec{})) args |= kArgMtime;
  if (r.rdev) args |= kArgRdev;
  if (!r.name.empty()) args |= kArgName;

  out.push_back(static_cast<char>(r.kind));
  put_varint(out, (args << 1) | (same_caller ? kHeadSameCaller : 0));
  // Unsigned: the step between two times never overflows (decode wraps back).
  put_svarint(out, prev ? static_cast<int64_t>(static_cast<uint64_t>(r.ts_ns) - static_cast<uint64_t>(prev->ts_ns))
                        : r.ts_ns);
  if (!same_caller) {
    put_varint(out, r.caller.uid);
    put_varint(out, r.caller.gid);
    put_varint(out, r.caller.pid);
    put_bytes(out, r.caller.comm);
  }
  if (args & kArgIno) put_varint(out, r.ino);
  if (args & kArgIno2) put_varint(out, r.ino2);
  if (args & kArgPath) put_bytes(out, r.path);
  if (args & kArgPath2) put_bytes(out, r.path2);
  if (args & kArgMode) put_varint(out, r.mode);
  if (args & kArgFlags) put_varint(out, r.flags);
  if (args & kArgOffset) put_varint(out, r.offset);
  if (args & kArgLength) put_varint(out, r.length);
  if (args & kArgSize) put_varint(out, r.size);
  if (args & kArgUid) put_varint(out, r.uid);
  if (args & kArgGid) put_varint(out, r.gid);
  if (args & kArgAtime) put_time(out, r.atime, r.ts_ns);
  if (args & kArgMtime) put_time(out, r.mtime, r.ts_ns);
  if (args & kArgRdev) put_varint(out, r.rdev);
  if (args & kArgName) put_bytes(out, r.name);

  std::string p;
  for (const InodeBefore& b : r.inodes_before) {
    p.clear();
    put_ino(p, b.ino, r);
    if (b.image) put_inode_image(p, b, r.ts_ns);
    undo_entry(out, kUndoInode, p);
  }
  for (const DirentBefore& d : r.dirents_before) {
    p.clear();
    put_varint(p, d.parent);
    put_name(p, d.name, r);
    if (d.entry) {
      put_varint(p, d.entry->ino);
      put_varint(p, d.entry->type >> 12);
    }
    undo_entry(out, kUndoDirent, p);
  }
  for (const XattrBefore& x : r.xattrs_before) {
    p.clear();
    put_ino(p, x.ino, r);
    put_bytes(p, x.name);
    if (x.value) {
      p.push_back(1);
      p.append(*x.value);
    }
    undo_entry(out, kUndoXattr, p);
  }
  for (const DataBefore& d : r.data_before) {
    p.clear();
    const bool of_args = d.ino == r.ino && d.offset == r.offset && d.length == r.length;
    if (!of_args) {
      put_ino(p, d.ino, r);
      put_varint(p, d.offset);
      put_varint(p, d.length);
    }
    put_extents(p, d.extents, d.offset);
    undo_entry(out, of_args ? kUndoDataOfArgs : kUndoData, p);
  }
}

namespace {

// The record's kind and head varint, then its time and caller.
struct Header {
  OpKind kind = OpKind::kCreate;
  uint64_t args = 0;
  RecordHead head;
};

Status corrupt_record(uint64_t seq, const std::string& what) {
  return Status::corrupt("op log record " + std::to_string(seq) + ": " + what);
}

// Reads up to the caller (which follows unless head.same_caller).
Result<Header> read_header(codec::Reader& r, uint64_t seq) {
  Header h;
  const uint8_t kind = r.byte();
  if (kind == 0 || kind > static_cast<uint8_t>(kLastOpKind)) return corrupt_record(seq, "unknown operation kind");
  h.kind = static_cast<OpKind>(kind);
  const uint64_t head = r.varint();
  h.args = head >> 1;
  h.head.same_caller = head & kHeadSameCaller;
  h.head.ts = r.svarint();
  if (!r.ok()) return corrupt_record(seq, "truncated");
  return h;
}

Caller read_caller(codec::Reader& r) {
  Caller c;
  c.uid = static_cast<uint32_t>(r.varint());
  c.gid = static_cast<uint32_t>(r.varint());
  c.pid = static_cast<uint32_t>(r.varint());
  c.comm = std::string(r.bytes());
  return c;
}

}  // namespace

Result<RecordHead> decode_head(uint64_t seq, std::string_view bytes) {
  codec::Reader r(bytes);
  ROAM_ASSIGN(Header h, read_header(r, seq));
  return h.head;
}

Result<Caller> decode_caller(uint64_t seq, std::string_view bytes) {
  codec::Reader r(bytes);
  ROAM_ASSIGN(Header h, read_header(r, seq));
  if (h.head.same_caller) return corrupt_record(seq, "borrows a caller where one was expected");
  Caller c = read_caller(r);
  if (!r.ok()) return corrupt_record(seq, "truncated");
  return c;
}

Result<OpRecord> decode_record(uint64_t seq, std::string_view bytes, const RecordContext* prev) {
  auto corrupt = [seq](const std::string& what) {
    return Status::corrupt("op log record " + std::to_string(seq) + ": " + what);
  };
  codec::Reader r(bytes);
  ROAM_ASSIGN(Header h, read_header(r, seq));
  OpRecord op;
  op.seq = seq;
  op.kind = h.kind;
  if (h.head.same_caller) {
    if (!prev) return corrupt("borrows the caller of a record before it, but is first in its chunk");
    op.caller = prev->caller;
  } else {
    op.caller = read_caller(r);
  }
  op.ts_ns = prev ? static_cast<int64_t>(static_cast<uint64_t>(prev->ts_ns) + static_cast<uint64_t>(h.head.ts))
                  : h.head.ts;
  const uint64_t args = h.args;
  if (args & kArgIno) op.ino = r.varint();
  if (args & kArgIno2) op.ino2 = r.varint();
  if (args & kArgPath) op.path = std::string(r.bytes());
  if (args & kArgPath2) op.path2 = std::string(r.bytes());
  if (args & kArgMode) op.mode = static_cast<uint32_t>(r.varint());
  if (args & kArgFlags) op.flags = static_cast<uint32_t>(r.varint());
  if (args & kArgOffset) op.offset = r.varint();
  if (args & kArgLength) op.length = r.varint();
  if (args & kArgSize) op.size = r.varint();
  if (args & kArgUid) op.uid = static_cast<uint32_t>(r.varint());
  if (args & kArgGid) op.gid = static_cast<uint32_t>(r.varint());
  if (args & kArgAtime) op.atime = get_time(r, op.ts_ns);
  if (args & kArgMtime) op.mtime = get_time(r, op.ts_ns);
  if (args & kArgRdev) op.rdev = r.varint();
  if (args & kArgName) op.name = std::string(r.bytes());
  if (!r.ok()) return corrupt("truncated");

  while (r.ok() && !r.at_end()) {
    const uint8_t tag = r.byte();
    codec::Reader f(r.bytes());
    switch (tag) {
      case kUndoInode: {
        const uint64_t ino = get_ino(f, op);
        op.inodes_before.push_back(get_inode_image(f, ino, op.ts_ns));
        break;
      }
      case kUndoDirent: {
        DirentBefore d;
        d.parent = f.varint();
        d.name = get_name(f, op);
        if (!f.at_end()) {
          Dirent e;
          e.ino = f.varint();
          e.type = static_cast<uint32_t>(f.varint() << 12);
          d.entry = e;
        }
        op.dirents_before.push_back(std::move(d));
        break;
      }
      case kUndoXattr: {
        XattrBefore x;
        x.ino = get_ino(f, op);
        x.name = std::string(f.bytes());
        if (!f.at_end()) {
          f.byte();
          x.value = std::string(f.rest());
        }
        op.xattrs_before.push_back(std::move(x));
        break;
      }
      case kUndoData:
      case kUndoDataOfArgs: {
        DataBefore d{op.ino, op.offset, op.length, {}};
        if (tag == kUndoData) {
          d.ino = get_ino(f, op);
          d.offset = f.varint();
          d.length = f.varint();
        }
        if (Status s = get_extents(f, d); !s) return corrupt("undo payload: " + s.message());
        op.data_before.push_back(std::move(d));
        break;
      }
      default: continue;  // an entry from a newer writer: skip it
    }
    if (!f.ok()) return corrupt("malformed undo entry");
    if (!f.at_end()) return corrupt("undo entry longer than its fields");
  }
  if (!r.ok()) return corrupt("truncated");
  return op;
}

}  // namespace roam
