// Restore planning (which full backup, which slices, how close to --at) and the collection digest.
#include <gtest/gtest.h>

#include "core/time.h"
#include "sources/mongodb/bson_stream.h"
#include "sources/mongodb/mongo_backup.h"
#include "sources/mongodb/mongo_restore.h"

namespace lifeboat::sources::mongodb {
namespace {


repo::SnapshotRef full(const std::string& id, uint32_t start, uint32_t end, const std::string& name = "db1") {
  repo::SnapshotRef r;
  r.id = id;
  r.snapshot.source = kFullSource;
  r.snapshot.paths = {name};
  r.snapshot.time_ns = int64_t{start} * kNsPerSecond;
  r.snapshot.metadata = {{"oplog_start", oplog_time_json({start, 1})},
                         {"oplog_end", oplog_time_json({end, 1})},
                         {"finished_ns", int64_t{end} * kNsPerSecond}};
  return r;
}

repo::SnapshotRef slice(const std::string& id, OplogTime from, OplogTime to, bool gap = false,
                        std::optional<OplogTime> gap_until = std::nullopt, uint32_t proved_through_s = 0) {
  repo::SnapshotRef r;
  r.id = id;
  r.snapshot.source = kSliceSource;
  r.snapshot.paths = {"db1"};
  r.snapshot.time_ns = int64_t{to.t} * kNsPerSecond;
  r.snapshot.metadata = {{"from", oplog_time_json(from)}, {"to", oplog_time_json(to)}, {"gap", gap}};
  if (proved_through_s) {
    r.snapshot.metadata["proved_through_s"] = proved_through_s;
    r.snapshot.metadata["proof"] = "server clock (hello.localTime) with no newer oplog entry";
  }
  if (gap_until) r.snapshot.metadata["gap_until"] = oplog_time_json(*gap_until);
  return r;
}

// A slice whose only claim is the server's evidence at an empty poll.
repo::SnapshotRef proved_slice(const std::string& id, OplogTime from, OplogTime to, uint32_t through_s) {
  return slice(id, from, to, false, std::nullopt, through_s);
}

TEST(MongoRestorePlan, NewestFullAtOrBeforeAtAndTheChainAfterIt) {
  std::vector<repo::SnapshotRef> s = {full("f1", 100, 110), slice("s1", {100, 1}, {150, 2}),
                                      slice("s2", {150, 2}, {200, 5}), full("f2", 300, 310),
                                      slice("s3", {200, 5}, {320, 1})};
  auto p = plan_mongodb_restore(s, "", 170 * kNsPerSecond);
  ASSERT_TRUE(p) << p.status().message();
  EXPECT_EQ(p->full.id, "f1");
  ASSERT_EQ(p->slices.size(), 2u);
  EXPECT_EQ(p->slices[1].id, "s2");
  EXPECT_EQ(p->point_ns, 170 * kNsPerSecond);
  EXPECT_TRUE(p->proved);
  EXPECT_EQ(*p->replay_until_s, 170u);
  EXPECT_EQ(p->replay_from, (OplogTime{100, 1}));
  EXPECT_TRUE(p->limit.empty());

  p = plan_mongodb_restore(s, "db1", 315 * kNsPerSecond);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->full.id, "f2");
  EXPECT_EQ(p->slices.size(), 1u);  // s3 continues past f2's end
  EXPECT_EQ(p->point_ns, 315 * kNsPerSecond);

  // Beyond the newest slice: its position proves the seconds before 320, no more; replay stops there.
  p = plan_mongodb_restore(s, "", 1000 * kNsPerSecond);
  ASSERT_TRUE(p);
  EXPECT_FALSE(p->proved);
  EXPECT_EQ(p->point_ns, 320 * kNsPerSecond - 1);
  EXPECT_EQ(*p->replay_until_s, 319u);
  EXPECT_NE(p->limit.find("proved complete only through"), std::string::npos) << p->limit;
  EXPECT_NE(p->limit.find("follow"), std::string::npos);
}

// The reported failure: a slice ended 20 s before T with the follower's clock claiming it had seen
// everything up to T, while the deletes made before T were in the next slice.
TEST(MongoRestorePlan, EverySliceThatCanHoldEntriesBeforeAtIsReplayed) {
  auto s1 = slice("s1", {110, 1}, {480, 7});
  s1.snapshot.metadata["observed_until_ns"] = int64_t{505} * kNsPerSecond;  // the old follower-clock claim: ignored
  std::vector<repo::SnapshotRef> s = {full("f1", 100, 110), s1, slice("s2", {480, 7}, {498, 100}),
                                      slice("s3", {498, 100}, {530, 4})};
  auto p = plan_mongodb_restore(s, "", 500 * kNsPerSecond);
  ASSERT_TRUE(p);
  ASSERT_EQ(p->slices.size(), 3u);  // s3 starts at 498 <= 500: it may hold entries of 499 and 500
  EXPECT_EQ(p->slices[2].id, "s3");
  EXPECT_TRUE(p->proved);  // by s3's end position (530)
  EXPECT_EQ(p->point_ns, 500 * kNsPerSecond);
  // Without s3 nothing proves the seconds from 498 on, whatever the follower's clock said.
  s = {full("f1", 100, 110), s1, slice("s2", {480, 7}, {498, 100})};
  p = plan_mongodb_restore(s, "", 500 * kNsPerSecond);
  ASSERT_TRUE(p);
  EXPECT_FALSE(p->proved);
  EXPECT_EQ(p->point_ns, 498 * kNsPerSecond - 1);
  EXPECT_EQ(*p->replay_until_s, 497u);
  // The server's own evidence at an empty poll proves more than the position.
  s = {full("f1", 100, 110), s1, proved_slice("s2", {480, 7}, {498, 100}, 503)};
  p = plan_mongodb_restore(s, "", 500 * kNsPerSecond);
  ASSERT_TRUE(p);
  EXPECT_TRUE(p->proved);
  EXPECT_EQ(p->point_ns, 500 * kNsPerSecond);
  EXPECT_NE(p->proof.find("hello.localTime"), std::string::npos);
}

TEST(MongoRestorePlan, SlicesStartingAfterAtAreNotReplayedButProveIt) {
  std::vector<repo::SnapshotRef> s = {full("f1", 100, 110), slice("s1", {110, 1}, {150, 2}),
                                      slice("s2", {150, 2}, {200, 5}), slice("s3", {200, 5}, {260, 1})};
  auto p = plan_mongodb_restore(s, "", 160 * kNsPerSecond);
  ASSERT_TRUE(p);
  ASSERT_EQ(p->slices.size(), 2u);  // s2 starts at 150 <= 160
  EXPECT_TRUE(p->proved);
  p = plan_mongodb_restore(s, "", 149 * kNsPerSecond);
  ASSERT_TRUE(p);
  ASSERT_EQ(p->slices.size(), 1u);  // s2 starts at 150 > 149: nothing of it is at or before T
  EXPECT_TRUE(p->proved);           // and s1's end position (150) proves every second before it
  // Empty slices carry evidence only: an idle follower keeps proving the state current.
  s = {full("f1", 100, 110), slice("s1", {110, 1}, {150, 2}), proved_slice("e1", {150, 2}, {150, 2}, 400)};
  p = plan_mongodb_restore(s, "", 390 * kNsPerSecond);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->slices.size(), 1u);
  EXPECT_TRUE(p->proved);
  EXPECT_EQ(p->point_ns, 390 * kNsPerSecond);
  p = plan_mongodb_restore(s, "", std::nullopt);  // newest: as far as the evidence goes
  ASSERT_TRUE(p);
  EXPECT_EQ(p->point_ns, 401 * kNsPerSecond - 1);
}

TEST(MongoRestorePlan, AFullBackupAloneProvesWhatTheServerSaid) {
  auto f = full("f1", 100, 110);
  auto p = plan_mongodb_restore({f}, "", 200 * kNsPerSecond);
  ASSERT_TRUE(p);
  EXPECT_FALSE(p->proved);
  EXPECT_EQ(p->point_ns, 110 * kNsPerSecond - 1);
  EXPECT_EQ(*p->replay_until_s, 110u);  // its own oplog is replayed to its end regardless
  EXPECT_NE(p->limit.find("inside a second"), std::string::npos) << p->limit;
  f.snapshot.metadata["proved_through_s"] = 250;
  f.snapshot.metadata["proof"] = "server operationTime 251:1 with no newer oplog entry";
  p = plan_mongodb_restore({f}, "", 200 * kNsPerSecond);
  ASSERT_TRUE(p);
  EXPECT_TRUE(p->proved);
  EXPECT_EQ(p->point_ns, 200 * kNsPerSecond);
  EXPECT_TRUE(p->limit.empty()) << p->limit;
}

TEST(MongoRestorePlan, MissingSlicesAndGapsLimitThePoint) {
  std::vector<repo::SnapshotRef> s = {full("f1", 100, 110), slice("s1", {100, 1}, {150, 2}),
                                      slice("s3", {170, 1}, {200, 1})};
  auto p = plan_mongodb_restore(s, "", 190 * kNsPerSecond);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->point_ns, 150 * kNsPerSecond - 1);
  EXPECT_NE(p->limit.find("missing"), std::string::npos);

  s = {full("f1", 100, 110), slice("s1", {100, 1}, {150, 2}), slice("s2", {150, 2}, {200, 1}, true, OplogTime{160, 1})};
  p = plan_mongodb_restore(s, "", 190 * kNsPerSecond);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->point_ns, 150 * kNsPerSecond - 1);
  EXPECT_NE(p->limit.find("gap"), std::string::npos);

  // A full backup taken after the gap's end makes the gap slice usable again.
  s.push_back(full("f2", 170, 175));
  p = plan_mongodb_restore(s, "", 190 * kNsPerSecond);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->full.id, "f2");
  EXPECT_EQ(p->point_ns, 190 * kNsPerSecond);
}

TEST(MongoRestorePlan, ClearErrors) {
  std::vector<repo::SnapshotRef> s = {full("f1", 100, 110)};
  EXPECT_EQ(plan_mongodb_restore({}, "", std::nullopt).status().code(), Code::kNotFound);
  EXPECT_EQ(plan_mongodb_restore(s, "", 50 * kNsPerSecond).status().code(), Code::kNotFound);
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
