// Records as format 1 stored them: one LMDB value each, every field tagged,
// every inode before-image whole. Read for stores written then; written only
// by tests that build such a store.
#include "fusefs/oplog/record.h"

#include "fusefs/store/codec.h"

namespace roam {

using codec::put_bytes;
using codec::put_svarint;
using codec::put_varint;

namespace {

// Field tags. Every field is `tag, length, payload`, so a reader skips tags it
// does not know and newer writers can add fields.
enum Tag : uint8_t {
  kTagIno = 1,
  kTagIno2 = 2,
  kTagPath = 3,
  kTagPath2 = 4,
  kTagMode = 5,
  kTagFlags = 6,
  kTagOffset = 7,
  kTagLength = 8,
  kTagSize = 9,
  kTagUid = 10,
  kTagGid = 11,
  kTagAtime = 12,
  kTagMtime = 13,
  kTagRdev = 14,
  kTagName = 15,
  kTagInodeBefore = 16,
  kTagDirentBefore = 17,
  kTagXattrBefore = 18,
  kTagDataBefore = 21,  // (19 and 20 held a single range in early stores: read, never written)
  kTagExtentBeforeOld = 19,
  kTagDataRangeOld = 20,
};

void field(std::string& out, Tag tag, std::string_view payload) {
  out.push_back(static_cast<char>(tag));
  put_bytes(out, payload);
}
void field_u64(std::string& out, Tag tag, uint64_t v) {
  if (v == 0) return;
  std::string p;
  put_varint(p, v);
  field(out, tag, p);
}
void field_str(std::string& out, Tag tag, std::string_view v) {
  if (!v.empty()) field(out, tag, v);
}
void field_time(std::string& out, Tag tag, const Timespec& t) {
  if (t.sec == 0 && t.nsec == 0) return;
  std::string p;
  put_svarint(p, t.sec);
  put_varint(p, t.nsec);
  field(out, tag, p);
}

}  // namespace

std::string encode_record_v1(const OpRecord& r) {
  std::string out;
  out.reserve(128);
  out.push_back(static_cast<char>(kRecordV1));
  out.push_back(static_cast<char>(r.kind));
  put_svarint(out, r.ts_ns);
  put_varint(out, r.caller.uid);
  put_varint(out, r.caller.gid);
  put_varint(out, r.caller.pid);
  put_bytes(out, r.caller.comm);
  field_u64(out, kTagIno, r.ino);
  field_u64(out, kTagIno2, r.ino2);
  field_str(out, kTagPath, r.path);
  field_str(out, kTagPath2, r.path2);
  field_u64(out, kTagMode, r.mode);
  field_u64(out, kTagFlags, r.flags);
  field_u64(out, kTagOffset, r.offset);
  field_u64(out, kTagLength, r.length);
  field_u64(out, kTagSize, r.size);
  field_u64(out, kTagUid, r.uid);
  field_u64(out, kTagGid, r.gid);
  field_time(out, kTagAtime, r.atime);
  field_time(out, kTagMtime, r.mtime);
  field_u64(out, kTagRdev, r.rdev);
  field_str(out, kTagName, r.name);
  for (const InodeBefore& b : r.inodes_before) {
    std::string p;
    put_varint(p, b.ino);
    if (b.image) p.append(encode(*b.image));
    field(out, kTagInodeBefore, p);
  }
  for (const auto& d : r.dirents_before) {
    std::string p;
    put_varint(p, d.parent);
    put_bytes(p, d.name);
    if (d.entry) p.append(encode(*d.entry));
    field(out, kTagDirentBefore, p);
  }
  for (const auto& x : r.xattrs_before) {
    std::string p;
    put_varint(p, x.ino);
    put_bytes(p, x.name);
    if (x.value) {
      p.push_back(1);
      p.append(*x.value);
    }
    field(out, kTagXattrBefore, p);
  }
  for (const auto& d : r.data_before) {
    std::string p;
    put_varint(p, d.ino);
    put_varint(p, d.offset);
    put_varint(p, d.length);
    for (const auto& e : d.extents) {
      put_varint(p, e.file_offset);
      put_bytes(p, encode_extent_value(e));
    }
    field(out, kTagDataBefore, p);
  }
  return out;
}

Result<OpRecord> decode_record_v1(uint64_t seq, std::string_view value) {
  auto corrupt = [seq](const std::string& what) {
    return Status::corrupt("op log record " + std::to_string(seq) + ": " + what);
  };
  codec::Reader r(value);
  if (r.byte() != kRecordV1) return corrupt("unknown record version");
  OpRecord op;
  op.seq = seq;
  std::vector<Extent> old_extents;  // the early single-range form
  bool old_range = false;
  uint8_t kind = r.byte();
  if (kind == 0 || kind > static_cast<uint8_t>(kLastOpKind)) return corrupt("unknown operation kind");
  op.kind = static_cast<OpKind>(kind);
  op.ts_ns = r.svarint();
  op.caller.uid = static_cast<uint32_t>(r.varint());
  op.caller.gid = static_cast<uint32_t>(r.varint());
  op.caller.pid = static_cast<uint32_t>(r.varint());
  op.caller.comm = std::string(r.bytes());
  while (r.ok() && !r.at_end()) {
    uint8_t tag = r.byte();
    codec::Reader f(r.bytes());
    switch (tag) {
      case kTagIno: op.ino = f.varint(); break;
      case kTagIno2: op.ino2 = f.varint(); break;
      case kTagPath: op.path = std::string(f.rest()); break;
      case kTagPath2: op.path2 = std::string(f.rest()); break;
      case kTagMode: op.mode = static_cast<uint32_t>(f.varint()); break;
      case kTagFlags: op.flags = static_cast<uint32_t>(f.varint()); break;
      case kTagOffset: op.offset = f.varint(); break;
      case kTagLength: op.length = f.varint(); break;
      case kTagSize: op.size = f.varint(); break;
      case kTagUid: op.uid = static_cast<uint32_t>(f.varint()); break;
      case kTagGid: op.gid = static_cast<uint32_t>(f.varint()); break;
      case kTagAtime: op.atime.sec = f.svarint(), op.atime.nsec = static_cast<uint32_t>(f.varint()); break;
      case kTagMtime: op.mtime.sec = f.svarint(), op.mtime.nsec = static_cast<uint32_t>(f.varint()); break;
      case kTagRdev: op.rdev = f.varint(); break;
      case kTagName: op.name = std::string(f.rest()); break;
      case kTagInodeBefore: {
        uint64_t ino = f.varint();
        std::optional<Inode> before;
        if (!f.at_end()) {
          auto i = decode_inode(ino, f.rest());
          if (!i) return corrupt("undo payload: " + i.status().message());
          before = std::move(*i);
        }
        op.inodes_before.push_back({ino, std::move(before), kAllInodeFields});
        break;
      }
      case kTagDirentBefore: {
        DirentBefore d;
        d.parent = f.varint();
        d.name = std::string(f.bytes());
        if (!f.at_end()) {
          auto e = decode_dirent(f.rest());
          if (!e) return corrupt("undo payload: " + e.status().message());
          d.entry = *e;
        }
        op.dirents_before.push_back(std::move(d));
        break;
      }
      case kTagXattrBefore: {
        XattrBefore x;
        x.ino = f.varint();
        x.name = std::string(f.bytes());
        if (!f.at_end()) {
          f.byte();
          x.value = std::string(f.rest());
        }
        op.xattrs_before.push_back(std::move(x));
        break;
      }
      case kTagDataBefore: {
        DataBefore d;
        d.ino = f.varint();
        d.offset = f.varint();
        d.length = f.varint();
        while (f.ok() && !f.at_end()) {
          uint64_t file_offset = f.varint();
          auto e = decode_extent(file_offset, f.bytes());
          if (!e) return corrupt("undo payload: " + e.status().message());
          d.extents.push_back(*e);
        }
        op.data_before.push_back(std::move(d));
        break;
      }
      case kTagExtentBeforeOld: {
        uint64_t file_offset = f.varint();
        auto e = decode_extent(file_offset, f.rest());
        if (!e) return corrupt("undo payload: " + e.status().message());
        old_extents.push_back(*e);
        break;
      }
      case kTagDataRangeOld: old_range = true; break;
      default: break;  // a field from a newer writer: skip it
    }
    if (!f.ok()) return corrupt("malformed field");
  }
  if (!r.ok()) return corrupt("truncated");
  if (old_range) op.data_before.push_back({op.ino, op.offset, op.length, std::move(old_extents)});
  return op;
}

}  // namespace roam
