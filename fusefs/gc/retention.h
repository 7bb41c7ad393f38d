// How much history a disk keeps: by age and by space. Stored in the store's
// meta table, so it travels with the disk; unset means the defaults.
//
// Defaults: 30 days, no space cap. Nothing is dropped early unless the
// operator asks for it: losing history is the one thing a restore system must
// not do by surprise. A disk that needs bounded space sets a cap
// (`roamctl retention STORE --space 20G`); history beyond it goes oldest first.
//
// Space pressure is the exception: when the storage volume nears full
// (fusefs/store/volume.h), GC drops history oldest first before a live write
// fails, but never the records of the last `min_window_ns` (default 0: a full
// disk that recovers by itself after `rm` beats history; an operator who
// would rather keep the last day sets --min-window 1d). What it did is noted
// (PressureTrim) for `roamctl df` and the broker's status.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "fusefs/store/store.h"

namespace roam {

inline constexpr int64_t kDefaultRetentionNs = 30LL * 24 * 3600 * 1000000000LL;

struct Retention {
  int64_t max_age_ns = kDefaultRetentionNs;  // 0: keep forever (by age)
  uint64_t max_history_bytes = 0;            // 0: no cap by space
  int64_t min_window_ns = 0;                 // kept even under space pressure
  bool operator==(const Retention&) const = default;
};

Result<Retention> load_retention(const StoreTxn& txn);
Status save_retention(WriteTxn& txn, const Retention& r);

// The last time space pressure dropped history, and the time of the oldest
// record it kept (0: it dropped them all).
struct PressureTrim {
  int64_t at_ns = 0;
  int64_t kept_from_ns = 0;
};
Result<std::optional<PressureTrim>> load_pressure_trim(const StoreTxn& txn);
Status save_pressure_trim(WriteTxn& txn, const PressureTrim& t);

// "30d", "12h", "90m", "45s", "0" (forever) -> ns; EINVAL with the forms.
Result<int64_t> parse_age(std::string_view text);
// "20G", "512M", "1T", "4096", "0" (no cap) -> bytes; EINVAL with the forms.
Result<uint64_t> parse_bytes(std::string_view text);
std::string format_age(int64_t ns);      // "30d", "12h", ..., "forever"
std::string format_bytes(uint64_t bytes);  // "1.5 GiB"

}  // namespace roam
