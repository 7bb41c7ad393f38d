#include "fusefs/oplog/record.h"

#include <array>
#include <type_traits>

#include "fusefs/oplog/record_fields.h"
#include "fusefs/store/codec.h"

namespace roam {

using codec::put_bytes;
using codec::put_svarint;
using codec::put_varint;
using namespace record_codec;

namespace {

constexpr std::array<std::string_view, 17> kKindNames = {
    "?",      "create", "mknod",   "mkdir",     "symlink",  "link",        "unlink",  "rmdir",
    "rename", "write",  "setattr", "fallocate", "setxattr", "removexattr", "restore", "tmpfile", "copy"};

constexpr uint64_t kHeadSameCaller = 1;  // head bit 0; the arguments' bit set follows it
constexpr unsigned kHeadArgsShift = 1;   // head bits 1-15: which arguments follow
constexpr uint64_t kHeadArgsMask = 0x7fff;
// Head bit 16 (store format 4): the caller's desktop follows its comm. Set
// only for a remote desktop's process, so a store no remote desktop wrote to
// holds the records of format 3.
constexpr uint64_t kHeadCallerDesktop = uint64_t{1} << 16;
constexpr uint64_t kHeadKnownBits = kHeadCallerDesktop | (kHeadArgsMask << kHeadArgsShift) | kHeadSameCaller;

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

// An argument or inode image field: integers as varints, strings as bytes,
// times relative to the record's time `ts`.
template <typename T>
void put_field(std::string& out, const T& v, int64_t ts) {
  if constexpr (std::is_same_v<T, Timespec>) put_time(out, v, ts);
  else codec::put_value(out, v);
}
template <typename T>
void get_field(codec::Reader& r, T& v, int64_t ts) {
  if constexpr (std::is_same_v<T, Timespec>) v = get_time(r, ts);
  else codec::get_value(r, v);
}

constexpr uint64_t arg_bit(unsigned index) { return uint64_t{1} << index; }

// The arguments a record holds: those that are not zero or empty.
uint64_t args_present(const OpRecord& r) {
  uint64_t args = 0;
  for_each_record_arg([&](unsigned index, auto member) {
    using T = std::remove_cvref_t<decltype(r.*member)>;
    if (!(r.*member == T{})) args |= arg_bit(index);
  });
  return args;
}

void put_args(std::string& out, const OpRecord& r, uint64_t args) {
  for_each_record_arg([&](unsigned index, auto member) {
    if (args & arg_bit(index)) put_field(out, r.*member, r.ts_ns);
  });
}

void get_args(codec::Reader& r, uint64_t args, OpRecord& op) {
  for_each_record_arg([&](unsigned index, auto member) {
    if (args & arg_bit(index)) get_field(r, op.*member, op.ts_ns);
  });
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

// The payload of each kind of undo entry, written and read.

void put_inode_before(std::string& out, const InodeBefore& b, const OpRecord& r) {
  put_ino(out, b.ino, r);
  if (!b.image) return;
  const Inode& i = *b.image;
  // A whole image writes only the fields that are not zero.
  const uint32_t fields = b.fields == kAllInodeFields ? kInodeWhole | inode_fields_differing(i, Inode{}) : b.fields;
  put_varint(out, fields);
  for_each_inode_field([&](uint32_t bit, auto member) {
    if (fields & bit) put_field(out, i.*member, r.ts_ns);
  });
}

InodeBefore get_inode_before(codec::Reader& r, const OpRecord& op) {
  InodeBefore b;
  b.ino = get_ino(r, op);
  if (r.at_end()) {
    b.image = std::nullopt;
    return b;
  }
  const auto head = static_cast<uint32_t>(r.varint());
  Inode i;
  i.ino = b.ino;
  for_each_inode_field([&](uint32_t bit, auto member) {
    if (head & bit) get_field(r, i.*member, op.ts_ns);
  });
  b.image = std::move(i);
  b.fields = (head & kInodeWhole) ? kAllInodeFields : (head & kAllInodeFields);
  return b;
}

void put_dirent_before(std::string& out, const DirentBefore& d, const OpRecord& r) {
  put_varint(out, d.parent);
  put_name(out, d.name, r);
  if (d.entry) {
    put_varint(out, d.entry->ino);
    put_varint(out, d.entry->type >> 12);
  }
}

DirentBefore get_dirent_before(codec::Reader& r, const OpRecord& op) {
  DirentBefore d;
  d.parent = r.varint();
  d.name = get_name(r, op);
  if (!r.at_end()) {
    Dirent e;
    e.ino = r.varint();
    e.type = static_cast<uint32_t>(r.varint() << 12);
    d.entry = e;
  }
  return d;
}

void put_xattr_before(std::string& out, const XattrBefore& x, const OpRecord& r) {
  put_ino(out, x.ino, r);
  put_bytes(out, x.name);
  put_xattr_value(out, x.value);
}

XattrBefore get_xattr_before(codec::Reader& r, const OpRecord& op) {
  XattrBefore x;
  x.ino = get_ino(r, op);
  x.name = std::string(r.bytes());
  x.value = get_xattr_value(r);
  return x;
}

// The range of the record's own arguments is not written again (kUndoDataOfArgs).
bool is_args_range(const DataBefore& d, const OpRecord& r) {
  return d.ino == r.ino && d.offset == r.offset && d.length == r.length;
}

void put_data_before(std::string& out, const DataBefore& d, const OpRecord& r) {
  if (!is_args_range(d, r)) {
    put_ino(out, d.ino, r);
    put_varint(out, d.offset);
    put_varint(out, d.length);
  }
  put_extents(out, d.extents, d.offset);
}

Result<DataBefore> get_data_before(codec::Reader& r, bool of_args, const OpRecord& op) {
  DataBefore d{op.ino, op.offset, op.length, {}};
  if (!of_args) {
    d.ino = get_ino(r, op);
    d.offset = r.varint();
    d.length = r.varint();
  }
  ROAM_TRY(get_extents(r, d.offset, d.extents));
  return d;
}

// Appends the undo entries: byte tag, bytes payload.
void put_undo(std::string& out, const OpRecord& r) {
  std::string p;  // an entry's payload (one buffer for all)
  auto append_entry = [&](Undo tag) {
    out.push_back(static_cast<char>(tag));
    put_bytes(out, p);
    p.clear();
  };
  for (const InodeBefore& b : r.inodes_before) {
    put_inode_before(p, b, r);
    append_entry(kUndoInode);
  }
  for (const DirentBefore& d : r.dirents_before) {
    put_dirent_before(p, d, r);
    append_entry(kUndoDirent);
  }
  for (const XattrBefore& x : r.xattrs_before) {
    put_xattr_before(p, x, r);
    append_entry(kUndoXattr);
  }
  for (const DataBefore& d : r.data_before) {
    put_data_before(p, d, r);
    append_entry(is_args_range(d, r) ? kUndoDataOfArgs : kUndoData);
  }
}

// Reads the undo entry of kind `tag` from its payload `f` into `op`; skips
// one of a kind it does not know (from a newer writer).
Status get_undo_entry(uint64_t seq, uint8_t tag, codec::Reader& f, OpRecord& op) {
  switch (tag) {
    case kUndoInode: op.inodes_before.push_back(get_inode_before(f, op)); break;
    case kUndoDirent: op.dirents_before.push_back(get_dirent_before(f, op)); break;
    case kUndoXattr: op.xattrs_before.push_back(get_xattr_before(f, op)); break;
    case kUndoData:
    case kUndoDataOfArgs: {
      auto d = get_data_before(f, tag == kUndoDataOfArgs, op);
      if (!d) return corrupt_record(seq, "undo payload: " + d.status().message());
      op.data_before.push_back(std::move(*d));
      break;
    }
    default: return Status::ok();
  }
  if (!f.ok()) return corrupt_record(seq, "malformed undo entry");
  if (!f.at_end()) return corrupt_record(seq, "undo entry longer than its fields");
  return Status::ok();
}

}  // namespace

namespace record_codec {

Status corrupt_record(uint64_t seq, const std::string& what) {
  return Status::corrupt("op log record " + std::to_string(seq) + ": " + what);
}

Result<OpKind> get_kind(codec::Reader& r, uint64_t seq) {
  const uint8_t kind = r.byte();
  if (kind == 0 || kind > static_cast<uint8_t>(kLastOpKind)) return corrupt_record(seq, "unknown operation kind");
  return static_cast<OpKind>(kind);
}

void put_caller(std::string& out, const Caller& c) {
  put_varint(out, c.uid);
  put_varint(out, c.gid);
  put_varint(out, c.pid);
  put_bytes(out, c.comm);
}

Caller get_caller(codec::Reader& r) {
  Caller c;
  c.uid = static_cast<uint32_t>(r.varint());
  c.gid = static_cast<uint32_t>(r.varint());
  c.pid = static_cast<uint32_t>(r.varint());
  c.comm = std::string(r.bytes());
  return c;
}

void put_xattr_value(std::string& out, const std::optional<std::string>& value) {
  if (!value) return;
  out.push_back(1);
  out.append(*value);
}

std::optional<std::string> get_xattr_value(codec::Reader& r) {
  if (r.at_end()) return std::nullopt;
  r.byte();
  return std::string(r.rest());
}

void put_extents(std::string& out, const std::vector<Extent>& extents, uint64_t base) {
  for (const Extent& e : extents) {
    put_varint(out, e.file_offset - base);
    put_bytes(out, encode_extent_value(e));
  }
}

Status get_extents(codec::Reader& r, uint64_t base, std::vector<Extent>& extents) {
  while (r.ok() && !r.at_end()) {
    const uint64_t file_offset = base + r.varint();
    ROAM_ASSIGN(Extent e, decode_extent(file_offset, r.bytes()));
    extents.push_back(e);
  }
  return Status::ok();
}

}  // namespace record_codec

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
  for_each_inode_field([&](uint32_t bit, auto member) {
    if (!(a.*member == b.*member)) f |= bit;
  });
  return f;
}

Result<std::optional<Inode>> InodeBefore::before(const std::optional<Inode>& after) const {
  if (!image || fields == kAllInodeFields) return image;
  if (!after) {
    return Status::corrupt("op log: a partial before-image of inode " + std::to_string(ino) +
                           " has no later state to complete it");
  }
  Inode i = *after;
  for_each_inode_field([&](uint32_t bit, auto member) {
    if (fields & bit) i.*member = (*image).*member;
  });
  return std::optional<Inode>{std::move(i)};
}

void InodeBefore::narrow_to(const std::optional<Inode>& after) {
  fields = image && after ? inode_fields_differing(*image, *after) : kAllInodeFields;
}

void encode_record(std::string& out, const OpRecord& r, const RecordContext* prev) {
  const bool same_caller = prev && prev->caller == r.caller;
  const bool caller_desktop = !same_caller && !r.caller.desktop.empty();
  const uint64_t args = args_present(r);
  out.push_back(static_cast<char>(r.kind));
  put_varint(out, (args << kHeadArgsShift) | (same_caller ? kHeadSameCaller : 0) |
                      (caller_desktop ? kHeadCallerDesktop : 0));
  // Unsigned: the step between two times never overflows (decode wraps back).
  put_svarint(out, prev ? static_cast<int64_t>(static_cast<uint64_t>(r.ts_ns) - static_cast<uint64_t>(prev->ts_ns))
                        : r.ts_ns);
  if (!same_caller) put_caller(out, r.caller);
  if (caller_desktop) put_bytes(out, r.caller.desktop);
  put_args(out, r, args);
  put_undo(out, r);
}

namespace {

// The record's kind and head varint, then its time and caller.
struct Header {
  OpKind kind = OpKind::kCreate;
  uint64_t args = 0;
  RecordHead head;
};

// Reads up to the caller (which follows unless head.same_caller).
Result<Header> read_header(codec::Reader& r, uint64_t seq) {
  Header h;
  ROAM_ASSIGN(h.kind, get_kind(r, seq));
  const uint64_t head = r.varint();
  if (head & ~kHeadKnownBits) return corrupt_record(seq, "unknown bits in its head");
  h.args = (head >> kHeadArgsShift) & kHeadArgsMask;
  h.head.same_caller = head & kHeadSameCaller;
  h.head.caller_desktop = head & kHeadCallerDesktop;
  if (h.head.same_caller && h.head.caller_desktop) return corrupt_record(seq, "borrows a caller and names a desktop");
  h.head.ts = r.svarint();
  if (!r.ok()) return corrupt_record(seq, "truncated");
  return h;
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
  Caller c = get_caller(r);
  if (h.head.caller_desktop) c.desktop = std::string(r.bytes());
  if (!r.ok()) return corrupt_record(seq, "truncated");
  return c;
}

Result<OpRecord> decode_record(uint64_t seq, std::string_view bytes, const RecordContext* prev) {
  codec::Reader r(bytes);
  ROAM_ASSIGN(Header h, read_header(r, seq));
  OpRecord op;
  op.seq = seq;
  op.kind = h.kind;
  if (h.head.same_caller) {
    if (!prev) return corrupt_record(seq, "borrows the caller of a record before it, but is first in its chunk");
    op.caller = prev->caller;
  } else {
    op.caller = get_caller(r);
    if (h.head.caller_desktop) op.caller.desktop = std::string(r.bytes());
  }
  op.ts_ns = prev ? static_cast<int64_t>(static_cast<uint64_t>(prev->ts_ns) + static_cast<uint64_t>(h.head.ts))
                  : h.head.ts;
  get_args(r, h.args, op);
  if (!r.ok()) return corrupt_record(seq, "truncated");
  while (r.ok() && !r.at_end()) {
    const uint8_t tag = r.byte();
    codec::Reader entry(r.bytes());
    ROAM_TRY(get_undo_entry(seq, tag, entry, op));
  }
  if (!r.ok()) return corrupt_record(seq, "truncated");
  return op;
}

std::string caller_text(const Caller& c) {
  std::string text = c.comm + "[" + std::to_string(c.pid) + "]";
  if (!c.desktop.empty()) text += "@" + c.desktop;
  return text + " uid " + std::to_string(c.uid);
}

}  // namespace roam
