// Time formatting and parsing.
#include "core/time.h"

#include <fmt/format.h>

#include <cctype>
#include <chrono>
#include <ctime>

namespace lifeboat {

int64_t now_unix_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

int64_t monotonic_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

static int64_t floor_div(int64_t a, int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }

std::string format_rfc3339(int64_t unix_ns) {
  time_t secs = static_cast<time_t>(floor_div(unix_ns, 1000000000));
  int64_t frac = unix_ns - static_cast<int64_t>(secs) * 1000000000;
  struct tm tm {};
  gmtime_r(&secs, &tm);
  std::string out = fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                                tm.tm_hour, tm.tm_min, tm.tm_sec);
  if (frac) {
    std::string f = fmt::format("{:09}", frac);
    while (!f.empty() && f.back() == '0') f.pop_back();
    out += "." + f;
  }
  return out + "Z";
}

std::string format_local(int64_t unix_ns) {
  time_t secs = static_cast<time_t>(floor_div(unix_ns, 1000000000));
  struct tm tm {};
  localtime_r(&secs, &tm);
  return fmt::format("{:04}-{:02}-{:02} {:02}:{:02}:{:02}", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                     tm.tm_min, tm.tm_sec);
}

namespace {

// Reads exactly n digits at pos.
bool digits(std::string_view s, size_t& pos, int n, int& out) {
  if (pos + static_cast<size_t>(n) > s.size()) return false;
  out = 0;
  for (int i = 0; i < n; ++i) {
    char c = s[pos + static_cast<size_t>(i)];
    if (!std::isdigit(static_cast<unsigned char>(c))) return false;
    out = out * 10 + (c - '0');
  }
  pos += static_cast<size_t>(n);
  return true;
}

int days_in_month(int year, int mon) {
  static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  return mon == 2 && leap ? 29 : days[mon - 1];
}

bool is_date_only(std::string_view text) {
  return text.size() == 10 && text[4] == '-' && text[7] == '-';
}

bool expect(std::string_view s, size_t& pos, char c) {
  if (pos < s.size() && s[pos] == c) {
    ++pos;
    return true;
  }
  return false;
}

}  // namespace

Result<int64_t> parse_time(std::string_view text) {
  auto bad = [&] {
    return Error(Code::kInvalidArgument,
                 fmt::format("cannot read time '{}': use RFC 3339 (2026-11-20T14:00:00Z) or a local time "
                             "such as '2026-11-20 14:00' or '2026-11-20'",
                             text));
  };
  size_t pos = 0;
  struct tm tm {};
  int year, mon, day, hour = 0, min = 0, sec = 0;
  if (!digits(text, pos, 4, year) || !expect(text, pos, '-') || !digits(text, pos, 2, mon) ||
      !expect(text, pos, '-') || !digits(text, pos, 2, day))
    return bad();
  int64_t frac_ns = 0;
  bool has_zone = false;
  int64_t offset_s = 0;
  if (pos < text.size()) {
    if (text[pos] != 'T' && text[pos] != 't' && text[pos] != ' ') return bad();
    ++pos;
    if (!digits(text, pos, 2, hour) || !expect(text, pos, ':') || !digits(text, pos, 2, min)) return bad();
    if (expect(text, pos, ':')) {
      if (!digits(text, pos, 2, sec)) return bad();
      if (expect(text, pos, '.')) {
        int64_t scale = 100000000;
        size_t start = pos;
        while (pos < text.size() && std::isdigit(static_cast<unsigned char>(text[pos]))) {
          frac_ns += (text[pos] - '0') * scale;
          scale /= 10;
          ++pos;
        }
        if (pos == start) return bad();
      }
    }
    if (pos < text.size()) {
      if (text[pos] == 'Z' || text[pos] == 'z') {
        has_zone = true;
        ++pos;
      } else if (text[pos] == '+' || text[pos] == '-') {
        int sign = text[pos] == '-' ? -1 : 1;
        ++pos;
        int oh, om;
        if (!digits(text, pos, 2, oh) || !expect(text, pos, ':') || !digits(text, pos, 2, om)) return bad();
        has_zone = true;
        offset_s = sign * (oh * 3600 + om * 60);
      }
    }
  }
  if (pos != text.size() || mon < 1 || mon > 12 || day < 1 || day > days_in_month(year, mon) || hour > 23 || min > 59 ||
      sec > 60)
    return bad();
  tm.tm_year = year - 1900;
  tm.tm_mon = mon - 1;
  tm.tm_mday = day;
  tm.tm_hour = hour;
  tm.tm_min = min;
  tm.tm_sec = sec;
  time_t secs;
  if (has_zone) {
    secs = timegm(&tm) - offset_s;
  } else {
    tm.tm_isdst = -1;
    secs = mktime(&tm);
  }
  return static_cast<int64_t>(secs) * 1000000000 + frac_ns;
}

Result<int64_t> parse_day_end(std::string_view text) {
  if (!is_date_only(text))
    return Error(Code::kInvalidArgument, fmt::format("--date takes a day (YYYY-MM-DD), not '{}'; for an instant use --at", text));
  LB_ASSIGN_OR_RETURN(int64_t start, parse_time(text));
  // The next day's first instant, less one nanosecond: right on days a clock change makes 23 or 25 hours.
  time_t secs = static_cast<time_t>(start / 1000000000);
  struct tm tm {};
  localtime_r(&secs, &tm);
  tm.tm_mday += 1;
  tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
  tm.tm_isdst = -1;
  return static_cast<int64_t>(mktime(&tm)) * 1000000000 - 1;
}

Result<int64_t> parse_instant(std::string_view text) {
  if (is_date_only(text)) return parse_day_end(text);
  return parse_time(text);
}

Result<int64_t> parse_duration(std::string_view text) {
  int64_t total = 0;
  size_t pos = 0;
  if (text.empty()) return Error(Code::kInvalidArgument, "empty duration");
  while (pos < text.size()) {
    size_t start = pos;
    int64_t n = 0;
    while (pos < text.size() && std::isdigit(static_cast<unsigned char>(text[pos]))) n = n * 10 + (text[pos++] - '0');
    if (pos == start || pos == text.size())
      return Error(Code::kInvalidArgument,
                   fmt::format("cannot read duration '{}': use a number and a unit, e.g. 90d, 12h, 30m, 2w", text));
    int64_t unit;
    switch (text[pos++]) {
      case 's': unit = 1; break;
      case 'm': unit = 60; break;
      case 'h': unit = 3600; break;
      case 'd': unit = 86400; break;
      case 'w': unit = 7 * 86400; break;
      case 'y': unit = 365 * 86400; break;
      default:
        return Error(Code::kInvalidArgument,
                     fmt::format("cannot read duration '{}': units are s, m, h, d, w, y", text));
    }
    total += n * unit * 1000000000;
  }
  return total;
}

std::string format_duration_ms(int64_t ms) {
  if (ms < 1000) return fmt::format("{}ms", ms);
  if (ms < 60000) return fmt::format("{:.1f}s", static_cast<double>(ms) / 1000);
  int64_t s = ms / 1000;
  if (s < 3600) return fmt::format("{}m{:02}s", s / 60, s % 60);
  return fmt::format("{}h{:02}m", s / 3600, (s % 3600) / 60);
}

std::string format_bytes(uint64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024 && u < 5) {
    v /= 1024;
    ++u;
  }
  if (u == 0) return fmt::format("{} B", bytes);
  return fmt::format("{:.2f} {}", v, units[u]);
}

}  // namespace lifeboat
