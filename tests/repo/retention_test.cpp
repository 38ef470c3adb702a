// Retention policies: GFS calendar buckets, windows, tags, pins and the reasons given.
#include "repo/retention.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include "core/time.h"

namespace lifeboat::repo {

namespace {

class RetentionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    setenv("TZ", "UTC", 1);
    tzset();
  }
  // One snapshot a day at 02:00 for `days` days ending on 2026-11-25, plus an extra at 14:00 each day.
  std::vector<SnapshotRef> daily(int days) {
    std::vector<SnapshotRef> out;
    int64_t end = *parse_time("2026-11-25T02:00:00Z");
    for (int d = 0; d < days; ++d) {
      for (int extra = 0; extra < 2; ++extra) {
        Snapshot s;
        s.time_ns = end - static_cast<int64_t>(d) * 86400 * 1000000000 + extra * 12LL * 3600 * 1000000000;
        out.push_back({format_rfc3339(s.time_ns), s});
      }
    }
    return out;
  }
  static std::set<std::string> kept(const std::vector<RetentionDecision>& ds) {
    std::set<std::string> k;
    for (const auto& d : ds)
      if (d.keep) k.insert(d.ref.id);
    return k;
  }
};

TEST_F(RetentionTest, GfsKeepsOnePerPeriodNewestFirst) {
  auto snaps = daily(400);
  RetentionPolicy p;
  p.keep_daily = 30;
  p.keep_weekly = 12;
  p.keep_monthly = 12;
  auto ds = apply_retention(snaps, p, {});
  auto k = kept(ds);
  // 30 dailies (newest of each day = the 14:00 one), plus weeklies/monthlies that reach further back.
  EXPECT_TRUE(k.count("2026-11-25T14:00:00Z"));
  EXPECT_FALSE(k.count("2026-11-25T02:00:00Z"));  // same day, older: not the day's representative
  EXPECT_TRUE(k.count("2026-10-27T14:00:00Z"));   // the 30th day back
  EXPECT_FALSE(k.count("2026-10-26T02:00:00Z"));
  // 12 monthlies: the newest snapshot of each of 12 months, back to December 2025.
  EXPECT_TRUE(k.count("2025-12-31T14:00:00Z"));
  EXPECT_FALSE(k.count("2025-11-30T14:00:00Z"));
  size_t expected_max = 30 + 12 + 12;
  EXPECT_LE(k.size(), expected_max);
  EXPECT_GE(k.size(), 40u);  // weeklies and monthlies overlap the dailies in part
  for (const auto& d : ds) EXPECT_FALSE(d.reasons.empty());
}

TEST_F(RetentionTest, CalendarRulesCountOnlyPeriodsThatHaveSnapshots) {
  auto snaps = daily(10);
  snaps.erase(snaps.begin() + 2, snaps.begin() + 10);  // a gap of four days
  RetentionPolicy p;
  p.keep_daily = 5;
  auto k = kept(apply_retention(snaps, p, {}));
  EXPECT_EQ(k.size(), 5u);  // five days with snapshots, reaching past the gap
  EXPECT_TRUE(k.count("2026-11-17T14:00:00Z"));
}

TEST_F(RetentionTest, WithinIsMeasuredFromTheNewestSnapshot) {
  auto snaps = daily(100);
  RetentionPolicy p;
  p.keep_within_ns = *parse_duration("90d");
  auto k = kept(apply_retention(snaps, p, {}));
  EXPECT_TRUE(k.count("2026-08-27T14:00:00Z"));
  EXPECT_FALSE(k.count("2026-08-26T14:00:00Z"));
  RetentionPolicy pd;
  pd.keep_within_daily_ns = *parse_duration("7d");
  EXPECT_EQ(kept(apply_retention(snaps, pd, {})).size(), 8u);  // one a day, today plus seven back
}

TEST_F(RetentionTest, PinsAndTagsAlwaysWin) {
  auto snaps = daily(5);
  snaps[9].snapshot.tags = {"release"};
  RetentionPolicy p;
  p.keep_last = 1;
  p.keep_tags = {"release"};
  auto ds = apply_retention(snaps, p, {snaps[5].id});
  auto k = kept(ds);
  EXPECT_EQ(k.size(), 3u);
  EXPECT_TRUE(k.count(snaps[5].id));
  EXPECT_TRUE(k.count(snaps[9].id));
  for (const auto& d : ds)
    if (d.ref.id == snaps[5].id) {
      EXPECT_EQ(d.reasons[0], "pinned");
    }
}

TEST_F(RetentionTest, GroupsSplitBySourceHostAndPaths) {
  std::vector<SnapshotRef> all(3);
  all[0].snapshot.hostname = "a";
  all[1].snapshot.hostname = "b";
  all[2].snapshot.hostname = "a";
  all[2].snapshot.source = "mongodb";
  auto g = group_snapshots(all, {"source", "host"});
  EXPECT_EQ(g.size(), 3u);
  EXPECT_EQ(group_snapshots(all, {"host"}).size(), 2u);
}

}  // namespace
}  // namespace lifeboat::repo
