#include "fusefs/history/time_travel.h"

#include "base/timefmt.h"
#include "fusefs/history/moment.h"

namespace roam::time_travel {

namespace {

constexpr int64_t kMinuteNs = int64_t{60} * 1'000'000'000;
constexpr int64_t kHourNs = 60 * kMinuteNs;
constexpr int64_t kDayNs = 24 * kHourNs;
// "2026-12-04T23:00" of format_time_utc's "2026-12-04T23:00:00.000000000Z".
constexpr size_t kMinutePrefix = 16;

// "2026-12-04T23:00Z": the moment to the minute, in UTC.
std::string minute_name(int64_t ns) { return format_time_utc(ns).substr(0, kMinutePrefix) + "Z"; }

// Adds `at` to `out` if the disk holds it; false once it does not (older
// moments will not be held either).
Result<bool> add_if_held(const StoreTxn& txn, int64_t at, int64_t now_ns,
                         std::vector<std::pair<std::string, uint64_t>>& out) {
  auto moment = moment_at(txn, at, now_ns);
  if (!moment) {
    if (moment.status().err() == ERANGE) return false;
    return moment.status();
  }
  out.emplace_back(minute_name(at), moment->seq);
  return true;
}

}  // namespace

Result<uint64_t> encode_ino(uint32_t view, uint64_t past_ino) {
  if (past_ino > kPastInoMask)
    return Status::error(EOVERFLOW, "inode " + std::to_string(past_ino) + " does not fit in a past view's numbering");
  return kHistoryBit | (uint64_t{view} << kPastInoBits) | past_ino;
}

Result<uint32_t> ViewTable::index_of(uint64_t seq) {
  std::lock_guard lock(mu_);
  if (auto it = by_seq_.find(seq); it != by_seq_.end()) return it->second;
  if (seqs_.size() >= kMaxViews)
    return Status::error(ENOSPC, "too many moments opened in .history since the disk was mounted; remount it");
  seqs_.push_back(seq);
  const auto index = static_cast<uint32_t>(seqs_.size());
  by_seq_.emplace(seq, index);
  return index;
}

Result<uint64_t> ViewTable::seq_of(uint32_t index) const {
  std::lock_guard lock(mu_);
  if (index == 0 || index > seqs_.size())
    return Status::error(ESTALE, "view " + std::to_string(index) + " of .history is unknown (remounted?)");
  return seqs_[index - 1];
}

Result<uint64_t> moment_named(const StoreTxn& txn, std::string_view name, int64_t now_ns) {
  ROAM_ASSIGN(int64_t at, parse_time(name, now_ns));
  ROAM_ASSIGN(Moment moment, moment_at(txn, at, now_ns));
  return moment.seq;
}

bool names_fixed_moment(std::string_view name) {
  auto at_epoch = parse_time(name, 0);
  auto a_day_later = parse_time(name, kDayNs);
  return at_epoch && a_day_later && *at_epoch == *a_day_later;
}

Result<std::vector<std::pair<std::string, uint64_t>>> listed_moments(const StoreTxn& txn, int64_t now_ns) {
  struct Tier {
    int64_t step;
    int count;
  };
  constexpr Tier kTiers[] = {{kMinuteNs, kListedMinutes}, {kHourNs, kListedHours}, {kDayNs, kListedDays}};
  std::vector<std::pair<std::string, uint64_t>> newest_first;
  int64_t oldest_listed = now_ns + 1;
  bool held = true;  // false once a moment is not held: no older one is
  for (const Tier& tier : kTiers) {
    const int64_t latest = now_ns - now_ns % tier.step;
    for (int k = 0; k < tier.count && held; ++k) {
      const int64_t at = latest - k * tier.step;
      if (at >= oldest_listed) continue;  // a finer tier listed it
      ROAM_ASSIGN(held, add_if_held(txn, at, now_ns, newest_first));
      oldest_listed = at;
    }
  }
  return std::vector<std::pair<std::string, uint64_t>>(newest_first.rbegin(), newest_first.rend());
}

}  // namespace roam::time_travel
