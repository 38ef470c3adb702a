// Prune: deletes what nothing needs, waits for writers that started before its mark, and brings back
// packs a late snapshot needs — in the same run and in later ones.
#include "repo/prune.h"

#include <gtest/gtest.h>

#include <fstream>

#include "repo/check.h"
#include "repo/repair.h"
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

// A writer starts (lock) and reads the index while a file's blobs are live; meanwhile the only
// snapshot naming them is forgotten and prune marks their packs (and may not delete them: the writer
// started first); then the writer commits a snapshot that deduplicated against the tombstoned blobs,
// and ends. Returns those blobs.
std::vector<BlobId> late_snapshot_on_tombstones(const std::string& dir, Repository& repo, uint64_t seed) {
  Bytes data = testing::pseudo_random(300000, seed);
  auto [first, blobs] = commit_file(repo, data, 1);
  auto writer_repo = testing::open_repo(dir);
  auto writer_lock = RepoLock::acquire(*writer_repo, LockKind::kShared);
  EXPECT_TRUE(writer_repo->load_index().is_ok());
  EXPECT_TRUE(repo.forget_snapshot(first).is_ok());
  {
    auto lock = RepoLock::acquire(repo, LockKind::kMaintenance);
    auto r = prune_repository(repo, {}, **lock);
    EXPECT_TRUE(r.is_ok()) << r.status().message();
    if (!r) return {};
    EXPECT_GE(r->packs_tombstoned, 1u);
    EXPECT_EQ(r->packs_deleted, 0u) << "a writer that started before the mark may still need them";
  }
  auto [late, late_blobs] = commit_file(*writer_repo, data, 2);
  EXPECT_EQ(late_blobs, blobs);
  return blobs;
}

}  // namespace

TEST(Prune, DeletesUnneededDataAndKeepsTheRest) {
  TempDir dir;
  auto repo = testing::init_repo(dir.path);
  auto [old_id, old_blobs] = commit_file(*repo, testing::pseudo_random(300000, 1), 1);
  auto [new_id, new_blobs] = commit_file(*repo, testing::pseudo_random(300000, 2), 2);
  ASSERT_TRUE(repo->forget_snapshot(old_id).is_ok());
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

size_t index_file_count(const std::string& dir) {
  size_t n = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir + "/index")) n += e.is_regular_file();
  return n;
}

// Repair and prune write the whole index: in parts of a bounded number of entries, the last
// superseding the old files, so a large repository never needs one file (or its encoding) that big.
TEST(IndexParts, RepairAndPruneWriteTheIndexInPartsAndEveryBlobStaysFound) {
  TempDir dir;
  auto repo = testing::init_repo(dir.path);
  std::vector<std::vector<BlobId>> kept;
  std::vector<std::string> ids;
  for (int i = 0; i < 4; ++i) {
    auto [id, blobs] = commit_file(*repo, testing::pseudo_random(1500000, 10 + i), 10 + i);
    ids.push_back(id);
    kept.push_back(blobs);
  }
  ASSERT_GE(pack_count(dir.path), 3u) << "the test needs several packs";
  size_t before = index_file_count(dir.path);
  std::set<std::string> old_files;
  for (const auto& e : std::filesystem::directory_iterator(dir.path + "/index")) old_files.insert(e.path().filename());
  auto lock = RepoLock::acquire(*repo, LockKind::kExclusive);
  ASSERT_TRUE(lock.is_ok());
  auto r = repair_index(*repo, 20);
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  EXPECT_GE(r->index_files_written, 3u);
  EXPECT_EQ(index_file_count(dir.path), r->index_files_written);
  EXPECT_EQ(r->index_files_replaced, before);
  for (const auto& e : std::filesystem::directory_iterator(dir.path + "/index"))
    EXPECT_FALSE(old_files.count(e.path().filename())) << "an old index file was left";
  auto fresh = testing::open_repo(dir.path);
  for (const auto& blobs : kept)
    for (const auto& b : blobs) ASSERT_TRUE(fresh->read_blob(b).is_ok());
  lock->reset();

  // Prune after forgetting one snapshot: its data goes, the index stays in parts, the rest is found.
  ASSERT_TRUE(fresh->forget_snapshot(ids[0]).is_ok());
  auto plock = RepoLock::acquire(*fresh, LockKind::kMaintenance);
  PruneOptions po;
  po.index_part_entries = 20;
  auto pr = prune_repository(*fresh, po, **plock);
  ASSERT_TRUE(pr.is_ok()) << pr.status().message();
  EXPECT_GE(index_file_count(dir.path), 2u);
  auto after = testing::open_repo(dir.path);
  for (size_t i = 1; i < kept.size(); ++i)
    for (const auto& b : kept[i]) EXPECT_TRUE(after->read_blob(b).is_ok());
  auto c = check_repository(*testing::open_repo(dir.path), {true, 0, 0}, nullptr);
  EXPECT_TRUE(c->ok()) << (c->errors.empty() ? "" : c->errors[0]);
}

TEST(Prune, WaitsForEarlierWritersAndResurrectsWhatTheirSnapshotsNeed) {
  TempDir dir;
  auto repo = testing::init_repo(dir.path);
  auto blobs = late_snapshot_on_tombstones(dir.path, *repo, 3);
  ASSERT_FALSE(blobs.empty());
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

// A snapshot that deduplicated against packs prune had tombstoned is restorable only while those packs
// exist. `check` must read them under --read-data and report them when they are damaged or gone (a
// prune killed between deleting packs and rewriting the index leaves exactly that).
TEST(Check, PacksReachedOnlyThroughTombstonesMustExistAndAreRead) {
  TempDir dir;
  auto repo = testing::init_repo(dir.path);
  auto blobs = late_snapshot_on_tombstones(dir.path, *repo, 4);
  ASSERT_FALSE(blobs.empty());

  auto fresh = testing::open_repo(dir.path);
  ASSERT_TRUE(fresh->load_index().is_ok());
  ASSERT_FALSE(fresh->index().contains(blobs[0]));
  auto loc = fresh->tombstoned().find(blobs[0]);
  ASSERT_TRUE(loc);
  std::string name = to_hex(loc->pack);
  std::filesystem::path pack = std::filesystem::path(dir.path) / "data" / name.substr(0, 2) / name;
  ASSERT_TRUE(std::filesystem::exists(pack)) << pack;

  // Sound: the tombstoned pack is read with the live ones.
  auto sound = check_repository(*testing::open_repo(dir.path), {true, 0, 0}, nullptr);
  ASSERT_TRUE(sound.is_ok());
  EXPECT_TRUE(sound->ok()) << (sound->errors.empty() ? "" : sound->errors[0]);
  EXPECT_EQ(sound->packs_read, sound->packs) << "every stored pack is live or needed: all are read";

  // Damaged: --read-data reports it.
  {
    std::fstream f(pack, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(100);
    f.put('\x5a');
  }
  auto damaged = check_repository(*testing::open_repo(dir.path), {true, 0, 0}, nullptr);
  ASSERT_TRUE(damaged.is_ok());
  bool named = false;
  for (const auto& e : damaged->errors) named |= e.find(name) != std::string::npos;
  EXPECT_TRUE(named) << "a damaged tombstoned pack a snapshot needs is an error";

  // Gone: even without --read-data, the pack is missing.
  std::filesystem::remove(pack);
  auto gone = check_repository(*testing::open_repo(dir.path), {false, 0, 0}, nullptr);
  ASSERT_TRUE(gone.is_ok());
  ASSERT_FALSE(gone->ok()) << "a snapshot whose data is gone must not pass check";
  EXPECT_NE(gone->errors[0].find(name), std::string::npos) << gone->errors[0];
  EXPECT_NE(gone->errors[0].find("missing"), std::string::npos) << gone->errors[0];
}

// A reader lists the index files, then a prune supersedes and deletes them all before the reader gets to
// read them: the files that replace them came after the reader's listing. The reader must list again, not
// carry on without them (a restore found whole packs unknown, and the files they held failed).
TEST(Prune, AReaderWhoseListedIndexFilesVanishListsAgain) {
  TempDir dir;
  auto repo = testing::init_repo(dir.path);
  auto [s1, blobs1] = commit_file(*repo, testing::pseudo_random(200000, 41), 1);
  auto [s2, blobs2] = commit_file(*repo, testing::pseudo_random(200000, 42), 2);
  size_t index_files = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir.path + "/index")) index_files += e.is_regular_file();
  ASSERT_GE(index_files, 2u);

  // The reader's backend runs a prune (in another handle) just before the reader's first index read.
  class PruneBeforeFirstIndexRead : public storage::Backend {
   public:
    explicit PruneBeforeFirstIndexRead(const std::string& d) : inner_(d), dir_(d) {}
    std::string location() const override { return inner_.location(); }
    Status create_layout(bool object_lock) override { return inner_.create_layout(object_lock); }
    Status save(const storage::Handle& h, ByteView data, const storage::SaveOptions& o) override {
      return inner_.save(h, data, o);
    }
    Result<storage::FileInfo> stat(const storage::Handle& h) override { return inner_.stat(h); }
    Status list(FileType t, const std::function<Status(const storage::FileInfo&)>& fn) override { return inner_.list(t, fn); }
    Status remove(const storage::Handle& h) override { return inner_.remove(h); }
    Result<Bytes> load(const storage::Handle& h, uint64_t offset, uint64_t length) override {
      if (h.type == FileType::kIndex && !pruned_) {
        pruned_ = true;
        auto other = testing::open_repo(dir_);
        auto lock = RepoLock::acquire(*other, LockKind::kMaintenance);
        EXPECT_TRUE(lock.is_ok());
        PruneOptions o;
        o.max_unused = 0;
        auto r = prune_repository(*other, o, **lock);
        EXPECT_TRUE(r.is_ok()) << r.status().message();
      }
      return inner_.load(h, offset, length);
    }
    bool pruned_ = false;

   private:
    storage::LocalBackend inner_;
    std::string dir_;
  };
  auto backend = std::make_unique<PruneBeforeFirstIndexRead>(dir.path);
  auto* probe = backend.get();
  auto reader = Repository::open(std::move(backend), "pw");
  ASSERT_TRUE(reader.is_ok()) << reader.status().message();
  ASSERT_TRUE((*reader)->load_index().is_ok());
  ASSERT_TRUE(probe->pruned_);
  for (const auto& ids : {blobs1, blobs2})
    for (const auto& id : ids) {
      EXPECT_TRUE((*reader)->index().contains(id)) << "a blob of a kept snapshot is unknown after the prune";
      auto data = (*reader)->read_blob(id);
      EXPECT_TRUE(data.is_ok()) << data.status().message();
    }
  size_t remaining = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir.path + "/index")) remaining += e.is_regular_file();
  EXPECT_EQ(remaining, 1u) << "the prune replaced every index file the reader listed";
}

}  // namespace lifeboat::repo
