// TIME arguments and timestamps as people read them.
//
// Accepted forms (the brief's, for every command that takes a TIME):
//   2026-11-27T10:15:00Z, 2026-11-27T10:15:00.25+01:00   ISO 8601 with a zone
//   2026-11-27T10:15:00, 2026-11-27 10:15, 2026-11-27   local time
//   @1764238500, @1764238500.25                          seconds since the epoch
//   -90s, -15m, -2h, -3d (fractions allowed: -1.5h)      relative to now
//   now
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/status.h"

namespace roam {

// Nanoseconds since the epoch, or EINVAL with a sentence that shows the
// accepted forms. `now_ns` anchors relative times.
Result<int64_t> parse_time(std::string_view text, int64_t now_ns);

// "2026-11-27T10:15:00.123456789Z" (UTC, always 9 fraction digits).
std::string format_time_utc(int64_t ns);
// "2026-11-27 11:15:00.123" in the local zone, for tables.
std::string format_time_local(int64_t ns);

int64_t wall_clock_ns();

}  // namespace roam
