// Files source: backup then restore reproduces contents and metadata; incremental backups skip unread files.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

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

}  // namespace lifeboat::sources::files
