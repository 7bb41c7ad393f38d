// base/timefmt.h: TIME arguments and timestamps.
#include "base/timefmt.h"

#include <catch2/catch.hpp>
#include <climits>
#include <cstdlib>
#include <ctime>
#include <optional>
#include <random>
#include <string>

#include "tests/unit/helpers.h"

using namespace roam;

namespace {

constexpr int64_t kNs = 1000000000LL;
constexpr int64_t k20261127T101500Z = 1795774500;  // seconds; checked with python's calendar.timegm
constexpr int64_t kNow = 1800000000LL * kNs + 123456789;

// Sets TZ for the life of the object (POSIX TZ strings need no tzdata).
class ScopedTz {
 public:
  explicit ScopedTz(const char* tz) {
    if (const char* old = std::getenv("TZ")) old_ = old;
    ::setenv("TZ", tz, 1);
    ::tzset();
  }
  ~ScopedTz() {
    if (old_) ::setenv("TZ", old_->c_str(), 1);
    else ::unsetenv("TZ");
    ::tzset();
  }

 private:
  std::optional<std::string> old_;
};

int64_t parsed(std::string_view text, int64_t now = kNow) {
  auto r = parse_time(text, now);
  INFO("parsing '" << text << "': " << roam::testing::describe(r.status()));
  REQUIRE(r.is_ok());
  return *r;
}

}  // namespace

TEST_CASE("ISO 8601 with Z and with offsets", "[time]") {
  const int64_t z = k20261127T101500Z * kNs;
  CHECK(parsed("2026-11-27T10:15:00Z") == z);
  CHECK(parsed("2026-11-27T10:15:00z") == z);
  CHECK(parsed("2026-11-27T10:15:00.25Z") == z + 250000000);
  CHECK(parsed("2026-11-27T10:15:00,5Z") == z + 500000000);
  CHECK(parsed("2026-11-27T10:15:00.123456789Z") == z + 123456789);
  CHECK(parsed("2026-11-27T10:15:00.25+01:00") == z - 3600 * kNs + 250000000);
  CHECK(parsed("2026-11-27T10:15:00+0100") == z - 3600 * kNs);
  CHECK(parsed("2026-11-27T10:15:00+01") == z - 3600 * kNs);
  CHECK(parsed("2026-11-27T10:15:00-05:30") == z + (5 * 3600 + 30 * 60) * kNs);
  CHECK(parsed("2026-11-27T10:15Z") == z);
  CHECK(parsed("2026-11-27 10:15:00Z") == z);
  CHECK(parsed("2024-02-29T00:00:00Z") == 1709164800 * kNs);  // leap year
  CHECK(parsed("2000-02-29T00:00:00Z") == 951782400 * kNs);   // divisible by 400
  CHECK(parsed("1969-12-31T23:59:59Z") == -kNs);
  // The result does not depend on the local zone.
  ScopedTz tz("XYZ-3");
  CHECK(parsed("2026-11-27T10:15:00Z") == z);
}

TEST_CASE("local time and date-only forms use the local zone", "[time]") {
  const int64_t z = k20261127T101500Z * kNs;
  {
    ScopedTz tz("UTC0");
    CHECK(parsed("2026-11-27T10:15:00") == z);
    CHECK(parsed("2026-11-27 10:15") == z);
    CHECK(parsed("2026-11-27") == 1795737600 * kNs);
  }
  {
    ScopedTz tz("XYZ-3");  // POSIX sign: three hours east of UTC
    CHECK(parsed("2026-11-27T10:15:00") == z - 3 * 3600 * kNs);
    CHECK(parsed("2026-11-27T10:15:00.5") == z - 3 * 3600 * kNs + 500000000);
    CHECK(parsed("2026-11-27 10:15") == z - 3 * 3600 * kNs);
    CHECK(parsed("2026-11-27") == (1795737600 - 3 * 3600) * kNs);
  }
  {
    ScopedTz tz("EST5EDT,M3.2.0,M11.1.0");  // daylight saving time is honoured
    CHECK(parsed("2026-11-27T10:15:00") == z + 5 * 3600 * kNs);
    CHECK(parsed("2026-07-01T12:00:00") == (1782907200 + 4 * 3600) * kNs);
  }
}

TEST_CASE("@epoch seconds with fractions", "[time]") {
  CHECK(parsed("@0") == 0);
  CHECK(parsed("@1764238500") == 1764238500 * kNs);
  CHECK(parsed("@1764238500.25") == 1764238500 * kNs + 250000000);
  CHECK(parsed("@1764238500.000000001") == 1764238500 * kNs + 1);
  CHECK(parsed("@1.5") == 1500000000);
  CHECK(parsed("@9223372036") == 9223372036 * kNs);  // the last whole second that fits
  CHECK(parsed("@9223372036.854775807") == INT64_MAX);
}

TEST_CASE("relative times and now", "[time]") {
  CHECK(parsed("now") == kNow);
  CHECK(parsed("-90s") == kNow - 90 * kNs);
  CHECK(parsed("-15m") == kNow - 15 * 60 * kNs);
  CHECK(parsed("-2h") == kNow - 2 * 3600 * kNs);
  CHECK(parsed("-3d") == kNow - 3 * 86400 * kNs);
  CHECK(parsed("-1.5h") == kNow - 5400 * kNs);
  CHECK(parsed("-0.5s") == kNow - 500000000);
  CHECK(parsed("-0s") == kNow);
  CHECK(parsed("-90s", 0) == -90 * kNs);  // relative to the anchor given, not the clock
}

TEST_CASE("bad inputs are EINVAL with a message listing the accepted forms", "[time]") {
  for (const char* bad : {"yesterday", "2026-02-30", "2026-13-01", "@", "-5x", "", "2026-02-29", "2100-02-29",
                          "2026-00-10", "2026-11-00", "2026-11-27T24:00", "2026-11-27T10:60", "2026-11-27T10:15:61",
                          "2026-11-27T10:15:00+24:00", "2026-11-27T10:15:00+01:60", "2026-11-27T10:15:00junk",
                          "2026-11-27T10:15:00+", "2026-11-27T10:15:00.", "2026-11-27T", "2026-11-27T10",
                          "26-11-27", "2026/11/27", "@abc", "@1.", "@-5", "@1e9", "-5", "-s", "-1.h", "--5s", "5s",
                          "-5 s", "now ", " now", "Now", "-99999999999999999999d"}) {
    auto r = parse_time(bad, kNow);
    INFO("input '" << bad << "' gave " << roam::testing::describe(r.status()));
    REQUIRE_FALSE(r.is_ok());
    CHECK(r.status().err() == EINVAL);
    const std::string& m = r.status().message();
    CHECK(m.find("'" + std::string(bad) + "'") != std::string::npos);
    CHECK(m.find("ISO 8601") != std::string::npos);
    CHECK(m.find("2026-11-27T10:15:00Z") != std::string::npos);
    CHECK(m.find("@EPOCH") != std::string::npos);
    for (const char* rel : {"-90s", "-15m", "-2h", "-3d"}) CHECK(m.find(rel) != std::string::npos);
  }
}

TEST_CASE("numbers too large for nanoseconds are rejected, not wrapped", "[time]") {
  // 9223372037 s is past INT64_MAX ns (9223372036.854775807 s).
  for (const char* big : {"-9223372039s", "-2562048h", "-106752d"}) {
    auto r = parse_time(big, 0);
    INFO("input '" << big << "' gave " << (r.is_ok() ? std::to_string(*r) : r.status().message()));
    CHECK(r.status().err() == EINVAL);
  }
  // A well-formed @EPOCH past INT64_MAX ns says so.
  for (const char* big : {"@9223372036.854775808", "@9223372037", "@9999999999", "@99999999999999999999"}) {
    auto r = parse_time(big, 0);
    INFO("input '" << big << "' gave " << (r.is_ok() ? std::to_string(*r) : r.status().message()));
    CHECK(r.status().err() == ERANGE);
    CHECK(r.status().message().find("out of range") != std::string::npos);
  }
}

TEST_CASE("format_time_utc", "[time]") {
  CHECK(format_time_utc(k20261127T101500Z * kNs) == "2026-11-27T10:15:00.000000000Z");
  CHECK(format_time_utc(k20261127T101500Z * kNs + 123456789) == "2026-11-27T10:15:00.123456789Z");
  CHECK(format_time_utc(0) == "1970-01-01T00:00:00.000000000Z");
  CHECK(format_time_utc(-1) == "1969-12-31T23:59:59.999999999Z");
  ScopedTz tz("XYZ-3");  // UTC regardless of the local zone
  CHECK(format_time_utc(k20261127T101500Z * kNs) == "2026-11-27T10:15:00.000000000Z");
}

TEST_CASE("format_time_local", "[time]") {
  {
    ScopedTz tz("UTC0");
    CHECK(format_time_local(k20261127T101500Z * kNs + 123456789) == "2026-11-27 10:15:00.123");
  }
  {
    ScopedTz tz("XYZ-3");
    CHECK(format_time_local(k20261127T101500Z * kNs) == "2026-11-27 13:15:00.000");
    // and parse_time reads it back (millisecond precision)
    CHECK(parsed(format_time_local(k20261127T101500Z * kNs + 123456789)) == k20261127T101500Z * kNs + 123000000);
  }
}

TEST_CASE("format_time_utc round trips through parse_time", "[time]") {
  std::mt19937_64 rng(20);
  for (int i = 0; i < 5000; ++i) {
    // every representable second: years 1677..2262, all with four-digit years
    auto secs = static_cast<int64_t>(rng() % 18000000000ull) - 9000000000ll;
    int64_t ns = secs * kNs + static_cast<int64_t>(rng() % kNs);
    std::string text = format_time_utc(ns);
    INFO(text);
    REQUIRE(parsed(text) == ns);
  }
  CHECK(parsed(format_time_utc(kNow)) == kNow);
}

TEST_CASE("wall_clock_ns is the real time", "[time]") {
  int64_t before = static_cast<int64_t>(std::time(nullptr)) * kNs;
  int64_t now = wall_clock_ns();
  CHECK(now >= before);
  CHECK(now < before + 5 * kNs);
}
