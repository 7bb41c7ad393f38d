// fusefs/store/format.h: encodings of the LMDB values and keys.
#include "fusefs/store/format.h"

#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <climits>
#include <random>

#include "fusefs/store/codec.h"
#include "tests/unit/helpers.h"
#include "tests/unit/record_samples.h"

using namespace roam;
using roam::testing::ExactBuffer;
using roam::testing::random_bytes;

namespace {

Inode sample_inode() {
  Inode i;
  i.ino = 77;
  i.mode = S_IFREG | 04755;
  i.uid = 1000;
  i.gid = UINT32_MAX;
  i.nlink = 3;
  i.size = (5ull << 30) + 17;
  i.rdev = 0x10203;
  i.atime = {-5, 999999999};
  i.mtime = {INT64_MAX, 0};
  i.ctime = {INT64_MIN, 1};
  i.parent = 12;
  i.name = std::string("n\0\xffme", 5);
  i.symlink_target = std::string(4095, 't');
  return i;
}

Inode random_inode(std::mt19937_64& rng) {
  Inode i;
  i.ino = rng();
  i.mode = static_cast<uint32_t>(rng());
  i.uid = static_cast<uint32_t>(rng());
  i.gid = static_cast<uint32_t>(rng());
  i.nlink = static_cast<uint32_t>(rng());
  i.size = rng() >> (rng() % 64);
  i.rdev = rng() >> (rng() % 64);
  i.atime = {static_cast<int64_t>(rng()), static_cast<uint32_t>(rng() % 1000000000)};
  i.mtime = {static_cast<int64_t>(rng()) >> 30, static_cast<uint32_t>(rng() % 1000000000)};
  i.ctime = {-static_cast<int64_t>(rng() >> 2), static_cast<uint32_t>(rng() % 1000000000)};
  i.parent = rng() >> (rng() % 64);
  i.name = random_bytes(rng, rng() % 256);
  i.symlink_target = random_bytes(rng, rng() % 64);
  return i;
}

// A failed decode must be EIO with the "corrupt" wording.
template <typename T>
void check_corrupt(const Result<T>& r) {
  INFO("status: " << roam::testing::describe(r.status()));
  REQUIRE_FALSE(r.is_ok());
  CHECK(r.status().err() == EIO);
  CHECK(r.status().message().find("corrupt") != std::string::npos);
}

template <typename T>
void check_ok_or_corrupt(const Result<T>& r) {
  if (!r.is_ok()) {
    CHECK(r.status().err() == EIO);
    CHECK(r.status().message().find("corrupt") != std::string::npos);
  }
}

}  // namespace

TEST_CASE("Inode round trips every field", "[format]") {
  Inode i = sample_inode();
  std::string v = encode(i);
  auto d = decode_inode(i.ino, v);
  REQUIRE(d.is_ok());
  CHECK(*d == i);

  Inode empty;
  empty.ino = kRootIno;
  auto e = decode_inode(kRootIno, encode(empty));
  REQUIRE(e.is_ok());
  CHECK(*e == empty);

  std::mt19937_64 rng(10);
  for (int k = 0; k < 2000; ++k) {
    Inode r = random_inode(rng);
    ExactBuffer buf(encode(r));
    auto got = decode_inode(r.ino, buf.view());
    REQUIRE(got.is_ok());
    REQUIRE(*got == r);
  }
}

// The `inodes` table holds these bytes: every later codec must write and read
// them the same, byte for byte.
TEST_CASE("an inode's encoding is fixed bytes", "[format]") {
  Inode i = roam::testing::inode_with(17, "a b");
  i.rdev = 0x0801;
  const std::string fixed = roam::testing::from_hex(
      "01a08302e8076402b9608110"                  // version, mode, uid, gid, nlink, size, rdev
      "80c49fd50c01 01ff93ebdc03 80c8ceb40df403"  // atime, mtime, ctime
      "01 03612062 06746172676574");             // parent, name, symlink target
  CHECK(roam::testing::to_hex(encode(i)) == roam::testing::to_hex(fixed));
  auto d = decode_inode(17, fixed);
  REQUIRE(d.is_ok());
  CHECK(*d == i);
}

TEST_CASE("decode_inode takes the inode number from the key", "[format]") {
  Inode i = sample_inode();
  auto d = decode_inode(999, encode(i));
  REQUIRE(d.is_ok());
  CHECK(d->ino == 999);
  CHECK(d->name == i.name);
}

TEST_CASE("Dirent, Extent and Blob round trip", "[format]") {
  std::mt19937_64 rng(11);
  for (int k = 0; k < 2000; ++k) {
    Dirent d{rng() >> (rng() % 64), static_cast<uint32_t>(rng() % 2 ? S_IFDIR : rng())};
    ExactBuffer dbuf(encode(d));
    auto dd = decode_dirent(dbuf.view());
    REQUIRE(dd.is_ok());
    CHECK(dd->ino == d.ino);
    CHECK(dd->type == d.type);

    Extent e{rng(), rng() >> (rng() % 64), static_cast<uint32_t>(rng()),
             static_cast<uint32_t>(rng() % UINT32_MAX) + 1};
    ExactBuffer eb(encode_extent_value(e));
    auto de = decode_extent(e.file_offset, eb.view());
    REQUIRE(de.is_ok());
    CHECK(*de == e);

    Blob b{static_cast<uint32_t>(rng()), rng() >> (rng() % 64), static_cast<uint32_t>(rng()), rng(),
           rng() >> (rng() % 64)};
    ExactBuffer bb(encode(b));
    auto db = decode_blob(bb.view());
    REQUIRE(db.is_ok());
    CHECK(db->segment == b.segment);
    CHECK(db->offset == b.offset);
    CHECK(db->length == b.length);
    CHECK(db->xxh3 == b.xxh3);
    CHECK(db->refs == b.refs);
  }
  Blob max{UINT32_MAX, UINT64_MAX, UINT32_MAX, UINT64_MAX, UINT64_MAX};
  auto db = decode_blob(encode(max));
  REQUIRE(db.is_ok());
  CHECK(db->offset == UINT64_MAX);
  CHECK(db->refs == UINT64_MAX);
}

TEST_CASE("Extent::end and Timespec conversions", "[format]") {
  Extent e{4ull << 30, 1, 10, 100};
  CHECK(e.end() == (4ull << 30) + 100);
  CHECK(Timespec::from_ns(1500000000) == Timespec{1, 500000000});
  CHECK(Timespec::from_ns(-1) == Timespec{-1, 999999999});
  CHECK(Timespec::from_ns(-1000000000) == Timespec{-1, 0});
  CHECK(Timespec::from_ns(0) == Timespec{0, 0});
  for (int64_t ns : {int64_t{0}, int64_t{1}, int64_t{-1}, int64_t{1795774500123456789}, int64_t{-1795774500123456789}})
    CHECK(Timespec::from_ns(ns).ns() == ns);
}

TEST_CASE("every truncation of a value is reported as corrupt", "[format]") {
  Inode i = sample_inode();
  i.symlink_target = "short";
  const std::string inode_v = encode(i);
  for (size_t n = 0; n < inode_v.size(); ++n) {
    INFO("inode prefix " << n);
    check_corrupt(decode_inode(i.ino, ExactBuffer(std::string_view(inode_v).substr(0, n)).view()));
  }
  const std::string dirent_v = encode(Dirent{1ull << 40, S_IFDIR});
  for (size_t n = 0; n < dirent_v.size(); ++n) {
    INFO("dirent prefix " << n);
    check_corrupt(decode_dirent(ExactBuffer(std::string_view(dirent_v).substr(0, n)).view()));
  }
  const std::string extent_v = encode_extent_value(Extent{0, 1ull << 40, 70000, 131072});
  for (size_t n = 0; n < extent_v.size(); ++n) {
    INFO("extent prefix " << n);
    check_corrupt(decode_extent(0, ExactBuffer(std::string_view(extent_v).substr(0, n)).view()));
  }
  const std::string blob_v = encode(Blob{3, 1ull << 33, 131072, 0xdeadbeefcafef00dull, 1000});
  for (size_t n = 0; n < blob_v.size(); ++n) {
    INFO("blob prefix " << n);
    check_corrupt(decode_blob(ExactBuffer(std::string_view(blob_v).substr(0, n)).view()));
  }
}

TEST_CASE("specific malformed values are corrupt", "[format]") {
  SECTION("inode with an unknown version byte") {
    std::string v = encode(sample_inode());
    v[0] = 2;
    check_corrupt(decode_inode(5, v));
  }
  SECTION("extent of length zero") {
    check_corrupt(decode_extent(0, encode_extent_value(Extent{0, 1, 0, 0})));
  }
  SECTION("inode whose name length runs past the value") {
    Inode i;
    i.name = "abc";
    std::string v = encode(i);
    // name is followed by the (empty) symlink target: drop both and claim a long name
    v.resize(v.size() - 5);
    codec::put_varint(v, 1000);
    v += "abc";
    check_corrupt(decode_inode(5, v));
  }
}

TEST_CASE("decoding random garbage never crashes", "[format]") {
  std::mt19937_64 rng(12);
  for (int k = 0; k < 50000; ++k) {
    std::string s = random_bytes(rng, rng() % 48);
    if (k % 2 && !s.empty()) s[0] = 1;  // valid inode version: exercise the field parsing
    ExactBuffer buf(s);
    check_ok_or_corrupt(decode_inode(k, buf.view()));
    check_ok_or_corrupt(decode_dirent(buf.view()));
    check_ok_or_corrupt(decode_extent(k, buf.view()));
    check_ok_or_corrupt(decode_blob(buf.view()));
  }
}

TEST_CASE("keys are fixed-width big-endian so LMDB order is numeric", "[format]") {
  CHECK(inode_key(1) == codec::be64(1));
  CHECK(dirent_key(2, "name") == codec::be64(2) + "name");
  CHECK(xattr_key(3, "user.x") == codec::be64(3) + "user.x");
  CHECK(link_key(4, 5, "n") == codec::be64(4) + codec::be64(5) + "n");
  CHECK(extent_key(6, 7) == codec::be64(6) + codec::be64(7));
  // All entries of one directory sort together, before the next directory's.
  CHECK(dirent_key(2, "\xff\xff") < dirent_key(3, ""));
  CHECK(extent_key(6, UINT64_MAX) < extent_key(7, 0));
  CHECK(extent_key(6, 255) < extent_key(6, 256));
}
