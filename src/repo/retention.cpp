// Retention policy evaluation (GFS buckets, windows, tags, pins).
#include "repo/retention.h"

#include <fmt/format.h>

#include <algorithm>
#include <ctime>

#include "core/time.h"

namespace lifeboat::repo {

bool RetentionPolicy::empty() const {
  return !keep_last && !keep_hourly && !keep_daily && !keep_weekly && !keep_monthly && !keep_yearly &&
         !keep_within_ns && !keep_within_hourly_ns && !keep_within_daily_ns && !keep_within_weekly_ns &&
         !keep_within_monthly_ns && !keep_within_yearly_ns && keep_tags.empty();
}

std::string RetentionPolicy::describe() const {
  std::vector<std::string> parts;
  auto n = [&](const char* name, int v) {
    if (v) parts.push_back(fmt::format("{} {}", v, name));
  };
  auto d = [&](const char* name, int64_t v) {
    if (v) parts.push_back(fmt::format("{} {}", name, format_duration_ms(v / 1000000)));
  };
  n("last", keep_last);
  n("hourly", keep_hourly);
  n("daily", keep_daily);
  n("weekly", keep_weekly);
  n("monthly", keep_monthly);
  n("yearly", keep_yearly);
  d("within", keep_within_ns);
  d("hourly within", keep_within_hourly_ns);
  d("daily within", keep_within_daily_ns);
  d("weekly within", keep_within_weekly_ns);
  d("monthly within", keep_within_monthly_ns);
  d("yearly within", keep_within_yearly_ns);
  for (const auto& t : keep_tags) parts.push_back("tag " + t);
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : ", ") + p;
  return out.empty() ? "nothing" : out;
}

namespace {

// Calendar period of a snapshot in local time, as a sortable integer.
enum class Period { kHour, kDay, kWeek, kMonth, kYear };

int64_t period_of(int64_t time_ns, Period p) {
  time_t secs = static_cast<time_t>(time_ns / 1000000000);
  struct tm tm {};
  localtime_r(&secs, &tm);
  int64_t year = tm.tm_year + 1900;
  switch (p) {
    case Period::kHour: return ((year * 1000 + tm.tm_yday) * 100) + tm.tm_hour;
    case Period::kDay: return year * 1000 + tm.tm_yday;
    case Period::kWeek: {
      // ISO 8601 week: the week belongs to the year of its Thursday.
      char buf[16];
      strftime(buf, sizeof buf, "%G%V", &tm);
      return std::stoll(buf);
    }
    case Period::kMonth: return year * 100 + tm.tm_mon;
    case Period::kYear: return year;
  }
  return 0;
}

const char* period_name(Period p) {
  switch (p) {
    case Period::kHour: return "hourly";
    case Period::kDay: return "daily";
    case Period::kWeek: return "weekly";
    case Period::kMonth: return "monthly";
    case Period::kYear: return "yearly";
  }
  return "";
}

}  // namespace

namespace {
std::vector<RetentionDecision> apply_to_writer(const std::vector<SnapshotRef>& group, const RetentionPolicy& policy,
                                               const std::set<std::string>& pinned);
}  // namespace

std::vector<RetentionDecision> apply_retention(const std::vector<SnapshotRef>& group, const RetentionPolicy& policy,
                                               const std::set<std::string>& pinned) {
  // Each append key's snapshots are judged on their own, and those of keys holding the master
  // secret together: a stolen append key flooding the repository with snapshots (backdated or not)
  // cannot push anyone else's out. Untrusted snapshots are never judged: kept, and said why.
  std::map<std::string, std::vector<SnapshotRef>> by_writer;
  std::vector<RetentionDecision> out;
  for (const auto& r : group) {
    if (!r.snapshot.untrusted.empty()) {
      out.push_back({r, true, {"untrusted, never judged by retention: " + r.snapshot.untrusted + " (forget it by ID)"}});
      continue;
    }
    by_writer[r.snapshot.appended ? r.snapshot.writer_key : std::string()].push_back(r);
  }
  for (const auto& [writer, snaps] : by_writer) {
    auto ds = apply_to_writer(snaps, policy, pinned);
    if (!writer.empty())
      for (auto& d : ds) d.reasons.push_back("judged with append key " + writer.substr(0, 8) + "'s own snapshots");
    out.insert(out.end(), std::make_move_iterator(ds.begin()), std::make_move_iterator(ds.end()));
  }
  return out;
}

namespace {
std::vector<RetentionDecision> apply_to_writer(const std::vector<SnapshotRef>& group, const RetentionPolicy& policy,
                                               const std::set<std::string>& pinned) {
  std::vector<RetentionDecision> out;
  for (const auto& r : group) out.push_back({r, false, {}});
  // Newest first: every rule walks back in time.
  std::stable_sort(out.begin(), out.end(), [](const RetentionDecision& a, const RetentionDecision& b) {
    return a.ref.snapshot.time_ns > b.ref.snapshot.time_ns;
  });
  if (out.empty()) return out;
  int64_t newest = out.front().ref.snapshot.time_ns;
  auto keep = [](RetentionDecision& d, std::string why) {
    d.keep = true;
    d.reasons.push_back(std::move(why));
  };
  for (auto& d : out)
    if (pinned.count(d.ref.id)) keep(d, "pinned");
  for (int i = 0; i < policy.keep_last && i < static_cast<int>(out.size()); ++i)
    keep(out[static_cast<size_t>(i)], fmt::format("last {} (#{})", policy.keep_last, i + 1));
  struct Bucket {
    Period period;
    int count;
    int64_t within_ns;
  };
  const Bucket buckets[] = {{Period::kHour, policy.keep_hourly, 0},   {Period::kDay, policy.keep_daily, 0},
                            {Period::kWeek, policy.keep_weekly, 0},   {Period::kMonth, policy.keep_monthly, 0},
                            {Period::kYear, policy.keep_yearly, 0},   {Period::kHour, 0, policy.keep_within_hourly_ns},
                            {Period::kDay, 0, policy.keep_within_daily_ns}, {Period::kWeek, 0, policy.keep_within_weekly_ns},
                            {Period::kMonth, 0, policy.keep_within_monthly_ns},
                            {Period::kYear, 0, policy.keep_within_yearly_ns}};
  for (const auto& b : buckets) {
    if (!b.count && !b.within_ns) continue;
    int64_t last_period = -1;
    int used = 0;
    for (auto& d : out) {
      int64_t t = d.ref.snapshot.time_ns;
      if (b.within_ns && t < newest - b.within_ns) break;
      int64_t p = period_of(t, b.period);
      if (p == last_period) continue;  // an older snapshot of a period already represented
      last_period = p;
      if (b.count) {
        if (used >= b.count) break;
        ++used;
        keep(d, fmt::format("{} {} (#{})", period_name(b.period), b.count, used));
      } else {
        keep(d, fmt::format("{} within {}", period_name(b.period), format_duration_ms(b.within_ns / 1000000)));
      }
    }
  }
  if (policy.keep_within_ns)
    for (auto& d : out)
      if (d.ref.snapshot.time_ns >= newest - policy.keep_within_ns)
        keep(d, fmt::format("within {} of the newest", format_duration_ms(policy.keep_within_ns / 1000000)));
  for (const auto& tag : policy.keep_tags)
    for (auto& d : out)
      if (d.ref.snapshot.has_tag(tag)) keep(d, "tag " + tag);
  for (auto& d : out)
    if (!d.keep) d.reasons.push_back("matches no rule of the policy (" + policy.describe() + ")");
  return out;
}
}  // namespace

std::map<std::string, std::vector<SnapshotRef>> group_snapshots(const std::vector<SnapshotRef>& all,
                                                                const std::vector<std::string>& group_by) {
  std::map<std::string, std::vector<SnapshotRef>> groups;
  for (const auto& r : all) {
    std::string key;
    for (const auto& field : group_by) {
      std::string v;
      if (field == "source") v = r.snapshot.source;
      else if (field == "host") v = r.snapshot.hostname;
      else if (field == "paths") {
        auto p = r.snapshot.paths;
        std::sort(p.begin(), p.end());
        for (const auto& x : p) v += (v.empty() ? "" : ",") + x;
      } else if (field == "tags") {
        auto t = r.snapshot.tags;
        std::sort(t.begin(), t.end());
        for (const auto& x : t) v += (v.empty() ? "" : ",") + x;
      }
      key += (key.empty() ? "" : " ") + field + "=" + v;
    }
    groups[key].push_back(r);
  }
  return groups;
}

}  // namespace lifeboat::repo
