#include "base/timefmt.h"

#include <cctype>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <optional>

namespace roam {

namespace {

constexpr int64_t kNs = 1000000000LL;

Status bad_time(std::string_view text) {
  return Status::invalid("cannot read time '" + std::string(text) +
                         "'; use ISO 8601 (2026-11-27T10:15:00Z, or local 2026-11-27T10:15:00 or 2026-11-27), "
                         "@EPOCH seconds (@1764238500.5), relative -90s, -15m, -2h, -3d, or now");
}

// Parses digits then an optional ".fraction" as a non-negative decimal number
// of units, returned in nanoseconds of `unit_ns`. Consumes the whole input.
std::optional<int64_t> parse_decimal(std::string_view s, int64_t unit_ns) {
  if (s.empty()) return std::nullopt;
  int64_t whole = 0;
  size_t i = 0;
  for (; i < s.size() && std::isdigit(static_cast<unsigned char>(s[i])); ++i) {
    if (whole > INT64_MAX / 10 / unit_ns) return std::nullopt;
    whole = whole * 10 + (s[i] - '0');
  }
  if (i == 0) return std::nullopt;
  int64_t frac_ns = 0;
  if (i < s.size() && s[i] == '.') {
    ++i;
    int64_t scale = unit_ns;
    size_t start = i;
    for (; i < s.size() && std::isdigit(static_cast<unsigned char>(s[i])); ++i) {
      scale /= 10;
      frac_ns += (s[i] - '0') * scale;
    }
    if (i == start) return std::nullopt;
  }
  if (i != s.size()) return std::nullopt;
  if (whole > (INT64_MAX - frac_ns) / unit_ns) return std::nullopt;  // would not fit in int64 ns
  return whole * unit_ns + frac_ns;
}

std::optional<int64_t> parse_relative(std::string_view s, int64_t now_ns) {
  if (s.size() < 3 || s[0] != '-') return std::nullopt;
  int64_t unit;
  switch (s.back()) {
    case 's': unit = kNs; break;
    case 'm': unit = 60 * kNs; break;
    case 'h': unit = 3600 * kNs; break;
    case 'd': unit = 86400 * kNs; break;
    default: return std::nullopt;
  }
  auto amount = parse_decimal(s.substr(1, s.size() - 2), unit);
  if (!amount) return std::nullopt;
  return now_ns - *amount;
}

// Fixed-width unsigned field.
bool take_number(std::string_view s, size_t& i, size_t digits, int& out) {
  if (i + digits > s.size()) return false;
  int v = 0;
  for (size_t k = 0; k < digits; ++k) {
    char c = s[i + k];
    if (!std::isdigit(static_cast<unsigned char>(c))) return false;
    v = v * 10 + (c - '0');
  }
  out = v;
  i += digits;
  return true;
}

int days_in_month(int year, int mon) {
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  return mon == 2 && leap ? 29 : kDays[mon - 1];
}

std::optional<int64_t> parse_iso(std::string_view s) {
  std::tm tm{};
  size_t i = 0;
  int year, mon, day, hour = 0, min = 0, sec = 0;
  if (!take_number(s, i, 4, year) || i >= s.size() || s[i++] != '-' || !take_number(s, i, 2, mon) ||
      i >= s.size() || s[i++] != '-' || !take_number(s, i, 2, day))
    return std::nullopt;
  int64_t frac_ns = 0;
  if (i < s.size() && (s[i] == 'T' || s[i] == ' ')) {
    ++i;
    if (!take_number(s, i, 2, hour) || i >= s.size() || s[i++] != ':' || !take_number(s, i, 2, min))
      return std::nullopt;
    if (i < s.size() && s[i] == ':') {
      ++i;
      if (!take_number(s, i, 2, sec)) return std::nullopt;
      if (i < s.size() && (s[i] == '.' || s[i] == ',')) {
        size_t start = ++i;
        int64_t scale = kNs;
        for (; i < s.size() && std::isdigit(static_cast<unsigned char>(s[i])); ++i) {
          scale /= 10;
          frac_ns += (s[i] - '0') * scale;
        }
        if (i == start) return std::nullopt;
      }
    }
  }
  if (mon < 1 || mon > 12 || day < 1 || day > days_in_month(year, mon) || hour > 23 || min > 59 || sec > 60)
    return std::nullopt;
  tm.tm_year = year - 1900;
  tm.tm_mon = mon - 1;
  tm.tm_mday = day;
  tm.tm_hour = hour;
  tm.tm_min = min;
  tm.tm_sec = sec;
  std::string_view zone = s.substr(i);
  time_t t;
  if (zone.empty()) {
    tm.tm_isdst = -1;
    t = std::mktime(&tm);
  } else {
    t = timegm(&tm);
    if (zone != "Z" && zone != "z") {
      if (zone[0] != '+' && zone[0] != '-') return std::nullopt;
      size_t j = 1;
      int zh, zm = 0;
      if (!take_number(zone, j, 2, zh)) return std::nullopt;
      if (j < zone.size() && zone[j] == ':') ++j;
      if (j < zone.size() && !take_number(zone, j, 2, zm)) return std::nullopt;
      if (j != zone.size() || zh > 23 || zm > 59) return std::nullopt;
      int offset = (zh * 3600 + zm * 60) * (zone[0] == '+' ? 1 : -1);
      t -= offset;
    }
  }
  return static_cast<int64_t>(t) * kNs + frac_ns;
}

// A moment broken down into calendar fields (in UTC, or in the local zone),
// and the nanoseconds after its second, which are never negative: a moment
// before 1970 rounds its seconds down.
struct BrokenDownTime {
  std::tm tm{};
  long frac_ns = 0;
};

BrokenDownTime break_down(int64_t ns, bool utc) {
  time_t secs = static_cast<time_t>(ns / kNs);
  long frac = static_cast<long>(ns % kNs);
  if (frac < 0) frac += kNs, --secs;
  BrokenDownTime t;
  t.frac_ns = frac;
  if (utc) {
    gmtime_r(&secs, &t.tm);
  } else {
    localtime_r(&secs, &t.tm);
  }
  return t;
}

}  // namespace

int64_t wall_clock_ns() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return ts.tv_sec * kNs + ts.tv_nsec;
}

Result<int64_t> parse_time(std::string_view text, int64_t now_ns) {
  if (text == "now") return now_ns;
  if (!text.empty() && text[0] == '@') {
    if (auto v = parse_decimal(text.substr(1), kNs)) return *v;
    // A well-formed number that parse_decimal refused does not fit in int64 ns.
    const std::string_view n = text.substr(1);
    const size_t dot = n.find('.');
    const std::string_view whole = n.substr(0, dot), frac = dot == n.npos ? "1" : n.substr(dot + 1);
    auto digits = [](std::string_view d) { return !d.empty() && d.find_first_not_of("0123456789") == d.npos; };
    if (digits(whole) && digits(frac))
      return Status::error(ERANGE, "time '" + std::string(text) + "' is out of range (after the year 2262)");
    return bad_time(text);
  }
  if (auto v = parse_relative(text, now_ns)) return *v;
  if (auto v = parse_iso(text)) return *v;
  return bad_time(text);
}

std::string format_time_utc(int64_t ns) {
  const BrokenDownTime t = break_down(ns, /*utc=*/true);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%09ldZ", t.tm.tm_year + 1900, t.tm.tm_mon + 1,
                t.tm.tm_mday, t.tm.tm_hour, t.tm.tm_min, t.tm.tm_sec, t.frac_ns);
  return buf;
}

std::string format_time_local(int64_t ns) {
  const BrokenDownTime t = break_down(ns, /*utc=*/false);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02d %02d:%02d:%02d.%03ld", t.tm.tm_year + 1900, t.tm.tm_mon + 1,
                t.tm.tm_mday, t.tm.tm_hour, t.tm.tm_min, t.tm.tm_sec, t.frac_ns / 1000000);
  return buf;
}

}  // namespace roam
