#include "fusefs/gc/retention.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "fusefs/store/codec.h"

namespace roam {

namespace {

constexpr std::string_view kMetaAge = "retention_age_ns";
constexpr std::string_view kMetaSpace = "retention_history_bytes";
constexpr std::string_view kMetaMinWindow = "retention_min_window_ns";
constexpr std::string_view kMetaPressureTrim = "pressure_trim";  // be64 at_ns ++ be64 kept_from_ns

Result<std::optional<uint64_t>> meta_u64(const StoreTxn& txn, std::string_view key) {
  ROAM_ASSIGN(auto v, txn.raw().get(txn.dbis().meta, key));
  if (!v) return std::optional<uint64_t>{};
  if (v->size() != 8) return Status::corrupt("meta " + std::string(key) + " is malformed");
  return std::optional<uint64_t>{codec::get_be64(*v)};
}

// A number with a unit suffix from `units` (suffix -> multiplier).
Result<double> number_with_unit(std::string_view text, const std::vector<std::pair<char, double>>& units,
                                 const std::string& forms) {
  const std::string s(text);
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  if (end == s.c_str() || !std::isfinite(v) || v < 0) return Status::invalid("'" + s + "' is not " + forms);
  std::string_view unit(end);
  if (unit.empty()) return v;
  if (unit.size() == 1)
    for (auto [c, mult] : units)
      if (unit[0] == c) return v * mult;
  return Status::invalid("'" + s + "' is not " + forms);
}

}  // namespace

Result<Retention> load_retention(const StoreTxn& txn) {
  Retention r;
  ROAM_ASSIGN(auto age, meta_u64(txn, kMetaAge));
  ROAM_ASSIGN(auto space, meta_u64(txn, kMetaSpace));
  ROAM_ASSIGN(auto window, meta_u64(txn, kMetaMinWindow));
  if (age) r.max_age_ns = static_cast<int64_t>(*age);
  if (space) r.max_history_bytes = *space;
  if (window) r.min_window_ns = static_cast<int64_t>(*window);
  return r;
}

Status save_retention(WriteTxn& txn, const Retention& r) {
  ROAM_TRY(txn.put(txn.dbis().meta, kMetaAge, codec::be64(static_cast<uint64_t>(r.max_age_ns))));
  ROAM_TRY(txn.put(txn.dbis().meta, kMetaMinWindow, codec::be64(static_cast<uint64_t>(r.min_window_ns))));
  return txn.put(txn.dbis().meta, kMetaSpace, codec::be64(r.max_history_bytes));
}

Result<std::optional<PressureTrim>> load_pressure_trim(const StoreTxn& txn) {
  ROAM_ASSIGN(auto v, txn.raw().get(txn.dbis().meta, kMetaPressureTrim));
  if (!v) return std::optional<PressureTrim>{};
  if (v->size() != 16) return Status::corrupt("meta pressure_trim is malformed");
  return std::optional<PressureTrim>{
      PressureTrim{static_cast<int64_t>(codec::get_be64(*v)), static_cast<int64_t>(codec::get_be64(*v, 8))}};
}

Status save_pressure_trim(WriteTxn& txn, const PressureTrim& t) {
  return txn.put(txn.dbis().meta, kMetaPressureTrim,
                 codec::be64(static_cast<uint64_t>(t.at_ns)) + codec::be64(static_cast<uint64_t>(t.kept_from_ns)));
}

Result<int64_t> parse_age(std::string_view text) {
  ROAM_ASSIGN(double s, number_with_unit(text, {{'s', 1}, {'m', 60}, {'h', 3600}, {'d', 86400}, {'w', 604800}},
                                         "an age like 30d, 12h, 90m, 45s or 0 (keep forever)"));
  return static_cast<int64_t>(s * 1e9);
}

Result<uint64_t> parse_bytes(std::string_view text) {
  ROAM_ASSIGN(double b, number_with_unit(text, {{'K', 1024.0}, {'M', 1048576.0}, {'G', 1073741824.0}, {'T', 1099511627776.0}},
                                         "a size like 20G, 512M, 1T or 0 (no cap)"));
  return static_cast<uint64_t>(b);
}

std::string format_age(int64_t ns) {
  if (ns <= 0) return "forever";
  const int64_t s = ns / 1000000000LL;
  if (s % 86400 == 0) return std::to_string(s / 86400) + "d";
  if (s % 3600 == 0) return std::to_string(s / 3600) + "h";
  if (s % 60 == 0) return std::to_string(s / 60) + "m";
  return std::to_string(s) + "s";
}

std::string format_bytes(uint64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024 && u < 4) v /= 1024, ++u;
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", v, units[u]);
  return buf;
}

}  // namespace roam
