// Plan loading: the example plan, ${ENV} expansion, errors with file:line: key, cron schedules.
#include <gtest/gtest.h>

#include <cstdlib>

#include "core/cron.h"
#include "plan/plan.h"

namespace lifeboat::plan {
namespace {

TEST(Plan, ExamplePlanLoads) {
  auto p = load_plan(std::string(LIFEBOAT_SOURCE_DIR) + "/examples/lifeboat.yaml");
  ASSERT_TRUE(p) << p.status().message();
  EXPECT_EQ(p->rpo_ns, 3600LL * 1000000000);
  ASSERT_NE(p->source("eyewear-mongo"), nullptr);
  EXPECT_TRUE(p->source("eyewear-mongo")->schedule.continuous);
  EXPECT_EQ(p->source("eyewear-mongo")->retention.monthly, 12);
  EXPECT_EQ(p->source("eyewear-mongo")->settings["databases"][0], "eyewear_ml");
  EXPECT_EQ(p->repository("gcs-copy")->copy_of, "local");
}

TEST(Plan, ExpandsEnvironmentVariables) {
  setenv("LB_TEST_URI", "mongodb://10.0.0.1", 1);
  auto e = expand_env("${LB_TEST_URI}/db ${LB_TEST_UNSET:-fallback}");
  ASSERT_TRUE(e);
  EXPECT_EQ(*e, "mongodb://10.0.0.1/db fallback");
  EXPECT_FALSE(expand_env("${LB_TEST_UNSET}"));
}

TEST(Plan, ErrorsNameFileLineAndKey) {
  const char* text =
      "repositories:\n"
      "  main: {url: /tmp/r}\n"
      "sources:\n"
      "  db:\n"
      "    kind: mongodb\n"
      "    schedule:\n"
      "      full: \"61 * * * *\"\n"
      "    retention: {daily: -1}\n"
      "  fs:\n"
      "    kind: firestore\n"
      "  x:\n"
      "    kind: files\n"
      "    repository: other\n"
      "    paths: [/a]\n"
      "    colour: blue\n";
  auto p = parse_plan(text, "plan.yaml");
  ASSERT_FALSE(p);
  const std::string& m = p.status().message();
  EXPECT_NE(m.find("plan.yaml:7: sources.db.schedule.full: cron minute"), std::string::npos) << m;
  EXPECT_NE(m.find("plan.yaml:4: sources.db.uri: required"), std::string::npos) << m;
  EXPECT_NE(m.find("plan.yaml:8: sources.db.retention.daily: expected a count"), std::string::npos) << m;
  EXPECT_NE(m.find("plan.yaml:10: sources.fs.kind"), std::string::npos) << m;
  EXPECT_NE(m.find("firestore is not built yet"), std::string::npos) << m;
  EXPECT_NE(m.find("plan.yaml:13: sources.x.repository: no repository named other"), std::string::npos) << m;
  EXPECT_NE(m.find("plan.yaml:15: sources.x.colour: unknown setting"), std::string::npos) << m;
  auto bad = parse_plan("sources: [unclosed", "bad.yaml");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.status().message().rfind("bad.yaml:1:", 0), 0u) << bad.status().message();
}

TEST(Cron, NextRuns) {
  auto daily = CronSchedule::parse("0 2 * * *");
  ASSERT_TRUE(daily);
  // 2026-11-25T10:00:00Z -> 2026-11-26T02:00:00Z
  EXPECT_EQ(daily->next_after(1795600800), 1795600800 + 16 * 3600);
  auto every15 = CronSchedule::parse("*/15 * * * *");
  ASSERT_TRUE(every15);
  EXPECT_EQ(every15->next_after(1795600800), 1795600800 + 900);
  auto monday = CronSchedule::parse("30 4 * * mon");
  ASSERT_TRUE(monday);
  EXPECT_EQ(monday->next_after(1795600800), 1795600800 + 5 * 86400 - 10 * 3600 + 4 * 3600 + 1800);  // Mon 30 Nov
  EXPECT_TRUE(CronSchedule::parse("@hourly"));
  EXPECT_FALSE(CronSchedule::parse("0 25 * * *"));
  EXPECT_FALSE(CronSchedule::parse("* * *"));
}

}  // namespace
}  // namespace lifeboat::plan
