// Byte encodings shared by every on-disk record (see docs/store-format.md).
//
// Keys use fixed-width big-endian integers so that LMDB's bytewise order is
// numeric order. Values use LEB128 varints (zigzag for signed) to stay small:
// the op log keeps millions of records.
#pragma once

#include <algorithm>
#include <concepts>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

namespace roam::codec {

inline void put_be64(std::string& out, uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8) out.push_back(static_cast<char>((v >> shift) & 0xff));
}

inline uint64_t get_be64(std::string_view s, size_t at = 0) {
  uint64_t v = 0;
  for (size_t i = 0; i < 8; ++i) v = (v << 8) | static_cast<unsigned char>(s[at + i]);
  return v;
}

inline std::string be64(uint64_t v) {
  std::string s;
  put_be64(s, v);
  return s;
}

inline std::string be64_pair(uint64_t a, uint64_t b) {
  std::string s;
  s.reserve(16);
  put_be64(s, a);
  put_be64(s, b);
  return s;
}

inline void put_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

inline void put_svarint(std::string& out, int64_t v) {
  put_varint(out, (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63));
}

inline void put_fixed64(std::string& out, uint64_t v) {
  char b[8];
  std::memcpy(b, &v, 8);  // little-endian on every platform we build for
  out.append(b, 8);
}

inline void put_bytes(std::string& out, std::string_view s) {
  put_varint(out, s.size());
  out.append(s);
}

// A field of a record, stored without a tag: an integer as a varint, a
// string as bytes. Read back with get_value.
inline void put_value(std::string& out, uint64_t v) { put_varint(out, v); }
inline void put_value(std::string& out, std::string_view s) { put_bytes(out, s); }

// Reads values written by the put_* functions. A read past the end or a
// malformed varint sets the reader to failed; callers check ok() once at the
// end and report corruption, instead of checking every field.
class Reader {
 public:
  explicit Reader(std::string_view s) : s_(s) {}

  uint64_t varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos_ >= s_.size()) return fail();
      auto b = static_cast<unsigned char>(s_[pos_++]);
      v |= static_cast<uint64_t>(b & 0x7f) << shift;
      if (!(b & 0x80)) return v;
    }
    return fail();
  }
  int64_t svarint() {
    uint64_t u = varint();
    return static_cast<int64_t>((u >> 1) ^ (~(u & 1) + 1));
  }
  uint64_t fixed64() {
    if (pos_ > s_.size() || s_.size() - pos_ < 8) return fail();
    uint64_t v;
    std::memcpy(&v, s_.data() + pos_, 8);
    pos_ += 8;
    return v;
  }
  std::string_view bytes() {
    uint64_t n = varint();
    if (!ok_ || n > s_.size() - pos_) {
      fail();
      return {};
    }
    auto v = s_.substr(pos_, n);
    pos_ += n;
    return v;
  }
  uint8_t byte() {
    if (pos_ >= s_.size()) return static_cast<uint8_t>(fail());
    return static_cast<uint8_t>(s_[pos_++]);
  }

  // Everything not yet read (consumes it).
  std::string_view rest() {
    auto v = s_.substr(std::min(pos_, s_.size()));
    pos_ = s_.size();
    return v;
  }

  bool ok() const { return ok_; }
  bool at_end() const { return pos_ >= s_.size(); }

 private:
  uint64_t fail() {
    ok_ = false;
    pos_ = s_.size();
    return 0;
  }
  std::string_view s_;
  size_t pos_ = 0;
  bool ok_ = true;
};

// Reads what put_value wrote into `v`. An integer wider than `v` keeps its
// low bits (as a static_cast does): a corrupt value, not a crash.
template <std::unsigned_integral T>
void get_value(Reader& r, T& v) {
  v = static_cast<T>(r.varint());
}
inline void get_value(Reader& r, std::string& s) { s = std::string(r.bytes()); }

}  // namespace roam::codec
