// Records as format 1 stored them: one LMDB value each, every field tagged,
// every inode before-image whole. Read for stores written then; written only
// by tests that build such a store.
#include <type_traits>

#include "fusefs/oplog/record.h"
#include "fusefs/oplog/record_fields.h"
#include "fusefs/store/codec.h"

namespace roam {

using codec::put_bytes;
using codec::put_svarint;
using codec::put_varint;
using namespace record_codec;

namespace {

// Field tags. Every field is `tag, length, payload`, so a reader skips tags it
// does not know and newer writers can add fields.
enum Tag : uint8_t {
  // Tags 1 to 15: the arguments, tag = index in for_each_record_arg + 1 (1 ino,
  // 2 ino2, 3 path, 4 path2, 5 mode, 6 flags, 7 offset, 8 length, 9 size,
  // 10 uid, 11 gid, 12 atime, 13 mtime, 14 rdev, 15 name).
  kTagFirstArg = 1,
  kTagInodeBefore = 16,
  kTagDirentBefore = 17,
  kTagXattrBefore = 18,
  kTagDataBefore = 21,  // (19 and 20 held a single range in early stores: read, never written)
  kTagExtentBeforeOld = 19,
  kTagDataRangeOld = 20,
};
static_assert(kTagFirstArg + kArgsV1 == kTagInodeBefore, "format 1's argument tags are 1 to 15");

void field(std::string& out, uint8_t tag, std::string_view payload) {
  out.push_back(static_cast<char>(tag));
  put_bytes(out, payload);
}

// An argument's field, written only when the argument is not zero or empty.
// Its payload: an integer as a varint, a string as it is, a time as svarint
// seconds and varint ns.
void put_arg(std::string& out, uint8_t tag, uint64_t v) {
  if (v == 0) return;
  std::string p;
  put_varint(p, v);
  field(out, tag, p);
}
void put_arg(std::string& out, uint8_t tag, std::string_view v) {
  if (!v.empty()) field(out, tag, v);
}
void put_arg(std::string& out, uint8_t tag, const Timespec& t) {
  if (t.sec == 0 && t.nsec == 0) return;
  std::string p;
  put_svarint(p, t.sec);
  put_varint(p, t.nsec);
  field(out, tag, p);
}

template <typename T>
void get_arg(codec::Reader& f, T& v) {
  if constexpr (std::is_same_v<T, std::string>) {
    v = std::string(f.rest());
  } else if constexpr (std::is_same_v<T, Timespec>) {
    v.sec = f.svarint();
    v.nsec = static_cast<uint32_t>(f.varint());
  } else {
    codec::get_value(f, v);
  }
}

// The tag of the argument at `index` of for_each_record_arg.
constexpr uint8_t arg_tag(unsigned index) { return static_cast<uint8_t>(kTagFirstArg + index); }
bool is_arg_tag(uint8_t tag) { return tag >= kTagFirstArg && tag < arg_tag(kArgsV1); }

// Reads the argument that field `tag` (is_arg_tag) holds.
void get_arg_of_tag(codec::Reader& f, uint8_t tag, OpRecord& op) {
  for_each_record_arg([&](unsigned index, auto member) {
    if (tag == arg_tag(index)) get_arg(f, op.*member);
  });
}


// The undo lists, one field per entry.
void put_undo(std::string& out, const OpRecord& r) {
  std::string p;  // a field's payload (one buffer for all)
  auto append_field = [&](Tag tag) {
    field(out, tag, p);
    p.clear();
  };
  for (const InodeBefore& b : r.inodes_before) {
    put_varint(p, b.ino);
    if (b.image) p.append(encode(*b.image));
    append_field(kTagInodeBefore);
  }
  for (const DirentBefore& d : r.dirents_before) {
    put_varint(p, d.parent);
    put_bytes(p, d.name);
    if (d.entry) p.append(encode(*d.entry));
    append_field(kTagDirentBefore);
  }
  for (const XattrBefore& x : r.xattrs_before) {
    put_varint(p, x.ino);
    put_bytes(p, x.name);
    put_xattr_value(p, x.value);
    append_field(kTagXattrBefore);
  }
  for (const DataBefore& d : r.data_before) {
    put_varint(p, d.ino);
    put_varint(p, d.offset);
    put_varint(p, d.length);
    put_extents(p, d.extents, 0);
    append_field(kTagDataBefore);
  }
}

// The early single-range form of a record's data before: extents (tag 19)
// of the range the record's arguments name (tag 20).
struct OldRange {
  bool present = false;
  std::vector<Extent> extents;
};

// The undo fields, each read from its payload `f`.

Status get_inode_before(uint64_t seq, codec::Reader& f, OpRecord& op) {
  const uint64_t ino = f.varint();
  std::optional<Inode> before;
  if (!f.at_end()) {
    auto i = decode_inode(ino, f.rest());
    if (!i) return corrupt_record(seq, "undo payload: " + i.status().message());
    before = std::move(*i);
  }
  op.inodes_before.push_back({ino, std::move(before), kAllInodeFields});
  return Status::ok();
}

Status get_dirent_before(uint64_t seq, codec::Reader& f, OpRecord& op) {
  DirentBefore d;
  d.parent = f.varint();
  d.name = std::string(f.bytes());
  if (!f.at_end()) {
    auto e = decode_dirent(f.rest());
    if (!e) return corrupt_record(seq, "undo payload: " + e.status().message());
    d.entry = *e;
  }
  op.dirents_before.push_back(std::move(d));
  return Status::ok();
}

void get_xattr_before(codec::Reader& f, OpRecord& op) {
  XattrBefore x;
  x.ino = f.varint();
  x.name = std::string(f.bytes());
  x.value = get_xattr_value(f);
  op.xattrs_before.push_back(std::move(x));
}

Status get_data_before(uint64_t seq, codec::Reader& f, OpRecord& op) {
  DataBefore d;
  d.ino = f.varint();
  d.offset = f.varint();
  d.length = f.varint();
  if (Status s = get_extents(f, 0, d.extents); !s) return corrupt_record(seq, "undo payload: " + s.message());
  op.data_before.push_back(std::move(d));
  return Status::ok();
}

Status get_extent_before_old(uint64_t seq, codec::Reader& f, OldRange& old) {
  const uint64_t file_offset = f.varint();
  auto e = decode_extent(file_offset, f.rest());
  if (!e) return corrupt_record(seq, "undo payload: " + e.status().message());
  old.extents.push_back(*e);
  return Status::ok();
}

// Reads field `tag` from its payload `f` into `op` (or `old`); skips a field
// of a tag it does not know (from a newer writer).
Status get_field(uint64_t seq, uint8_t tag, codec::Reader& f, OpRecord& op, OldRange& old) {
  if (is_arg_tag(tag)) {
    get_arg_of_tag(f, tag, op);
    return Status::ok();
  }
  switch (tag) {
    case kTagInodeBefore: return get_inode_before(seq, f, op);
    case kTagDirentBefore: return get_dirent_before(seq, f, op);
    case kTagXattrBefore: get_xattr_before(f, op); return Status::ok();
    case kTagDataBefore: return get_data_before(seq, f, op);
    case kTagExtentBeforeOld: return get_extent_before_old(seq, f, old);
    case kTagDataRangeOld: old.present = true; return Status::ok();
    default: return Status::ok();
  }
}

}  // namespace

std::string encode_record_v1(const OpRecord& r) {
  std::string out;
  out.reserve(128);
  out.push_back(static_cast<char>(kRecordV1));
  out.push_back(static_cast<char>(r.kind));
  put_svarint(out, r.ts_ns);
  put_caller(out, r.caller);
  for_each_record_arg([&](unsigned index, auto member) {
    if (index < kArgsV1) put_arg(out, arg_tag(index), r.*member);
  });
  put_undo(out, r);
  return out;
}

Result<OpRecord> decode_record_v1(uint64_t seq, std::string_view value) {
  codec::Reader r(value);
  if (r.byte() != kRecordV1) return corrupt_record(seq, "unknown record version");
  OpRecord op;
  op.seq = seq;
  ROAM_ASSIGN(op.kind, get_kind(r, seq));
  op.ts_ns = r.svarint();
  op.caller = get_caller(r);
  OldRange old;
  while (r.ok() && !r.at_end()) {
    const uint8_t tag = r.byte();
    codec::Reader f(r.bytes());
    ROAM_TRY(get_field(seq, tag, f, op, old));
    if (!f.ok()) return corrupt_record(seq, "malformed field");
  }
  if (!r.ok()) return corrupt_record(seq, "truncated");
  if (old.present) op.data_before.push_back({op.ino, op.offset, op.length, std::move(old.extents)});
  return op;
}

}  // namespace roam
