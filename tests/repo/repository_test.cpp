// Repository: open/init errors, writer sessions, dedup, reading back, and damage detection.
#include "repo/repository.h"

#include <gtest/gtest.h>

#include <fstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "core/platform_user.h"
#include "core/time.h"
#include "repo/check.h"
#include "repo/lock.h"
#include "repo/write_session.h"
#include "test_repo.h"

namespace lifeboat::repo {

using testing::TempDir;

TEST(Repository, OpenWithoutRepositoryIsRepoMissing) {
  TempDir dir;
  auto r = Repository::open(std::make_unique<storage::LocalBackend>(dir.path + "/nothing"), "pw");
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), Code::kRepoMissing);
  EXPECT_NE(r.status().message().find("lifeboat init"), std::string::npos);
}

TEST(Repository, WrongPasswordIsWrongPassword) {
  TempDir dir;
  testing::init_repo(dir.path);
  auto r = Repository::open(std::make_unique<storage::LocalBackend>(dir.path), "nope");
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), Code::kWrongPassword);
}

TEST(Repository, InitTwiceFails) {
  TempDir dir;
  testing::init_repo(dir.path);
  auto r = Repository::init(std::make_unique<storage::LocalBackend>(dir.path), "pw", testing::small_options());
  EXPECT_EQ(r.status().code(), Code::kAlreadyExists);
}

TEST(Repository, StreamsAreDedupedAndReadBackExactly) {
  TempDir dir;
  auto repo = testing::init_repo(dir.path);
  Bytes data = testing::pseudo_random(3 << 20, 7);
  StoredStream first;
  {
    WriteSession s(*repo);
    MemorySource src(data);
    auto r = s.store_stream(src);
    ASSERT_TRUE(r.is_ok());
    first = *r;
    EXPECT_GT(first.content.size(), 10u);
    EXPECT_EQ(first.size_bytes, data.size());
    ASSERT_TRUE(s.flush().is_ok());
    EXPECT_EQ(s.stats().blobs_new, first.content.size());
  }
  // A second session in a fresh process view: everything is already there.
  auto again = testing::open_repo(dir.path);
  ASSERT_TRUE(again->load_index().is_ok());
  WriteSession s2(*again);
  MemorySource src2(data);
  auto r2 = s2.store_stream(src2);
  ASSERT_TRUE(r2.is_ok());
  EXPECT_EQ(r2->content, first.content);
  EXPECT_EQ(s2.stats().blobs_new, 0u);
  Bytes back;
  for (const auto& id : first.content) {
    auto b = again->read_blob(id);
    ASSERT_TRUE(b.is_ok()) << b.status().message();
    back.insert(back.end(), b->begin(), b->end());
  }
  EXPECT_EQ(back, data);
}

// A finished data pack's buffer is handed to the next pack: nothing of the earlier pack may remain in it.
TEST(Repository, PacksThatReuseABufferHoldOnlyTheirOwnBlobs) {
  TempDir dir;
  auto repo = testing::init_repo(dir.path);  // 1 MiB packs
  Bytes data = testing::pseudo_random(6 << 20, 23);
  StoredStream stored;
  {
    WriteSession s(*repo);
    MemorySource src(data);
    auto r = s.store_stream(src);
    ASSERT_TRUE(r.is_ok());
    stored = *r;
    ASSERT_TRUE(s.flush().is_ok());
    EXPECT_GE(s.stats().packs_written, 5u);
  }
  // Every pack is no bigger than one pack plus its last chunk and header, and reads back whole.
  uint64_t max_pack = (1u << 20) + 65536 + 65536;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir.path + "/data")) {
    if (!e.is_regular_file()) continue;
    EXPECT_LE(e.file_size(), max_pack) << e.path();
  }
  auto again = testing::open_repo(dir.path);
  auto report = check_repository(*again, {true, 0, 0}, nullptr);
  ASSERT_TRUE(report.is_ok());
  EXPECT_TRUE(report->errors.empty()) << report->errors.front();
  Bytes back;
  for (const auto& id : stored.content) {
    auto b = again->read_blob(id);
    ASSERT_TRUE(b.is_ok()) << b.status().message();
    append_bytes(back, *b);
  }
  EXPECT_EQ(back, data);
}

TEST(Repository, CompressibleDataIsStoredSmaller) {
  TempDir dir;
  auto repo = testing::init_repo(dir.path);
  std::string text;
  while (text.size() < (1 << 20)) text += "lifeboat keeps every system restorable. ";
  WriteSession s(*repo);
  MemorySource src(as_bytes(text));
  ASSERT_TRUE(s.store_stream(src).is_ok());
  ASSERT_TRUE(s.flush().is_ok());
  EXPECT_LT(s.stats().stored_bytes_new * 10, s.stats().raw_bytes_new);
}

TEST(Repository, ConcurrentWritersInOneSessionStoreEachBlobOnce) {
  TempDir dir;
  auto repo = testing::init_repo(dir.path);
  Bytes data = testing::pseudo_random(2 << 20, 11);
  WriteSession s(*repo);
  std::vector<std::thread> threads;
  std::vector<StoredStream> results(4);
  for (int i = 0; i < 4; ++i)
    threads.emplace_back([&, i] {
      MemorySource src(data);
      results[static_cast<size_t>(i)] = *s.store_stream(src);
    });
  for (auto& t : threads) t.join();
  ASSERT_TRUE(s.flush().is_ok());
  for (const auto& r : results) EXPECT_EQ(r.content, results[0].content);
  EXPECT_EQ(s.stats().blobs_new, results[0].content.size());
}

TEST(Repository, SnapshotsCommitAfterDataAndListInTimeOrder) {
  TempDir dir;
  auto repo = testing::init_repo(dir.path);
  WriteSession s(*repo);
  Tree t;
  auto tid = s.store_tree(t);
  ASSERT_TRUE(tid.is_ok());
  for (int i = 0; i < 3; ++i) {
    Snapshot snap;
    snap.time_ns = 3000 - i * 1000;
    snap.tree = *tid;
    ASSERT_TRUE(s.commit(snap).is_ok());
  }
  auto list = testing::open_repo(dir.path)->list_snapshots();
  ASSERT_TRUE(list.is_ok());
  ASSERT_EQ(list->size(), 3u);
  EXPECT_LT((*list)[0].snapshot.time_ns, (*list)[2].snapshot.time_ns);
  auto tree = testing::open_repo(dir.path)->load_tree(*tid);
  EXPECT_TRUE(tree.is_ok());
}

static std::string only_pack(const std::string& dir) {
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir + "/data"))
    if (e.is_regular_file()) return e.path().string();
  return "";
}

TEST(Repository, FlippedPackByteIsCaughtByReadAndCheck) {
  TempDir dir;
  auto repo = testing::init_repo(dir.path);
  Bytes data = testing::pseudo_random(100000, 5);
  StoredStream stored;
  {
    WriteSession s(*repo);
    MemorySource src(data);
    stored = *s.store_stream(src);
    ASSERT_TRUE(s.flush().is_ok());
  }
  std::string pack = only_pack(dir.path);
  ASSERT_FALSE(pack.empty());
  {
    std::fstream f(pack, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(50);
    char c;
    f.read(&c, 1);
    c ^= 0x20;
    f.seekp(50);
    f.write(&c, 1);
  }
  auto fresh = testing::open_repo(dir.path);
  auto b = fresh->read_blob(stored.content[0]);
  ASSERT_FALSE(b.is_ok());
  EXPECT_EQ(b.status().code(), Code::kCorrupt);
  auto report = check_repository(*testing::open_repo(dir.path), {true, 0, 0}, nullptr);
  ASSERT_TRUE(report.is_ok());
  EXPECT_FALSE(report->ok());
  ASSERT_FALSE(report->errors.empty());
  EXPECT_NE(report->errors[0].find(std::filesystem::path(pack).filename().string()), std::string::npos);
  // Both the file's hash and the blob's tag catch the flip, and the report says so for each.
  std::string all;
  for (const auto& e : report->errors) all += e + "\n";
  EXPECT_NE(all.find("content does not match its name"), std::string::npos) << all;
  EXPECT_NE(all.find("blob "), std::string::npos) << all;
  // Without --read-data the structure is still fine.
  auto quick = check_repository(*testing::open_repo(dir.path), {}, nullptr);
  EXPECT_TRUE(quick->ok());
}

TEST(Repository, KeysCanBeAddedAndRemovedButNotTheLastOrCurrent) {
  TempDir dir;
  auto repo = testing::init_repo(dir.path);
  auto second = repo->add_key("other", {64, 1, 1});
  ASSERT_TRUE(second.is_ok());
  EXPECT_TRUE(Repository::open(std::make_unique<storage::LocalBackend>(dir.path), "other").is_ok());
  EXPECT_FALSE(repo->remove_key(repo->key_name()).is_ok());
  ASSERT_TRUE(repo->remove_key(*second).is_ok());
  EXPECT_EQ(Repository::open(std::make_unique<storage::LocalBackend>(dir.path), "other").status().code(),
            Code::kWrongPassword);
}

TEST(Repository, CheckComparesEveryHeaderFieldWithTheIndex) {
  // An index entry whose `compressed` flag (or type) disagrees with the pack header would make restore
  // decode the blob wrongly; check --read-data must name the pack.
  for (int field = 0; field < 2; ++field) {
    TempDir dir;
    auto repo = testing::init_repo(dir.path);
    {
      WriteSession s(*repo);
      Bytes data = testing::pseudo_random(50000, 9);  // MemorySource reads it in place: it must outlive the store
      MemorySource src(data);
      ASSERT_TRUE(s.store_stream(src).is_ok());
      ASSERT_TRUE(s.flush().is_ok());
    }
    auto state = repo->read_index_state();
    ASSERT_TRUE(state.is_ok());
    ASSERT_EQ(state->live.size(), 1u);
    IndexFile altered;
    altered.supersedes = state->files;
    auto& [id, entries] = *state->live.begin();
    auto& e = entries.front();
    if (field == 0) e.compressed = !e.compressed;
    else e.type = e.type == BlobType::kData ? BlobType::kTree : BlobType::kData;
    altered.packs.push_back({id, entries});
    ASSERT_TRUE(repo->save_file(FileType::kIndex, altered.encode()).is_ok());

    auto report = check_repository(*testing::open_repo(dir.path), {true, 0, 0}, nullptr);
    ASSERT_TRUE(report.is_ok());
    ASSERT_FALSE(report->ok()) << "field " << field;
    EXPECT_NE(report->errors[0].find("header disagrees with the index"), std::string::npos) << report->errors[0];
    EXPECT_NE(report->errors[0].find(to_hex(id)), std::string::npos);
  }
}

TEST(Lock, ExclusiveConflictsWithSharedAndStaleLocksAreIgnored) {
  TempDir dir;
  auto repo = testing::init_repo(dir.path);
  auto shared1 = RepoLock::acquire(*repo, LockKind::kShared);
  ASSERT_TRUE(shared1.is_ok());
  auto shared2 = RepoLock::acquire(*repo, LockKind::kShared);
  EXPECT_TRUE(shared2.is_ok());
  auto excl = RepoLock::acquire(*repo, LockKind::kExclusive);
  ASSERT_FALSE(excl.is_ok());
  EXPECT_EQ(excl.status().code(), Code::kLockFailed);
  shared1 = Error(Code::kFatal, "released");
  shared2 = Error(Code::kFatal, "released");
  EXPECT_TRUE(RepoLock::acquire(*repo, LockKind::kExclusive).is_ok());
}

TEST(Lock, StaleLocksAreIgnoredAndRemovedLiveOnesAreNot) {
  TempDir dir;
  auto repo = testing::init_repo(dir.path);
  int64_t now = now_unix_ns();
  auto lock_file = [&](int64_t time_ns, const std::string& host, int64_t pid) {
    nlohmann::json j = {{"time_ns", time_ns}, {"started_ns", time_ns}, {"kind", "exclusive"},
                        {"hostname", host},   {"username", "someone"},  {"pid", pid}};
    auto name = repo->save_file(FileType::kLock, as_bytes(j.dump()));
    EXPECT_TRUE(name.is_ok());
    return name.is_ok() ? *name : std::string();
  };
  // Not refreshed for 31 minutes on another host; a dead process on this host (pid beyond pid_max).
  lock_file(now - 31LL * 60 * 1000000000, "elsewhere.example", 1);
  lock_file(now, platform::hostname(), 99999999);
  auto locks = RepoLock::list(*repo);
  ASSERT_TRUE(locks.is_ok());
  ASSERT_EQ(locks->size(), 2u);
  for (const auto& l : *locks) EXPECT_TRUE(l.stale) << l.hostname;
  {
    auto excl = RepoLock::acquire(*repo, LockKind::kExclusive);
    EXPECT_TRUE(excl.is_ok()) << "stale locks must not block: " << excl.status().message();
  }
  // A live lock from another host, refreshed just now, does block.
  std::string live = lock_file(now, "elsewhere.example", 1);
  auto blocked = RepoLock::acquire(*repo, LockKind::kShared);
  ASSERT_FALSE(blocked.is_ok());
  EXPECT_EQ(blocked.status().code(), Code::kLockFailed);
  auto removed = RepoLock::remove_locks(*repo, /*all=*/false);
  ASSERT_TRUE(removed.is_ok());
  EXPECT_EQ(*removed, 2);
  auto left = RepoLock::list(*repo);
  ASSERT_EQ(left->size(), 1u);
  EXPECT_EQ((*left)[0].name, live);
}

}  // namespace lifeboat::repo
