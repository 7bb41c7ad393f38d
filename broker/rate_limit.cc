#include "broker/rate_limit.h"

#include <algorithm>
#include <cmath>

namespace roam::broker {

std::optional<uint64_t> RateLimiter::take(const std::string& key, int64_t now_ms) {
  auto [it, fresh] = buckets_.try_emplace(key, Bucket{limit_.burst, now_ms});
  Bucket& b = it->second;
  if (!fresh && now_ms > b.at_ms) {
    b.tokens = std::min(limit_.burst, b.tokens + static_cast<double>(now_ms - b.at_ms) / 1000.0 * limit_.per_second);
    b.at_ms = now_ms;
  }
  if (b.tokens >= 1) {
    b.tokens -= 1;
    return std::nullopt;
  }
  if (limit_.per_second <= 0) return UINT64_MAX;
  const double wait_s = (1 - b.tokens) / limit_.per_second;
  return std::max<uint64_t>(1, static_cast<uint64_t>(std::ceil(wait_s)));
}

}  // namespace roam::broker
