// Cron expression parsing and next-run computation.
#include "core/cron.h"

#include <fmt/format.h>

#include <ctime>
#include <sstream>
#include <vector>

namespace lifeboat {

namespace {

int name_value(const std::string& s, int field) {
  static const char* months[] = {"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"};
  static const char* days[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};
  std::string l;
  for (char c : s) l += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (field == 3)
    for (int i = 0; i < 12; ++i)
      if (l == months[i]) return i + 1;
  if (field == 4)
    for (int i = 0; i < 7; ++i)
      if (l == days[i]) return i;
  size_t used = 0;
  int v = -1;
  try {
    v = std::stoi(s, &used);
  } catch (...) {
    return -1;
  }
  return used == s.size() ? v : -1;
}

template <size_t N>
Status parse_field(const std::string& text, int field, int lo, int hi, std::bitset<N>& out, bool& any) {
  static const char* names[] = {"minute", "hour", "day of month", "month", "day of week"};
  any = text == "*";
  std::stringstream ss(text);
  std::string part;
  while (std::getline(ss, part, ',')) {
    int step = 1;
    if (auto slash = part.find('/'); slash != std::string::npos) {
      step = name_value(part.substr(slash + 1), -1);
      part = part.substr(0, slash);
      if (step <= 0) return Error(Code::kInvalidArgument, fmt::format("cron {}: bad step in '{}'", names[field], text));
    }
    int a = lo, b = hi;
    if (part != "*") {
      auto dash = part.find('-');
      a = name_value(part.substr(0, dash), field);
      b = dash == std::string::npos ? (step > 1 ? hi : a) : name_value(part.substr(dash + 1), field);
    }
    if (field == 4 && b == 7) b = 6, out.set(0);  // 7 is Sunday too
    if (a < lo || b > hi || a > b)
      return Error(Code::kInvalidArgument,
                   fmt::format("cron {}: '{}' is outside {}-{}", names[field], text, lo, field == 4 ? 7 : hi));
    for (int v = a; v <= b; v += step) out.set(static_cast<size_t>(v));
  }
  return Status::ok();
}

}  // namespace

Result<CronSchedule> CronSchedule::parse(const std::string& raw) {
  std::string text = raw;
  if (text == "@hourly") text = "0 * * * *";
  else if (text == "@daily" || text == "@midnight") text = "0 0 * * *";
  else if (text == "@weekly") text = "0 0 * * 0";
  else if (text == "@monthly") text = "0 0 1 * *";
  else if (text == "@yearly" || text == "@annually") text = "0 0 1 1 *";
  std::stringstream ss(text);
  std::vector<std::string> f;
  for (std::string w; ss >> w;) f.push_back(w);
  if (f.size() != 5)
    return Error(Code::kInvalidArgument, fmt::format("cron '{}': expected 5 fields (minute hour day month weekday)", raw));
  CronSchedule c;
  c.text_ = raw;
  bool any;
  LB_RETURN_IF_ERROR(parse_field(f[0], 0, 0, 59, c.minute_, any));
  LB_RETURN_IF_ERROR(parse_field(f[1], 1, 0, 23, c.hour_, any));
  LB_RETURN_IF_ERROR(parse_field(f[2], 2, 1, 31, c.mday_, c.mday_any_));
  LB_RETURN_IF_ERROR(parse_field(f[3], 3, 1, 12, c.month_, any));
  LB_RETURN_IF_ERROR(parse_field(f[4], 4, 0, 6, c.wday_, c.wday_any_));
  return c;
}

int64_t CronSchedule::next_after(int64_t after) const {
  int64_t t = (after / 60 + 1) * 60;
  const int64_t limit = after + 5LL * 366 * 86400;
  while (t < limit) {
    std::time_t tt = static_cast<std::time_t>(t);
    std::tm tm{};
    gmtime_r(&tt, &tm);
    if (!month_.test(static_cast<size_t>(tm.tm_mon + 1))) {
      t += (86400 - (t % 86400));  // next day; months are checked day by day
      continue;
    }
    bool md = mday_.test(static_cast<size_t>(tm.tm_mday)), wd = wday_.test(static_cast<size_t>(tm.tm_wday));
    // crontab(5): when both day fields are restricted, either may match.
    bool day_ok = (mday_any_ || wday_any_) ? (md && wd) : (md || wd);
    if (!day_ok) {
      t += (86400 - (t % 86400));
      continue;
    }
    if (!hour_.test(static_cast<size_t>(tm.tm_hour))) {
      t += 3600 - (t % 3600);
      continue;
    }
    if (minute_.test(static_cast<size_t>(tm.tm_min))) return t;
    t += 60;
  }
  return -1;
}

}  // namespace lifeboat
