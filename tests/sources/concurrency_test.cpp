// Backup, forget + prune and restore at once, in one process, each with its own repository handle and
// lock, as three commands would run. Built with ThreadSanitizer (`make tsan`) this is the data-race
// test of the engine's shared parts; in every build it checks that nothing referenced is lost.
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <thread>

#include "../repo/test_repo.h"
#include "repo/check.h"
#include "repo/lock.h"
#include "repo/prune.h"
#include "sources/files/files_backup.h"
#include "repo/archiver/archiver.h"
#include "repo/restorer/restorer.h"

namespace lifeboat::sources::files {

namespace fs = std::filesystem;
using testing::TempDir;

namespace {

constexpr int kRounds = 8;
constexpr int kFilesPerRound = 24;

// Round k's tree: files drawn from a small pool (so forgotten blobs come back in later rounds and race
// prune's marks) plus one file only that round has (so prune always has something to delete).
std::map<std::string, std::string> round_files(int k) {
  static const std::vector<std::string> pool = [] {
    std::vector<std::string> p;
    for (uint64_t i = 0; i < 16; ++i) p.push_back(to_string(testing::pseudo_random(20000 + 3000 * i, 100 + i)));
    return p;
  }();
  std::map<std::string, std::string> files;
  for (int i = 0; i < kFilesPerRound; ++i)
    files[fmt::format("f{:02}", i)] = pool[static_cast<size_t>(i * 5 + k * 3) % pool.size()];
  files["own"] = to_string(testing::pseudo_random(90000, 1000 + static_cast<uint64_t>(k)));
  return files;
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

// Restores `snap` into `target` and compares every file with what round `k` wrote.
void restore_and_compare(repo::Repository& repo, const repo::SnapshotRef& snap, int k, const std::string& src,
                         const std::string& target, std::vector<std::string>& errors) {
  repo::TreeRestoreOptions o;
  o.target = target;
  o.threads = 2;
  ProgressCounters progress;
  auto r = repo::restore_tree(repo, snap.snapshot.tree, o, progress);
  if (!r) {
    errors.push_back(fmt::format("restore of {} (round {}): {}", snap.short_id(), k, r.status().message()));
    return;
  }
  for (const auto& e : r->errors) errors.push_back(fmt::format("restore of {} (round {}): {}", snap.short_id(), k, e));
  for (const auto& [name, content] : round_files(k)) {
    fs::path p = fs::path(target) / fs::path(src).relative_path() / name;
    if (read_file(p) != content) errors.push_back(fmt::format("{}: restored content differs", p.string()));
  }
}

}  // namespace

TEST(Concurrency, BackupPruneAndRestoreAtOnceLoseNothing) {
  TempDir repo_dir, work;
  ASSERT_TRUE(testing::init_repo(repo_dir.path));
  std::mutex mu;
  std::map<std::string, int> round_of;  // snapshot ID -> round
  std::vector<std::string> errors;
  std::atomic<bool> writing{true};
  std::atomic<int> prunes{0}, restores{0};
  auto src_of = [&](int k) { return fmt::format("{}/src-{}", work.path, k); };
  auto fail = [&](std::string e) {
    std::lock_guard lk(mu);
    errors.push_back(std::move(e));
  };

  std::thread writer([&] {
    for (int k = 0; k < kRounds; ++k) {
      fs::create_directories(src_of(k));
      for (const auto& [name, content] : round_files(k)) std::ofstream(src_of(k) + "/" + name, std::ios::binary) << content;
      auto repo = testing::open_repo(repo_dir.path);
      auto lock = repo::RepoLock::acquire(*repo, repo::LockKind::kShared);
      if (!lock) return fail("backup lock: " + lock.status().message());
      FilesBackupOptions o;
      o.paths = {src_of(k)};
      o.threads = 2;
      ProgressCounters progress;
      auto r = backup_files(*repo, o, progress);
      if (!r) return fail(fmt::format("backup {}: {}", k, r.status().message()));
      std::lock_guard lk(mu);
      round_of[r->snapshot_id] = k;
    }
    writing = false;
  });

  // forget all but the newest two snapshots, then prune everything unused, in a loop.
  std::thread pruner([&] {
    while (writing) {
      auto repo = testing::open_repo(repo_dir.path);
      auto lock = repo::RepoLock::acquire(*repo, repo::LockKind::kMaintenance);
      if (!lock) return fail("prune lock: " + lock.status().message());
      auto snaps = repo->list_snapshots();
      if (!snaps) return fail("prune listing: " + snaps.status().message());
      for (size_t i = 0; i + 2 < snaps->size(); ++i) {
        Status s = repo->forget_snapshot((*snaps)[i].id).status();
        if (!s) return fail("forget: " + s.message());
      }
      repo::PruneOptions po;
      po.max_unused = 0;
      auto r = prune_repository(*repo, po, **lock);
      if (!r) return fail("prune: " + r.status().message());
      ++prunes;
    }
  });

  // Restores the newest snapshot again and again while the others write and delete.
  std::thread restorer([&] {
    for (int n = 0; writing; ++n) {
      auto repo = testing::open_repo(repo_dir.path);
      auto lock = repo::RepoLock::acquire(*repo, repo::LockKind::kShared);
      if (!lock) return fail("restore lock: " + lock.status().message());
      auto snaps = repo->list_snapshots();
      if (!snaps) return fail("restore listing: " + snaps.status().message());
      if (snaps->empty()) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
        continue;
      }
      const auto& snap = snaps->back();
      int k;
      {
        std::lock_guard lk(mu);
        auto it = round_of.find(snap.id);
        if (it == round_of.end()) continue;  // committed, but the writer has not recorded it yet
        k = it->second;
      }
      std::vector<std::string> errs;
      restore_and_compare(*repo, snap, k, src_of(k), fmt::format("{}/restore-{}", work.path, n), errs);
      for (auto& e : errs) fail(std::move(e));
      fs::remove_all(fmt::format("{}/restore-{}", work.path, n));
      ++restores;
    }
  });

  writer.join();
  pruner.join();
  restorer.join();
  ASSERT_TRUE(errors.empty()) << fmt::format("{}", fmt::join(errors, "\n"));
  EXPECT_GE(prunes.load(), 1);
  EXPECT_GE(restores.load(), 1);

  // Afterwards: a final prune, the whole repository read back, and every snapshot left restores.
  auto repo = testing::open_repo(repo_dir.path);
  {
    auto lock = repo::RepoLock::acquire(*repo, repo::LockKind::kMaintenance);
    ASSERT_TRUE(lock.is_ok()) << lock.status().message();
    ASSERT_TRUE(prune_repository(*repo, {}, **lock).is_ok());
  }
  auto report = repo::check_repository(*repo, {.read_data = true}, nullptr);
  ASSERT_TRUE(report.is_ok()) << report.status().message();
  EXPECT_TRUE(report->ok()) << fmt::format("{}", fmt::join(report->errors, "\n"));
  auto snaps = repo->list_snapshots();
  ASSERT_TRUE(snaps.is_ok());
  ASSERT_GE(snaps->size(), 2u);
  for (const auto& s : *snaps) {
    int k = round_of.at(s.id);
    restore_and_compare(*repo, s, k, src_of(k), fmt::format("{}/final-{}", work.path, s.short_id()), errors);
  }
  EXPECT_TRUE(errors.empty()) << fmt::format("{}", fmt::join(errors, "\n"));
}

}  // namespace lifeboat::sources::files
