// Notification routing by source and kind, and the typed drill record's JSON round trip.
#include <gtest/gtest.h>

#include "ops/drill.h"
#include "ops/notify.h"

namespace lifeboat::ops {
namespace {

TEST(Notify, RoutesBySourceAndKind) {
  plan::NotificationSpec ops_team;  // no filter: everything it asked for
  ops_team.on = {"failure"};
  plan::NotificationSpec ml;
  ml.on = {"failure", "success"};
  ml.kinds = {"models"};
  plan::NotificationSpec data;
  data.on = {"failure"};
  data.sources = {"eyewear-mongo"};
  Event drill{"drill", false, "drill failed", ""};
  Event mongo{"backup", false, "x", ""};
  mongo.source = "eyewear-mongo";
  mongo.source_kind = "mongodb";
  Event model{"backup", true, "x", ""};
  model.source = "face-shape";
  model.source_kind = "models";
  EXPECT_TRUE(notifier_wants(ops_team, drill));
  EXPECT_FALSE(notifier_wants(ml, drill));
  EXPECT_FALSE(notifier_wants(data, drill));
  EXPECT_TRUE(notifier_wants(data, mongo));
  EXPECT_FALSE(notifier_wants(ml, mongo));
  EXPECT_TRUE(notifier_wants(ml, model));
  EXPECT_FALSE(notifier_wants(ops_team, model));  // a success; it asked for failures only
  Event report{"report", true, "daily", ""};
  EXPECT_FALSE(notifier_wants(ops_team, report));
}

TEST(DrillRecord, RoundTripsAndRejectsForeignMetadata) {
  DrillRecord d;
  d.plan = "p.yaml";
  d.environment = "test";
  d.started_ns = 1764633600LL * 1000000000;
  d.passed = false;
  d.rpo_met = true;
  DrillSourceResult r;
  r.source = "db";
  r.kind = "mongodb";
  r.rto_ms = 1200;
  r.rpo_ms = 5000;
  r.checks = {{"counts", false, "orders holds 3 documents, 4 expected"}};
  d.sources.push_back(r);
  d.failures = {"db: check counts failed"};
  auto back = DrillRecord::from_json(d.to_json());
  ASSERT_TRUE(back);
  EXPECT_EQ(back->sources.at(0).checks.at(0).detail, "orders holds 3 documents, 4 expected");
  EXPECT_FALSE(back->sources.at(0).checks.at(0).ok);
  EXPECT_EQ(*back->sources.at(0).rpo_ms, 5000);
  EXPECT_FALSE(back->passed);
  EXPECT_TRUE(back->rpo_met);
  EXPECT_FALSE(DrillRecord::from_json(nlohmann::json{{"sources", "not a list"}}));
  EXPECT_FALSE(DrillRecord::from_json(nlohmann::json{{"passed", "yes"}}));
}

}  // namespace
}  // namespace lifeboat::ops
