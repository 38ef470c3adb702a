// Files source: backup then restore reproduces contents and metadata; incremental backups skip unread files.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "../repo/test_repo.h"
#include "sources/files/files_backup.h"
#include "repo/archiver/archiver.h"
#include "repo/restorer/restorer.h"

namespace lifeboat::sources::files {

namespace fs = std::filesystem;
using testing::TempDir;

static void write_file(const std::string& path, const std::string& content) {
  std::ofstream(path, std::ios::binary) << content;
}
static std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

TEST(FilesSource, RoundTripKeepsContentsAndMetadata) {
  TempDir repo_dir, src, out;
  auto repo = testing::init_repo(repo_dir.path);
  std::string data = src.path + "/data";
  fs::create_directories(data + "/sub/empty");
  write_file(data + "/a.txt", "hello");
  write_file(data + "/sub/b.bin", to_string(testing::pseudo_random(300000, 1)));
  write_file(data + "/name with\nnewline \xff", "odd");
  chmod((data + "/a.txt").c_str(), 0640);
  symlink("a.txt", (data + "/link").c_str());
  link((data + "/a.txt").c_str(), (data + "/hard").c_str());
  setxattr((data + "/a.txt").c_str(), "user.tag", "v1", 2, 0);
  struct timespec times[2] = {{1000, 0}, {1700000000, 123456789}};
  utimensat(AT_FDCWD, (data + "/sub/b.bin").c_str(), times, 0);
  // A sparse file: 8 MiB with one byte of data.
  {
    int fd = open((data + "/sparse").c_str(), O_CREAT | O_WRONLY, 0644);
    ASSERT_EQ(pwrite(fd, "x", 1, 4 << 20), 1);
    ASSERT_EQ(ftruncate(fd, 8 << 20), 0);
    close(fd);
  }
  ProgressCounters progress;
  FilesBackupOptions o;
  o.paths = {data};
  auto r = backup_files(*repo, o, progress);
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  EXPECT_TRUE(r->unreadable.empty());

  repo::TreeRestoreOptions ro;
  ro.target = out.path;
  ro.verify = true;
  ProgressCounters rp;
  auto rr = repo::restore_tree(*testing::open_repo(repo_dir.path), r->snapshot.tree, ro, rp);
  ASSERT_TRUE(rr.is_ok()) << rr.status().message();
  EXPECT_TRUE(rr->errors.empty());
  std::string back = out.path + data;
  EXPECT_EQ(read_file(back + "/a.txt"), "hello");
  EXPECT_EQ(read_file(back + "/sub/b.bin"), read_file(data + "/sub/b.bin"));
  EXPECT_EQ(read_file(back + "/name with\nnewline \xff"), "odd");
  EXPECT_TRUE(fs::is_directory(back + "/sub/empty"));
  EXPECT_EQ(fs::read_symlink(back + "/link"), "a.txt");
  struct stat a, h, b, sp;
  ASSERT_EQ(stat((back + "/a.txt").c_str(), &a), 0);
  ASSERT_EQ(stat((back + "/hard").c_str(), &h), 0);
  EXPECT_EQ(a.st_ino, h.st_ino);
  EXPECT_EQ(a.st_mode & 07777, 0640u);
  ASSERT_EQ(stat((back + "/sub/b.bin").c_str(), &b), 0);
  EXPECT_EQ(b.st_mtim.tv_sec, 1700000000);
  EXPECT_EQ(b.st_mtim.tv_nsec, 123456789);
  char xv[8] = {};
  EXPECT_EQ(getxattr((back + "/a.txt").c_str(), "user.tag", xv, sizeof xv), 2);
  EXPECT_STREQ(xv, "v1");
  ASSERT_EQ(stat((back + "/sparse").c_str(), &sp), 0);
  EXPECT_EQ(sp.st_size, 8 << 20);
  EXPECT_LT(sp.st_blocks * 512, 1 << 20);  // holes stayed holes
  EXPECT_EQ(rr->files_verified, 4u);  // the hard link is linked, not written again
}

TEST(FilesSource, IncrementalBackupReadsOnlyChangedFiles) {
  TempDir repo_dir, src;
  auto repo = testing::init_repo(repo_dir.path);
  for (int i = 0; i < 20; ++i) write_file(src.path + "/f" + std::to_string(i), std::string(1000 + i, 'a' + i % 26));
  FilesBackupOptions o;
  o.paths = {src.path};
  ProgressCounters p1;
  auto first = backup_files(*repo, o, p1);
  ASSERT_TRUE(first.is_ok());
  EXPECT_EQ(first->snapshot.summary["files_new"], 20);
  write_file(src.path + "/f3", "changed");
  o.parent = repo::SnapshotRef{first->snapshot_id, first->snapshot};
  ProgressCounters p2;
  auto second = backup_files(*repo, o, p2);
  ASSERT_TRUE(second.is_ok());
  EXPECT_EQ(second->snapshot.summary["files_changed"], 1);
  EXPECT_EQ(second->snapshot.summary["files_unmodified"], 19);
  EXPECT_EQ(second->snapshot.parent, first->snapshot_id);
}

TEST(FilesSource, AbsolutePathNormalizes) {
  EXPECT_EQ(repo::absolute_path("/a/./b//c/../d/"), "/a/b/d");
  EXPECT_EQ(repo::absolute_path("/"), "/");
  EXPECT_EQ(repo::absolute_path("/.."), "/");
}

// Everything a restore must reproduce below `root`, as one comparable map: per path its type, mode,
// size, content, link target, modification time, and which paths share an inode (hard links).
static std::map<std::string, std::string> tree_state(const std::string& root) {
  std::map<std::string, std::string> out;
  std::map<ino_t, std::string> first_of_inode;
  for (auto it = fs::recursive_directory_iterator(root); it != fs::recursive_directory_iterator(); ++it) {
    std::string p = it->path().string(), rel = p.substr(root.size());
    struct stat st;
    if (lstat(p.c_str(), &st) != 0) continue;
    std::string v = std::to_string(st.st_mode) + " " + std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec);
    if (S_ISLNK(st.st_mode)) v += " -> " + fs::read_symlink(p).string();
    if (S_ISREG(st.st_mode)) {
      v += " " + std::to_string(st.st_size) + " " + std::to_string(std::hash<std::string>{}(read_file(p)));
      auto [at, first] = first_of_inode.emplace(st.st_ino, rel);
      if (!first) v += " linked to " + at->second;
    }
    out[rel] = v;
  }
  return out;
}

// The restore walks and writes a batch at a time. Batches of every small size (one entry, a few
// blobs, a batch ending inside a directory, a hard link whose first copy is in an earlier batch, a
// blob shared by files of different batches) give exactly what one batch for the whole snapshot
// gives: into an empty target, with include patterns, and over a target that holds something
// (if-changed with --delete).
TEST(FilesSource, BatchedRestoresEqualTheWholeSnapshotInOneBatch) {
  TempDir repo_dir, src;
  auto repo = testing::init_repo(repo_dir.path);
  std::string data = src.path + "/data";
  Bytes shared = testing::pseudo_random(120000, 3);  // several blobs (small test chunker), in files far apart
  for (int d = 0; d < 4; ++d) {
    std::string dir = data + "/d" + std::to_string(d);
    fs::create_directories(dir + "/deep/er");
    for (int f = 0; f < 5; ++f) write_file(dir + "/f" + std::to_string(f), "small " + std::to_string(d * 10 + f));
    write_file(dir + "/deep/shared.bin", to_string(shared));
    write_file(dir + "/deep/er/own.bin", to_string(testing::pseudo_random(70000, 10 + d)));
    write_file(dir + "/empty", "");
    symlink("f0", (dir + "/link").c_str());
  }
  fs::create_directories(data + "/nothing/inside");
  link((data + "/d0/f1").c_str(), (data + "/d3/deep/hard-to-d0-f1").c_str());
  chmod((data + "/d2/f3").c_str(), 0600);
  ProgressCounters progress;
  FilesBackupOptions o;
  o.paths = {data};
  auto r = backup_files(*repo, o, progress);
  ASSERT_TRUE(r.is_ok()) << r.status().message();

  auto restore = [&](const std::string& target, size_t entries, size_t blobs, repo::TreeRestoreOptions ro) {
    ro.target = target;
    ro.batch_entries = entries;
    ro.batch_blobs = blobs;
    ProgressCounters rp;
    auto rr = repo::restore_tree(*testing::open_repo(repo_dir.path), r->snapshot.tree, ro, rp);
    EXPECT_TRUE(rr.is_ok()) << rr.status().message();
    if (rr.is_ok()) {
      EXPECT_TRUE(rr->errors.empty()) << rr->errors.front();
    }
    EXPECT_EQ(rp.files_total.load(), rp.files_done.load()) << "batch " << entries << "/" << blobs;
    EXPECT_EQ(rp.bytes_total.load(), rp.bytes_done.load());
    return rr.is_ok() ? *rr : repo::TreeRestoreResult{};
  };
  const std::vector<std::pair<size_t, size_t>> batches = {{1, 1}, {2, 3}, {7, 5}, {13, 1000}, {1000, 2}};
  auto changes_of = [](const repo::TreeRestoreResult& r) { return r.changes; };
  for (const auto& includes : std::vector<std::vector<std::string>>{{}, {"er"}, {"f3", "link"}}) {
    repo::TreeRestoreOptions ro;
    ro.includes = includes;
    TempDir whole;
    auto w = restore(whole.path, SIZE_MAX, SIZE_MAX, ro);
    auto want = tree_state(whole.path);
    ASSERT_FALSE(want.empty());
    if (includes.empty()) {
      // Below the target the snapshot's absolute paths: the restored source equals the source.
      auto restored = tree_state(whole.path + src.path), source = tree_state(src.path);
      restored.erase("");
      source.erase("");
      for (const auto& [k, v] : source) EXPECT_EQ(restored.count(k) ? restored[k] : "(missing)", v) << k;
      EXPECT_EQ(restored.size(), source.size());
      EXPECT_EQ(w.files, 33u);
    }
    for (const auto& [e, b] : batches) {
      TempDir out;
      auto got = restore(out.path, e, b, ro);
      EXPECT_EQ(tree_state(out.path), want) << "batch " << e << "/" << b << ", " << includes.size() << " include(s)";
      EXPECT_EQ(got.files, w.files);
      EXPECT_EQ(got.dirs, w.dirs);
      std::vector<std::pair<std::string, std::string>> a = changes_of(got), c = changes_of(w);
      for (auto& [what, path] : a) path = path.substr(out.path.size());
      for (auto& [what, path] : c) path = path.substr(whole.path.size());
      EXPECT_EQ(a, c);
    }
  }
  // Over a target holding something: one file changed, one extra, one directory extra.
  auto prepared = [&](const std::string& target) {
    repo::TreeRestoreOptions ro;
    restore(target, SIZE_MAX, SIZE_MAX, ro);
    std::string back = target + data;
    write_file(back + "/d1/f2", "changed here");
    write_file(back + "/d2/deep/extra", "not in the snapshot");
    fs::create_directories(back + "/d3/extra-dir/x");
  };
  repo::TreeRestoreOptions over;
  over.overwrite = repo::Overwrite::kIfChanged;
  over.delete_extra = true;
  TempDir whole;
  prepared(whole.path);
  auto w = restore(whole.path, SIZE_MAX, SIZE_MAX, over);
  EXPECT_EQ(w.deleted, 2u);
  auto want = tree_state(whole.path);
  EXPECT_EQ(want.count(data + "/d2/deep/extra"), 0u);
  for (const auto& [e, b] : batches) {
    TempDir out;
    prepared(out.path);
    auto got = restore(out.path, e, b, over);
    EXPECT_EQ(tree_state(out.path), want) << "batch " << e << "/" << b << " over a target";
    EXPECT_EQ(got.skipped, w.skipped);
    EXPECT_EQ(got.deleted, w.deleted);
  }
}

}  // namespace lifeboat::sources::files
