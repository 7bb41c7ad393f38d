// fusefs/oplog/record_v1.cc: records as format-1 stores hold them (read for
// stores written then).
#include <catch2/catch.hpp>
#include <random>
#include <set>

#include "fusefs/oplog/record.h"
#include "fusefs/store/codec.h"
#include "tests/unit/helpers.h"
#include "tests/unit/record_samples.h"

using namespace roam;
using namespace roam::testing;

namespace {

// Offsets in an encoded record where a field (tag) starts, plus the end.
// A prefix that ends exactly there is a valid, shorter record.
std::set<size_t> field_boundaries(const std::string& v) {
  codec::Reader r(v);
  r.byte();
  r.byte();
  r.svarint();
  r.varint();
  r.varint();
  r.varint();
  r.bytes();
  REQUIRE(r.ok());
  std::set<size_t> out;
  size_t pos = v.size() - r.rest().size();
  codec::Reader f(std::string_view(v).substr(pos));
  out.insert(pos);
  while (!f.at_end()) {
    f.byte();
    f.bytes();
    REQUIRE(f.ok());
    // position = total minus what is left
    codec::Reader probe = f;
    out.insert(v.size() - probe.rest().size());
  }
  return out;
}

}  // namespace

TEST_CASE("OpRecord round trips every field and every undo list", "[oplog]") {
  OpRecord r = full_record();
  ExactBuffer buf(encode_record_v1(r));
  auto d = decode_record_v1(r.seq, buf.view());
  INFO(roam::testing::describe(d.status()));
  REQUIRE(d.is_ok());
  check_same(r, *d);
}

TEST_CASE("OpRecord of every kind round trips; seq comes from the key", "[oplog]") {
  for (int k = 1; k <= static_cast<int>(kLastOpKind); ++k) {
    OpRecord r;
    r.kind = static_cast<OpKind>(k);
    r.ts_ns = -5;  // signed
    r.caller.comm = "";
    auto d = decode_record_v1(1000 + k, encode_record_v1(r));
    REQUIRE(d.is_ok());
    r.seq = 1000 + k;
    check_same(r, *d);
  }
}

TEST_CASE("random records round trip", "[oplog]") {
  std::mt19937_64 rng(30);
  for (int n = 0; n < 500; ++n) {
    OpRecord r = random_record(rng);
    ExactBuffer buf(encode_record_v1(r));
    auto d = decode_record_v1(r.seq, buf.view());
    REQUIRE(d.is_ok());
    check_same(r, *d);
  }
}

TEST_CASE("unknown tags from a newer writer are skipped", "[oplog]") {
  OpRecord r = full_record();
  const std::string full = encode_record_v1(r);
  // The header alone: same kind, time and caller, no fields.
  OpRecord bare;
  bare.kind = r.kind;
  bare.ts_ns = r.ts_ns;
  bare.caller = r.caller;
  const std::string header = encode_record_v1(bare);
  REQUIRE(full.substr(0, header.size()) == header);

  auto unknown = [](uint8_t tag, std::string_view payload) {
    std::string f(1, static_cast<char>(tag));
    codec::put_bytes(f, payload);
    return f;
  };
  // Unknown fields before, in the middle of and after the known ones, with
  // payloads that would be malformed if they were parsed as known fields.
  std::string v = header + unknown(200, "\xff\xff\xff") + unknown(99, "") + full.substr(header.size()) +
                  unknown(255, std::string(300, '\x80'));
  auto d = decode_record_v1(r.seq, v);
  INFO(roam::testing::describe(d.status()));
  REQUIRE(d.is_ok());
  check_same(r, *d);
}

TEST_CASE("truncated records are corrupt unless cut exactly between fields", "[oplog]") {
  const std::string full = encode_record_v1(full_record());
  const std::set<size_t> boundaries = field_boundaries(full);
  REQUIRE(boundaries.size() > 10);
  for (size_t n = 0; n < full.size(); ++n) {
    INFO("prefix of " << n << " of " << full.size() << " bytes");
    ExactBuffer buf(std::string_view(full).substr(0, n));
    auto d = decode_record_v1(7, buf.view());
    if (boundaries.count(n)) {
      CHECK(d.is_ok());  // a valid record with fewer fields: nothing to detect
    } else {
      REQUIRE_FALSE(d.is_ok());
      CHECK(d.status().err() == EIO);
      CHECK(d.status().message().find("corrupt") != std::string::npos);
    }
  }
}

TEST_CASE("malformed records are corrupt", "[oplog]") {
  std::string good = encode_record_v1(full_record());
  auto expect_corrupt = [](const std::string& v) {
    auto d = decode_record_v1(1, v);
    INFO(roam::testing::describe(d.status()));
    REQUIRE_FALSE(d.is_ok());
    CHECK(d.status().err() == EIO);
    CHECK(d.status().message().find("corrupt") != std::string::npos);
  };
  SECTION("unknown version") {
    std::string v = good;
    v[0] = 2;
    expect_corrupt(v);
  }
  SECTION("kind zero and kinds past the last") {
    for (int k : {0, static_cast<int>(kLastOpKind) + 1, 255}) {
      std::string v = good;
      v[1] = static_cast<char>(k);
      expect_corrupt(v);
    }
  }
  SECTION("a known field whose payload is malformed") {
    OpRecord bare;
    std::string v = encode_record_v1(bare);
    v.push_back(1);  // kTagIno
    codec::put_bytes(v, "\x80");  // unterminated varint
    expect_corrupt(v);
  }
  SECTION("an undo inode that does not decode") {
    OpRecord bare;
    std::string v = encode_record_v1(bare);
    v.push_back(16);  // kTagInodeBefore
    codec::put_bytes(v, "\x05\x09garbage");
    expect_corrupt(v);
  }
  SECTION("an undo extent of length zero") {
    OpRecord bare;
    std::string v = encode_record_v1(bare);
    std::string p;
    codec::put_varint(p, 0);
    p += encode_extent_value(Extent{0, 1, 0, 0});
    v.push_back(19);  // kTagExtentBefore
    codec::put_bytes(v, p);
    expect_corrupt(v);
  }
  SECTION("a field length past the end") {
    OpRecord bare;
    std::string v = encode_record_v1(bare);
    v.push_back(3);
    codec::put_varint(v, 100);
    v += "short";
    expect_corrupt(v);
  }
}

TEST_CASE("decoding random garbage never crashes", "[oplog]") {
  std::mt19937_64 rng(31);
  const std::string good = encode_record_v1(full_record());
  for (int n = 0; n < 30000; ++n) {
    std::string v;
    switch (n % 3) {
      case 0: v = random_bytes(rng, rng() % 64); break;
      case 1:  // a valid header followed by random fields
        v = std::string("\x01", 1) + static_cast<char>(1 + rng() % 14) + random_bytes(rng, rng() % 64);
        break;
      default:  // a valid record with a few bytes flipped
        v = good;
        for (int k = 0; k < 3; ++k) v[rng() % v.size()] = static_cast<char>(rng());
        break;
    }
    ExactBuffer buf(v);
    auto d = decode_record_v1(n, buf.view());
    if (!d.is_ok()) {
      CHECK(d.status().err() == EIO);
      CHECK(d.status().message().find("corrupt") != std::string::npos);
    }
  }
}


// Format 1 is frozen: these bytes were written by its codec, and every later
// one must write and read them the same, byte for byte.
TEST_CASE("format-1 encodings are fixed bytes", "[oplog]") {
  SECTION("every field and every undo list") {
    const OpRecord r = full_record();
    const std::string fixed = from_hex(
        "0108aad4818997d9efeb31e807e90792210462617368010111020112030b2f68"
        "6f6d652f752f612062040a2f686f6d652f752fff000503ed8b010605ffffffff"
        "0f070580808080140803808008090affffffffffffffffff010a03feff030b03"
        "fdff030c0a80c49fd50cff93ebdc030d0217030e0281100f0c757365722e636f"
        "6d6d656e74102b1101a08302e8076402b9600080c49fd50c0101ff93ebdc0380"
        "c8ceb40df40301036120620674617267657410016310280101a08302e8076402"
        "b9600080c49fd50c0101ff93ebdc0380c8ceb40df40301000674617267657411"
        "090103612062118080011103010163120c1106757365722e7801760076120d11"
        "0a757365722e656d70747901120d110b757365722e616273656e74151d118080"
        "8080148180088080808014050700808008808088801403086401150412008020");
    CHECK(to_hex(encode_record_v1(r)) == to_hex(fixed));
    auto d = decode_record_v1(r.seq, fixed);
    REQUIRE_OK(d);
    check_same(r, *d);
  }
  SECTION("the early single-range form: extents (tag 19) of the range the arguments name (tag 20)") {
    const std::string fixed = from_hex(
        "01 09 0a 00 00 00 00"  // version 1, write, ts 5, caller 0/0/0 ""
        "01 01 11"              // ino 17
        "07 02 8020"            // offset 4096
        "08 01 64"              // length 100
        "13 05 8020 03 00 64"   // extent at 4096: blob 3, offset 0, length 100
        "14 00");               // the range is the arguments'
    auto d = decode_record_v1(8, fixed);
    REQUIRE_OK(d);
    CHECK(d->kind == OpKind::kWrite);
    CHECK(d->ts_ns == 5);
    REQUIRE(d->data_before.size() == 1);
    CHECK(d->data_before[0] == DataBefore{17, 4096, 100, {Extent{4096, 3, 0, 100}}});
  }
}
