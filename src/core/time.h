// Wall-clock time as nanoseconds since the Unix epoch, RFC 3339 formatting and `--at` parsing.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/status.h"

namespace lifeboat {

inline constexpr int64_t kNsPerSecond = 1'000'000'000;
inline constexpr int64_t kNsPerMs = 1'000'000;

int64_t now_unix_ns();
int64_t monotonic_ns();

// "2026-11-20T14:00:05.123456789Z" (UTC, nanosecond precision trimmed of trailing zeros).
std::string format_rfc3339(int64_t unix_ns);
// "2026-11-20 14:00:05" in local time, for tables.
std::string format_local(int64_t unix_ns);

// Accepts RFC 3339 ("2026-11-20T14:00:00Z", "…+01:00", fractional seconds) and local-time forms
// "2026-11-20", "2026-11-20 14:00", "2026-11-20 14:00:05" (also with 'T'). Dates without a zone are
// local time (TZ); a date alone is that day's first instant. Impossible dates (2026-02-30) are
// refused. Returns nanoseconds since the epoch.
Result<int64_t> parse_time(std::string_view text);

// The instant a restore asks for (--at): as parse_time, except that a date alone means the end of
// that day (its last nanosecond, local time), as --date does: "the state on 2026-11-20" is the state
// that day ended with.
Result<int64_t> parse_instant(std::string_view text);
// --date: a day alone (YYYY-MM-DD, local time); its end, as parse_instant gives it.
Result<int64_t> parse_day_end(std::string_view text);

// "90d", "12h", "30m", "45s", "2w", combinations like "1d12h". Returns nanoseconds.
Result<int64_t> parse_duration(std::string_view text);

std::string format_duration_ms(int64_t ms);
std::string format_bytes(uint64_t bytes);

}  // namespace lifeboat
