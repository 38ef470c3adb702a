// POSIX metadata capture and restore.
#include "repo/file_metadata.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <grp.h>
#include <pwd.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <unordered_map>

namespace lifeboat::repo {

namespace {

std::string user_name(uid_t uid) {
  static std::mutex mu;
  static std::unordered_map<uid_t, std::string> cache;
  std::lock_guard lock(mu);
  auto it = cache.find(uid);
  if (it != cache.end()) return it->second;
  struct passwd pw, *res = nullptr;
  char buf[4096];
  std::string name;
  if (getpwuid_r(uid, &pw, buf, sizeof buf, &res) == 0 && res) name = res->pw_name;
  cache[uid] = name;
  return name;
}

std::string group_name(gid_t gid) {
  static std::mutex mu;
  static std::unordered_map<gid_t, std::string> cache;
  std::lock_guard lock(mu);
  auto it = cache.find(gid);
  if (it != cache.end()) return it->second;
  struct group gr, *res = nullptr;
  char buf[4096];
  std::string name;
  if (getgrgid_r(gid, &gr, buf, sizeof buf, &res) == 0 && res) name = res->gr_name;
  cache[gid] = name;
  return name;
}

void read_xattrs(const std::string& path, repo::Node& node) {
  ssize_t len = llistxattr(path.c_str(), nullptr, 0);
  if (len <= 0) return;
  std::string names(static_cast<size_t>(len), '\0');
  len = llistxattr(path.c_str(), names.data(), names.size());
  if (len <= 0) return;
  names.resize(static_cast<size_t>(len));
  for (size_t pos = 0; pos < names.size();) {
    std::string key(names.c_str() + pos);
    pos += key.size() + 1;
    if (key.empty()) continue;
    ssize_t vlen = lgetxattr(path.c_str(), key.c_str(), nullptr, 0);
    if (vlen < 0) continue;
    std::string value(static_cast<size_t>(vlen), '\0');
    vlen = lgetxattr(path.c_str(), key.c_str(), value.data(), value.size());
    if (vlen < 0) continue;
    value.resize(static_cast<size_t>(vlen));
    node.xattrs.emplace_back(std::move(key), std::move(value));
  }
  std::sort(node.xattrs.begin(), node.xattrs.end());
}

int64_t ns_of(const struct timespec& ts) { return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec; }
struct timespec ts_of(int64_t ns) {
  struct timespec ts;
  ts.tv_sec = static_cast<time_t>(ns / 1000000000);
  ts.tv_nsec = static_cast<long>(ns % 1000000000);
  if (ts.tv_nsec < 0) {
    ts.tv_nsec += 1000000000;
    ts.tv_sec -= 1;
  }
  return ts;
}

}  // namespace

repo::Node node_from_stat(const std::string& path, std::string name, const struct stat& st) {
  repo::Node n;
  n.name = std::move(name);
  if (S_ISREG(st.st_mode)) n.kind = repo::NodeKind::kFile;
  else if (S_ISDIR(st.st_mode)) n.kind = repo::NodeKind::kDir;
  else if (S_ISLNK(st.st_mode)) n.kind = repo::NodeKind::kSymlink;
  else if (S_ISFIFO(st.st_mode)) n.kind = repo::NodeKind::kFifo;
  else if (S_ISCHR(st.st_mode)) n.kind = repo::NodeKind::kCharDev;
  else if (S_ISBLK(st.st_mode)) n.kind = repo::NodeKind::kBlockDev;
  else n.kind = repo::NodeKind::kSocket;
  n.mode = st.st_mode & 07777;
  n.uid = st.st_uid;
  n.gid = st.st_gid;
  n.user = user_name(st.st_uid);
  n.group = group_name(st.st_gid);
  n.mtime_ns = ns_of(st.st_mtim);
  n.atime_ns = ns_of(st.st_atim);
  n.ctime_ns = ns_of(st.st_ctim);
  n.inode = st.st_ino;
  n.device = st.st_dev;
  n.links = st.st_nlink;
  if (n.kind == repo::NodeKind::kFile) n.size = static_cast<uint64_t>(st.st_size);
  if (n.kind == repo::NodeKind::kCharDev || n.kind == repo::NodeKind::kBlockDev) n.rdev = st.st_rdev;
  if (n.kind == repo::NodeKind::kSymlink) {
    std::string target(static_cast<size_t>(st.st_size > 0 ? st.st_size : 256) + 1, '\0');
    ssize_t len = readlink(path.c_str(), target.data(), target.size());
    if (len >= 0) target.resize(static_cast<size_t>(len));
    else target.clear();
    n.link_target = std::move(target);
  }
  read_xattrs(path, n);
  return n;
}

Status apply_metadata(const std::string& path, int fd, const repo::Node& n, bool mode_is_set) {
  bool is_link = n.kind == repo::NodeKind::kSymlink;
  // A file we just created is already ours: skip the syscall when that is the recorded owner.
  int rc = 0;
  bool chowned = false;
  static const uid_t euid = geteuid();  // a restore never changes who it runs as: ask once
  static const gid_t egid = getegid();
  if (fd < 0 || n.uid != euid || n.gid != egid) {
    rc = fd >= 0 ? fchown(fd, n.uid, n.gid) : lchown(path.c_str(), n.uid, n.gid);
    chowned = rc == 0;
  }
  if (rc != 0 && errno != EPERM)
    return Error(Code::kIo, fmt::format("chown {}: {}", path, strerror(errno)));
  if (!is_link && (!mode_is_set || chowned)) {
    rc = fd >= 0 ? fchmod(fd, n.mode) : chmod(path.c_str(), n.mode);
    if (rc != 0) return Error(Code::kIo, fmt::format("chmod {}: {}", path, strerror(errno)));
  }
  for (const auto& [k, v] : n.xattrs) {
    rc = fd >= 0 ? fsetxattr(fd, k.c_str(), v.data(), v.size(), 0)
                 : lsetxattr(path.c_str(), k.c_str(), v.data(), v.size(), 0);
    // Some namespaces (trusted.*, security.*) need privileges, symlinks refuse user.*: not fatal.
    if (rc != 0 && errno != EPERM && errno != ENOTSUP && errno != EACCES)
      return Error(Code::kIo, fmt::format("set xattr {} on {}: {}", k, path, strerror(errno)));
  }
  struct timespec times[2] = {ts_of(n.atime_ns), ts_of(n.mtime_ns)};
  rc = fd >= 0 ? futimens(fd, times) : utimensat(AT_FDCWD, path.c_str(), times, AT_SYMLINK_NOFOLLOW);
  if (rc != 0) return Error(Code::kIo, fmt::format("set times on {}: {}", path, strerror(errno)));
  return Status::ok();
}

}  // namespace lifeboat::repo
