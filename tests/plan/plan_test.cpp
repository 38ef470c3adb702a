// Plan loading: the example plan, ${ENV} expansion, errors with file:line: key, cron schedules.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <chrono>
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

TEST(Plan, StandbyFailoverAndCopyEvery) {
  const char* good =
      "repositories:\n"
      "  main: {url: /tmp/r}\n"
      "  copy: {url: /tmp/c, copy_of: main, copy_every: 5m}\n"
      "sources:\n"
      "  a: {kind: files, paths: [/a], environments: {dr: {target: /dr}}}\n"
      "  b: {kind: files, paths: [/b], after: [a], environments: {dr: {target: /dr}}}\n"
      "environments:\n"
      "  dr: {standby: true, max_lag: 10m}\n"
      "failover:\n"
      "  environment: dr\n"
      "  steps:\n"
      "    - {name: dns, run: 'true', timeout: 30s}\n"
      "    - {name: apps, run: 'true', after: [dns], rehearse: true}\n";
  auto p = parse_plan(good, "plan.yaml");
  ASSERT_TRUE(p) << p.status().message();
  EXPECT_EQ(p->repository("copy")->copy_every_ns, 300LL * 1000000000);
  ASSERT_NE(p->environment("dr"), nullptr);
  EXPECT_TRUE(p->environment("dr")->standby);
  EXPECT_EQ(p->environment("dr")->max_lag_ns, 600LL * 1000000000);
  EXPECT_EQ(p->source("b")->after, std::vector<std::string>{"a"});
  ASSERT_EQ(p->failover.steps.size(), 2u);
  EXPECT_EQ(p->failover.steps[0].timeout_ns, 30LL * 1000000000);
  EXPECT_TRUE(p->failover.steps[1].rehearse);
  EXPECT_EQ(p->copies_of("main").size(), 1u);

  const char* bad =
      "repositories:\n"
      "  main: {url: /tmp/r, copy_every: 5m}\n"
      "sources:\n"
      "  a: {kind: files, paths: [/a], after: [b]}\n"
      "  b: {kind: files, paths: [/b], after: [a, nobody]}\n"
      "environments:\n"
      "  production: {standby: true}\n"
      "failover:\n"
      "  environment: production\n"
      "  steps:\n"
      "    - {name: dns, run: 'true', after: [apps]}\n"
      "    - {name: apps, run: 'true', after: [dns, ghost]}\n"
      "    - {name: dns, run: 'true'}\n";
  auto q = parse_plan(bad, "plan.yaml");
  ASSERT_FALSE(q);
  const std::string& m = q.status().message();
  for (const char* want : {"repositories.main.copy_every: only a copy", "sources.b.after: no source named nobody",
                           "after: lists form a cycle", "environments.production.standby", "failover.environment: a failover",
                           "failover.steps.1.after: no step named ghost", "failover.steps.2.name: two steps are named dns",
                           "failover.steps: the steps' after: lists form a cycle"})
    EXPECT_NE(m.find(want), std::string::npos) << want << "\n" << m;
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
  EXPECT_NE(m.find("plan.yaml:9: sources.fs.project: required"), std::string::npos) << m;
  EXPECT_NE(m.find("plan.yaml:13: sources.x.repository: no repository named other"), std::string::npos) << m;
  EXPECT_NE(m.find("plan.yaml:15: sources.x.colour: unknown setting"), std::string::npos) << m;
  auto bad = parse_plan("sources: [unclosed", "bad.yaml");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.status().message().rfind("bad.yaml:1:", 0), 0u) << bad.status().message();
}

TEST(Plan, CommandLineChoicesAreNotPlanSettings) {
  const char* text =
      "repositories:\n"
      "  main: {url: /tmp/r}\n"
      "sources:\n"
      "  fs:\n"
      "    kind: firestore\n"
      "    project: p\n"
      "    dry_run: true\n"
      "    environments:\n"
      "      staging: {snapshot: abc, live_history: true}\n";
  auto p = parse_plan(text, "plan.yaml");
  ASSERT_FALSE(p);
  const std::string& m = p.status().message();
  EXPECT_NE(m.find("sources.fs.dry_run: dry_run is a command-line choice (--dry-run), not a plan setting"), std::string::npos) << m;
  EXPECT_NE(m.find("sources.fs.environments.staging.snapshot: snapshot is a command-line choice (--snapshot)"), std::string::npos) << m;
  EXPECT_EQ(m.find("live_history"), std::string::npos) << m;  // a plan setting
}

// verify: how much of a new snapshot a plan backup reads back (5% unless said).
TEST(Plan, VerifySampleIsParsedAndBadValuesAreNamed) {
  auto plan_with = [](const std::string& verify) {
    return parse_plan("repositories:\n  main: {url: /tmp/r}\nsources:\n  a:\n    kind: files\n    paths: [/tmp/x]\n" + verify,
                      "plan.yaml");
  };
  auto dflt = plan_with("");
  ASSERT_TRUE(dflt) << dflt.status().message();
  EXPECT_DOUBLE_EQ(dflt->sources[0].verify_sample, 0.05);
  EXPECT_DOUBLE_EQ(plan_with("    verify: sample 20%\n")->sources[0].verify_sample, 0.2);
  EXPECT_DOUBLE_EQ(plan_with("    verify: all\n")->sources[0].verify_sample, 1.0);
  EXPECT_DOUBLE_EQ(plan_with("    verify: none\n")->sources[0].verify_sample, 0.0);
  for (const char* bad : {"    verify: sample 150%\n", "    verify: sample x%\n", "    verify: sometimes\n"}) {
    auto p = plan_with(bad);
    ASSERT_FALSE(p) << bad;
    EXPECT_NE(p.status().message().find("sources.a.verify"), std::string::npos) << p.status().message();
  }
}

// Names reach tags, files, labels and hook variables: quotes, $( ) and backticks are refused by name.
TEST(Plan, SourceAndEnvironmentNamesAreRefusedOutsideTheirCharacterSet) {
  const char* text =
      "repositories:\n"
      "  main: {url: /tmp/r}\n"
      "sources:\n"
      "  \"x'$(touch pwned)'\":\n"
      "    kind: files\n"
      "    paths: [/a]\n"
      "  ok-name_1.2:\n"
      "    kind: files\n"
      "    paths: [/a]\n"
      "    environments:\n"
      "      \"t`id`\": {target: /tmp/t}\n";
  auto p = parse_plan(text, "plan.yaml");
  ASSERT_FALSE(p);
  const std::string& m = p.status().message();
  EXPECT_NE(m.find("source name \"x'$(touch pwned)'\": use letters, digits"), std::string::npos) << m;
  EXPECT_NE(m.find("environment name \"t`id`\": use letters, digits"), std::string::npos) << m;
  EXPECT_EQ(m.find("ok-name_1.2:"), std::string::npos) << m;  // a plain name passes
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

namespace lifeboat::plan {
namespace {

// Wrong types anywhere in a source section (and around it) are problems with file:line: key, never
// an exception, and a source's settings are parsed once into the kind's typed struct.
TEST(Plan, WrongTypesAnywhereAreProblemsNotExceptions) {
  const char* text =
      "version: one\n"                              // 1
      "repositories:\n"                             // 2
      "  main: {url: /tmp/r}\n"                     // 3
      "sources:\n"                                  // 4
      "  db:\n"                                     // 5
      "    kind: mongodb\n"                         // 6
      "    uri: [not, a, string]\n"                 // 7
      "    rename: {a: 5}\n"                        // 8
      "    databases: {x: 1}\n"                     // 9
      "    schedule: {continuous: maybe}\n"         // 10
      "    retention: {forever: 3, daily: x}\n"     // 11
      "    validation: [counts, speed, {a: 1}]\n"   // 12
      "    environments:\n"                         // 13
      "      test: {rename: {b: [1]}}\n"            // 14
      "      prod: 7\n"                             // 15
      "  fs:\n"                                     // 16
      "    kind: files\n"                           // 17
      "    paths: []\n"                             // 18
      "    schedule: {continuous: true}\n"          // 19
      "drills: {environment: [x], per_source: {db: {schedule: 5}}}\n"  // 20
      "notifications: [{type: slack, url: 3, sources: [nobody]}]\n";   // 21
  auto p = parse_plan(text, "lifeboat.yaml");
  ASSERT_FALSE(p);
  const std::string& m = p.status().message();
  for (const char* want : {"lifeboat.yaml:1: version:", "lifeboat.yaml:7: sources.db.uri: expected a non-empty string",
                           "lifeboat.yaml:8: sources.db.rename.a: expected a non-empty string",
                           "lifeboat.yaml:9: sources.db.databases: expected a list of strings",
                           "lifeboat.yaml:10: sources.db.schedule.continuous: expected true or false",
                           "lifeboat.yaml:11: sources.db.retention.daily: expected a count",
                           "lifeboat.yaml:11: sources.db.retention.forever: expected true or false",
                           "lifeboat.yaml:12: sources.db.validation: mongodb sources support the checks counts, hashes, not speed",
                           "sources.db.validation.2: expected a string",
                           "lifeboat.yaml:14: sources.db.environments.test.rename.b: expected a non-empty string",
                           "lifeboat.yaml:15: sources.db.environments.prod: expected a mapping",
                           "lifeboat.yaml:18: sources.fs.paths: expected a non-empty list of strings",
                           "sources.fs.schedule.continuous: files sources have no continuous follower",
                           "drills.environment: expected a string", "drills.per_source.db.schedule: expected a string",
                           "notifications.0.url: expected a string", "notifications.0.sources: no source named nobody"})
    EXPECT_NE(m.find(want), std::string::npos) << "missing: " << want << "\nin:\n" << m;
}

TEST(Plan, MongoPitrWindowIsADuration) {
  const char* text =
      "version: 1\n"                                 // 1
      "repositories:\n"                              // 2
      "  main: {url: /tmp/r}\n"                      // 3
      "sources:\n"                                   // 4
      "  db:\n"                                      // 5
      "    kind: mongodb\n"                          // 6
      "    uri: mongodb://127.0.0.1:1\n"             // 7
      "    pitr_window: soon\n";                     // 8
  auto p = parse_plan(text, "lifeboat.yaml");
  ASSERT_FALSE(p);
  EXPECT_NE(p.status().message().find("lifeboat.yaml:8: sources.db.pitr_window: expected a duration such as 30d"),
            std::string::npos)
      << p.status().message();
  std::string good = text;
  good.replace(good.find("soon"), 4, "30d");
  EXPECT_TRUE(parse_plan(good, "lifeboat.yaml")) << "30d is a window";
}

TEST(Plan, SettingsAreParsedOnceIntoTheKindsStruct) {
  const char* text =
      "repositories: {main: {url: /tmp/r}}\n"
      "sources:\n"
      "  db:\n"
      "    kind: mongodb\n"
      "    uri: mongodb://127.0.0.1:1\n"
      "    validation: [counts]\n"
      "    environments: {test: {rename: {a: b}}}\n"
      "drills: {per_source: {db: {schedule: '0 4 1 * *'}}}\n"
      "notifications: [{type: command, command: 'true', kinds: [mongodb], on: [failure]}]\n";
  auto p = parse_plan(text, "p.yaml");
  ASSERT_TRUE(p) << p.status().message();
  const auto* s = p->source("db");
  ASSERT_NE(s->entry, nullptr);
  EXPECT_EQ(s->entry->name, "mongodb");
  EXPECT_NE(s->parsed, nullptr);
  EXPECT_EQ(s->environment_parsed.count("test"), 1u);
  EXPECT_EQ(s->drill_schedule, "0 4 1 * *");
  ASSERT_EQ(p->notifications.size(), 1u);
  EXPECT_EQ(p->notifications[0].kinds, std::vector<std::string>{"mongodb"});
}

TEST(Plan, DuplicateKeysAreErrorsWithBothLines) {
  std::string text =
      "repositories: {main: {url: /tmp/r}}\n"
      "sources:\n"
      "  assets: {kind: files, paths: [/a]}\n"
      "  assets: {kind: files, paths: [/b]}\n";
  auto p = parse_plan(text, "dup.yaml");
  ASSERT_FALSE(p) << "the second source of one name must not silently win";
  EXPECT_NE(p.status().message().find("dup.yaml:4: duplicate key sources.assets (first on line 3)"), std::string::npos)
      << p.status().message();
}

TEST(Plan, AnUnknownTopLevelKeyCarriesItsLine) {
  auto p = parse_plan("repositories: {main: {url: /tmp/r}}\nsources:\n  a: {kind: files, paths: [/a]}\n\nnotifcations: []\n",
                      "typo.yaml");
  ASSERT_FALSE(p);
  EXPECT_NE(p.status().message().find("typo.yaml:5: notifcations: unknown key"), std::string::npos) << p.status().message();
}

// Sanitizer builds (-O0, instrumented) run this code 20-40 times slower; the bound is about the
// algorithm (expansion stops at the node limit), so it scales with the build.
#if defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define LB_SANITIZED 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define LB_SANITIZED 1
#endif
#ifdef LB_SANITIZED
constexpr int64_t kWellUnderASecondMs = 10000;
#else
constexpr int64_t kWellUnderASecondMs = 1000;
#endif

TEST(Plan, AnAliasBombFailsFastWithALine) {
  // Nine levels of ten aliases: a billion nodes once expanded.
  std::string text = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n";
  for (int i = 1; i <= 9; ++i) {
    text += fmt::format("a{}: &a{} [", i, i);
    for (int k = 0; k < 10; ++k) text += fmt::format("{}*a{}", k ? ", " : "", i - 1);
    text += "]\n";
  }
  text += "sources: {s: {kind: files, paths: *a9}}\n";
  auto start = std::chrono::steady_clock::now();
  auto p = parse_plan(text, "bomb.yaml");
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start).count();
  ASSERT_FALSE(p);
  EXPECT_LT(ms, kWellUnderASecondMs) << "bounded: well under a second (37 ms in the release build)";
  EXPECT_NE(p.status().message().find("bomb.yaml:"), std::string::npos) << p.status().message();
  EXPECT_NE(p.status().message().find("alias bomb"), std::string::npos) << p.status().message();
}

TEST(Plan, GarbageNeverThrows) {
  for (const char* text : {"[1, 2", "sources: {a: {kind: {x: 1}}}", "? [a, b]\n: c\n", "repositories: 5\nsources: [1]\n",
                           "sources:\n  x:\n    kind: files\n    paths: [[a]]\n    environments: {e: {paths: 5}}\n"}) {
    auto p = parse_plan(text, "g.yaml");
    EXPECT_FALSE(p) << text;
  }
}

}  // namespace
}  // namespace lifeboat::plan
