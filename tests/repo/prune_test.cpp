// Prune: deletes what nothing needs, waits for writers that started before its mark, and brings back
// packs a late snapshot needs — in the same run and in later ones.
#include "repo/prune.h"

#include <gtest/gtest.h>

#include "repo/check.h"
#include "repo/write_session.h"
#include "test_repo.h"

namespace lifeboat::repo {

using testing::TempDir;

namespace {

// Commits a snapshot whose single file holds `data`; returns the snapshot ID and the blob IDs.
std::pair<std::string, std::vector<BlobId>> commit_file(Repository& repo, const Bytes& data, int64_t time_ns) {
  WriteSession s(repo);
  MemorySource src(data);
  auto stored = s.store_stream(src);
  Tree t;
  Node n;
  n.name = "f";
  n.size = stored->size_bytes;
  n.content = stored->content;
  t.nodes = {n};
  Snapshot snap;
  snap.time_ns = time_ns;
  snap.tree = *s.store_tree(t);
  return {*s.commit(snap), stored->content};
}

size_t pack_count(const std::string& dir) {
  size_t n = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir + "/data")) n += e.is_regular_file();
  return n;
}

}  // namespace

TEST(Prune, DeletesUnneededDataAndKeepsTheRest) {
  TempDir dir;
  auto repo = testing::init_repo(dir.path);
  auto [old_id, old_blobs] = commit_file(*repo, testing::pseudo_random(300000, 1), 1);
  auto [new_id, new_blobs] = commit_file(*repo, testing::pseudo_random(300000, 2), 2);
  ASSERT_TRUE(repo->backend().remove({FileType::kSnapshot, old_id}));
  auto lock = RepoLock::acquire(*repo, LockKind::kMaintenance);
  auto report = prune_repository(*repo, {}, **lock);
  ASSERT_TRUE(report.is_ok()) << report.status().message();
  EXPECT_GE(report->packs_deleted, 1u);
  auto fresh = testing::open_repo(dir.path);
  EXPECT_FALSE(fresh->read_blob(old_blobs[0]).is_ok());
  for (const auto& b : new_blobs) EXPECT_TRUE(fresh->read_blob(b).is_ok());
  auto c = check_repository(*testing::open_repo(dir.path), {true, 0, 0}, nullptr);
  EXPECT_TRUE(c->ok()) << (c->errors.empty() ? "" : c->errors[0]);
}

TEST(Prune, WaitsForEarlierWritersAndResurrectsWhatTheirSnapshotsNeed) {
  TempDir dir;
  auto repo = testing::init_repo(dir.path);
  Bytes data = testing::pseudo_random(300000, 3);
  auto [first, blobs] = commit_file(*repo, data, 1);
  // A writer starts (lock), reads the index while `blobs` are live, and will dedup against them.
  auto writer_repo = testing::open_repo(dir.path);
  auto writer_lock = RepoLock::acquire(*writer_repo, LockKind::kShared);
  ASSERT_TRUE(writer_repo->load_index().is_ok());
  // Meanwhile the only snapshot naming them is forgotten and prune marks their packs.
  ASSERT_TRUE(repo->backend().remove({FileType::kSnapshot, first}));
  {
    auto lock = RepoLock::acquire(*repo, LockKind::kMaintenance);
    auto r = prune_repository(*repo, {}, **lock);
    ASSERT_TRUE(r.is_ok()) << r.status().message();
    EXPECT_GE(r->packs_tombstoned, 1u);
    EXPECT_EQ(r->packs_deleted, 0u) << "a writer that started before the mark may still need them";
  }
  // The writer commits a snapshot that deduplicated against the tombstoned blobs, then ends.
  auto [late, late_blobs] = commit_file(*writer_repo, data, 2);
  EXPECT_EQ(late_blobs, blobs);
  writer_lock = Error(Code::kFatal, "released");
  // The next prune, with nobody writing, must bring those packs back rather than delete them.
  auto lock = RepoLock::acquire(*repo, LockKind::kMaintenance);
  auto r = prune_repository(*repo, {}, **lock);
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  EXPECT_GE(r->packs_resurrected, 1u);
  auto c = check_repository(*testing::open_repo(dir.path), {true, 0, 0}, nullptr);
  EXPECT_TRUE(c->ok()) << (c->errors.empty() ? "" : c->errors[0]);
  auto fresh = testing::open_repo(dir.path);
  for (const auto& b : blobs) EXPECT_TRUE(fresh->read_blob(b).is_ok());
  // And a prune after that keeps them too (they are live again, not tombstones).
  auto r2 = prune_repository(*repo, {}, **lock);
  ASSERT_TRUE(r2.is_ok());
  EXPECT_EQ(r2->packs_deleted, 0u);
  EXPECT_GT(pack_count(dir.path), 0u);
  auto c2 = check_repository(*testing::open_repo(dir.path), {true, 0, 0}, nullptr);
  EXPECT_TRUE(c2->ok()) << (c2->errors.empty() ? "" : c2->errors[0]);
}

}  // namespace lifeboat::repo
