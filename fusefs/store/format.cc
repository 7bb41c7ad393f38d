#include "fusefs/store/format.h"

#include "fusefs/store/codec.h"

namespace roam {

using codec::put_bytes;
using codec::put_svarint;
using codec::put_varint;

namespace {
// Version byte at the start of each value, so a record layout can change
// without rewriting the store.
constexpr uint8_t kInodeV1 = 1;

// An inode's fields as its value stores them: integers as varints, strings
// as bytes, times as svarint seconds and varint ns.
using codec::get_value;
using codec::put_value;
void put_value(std::string& out, const Timespec& t) {
  put_svarint(out, t.sec);
  put_varint(out, t.nsec);
}
void get_value(codec::Reader& r, Timespec& t) {
  t.sec = r.svarint();
  t.nsec = static_cast<uint32_t>(r.varint());
}

// for_each_inode_field gives each bit once, in order, and every bit of
// kAllInodeFields: the bits and the stored order are the same thing.
constexpr bool inode_fields_in_bit_order() {
  uint32_t next = 1;
  bool in_order = true;
  for_each_inode_field([&](uint32_t bit, auto) {
    in_order = in_order && bit == next;
    next <<= 1;
  });
  return in_order && next - 1 == kAllInodeFields;
}
static_assert(inode_fields_in_bit_order());
}  // namespace

std::string encode(const Inode& i) {
  std::string out;
  out.reserve(64 + i.name.size() + i.symlink_target.size());
  out.push_back(static_cast<char>(kInodeV1));
  for_each_inode_field([&](uint32_t, auto member) { put_value(out, i.*member); });
  return out;
}

Result<Inode> decode_inode(uint64_t ino, std::string_view value) {
  codec::Reader r(value);
  if (r.byte() != kInodeV1) return Status::corrupt("inode " + std::to_string(ino) + ": unknown record version");
  Inode i;
  i.ino = ino;
  for_each_inode_field([&](uint32_t, auto member) { get_value(r, i.*member); });
  if (!r.ok()) return Status::corrupt("inode " + std::to_string(ino) + ": truncated record");
  return i;
}

std::string encode(const Dirent& d) {
  std::string out;
  put_varint(out, d.ino);
  put_varint(out, d.type);
  return out;
}

Result<Dirent> decode_dirent(std::string_view value) {
  codec::Reader r(value);
  Dirent d;
  d.ino = r.varint();
  d.type = static_cast<uint32_t>(r.varint());
  if (!r.ok()) return Status::corrupt("truncated directory entry");
  return d;
}

std::string encode_extent_value(const Extent& e) {
  std::string out;
  put_varint(out, e.blob);
  put_varint(out, e.blob_offset);
  put_varint(out, e.length);
  return out;
}

Result<Extent> decode_extent(uint64_t file_offset, std::string_view value) {
  codec::Reader r(value);
  Extent e;
  e.file_offset = file_offset;
  e.blob = r.varint();
  e.blob_offset = static_cast<uint32_t>(r.varint());
  e.length = static_cast<uint32_t>(r.varint());
  if (!r.ok() || e.length == 0) return Status::corrupt("bad extent record");
  return e;
}

std::string encode(const Blob& b) {
  std::string out;
  put_varint(out, b.segment);
  put_varint(out, b.offset);
  put_varint(out, b.length);
  codec::put_fixed64(out, b.xxh3);
  put_varint(out, b.refs);
  return out;
}

Result<Blob> decode_blob(std::string_view value) {
  codec::Reader r(value);
  Blob b;
  b.segment = static_cast<uint32_t>(r.varint());
  b.offset = r.varint();
  b.length = static_cast<uint32_t>(r.varint());
  b.xxh3 = r.fixed64();
  b.refs = r.varint();
  if (!r.ok()) return Status::corrupt("bad blob record");
  return b;
}

std::string inode_key(uint64_t ino) { return codec::be64(ino); }

std::string dirent_key(uint64_t parent, std::string_view name) {
  std::string k = codec::be64(parent);
  k.append(name);
  return k;
}

std::string link_key(uint64_t ino, uint64_t parent, std::string_view name) {
  std::string k = codec::be64_pair(ino, parent);
  k.append(name);
  return k;
}

std::string xattr_key(uint64_t ino, std::string_view name) {
  std::string k = codec::be64(ino);
  k.append(name);
  return k;
}

std::string extent_key(uint64_t ino, uint64_t file_offset) { return codec::be64_pair(ino, file_offset); }

}  // namespace roam
