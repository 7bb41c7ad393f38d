// What the two record codecs share (record.cc writes and reads format 2,
// record_v1.cc format 1): the record's arguments, declared once, and the
// pieces of the encoding both formats spell the same way. Private to
// fusefs/oplog; docs/oplog-format.md describes the bytes.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"
#include "fusefs/oplog/record.h"
#include "fusefs/store/codec.h"

namespace roam::record_codec {

// Every argument of an OpRecord: calls visit(index, &OpRecord::member) for
// each, in the order both formats store them. Format 2 says which arguments a
// record holds with bit `index` of its arguments' bit set; format 1 tags each
// with index + 1. The order is on disk: a new argument goes at the end, with
// the next index, and format 1 never learns it (kArgsV1).
template <typename Visit>
constexpr void for_each_record_arg(Visit&& visit) {
  visit(0, &OpRecord::ino);
  visit(1, &OpRecord::ino2);
  visit(2, &OpRecord::path);
  visit(3, &OpRecord::path2);
  visit(4, &OpRecord::mode);
  visit(5, &OpRecord::flags);
  visit(6, &OpRecord::offset);
  visit(7, &OpRecord::length);
  visit(8, &OpRecord::size);
  visit(9, &OpRecord::uid);
  visit(10, &OpRecord::gid);
  visit(11, &OpRecord::atime);
  visit(12, &OpRecord::mtime);
  visit(13, &OpRecord::rdev);
  visit(14, &OpRecord::name);
}
// The arguments format 1 stores: the first 15 (its tags 1 to 15; tag 16 on
// is its undo entries).
inline constexpr unsigned kArgsV1 = 15;

// "op log record SEQ: WHAT", a corrupt Status.
Status corrupt_record(uint64_t seq, const std::string& what);

// The kind byte; zero or past kLastOpKind is corrupt (a truncated value
// reads as zero).
Result<OpKind> get_kind(codec::Reader& r, uint64_t seq);

// varint uid, gid, pid; bytes comm.
void put_caller(std::string& out, const Caller& c);
Caller get_caller(codec::Reader& r);

// The end of an xattr undo entry: nothing when the attribute did not exist,
// else byte 1 and the value up to the end of the entry.
void put_xattr_value(std::string& out, const std::optional<std::string>& value);
std::optional<std::string> get_xattr_value(codec::Reader& r);

// Extents up to the end of an undo entry: for each, varint (file offset -
// `base`), then bytes of the extent value. Reading fails (corrupt) on an
// extent value that does not decode; a truncated entry only fails `r`.
void put_extents(std::string& out, const std::vector<Extent>& extents, uint64_t base);
Status get_extents(codec::Reader& r, uint64_t base, std::vector<Extent>& extents);

}  // namespace roam::record_codec
