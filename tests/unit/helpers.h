// Shared helpers for the unit tests: temporary directories, byte buffers that
// let AddressSanitizer catch reads past the end, and Status matchers.
#pragma once

#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cctype>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <string_view>

#include "base/status.h"

namespace roam::testing {

// A fresh directory under /tmp, removed (recursively) on destruction.
class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/roamdisk-unit-XXXXXX";
    char* p = ::mkdtemp(tmpl);
    REQUIRE(p != nullptr);
    path_ = p;
  }
  ~TempDir() { remove_tree(path_); }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  std::string sub(const std::string& name) const { return path_ + "/" + name; }

  static void remove_tree(const std::string& path) {
    ::nftw(
        path.c_str(),
        [](const char* p, const struct stat*, int, struct FTW*) { return ::remove(p); }, 16,
        FTW_DEPTH | FTW_PHYS);
  }

 private:
  std::string path_;
};

// Exactly `s.size()` heap bytes holding `s`: unlike std::string (capacity,
// small-string buffer, terminating NUL), any read past the end is a
// heap-buffer-overflow under ASan.
class ExactBuffer {
 public:
  explicit ExactBuffer(std::string_view s) : n_(s.size()), p_(new char[s.size() == 0 ? 1 : s.size()]) {
    if (n_) std::memcpy(p_.get(), s.data(), n_);
  }
  std::string_view view() const { return {n_ ? p_.get() : nullptr, n_}; }

 private:
  size_t n_;
  std::unique_ptr<char[]> p_;
};

// The seed named by environment variable `var`, or a fresh random one (so
// every run explores new cases; a failure prints the seed to rerun with).
inline uint64_t env_seed(const char* var) {
  if (const char* v = std::getenv(var)) return std::strtoull(v, nullptr, 10);
  return std::random_device{}();
}

inline std::string random_bytes(std::mt19937_64& rng, size_t n) {
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng() & 0xff);
  return s;
}

// The bytes spelled by `hex`: pairs of hex digits, whitespace between them
// ignored. For tests that pin an on-disk encoding to fixed bytes.
inline std::string from_hex(std::string_view hex) {
  std::string out;
  int high = -1;
  for (char c : hex) {
    if (std::isspace(static_cast<unsigned char>(c))) continue;
    const int digit = std::isdigit(static_cast<unsigned char>(c)) ? c - '0' : std::tolower(c) - 'a' + 10;
    if (high < 0) {
      high = digit;
    } else {
      out.push_back(static_cast<char>(high << 4 | digit));
      high = -1;
    }
  }
  REQUIRE(high < 0);  // an odd number of digits is a typo in the test
  return out;
}

// `bytes` as lowercase hex, for a failing comparison's message.
inline std::string to_hex(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) out.append({kDigits[c >> 4], kDigits[c & 15]});
  return out;
}

inline std::string describe(const Status& s) {
  return s.is_ok() ? std::string("OK") : "errno " + std::to_string(s.err()) + " (" + std::strerror(s.err()) + "): " + s.message();
}

template <typename T>
const Status& status_of(const Result<T>& r) { return r.status(); }
inline const Status& status_of(const Status& s) { return s; }

#define REQUIRE_OK(expr)                                                   \
  do {                                                                     \
    const auto& roam_t_v_ = (expr);                                        \
    INFO("status: " << ::roam::testing::describe(::roam::testing::status_of(roam_t_v_))); \
    REQUIRE(::roam::testing::status_of(roam_t_v_).is_ok());                \
  } while (0)

#define CHECK_OK(expr)                                                     \
  do {                                                                     \
    const auto& roam_t_v_ = (expr);                                        \
    INFO("status: " << ::roam::testing::describe(::roam::testing::status_of(roam_t_v_))); \
    CHECK(::roam::testing::status_of(roam_t_v_).is_ok());                  \
  } while (0)

// Requires `expr` (a Status or Result) to fail with `errno_value`.
#define REQUIRE_ERR(expr, errno_value)                                     \
  do {                                                                     \
    const auto& roam_t_v_ = (expr);                                        \
    INFO("status: " << ::roam::testing::describe(::roam::testing::status_of(roam_t_v_))); \
    REQUIRE(::roam::testing::status_of(roam_t_v_).err() == (errno_value)); \
  } while (0)

#define CHECK_ERR(expr, errno_value)                                       \
  do {                                                                     \
    const auto& roam_t_v_ = (expr);                                        \
    INFO("status: " << ::roam::testing::describe(::roam::testing::status_of(roam_t_v_))); \
    CHECK(::roam::testing::status_of(roam_t_v_).err() == (errno_value));   \
  } while (0)

// The value of a Result that must be OK.
template <typename T>
T must(Result<T> r) {
  INFO("status: " << describe(r.status()));
  REQUIRE(r.is_ok());
  return std::move(r).value();
}

inline std::string read_file(const std::string& path) {
  std::string out;
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
  std::fclose(f);
  return out;
}

inline void write_file(const std::string& path, std::string_view content) {
  FILE* f = std::fopen(path.c_str(), "wb");
  REQUIRE(f != nullptr);
  REQUIRE(std::fwrite(content.data(), 1, content.size(), f) == content.size());
  REQUIRE(std::fclose(f) == 0);
}

}  // namespace roam::testing
