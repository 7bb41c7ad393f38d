// fusefs/store/codec.h: varints, zigzag varints, big-endian keys, the Reader.
#include "fusefs/store/codec.h"

#include <catch2/catch.hpp>
#include <climits>
#include <random>
#include <vector>

#include "tests/unit/helpers.h"

using namespace roam;
using roam::testing::ExactBuffer;

namespace {

const std::vector<uint64_t> kUnsignedEdges = {
    0, 1, 2, 0x7f, 0x80, 0xff, 0x100, 0x3fff, 0x4000, 0x1fffff, 0x200000, 0xffffffffull, 0x100000000ull,
    (1ull << 56) - 1, 1ull << 56, (1ull << 63) - 1, 1ull << 63, UINT64_MAX - 1, UINT64_MAX};

const std::vector<int64_t> kSignedEdges = {0, 1, -1, 2, -2, 63, -64, 64, -65, 8191, -8192, INT32_MAX, INT32_MIN,
                                           INT64_MAX, INT64_MIN, INT64_MAX - 1, INT64_MIN + 1};

size_t expected_varint_len(uint64_t v) {
  size_t n = 1;
  while (v >= 0x80) v >>= 7, ++n;
  return n;
}

}  // namespace

TEST_CASE("varint round trips edge values with minimal length", "[codec]") {
  for (uint64_t v : kUnsignedEdges) {
    std::string s;
    codec::put_varint(s, v);
    INFO("value " << v);
    CHECK(s.size() == expected_varint_len(v));
    ExactBuffer buf(s);
    codec::Reader r(buf.view());
    CHECK(r.varint() == v);
    CHECK(r.ok());
    CHECK(r.at_end());
  }
  std::string s;
  codec::put_varint(s, UINT64_MAX);
  CHECK(s.size() == 10);
  codec::put_varint(s, 0);
  CHECK(s.size() == 11);
  CHECK(s.back() == '\0');
}

TEST_CASE("svarint round trips edge values; small magnitudes stay small", "[codec]") {
  for (int64_t v : kSignedEdges) {
    std::string s;
    codec::put_svarint(s, v);
    INFO("value " << v);
    ExactBuffer buf(s);
    codec::Reader r(buf.view());
    CHECK(r.svarint() == v);
    CHECK(r.ok());
    CHECK(r.at_end());
  }
  // Zigzag: 0, -1, 1, -2 ... map to 0, 1, 2, 3; -64 and 63 fit one byte.
  auto enc = [](int64_t v) {
    std::string s;
    codec::put_svarint(s, v);
    return s;
  };
  CHECK(enc(0) == std::string(1, '\0'));
  CHECK(enc(-1) == "\x01");
  CHECK(enc(1) == "\x02");
  CHECK(enc(-2) == "\x03");
  CHECK(enc(-64).size() == 1);
  CHECK(enc(63).size() == 1);
  CHECK(enc(64).size() == 2);
  CHECK(enc(INT64_MIN).size() == 10);
}

TEST_CASE("varint and svarint round trip random values in sequence", "[codec]") {
  std::mt19937_64 rng(1);
  std::vector<uint64_t> us;
  std::vector<int64_t> ss;
  std::string s;
  for (int i = 0; i < 2000; ++i) {
    uint64_t u = rng() >> (rng() % 64);
    auto v = static_cast<int64_t>(rng()) >> (rng() % 64);
    us.push_back(u);
    ss.push_back(v);
    codec::put_varint(s, u);
    codec::put_svarint(s, v);
  }
  ExactBuffer buf(s);
  codec::Reader r(buf.view());
  for (size_t i = 0; i < us.size(); ++i) {
    REQUIRE(r.varint() == us[i]);
    REQUIRE(r.svarint() == ss[i]);
  }
  CHECK(r.ok());
  CHECK(r.at_end());
}

TEST_CASE("be64 round trips and sorts bytewise in numeric order", "[codec]") {
  for (uint64_t v : kUnsignedEdges) {
    std::string s = codec::be64(v);
    REQUIRE(s.size() == 8);
    CHECK(codec::get_be64(s) == v);
    std::string t = "xx";
    codec::put_be64(t, v);
    CHECK(codec::get_be64(t, 2) == v);
  }
  CHECK(codec::be64(0x0102030405060708ull) == std::string("\x01\x02\x03\x04\x05\x06\x07\x08", 8));
  std::mt19937_64 rng(2);
  for (int i = 0; i < 5000; ++i) {
    uint64_t a = rng() >> (rng() % 64), b = rng() >> (rng() % 64);
    CHECK((codec::be64(a) < codec::be64(b)) == (a < b));
    std::string p = codec::be64_pair(a, b);
    REQUIRE(p.size() == 16);
    CHECK(codec::get_be64(p) == a);
    CHECK(codec::get_be64(p, 8) == b);
  }
  // Pairs order by the first number, then the second.
  CHECK(codec::be64_pair(1, UINT64_MAX) < codec::be64_pair(2, 0));
  CHECK(codec::be64_pair(2, 1) < codec::be64_pair(2, 256));
}

TEST_CASE("fixed64 and bytes round trip", "[codec]") {
  std::string s;
  codec::put_fixed64(s, 0x1122334455667788ull);
  codec::put_fixed64(s, UINT64_MAX);
  codec::put_bytes(s, "");
  codec::put_bytes(s, std::string("a\0b", 3));
  std::string big(300, 'z');
  codec::put_bytes(s, big);
  codec::put_varint(s, 7);
  ExactBuffer buf(s);
  codec::Reader r(buf.view());
  CHECK(r.fixed64() == 0x1122334455667788ull);
  CHECK(r.fixed64() == UINT64_MAX);
  CHECK(r.bytes().empty());
  CHECK(r.bytes() == std::string_view("a\0b", 3));
  CHECK(r.bytes() == big);
  CHECK(r.byte() == 7);
  CHECK(r.ok());
  CHECK(r.at_end());
}

TEST_CASE("Reader::rest consumes everything left", "[codec]") {
  std::string s;
  codec::put_varint(s, 300);
  s += "tail";
  codec::Reader r(s);
  CHECK(r.varint() == 300);
  CHECK(r.rest() == "tail");
  CHECK(r.at_end());
  CHECK(r.rest().empty());
  CHECK(r.ok());
}

TEST_CASE("Reader fails on every truncation and never reads past the end", "[codec]") {
  std::string full;
  codec::put_varint(full, UINT64_MAX);
  codec::put_svarint(full, INT64_MIN);
  codec::put_fixed64(full, 42);
  codec::put_bytes(full, "hello, world");
  full.push_back('\x05');
  auto read_all = [](codec::Reader& r) {
    uint64_t a = r.varint();
    int64_t b = r.svarint();
    uint64_t c = r.fixed64();
    std::string_view d = r.bytes();
    uint8_t e = r.byte();
    return std::make_tuple(a, b, c, std::string(d), e);
  };
  {
    codec::Reader r(full);
    auto [a, b, c, d, e] = read_all(r);
    CHECK(r.ok());
    CHECK(a == UINT64_MAX);
    CHECK(b == INT64_MIN);
    CHECK(c == 42);
    CHECK(d == "hello, world");
    CHECK(e == 5);
  }
  for (size_t n = 0; n < full.size(); ++n) {
    INFO("prefix of " << n << " bytes");
    ExactBuffer buf(std::string_view(full).substr(0, n));  // ASan: a read past n bytes is caught
    codec::Reader r(buf.view());
    read_all(r);
    CHECK_FALSE(r.ok());
    CHECK(r.at_end());
  }
}

TEST_CASE("Reader failure is sticky and yields zero values", "[codec]") {
  ExactBuffer buf("\x81");  // continuation bit set, then the end
  codec::Reader r(buf.view());
  CHECK(r.varint() == 0);
  CHECK_FALSE(r.ok());
  CHECK(r.at_end());
  CHECK(r.byte() == 0);
  CHECK(r.fixed64() == 0);
  CHECK(r.bytes().empty());
  CHECK(r.svarint() == 0);
  CHECK(r.rest().empty());
  CHECK_FALSE(r.ok());
}

TEST_CASE("Reader rejects overlong varints and oversized byte strings", "[codec]") {
  SECTION("eleven continuation bytes") {
    ExactBuffer buf(std::string(11, '\x80') + '\x01');
    codec::Reader r(buf.view());
    r.varint();
    CHECK_FALSE(r.ok());
  }
  SECTION("ten bytes all with the continuation bit") {
    ExactBuffer buf(std::string(10, '\xff'));
    codec::Reader r(buf.view());
    r.varint();
    CHECK_FALSE(r.ok());
  }
  SECTION("byte string longer than the input") {
    std::string s;
    codec::put_varint(s, 5);
    s += "abcd";
    ExactBuffer buf(s);
    codec::Reader r(buf.view());
    CHECK(r.bytes().empty());
    CHECK_FALSE(r.ok());
  }
  SECTION("byte string length near 2^64 (no pointer overflow)") {
    std::string s;
    codec::put_varint(s, UINT64_MAX - 2);
    s += "abcd";
    ExactBuffer buf(s);
    codec::Reader r(buf.view());
    CHECK(r.bytes().empty());
    CHECK_FALSE(r.ok());
  }
  SECTION("fixed64 with seven bytes") {
    ExactBuffer buf("1234567");
    codec::Reader r(buf.view());
    CHECK(r.fixed64() == 0);
    CHECK_FALSE(r.ok());
  }
  SECTION("empty input") {
    ExactBuffer buf("");
    codec::Reader r(buf.view());
    CHECK(r.at_end());
    r.byte();
    CHECK_FALSE(r.ok());
  }
}

TEST_CASE("Reader on random bytes never reads out of bounds", "[codec]") {
  std::mt19937_64 rng(3);
  for (int i = 0; i < 20000; ++i) {
    std::string s = roam::testing::random_bytes(rng, rng() % 24);
    ExactBuffer buf(s);
    codec::Reader r(buf.view());
    for (int k = 0; k < 8 && r.ok(); ++k) {
      switch (rng() % 5) {
        case 0: r.varint(); break;
        case 1: r.svarint(); break;
        case 2: r.fixed64(); break;
        case 3: {
          auto v = r.bytes();
          if (r.ok() && !v.empty()) {
            // the view must lie inside the input
            CHECK(v.data() >= buf.view().data());
            CHECK(v.data() + v.size() <= buf.view().data() + buf.view().size());
          }
          break;
        }
        default: r.byte(); break;
      }
    }
  }
}
