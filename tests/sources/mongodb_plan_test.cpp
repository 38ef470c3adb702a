// Restore planning (which full backup, which slices, how close to --at) and the collection digest.
#include <gtest/gtest.h>

#include "sources/mongodb/bson_stream.h"
#include "sources/mongodb/mongo_backup.h"
#include "sources/mongodb/mongo_restore.h"

namespace lifeboat::sources::mongodb {
namespace {

constexpr int64_t kS = 1000000000LL;

repo::SnapshotRef full(const std::string& id, uint32_t start, uint32_t end, const std::string& name = "db1") {
  repo::SnapshotRef r;
  r.id = id;
  r.snapshot.source = kFullSource;
  r.snapshot.paths = {name};
  r.snapshot.time_ns = int64_t{start} * kS;
  r.snapshot.metadata = {{"oplog_start", oplog_time_json({start, 1})},
                         {"oplog_end", oplog_time_json({end, 1})},
                         {"finished_ns", int64_t{end} * kS}};
  return r;
}

repo::SnapshotRef slice(const std::string& id, OplogTime from, OplogTime to, bool gap = false,
                        std::optional<OplogTime> gap_until = std::nullopt) {
  repo::SnapshotRef r;
  r.id = id;
  r.snapshot.source = kSliceSource;
  r.snapshot.paths = {"db1"};
  r.snapshot.time_ns = int64_t{to.t} * kS;
  r.snapshot.metadata = {{"from", oplog_time_json(from)}, {"to", oplog_time_json(to)},
                         {"observed_until_ns", int64_t{to.t} * kS}, {"gap", gap}};
  if (gap_until) r.snapshot.metadata["gap_until"] = oplog_time_json(*gap_until);
  return r;
}

TEST(MongoRestorePlan, NewestFullAtOrBeforeAtAndTheChainAfterIt) {
  std::vector<repo::SnapshotRef> s = {full("f1", 100, 110), slice("s1", {100, 1}, {150, 2}),
                                      slice("s2", {150, 2}, {200, 5}), full("f2", 300, 310),
                                      slice("s3", {200, 5}, {320, 1})};
  auto p = plan_mongodb_restore(s, "", 170 * kS);
  ASSERT_TRUE(p) << p.status().message();
  EXPECT_EQ(p->full.id, "f1");
  ASSERT_EQ(p->slices.size(), 2u);
  EXPECT_EQ(p->slices[1].id, "s2");
  EXPECT_EQ(p->point_ns, 170 * kS);
  EXPECT_EQ(*p->replay_until_s, 170u);
  EXPECT_EQ(p->replay_from, (OplogTime{100, 1}));
  EXPECT_TRUE(p->limit.empty());

  p = plan_mongodb_restore(s, "db1", 315 * kS);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->full.id, "f2");
  EXPECT_EQ(p->slices.size(), 1u);  // s3 continues past f2's end
  EXPECT_EQ(p->point_ns, 315 * kS);

  p = plan_mongodb_restore(s, "", 1000 * kS);  // beyond the newest slice: stops there and says why
  ASSERT_TRUE(p);
  EXPECT_EQ(p->point_ns, 320 * kS);
  EXPECT_NE(p->limit.find("follow"), std::string::npos);
}

TEST(MongoRestorePlan, MissingSlicesAndGapsLimitThePoint) {
  std::vector<repo::SnapshotRef> s = {full("f1", 100, 110), slice("s1", {100, 1}, {150, 2}),
                                      slice("s3", {170, 1}, {200, 1})};
  auto p = plan_mongodb_restore(s, "", 190 * kS);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->point_ns, 150 * kS);
  EXPECT_NE(p->limit.find("missing"), std::string::npos);

  s = {full("f1", 100, 110), slice("s1", {100, 1}, {150, 2}), slice("s2", {150, 2}, {200, 1}, true, OplogTime{160, 1})};
  p = plan_mongodb_restore(s, "", 190 * kS);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->point_ns, 150 * kS);
  EXPECT_NE(p->limit.find("gap"), std::string::npos);

  // A full backup taken after the gap's end makes the gap slice usable again.
  s.push_back(full("f2", 170, 175));
  p = plan_mongodb_restore(s, "", 190 * kS);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->full.id, "f2");
  EXPECT_EQ(p->point_ns, 190 * kS);
}

TEST(MongoRestorePlan, ClearErrors) {
  std::vector<repo::SnapshotRef> s = {full("f1", 100, 110)};
  EXPECT_EQ(plan_mongodb_restore({}, "", std::nullopt).status().code(), Code::kNotFound);
  EXPECT_EQ(plan_mongodb_restore(s, "", 50 * kS).status().code(), Code::kNotFound);
  EXPECT_EQ(plan_mongodb_restore(s, "other", std::nullopt).status().code(), Code::kNotFound);
  s.push_back(full("g1", 100, 110, "db2"));
  auto p = plan_mongodb_restore(s, "", std::nullopt);
  EXPECT_EQ(p.status().code(), Code::kInvalidArgument);
  EXPECT_NE(p.status().message().find("--name"), std::string::npos);
}

TEST(CollectionDigest, IndependentOfOrderSensitiveToContent) {
  std::string a = "first document", b = "second", c = "third";
  CollectionDigest x, y, z;
  for (auto* s : {&a, &b, &c}) x.add(as_bytes(*s));
  for (auto* s : {&c, &a, &b}) y.add(as_bytes(*s));
  for (auto* s : {&a, &b}) z.add(as_bytes(*s));
  EXPECT_EQ(x.hash_hex(), y.hash_hex());
  EXPECT_NE(x.hash_hex(), z.hash_hex());
  EXPECT_EQ(x.count(), 3u);
  EXPECT_EQ(x.hash_hex().size(), 32u);
  CollectionDigest w;
  w.add(as_bytes(c));
  z.merge(w);
  EXPECT_EQ(z.hash_hex(), x.hash_hex());
}

}  // namespace
}  // namespace lifeboat::sources::mongodb
