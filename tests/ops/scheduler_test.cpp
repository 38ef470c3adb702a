// The daemon's scheduler driven by an injected clock: cron, catch-up, one run at a time, retries.
#include "ops/scheduler.h"

#include <gtest/gtest.h>

#include "core/time.h"

namespace lifeboat::ops {
namespace {

constexpr int64_t kMidnight = 1764633600LL * kNsPerSecond;  // 2025-12-02 00:00:00 UTC

TEST(Scheduler, RunsAtCronTimesAndNeverTwiceAtOnce) {
  Scheduler s(3, 30 * kNsPerSecond);
  ASSERT_TRUE(s.add("a", {"0 2 * * *"}, kMidnight));
  EXPECT_TRUE(s.take_due(kMidnight + 3600 * kNsPerSecond).empty());
  auto due = s.take_due(kMidnight + 2 * 3600 * kNsPerSecond);
  ASSERT_EQ(due, std::vector<std::string>{"a"});
  EXPECT_TRUE(s.take_due(kMidnight + 3 * 3600 * kNsPerSecond).empty());  // still running
  s.finished("a", true, "", kMidnight + 3 * 3600 * kNsPerSecond);
  EXPECT_EQ(s.jobs().at("a").next_ns, kMidnight + 26 * 3600 * kNsPerSecond);
  EXPECT_TRUE(s.take_due(kMidnight + 25 * 3600 * kNsPerSecond).empty());
}

TEST(Scheduler, CatchesUpARunMissedWhileDown) {
  Scheduler s(3, 30 * kNsPerSecond);
  int64_t now = kMidnight + 5 * 3600 * kNsPerSecond;
  s.restore_state("a", kMidnight + 1 * 3600 * kNsPerSecond, 0);  // last ran at 01:00; the 02:00 run was missed
  auto missed = s.add("a", {"0 2 * * *"}, now);
  ASSERT_TRUE(missed);
  EXPECT_EQ(*missed, kMidnight + 2 * 3600 * kNsPerSecond);
  EXPECT_EQ(s.take_due(now), std::vector<std::string>{"a"});
  Scheduler fresh(3, 30 * kNsPerSecond);
  auto none = fresh.add("b", {"0 2 * * *"}, now);
  EXPECT_EQ(*none, 0);
  EXPECT_TRUE(fresh.take_due(now).empty());
}

TEST(Scheduler, RetriesWithDoublingDelayThenWaitsForTheSchedule) {
  Scheduler s(2, 10 * kNsPerSecond);
  ASSERT_TRUE(s.add("a", {"0 2 * * *"}, kMidnight));
  int64_t t = kMidnight + 2 * 3600 * kNsPerSecond;
  ASSERT_EQ(s.take_due(t).size(), 1u);
  s.finished("a", false, "boom", t);
  EXPECT_EQ(s.jobs().at("a").next_ns, t + 10 * kNsPerSecond);
  ASSERT_EQ(s.take_due(t + 10 * kNsPerSecond).size(), 1u);
  s.finished("a", false, "boom", t + 10 * kNsPerSecond);
  EXPECT_EQ(s.jobs().at("a").next_ns, t + 10 * kNsPerSecond + 20 * kNsPerSecond);
  ASSERT_EQ(s.take_due(t + 30 * kNsPerSecond).size(), 1u);
  s.finished("a", false, "boom", t + 30 * kNsPerSecond);  // retries used up: the next scheduled run
  EXPECT_EQ(s.jobs().at("a").next_ns, kMidnight + 26 * 3600 * kNsPerSecond);
  EXPECT_EQ(s.jobs().at("a").last_error, "boom");
}

TEST(Scheduler, JobsWithoutRetriesAndStopsAreDueAgain) {
  Scheduler s(3, 10 * kNsPerSecond);
  ASSERT_TRUE(s.add("drill", {"0 4 1 * *"}, kMidnight, 0, false));
  ASSERT_TRUE(s.add("b", {"@hourly"}, kMidnight));
  int64_t t = kMidnight + 3600 * kNsPerSecond;
  ASSERT_EQ(s.take_due(t), std::vector<std::string>{"b"});
  s.finished("b", false, "stopped", t, true);  // the daemon was stopping: due at the next start
  EXPECT_EQ(s.jobs().at("b").next_ns, t);
  EXPECT_FALSE(s.add("bad", {"61 * * * *"}, kMidnight));
}

}  // namespace
}  // namespace lifeboat::ops
