// Rate limits of desktop users' requests on their disk's history (`roam`):
// one token bucket per desktop. A bucket holds up to `burst` tokens and
// gains `per_second` tokens a second; each request takes one. A request that
// finds the bucket empty is refused, and told how long until a token is back.
// The broker's event loop is its only user (no lock).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>

namespace roam::broker {

struct RateLimit {
  double burst = 10;       // requests allowed at once
  double per_second = 1;   // sustained requests a second
};

class RateLimiter {
 public:
  explicit RateLimiter(RateLimit limit) : limit_(limit) {}
  // Takes a token from `key`'s bucket at time `now_ms` (a monotonic clock):
  // nullopt when there was one, else the whole seconds (at least 1) until
  // there is.
  std::optional<uint64_t> take(const std::string& key, int64_t now_ms);

 private:
  struct Bucket {
    double tokens = 0;
    int64_t at_ms = 0;
  };
  RateLimit limit_;
  std::map<std::string, Bucket> buckets_;
};

}  // namespace roam::broker
