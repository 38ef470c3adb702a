// Oplog slice compaction and the point-in-time window, on a real (temporary) repository: merged
// slices hold exactly the entries of their parts, restores through them are as precise as before,
// and slices no restore inside the window needs are forgotten.
#include <gtest/gtest.h>

#include "../repo/test_repo.h"
#include "repo/write_session.h"
#include "core/time.h"
#include "sources/mongodb/bson_stream.h"
#include "sources/mongodb/mongo_backup.h"
#include "sources/mongodb/mongo_restore.h"
#include "sources/mongodb/slice_tidy.h"

namespace lifeboat::sources::mongodb {
namespace {

constexpr uint32_t kT0 = 472222u * 3600u;  // on an hour
constexpr uint32_t kStep = 1200;           // a slice every 20 minutes
constexpr int kSlices = 180;               // 2.5 days

Bytes entry(uint32_t t) {
  bson_t* d = BCON_NEW("ts", BCON_TIMESTAMP(t, 1), "op", BCON_UTF8("i"), "ns", BCON_UTF8("db.c"), "o", "{", "_id",
                       BCON_INT64(t), "}");
  Bytes out(bson_get_data(d), bson_get_data(d) + d->len);
  bson_destroy(d);
  return out;
}

std::string commit(repo::Repository& repo, const char* source, nlohmann::json meta, const Bytes& oplog, int64_t time_ns) {
  repo::WriteSession session(repo);
  repo::MemorySource src(ByteView(oplog.data(), oplog.size()));
  auto stored = session.store_stream(src, nullptr, false);
  EXPECT_TRUE(stored.is_ok());
  repo::Node n;
  n.kind = repo::NodeKind::kFile;
  n.name = kOplogFile;
  n.mode = 0644;
  n.size = stored->size_bytes;
  n.content = stored->content;
  repo::Tree root;
  root.nodes.push_back(std::move(n));
  auto root_id = session.store_tree(root);
  EXPECT_TRUE(root_id.is_ok());
  repo::Snapshot snap;
  snap.time_ns = time_ns;
  snap.hostname = "h";
  snap.source = source;
  snap.paths = {"db1"};
  snap.tags = {"source:db1"};
  snap.tree = *root_id;
  snap.metadata = std::move(meta);
  auto id = session.commit(snap);
  EXPECT_TRUE(id.is_ok()) << id.status().message();
  return id.is_ok() ? *id : "";
}

OplogTime pos(int i) { return {kT0 + static_cast<uint32_t>(i) * kStep, 1}; }

void full(repo::Repository& repo, int at_slice) {
  nlohmann::json m = {{"kind", "full"}, {"oplog_start", oplog_time_json(pos(at_slice))},
                      {"oplog_end", oplog_time_json(pos(at_slice))}, {"collections", nlohmann::json::array()},
                      {"databases", nlohmann::json::array()}};
  commit(repo, kFullSource, m, {}, int64_t{pos(at_slice).t} * kNsPerSecond);
}

// Slice i holds the entries at pos(i).t + 600 and pos(i + 1).t.
Bytes slice_entries(int i) {
  Bytes a = entry(pos(i).t + 600), b = entry(pos(i + 1).t);
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

void slices(repo::Repository& repo) {
  for (int i = 0; i < kSlices; ++i) {
    nlohmann::json m = {{"kind", "oplog-slice"}, {"from", oplog_time_json(pos(i))}, {"to", oplog_time_json(pos(i + 1))},
                        {"entries", 2}, {"gap", false}, {"proved_through_s", pos(i + 1).t + 30},
                        {"proof", "server clock"}};
    commit(repo, kSliceSource, m, slice_entries(i), int64_t{pos(i + 1).t} * kNsPerSecond);
  }
}

// Every entry a restore to `at` replays, read through the planner's choice of slices.
std::vector<uint32_t> replayed(repo::Repository& repo, std::optional<int64_t> at, MongoRestorePlan* out = nullptr) {
  auto snaps = repo.list_snapshots();
  EXPECT_TRUE(snaps.is_ok());
  auto plan = plan_mongodb_restore(*snaps, "db1", at);
  EXPECT_TRUE(plan.is_ok()) << plan.status().message();
  std::vector<uint32_t> ts;
  for (const auto& s : plan->slices) {
    auto tree = repo.load_tree(s.snapshot.tree);
    EXPECT_TRUE(tree.is_ok());
    StoredDocReader reader(repo, tree->find(kOplogFile)->content, "slice");
    ByteView doc;
    while (*reader.next(doc)) {
      bson_t view;
      bson_init_static(&view, doc.data(), doc.size());
      uint32_t t = bson_timestamp(&view, "ts")->t;
      if (t <= *plan->replay_until_s) ts.push_back(t);
    }
  }
  if (out) *out = *plan;
  return ts;
}

size_t count_slices(repo::Repository& repo) {
  auto snaps = repo.list_snapshots();
  EXPECT_TRUE(snaps.is_ok());
  size_t n = 0;
  for (const auto& s : *snaps) n += s.snapshot.source == kSliceSource;
  return n;
}

TEST(MongoSliceTidy, CompactsSlicesOlderThanADayIntoHourlyOnesWithTheSameEntries) {
  testing::TempDir dir;
  auto repo = testing::init_repo(dir.path);
  ASSERT_TRUE(repo);
  full(*repo, 0);
  slices(*repo);
  std::vector<int64_t> instants = {int64_t{pos(5).t + 700} * kNsPerSecond, int64_t{pos(50).t + 600} * kNsPerSecond,
                                   int64_t{pos(106).t} * kNsPerSecond, int64_t{pos(150).t + 1} * kNsPerSecond};
  std::vector<std::vector<uint32_t>> before;
  for (auto at : instants) before.push_back(replayed(*repo, at));
  auto newest_before = replayed(*repo, std::nullopt);

  TidyOptions o;
  o.name = "db1";
  o.now_ns = int64_t{pos(kSlices).t} * kNsPerSecond;  // 2.5 days after the first entry
  auto r = tidy_slices(*repo, o);
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  // Slices ending more than a day ago: 107 (ends 1..107 steps after kT0), three an hour (two in
  // the first hour) -> 36 hourly slices.
  EXPECT_EQ(r->compacted, 107u);
  EXPECT_EQ(r->compacted_into, 36u);
  EXPECT_EQ(count_slices(*repo), size_t{kSlices - 107 + 36});
  for (size_t k = 0; k < instants.size(); ++k) {
    MongoRestorePlan plan;
    EXPECT_EQ(replayed(*repo, instants[k], &plan), before[k]) << "restore to instant " << k;
    EXPECT_TRUE(plan.proved);
    EXPECT_EQ(plan.point_ns, instants[k]);
  }
  EXPECT_EQ(replayed(*repo, std::nullopt), newest_before);
  // A second run finds nothing more to do.
  r = tidy_slices(*repo, o);
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(r->compacted, 0u);
  EXPECT_EQ(r->compacted_into, 0u);
}

TEST(MongoSliceTidy, ForgetsSlicesNoRestoreInsideTheWindowNeeds) {
  testing::TempDir dir;
  auto repo = testing::init_repo(dir.path);
  ASSERT_TRUE(repo);
  full(*repo, 0);
  full(*repo, 72);  // a day later
  slices(*repo);
  TidyOptions o;
  o.name = "db1";
  o.now_ns = int64_t{pos(kSlices).t} * kNsPerSecond;
  o.window_ns = 86400 * kNsPerSecond;      // its start (1.5 days in) has the second full backup before it
  o.compact_after_ns = 0;
  auto r = tidy_slices(*repo, o);
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(r->forgotten, 72u);  // the slices before the second full backup's end
  EXPECT_EQ(count_slices(*repo), size_t{kSlices - 72});
  MongoRestorePlan plan;
  auto inside = replayed(*repo, int64_t{pos(120).t} * kNsPerSecond, &plan);
  EXPECT_TRUE(plan.proved);
  EXPECT_EQ(inside.size(), size_t{2 * (120 - 72)});
  // Before the window: the first full backup alone, and the restore says so.
  replayed(*repo, int64_t{pos(30).t} * kNsPerSecond, &plan);
  EXPECT_FALSE(plan.proved);
  EXPECT_NE(plan.limit.find("missing"), std::string::npos) << plan.limit;
}

// A tidy killed after committing a merged slice and before forgetting its parts: the next tidy
// forgets the parts (and a second merged slice an older Lifeboat wrote over the same range) instead
// of merging them again, and restores replay the same entries throughout.
TEST(MongoSliceTidy, ConvergesAfterAKillBetweenMergeAndForget) {
  testing::TempDir dir;
  auto repo = testing::init_repo(dir.path);
  ASSERT_TRUE(repo);
  full(*repo, 0);
  slices(*repo);
  auto merged_over = [&](int first, int last) {  // what merge() commits for slices first..last
    Bytes all;
    for (int i = first; i <= last; ++i) {
      Bytes e = slice_entries(i);
      all.insert(all.end(), e.begin(), e.end());
    }
    nlohmann::json m = {{"kind", "oplog-slice"}, {"from", oplog_time_json(pos(first))}, {"to", oplog_time_json(pos(last + 1))},
                        {"entries", 2 * (last - first + 1)}, {"gap", false}, {"compacted_from", last - first + 1},
                        {"proved_through_s", pos(last + 1).t + 30}, {"proof", "server clock"}};
    return commit(*repo, kSliceSource, m, all, int64_t{pos(last + 1).t} * kNsPerSecond);
  };
  // Slices 1..2 (the first hour's) merged, the parts still there; and a second merged slice over 2..2's
  // range plus 1, as the unconverged re-run wrote it.
  std::vector<int64_t> instants = {int64_t{pos(1).t + 700} * kNsPerSecond, int64_t{pos(2).t + 600} * kNsPerSecond,
                                   int64_t{pos(3).t} * kNsPerSecond, int64_t{pos(60).t} * kNsPerSecond};
  std::vector<std::vector<uint32_t>> before;
  for (auto at : instants) before.push_back(replayed(*repo, at));
  merged_over(1, 2);
  merged_over(1, 2);
  TidyOptions o;
  o.name = "db1";
  o.now_ns = int64_t{pos(kSlices).t} * kNsPerSecond;
  o.compact_after_ns = 0;  // only the convergence
  auto r = tidy_slices(*repo, o);
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  EXPECT_EQ(r->redundant, 3u);  // parts 1 and 2, and one of the two merged slices
  EXPECT_EQ(count_slices(*repo), size_t{kSlices - 2 + 1});
  for (size_t k = 0; k < instants.size(); ++k) EXPECT_EQ(replayed(*repo, instants[k]), before[k]) << "instant " << k;
  // Compaction after that merges around the merged slice, never over it again.
  o.compact_after_ns = 86400LL * kNsPerSecond;
  r = tidy_slices(*repo, o);
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(r->redundant, 0u);
  r = tidy_slices(*repo, o);
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(r->compacted + r->compacted_into + r->redundant, 0u) << "a third tidy still found work: it does not converge";
  for (size_t k = 0; k < instants.size(); ++k) EXPECT_EQ(replayed(*repo, instants[k]), before[k]) << "instant " << k;
}

}  // namespace
}  // namespace lifeboat::sources::mongodb
