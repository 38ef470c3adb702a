// Verification of a restored tree: reads the target back and compares it with the backed-up tree.
#include "repo/restorer/verify.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <dirent.h>

#include <cerrno>
#include <cstring>
#include <set>

#include "core/interrupt.h"
#include "repo/file_metadata.h"

namespace lifeboat::repo {

Status verify_file_content(repo::Repository& repo, int fd, const Node& node, const std::string& path) {
  off_t off = 0;
  Bytes buf;
  for (const auto& id : node.content) {
    auto loc = repo.index().find(id);
    if (!loc) loc = repo.tombstoned().find(id);
    if (!loc) return Error(Code::kCorrupt, "verify " + path + ": blob not in index");
    buf.resize(loc->raw_len);
    size_t got = 0;
    while (got < buf.size()) {
      ssize_t r = pread(fd, buf.data() + got, buf.size() - got, off + static_cast<off_t>(got));
      if (r <= 0) return Error(Code::kCorrupt, fmt::format("verify {}: shorter than the backup ({} bytes)", path, node.size));
      got += static_cast<size_t>(r);
    }
    if (repo.blob_id(buf) != id)
      return Error(Code::kCorrupt, fmt::format("verify {}: bytes on disk differ from the backup at offset {}", path, off));
    off += static_cast<off_t>(buf.size());
  }
  char extra;
  if (pread(fd, &extra, 1, off) > 0)
    return Error(Code::kCorrupt, fmt::format("verify {}: longer than the backup ({} bytes)", path, node.size));
  return Status::ok();
}

namespace {

// The backed-up paths, relative to the tree's top: whether a path is one of them or below one (its
// metadata and extra entries are content), or only on the way down to them.
struct Roots {
  std::vector<std::string> rel;  // empty: everything is content
  bool content(const std::string& path) const {
    if (rel.empty()) return true;
    for (const auto& r : rel)
      if (r.empty() || path == r || path.starts_with(r + "/")) return true;
    return false;
  }
};

Status verify_tree(repo::Repository& repo, const repo::BlobId& tree_id, const std::string& target, const std::string& prefix,
                   const Roots& roots, TreeVerification& out) {
  LB_ASSIGN_OR_RETURN(repo::Tree tree, repo.load_tree(tree_id));
  auto problem = [&](std::string p) {
    if (out.problems.size() < 20) out.problems.push_back(std::move(p));
  };
  auto missing = [&](std::string p) {
    if (out.missing.size() < 20) out.missing.push_back(p);
    problem(std::move(p));
  };
  // What the directory holds that the tree does not (the target's top level too), in backed-up
  // directories only.
  std::set<std::string> names;
  for (const auto& n : tree.nodes) names.insert(n.name);
  DIR* d = roots.content(prefix) ? opendir((prefix.empty() ? target : target + "/" + prefix).c_str()) : nullptr;
  if (d) {
    while (dirent* e = readdir(d)) {
      std::string name = e->d_name;
      if (name == "." || name == ".." || names.count(name)) continue;
      ++out.extra_count;
      if (out.extra.size() < 20) out.extra.push_back(prefix.empty() ? name : prefix + "/" + name);
    }
    closedir(d);
  }
  // The metadata the restore promises: mode, modification time, extended attributes, owner and
  // group (when running as root, when a restore sets them), a link's target, a device's number.
  auto compare_metadata = [&](const Node& n, const std::string& rel, const std::string& path, const struct stat& st) {
    if (!roots.content(rel)) return;  // a directory on the way down to the backed-up paths
    Node got = node_from_stat(path, n.name, st);
    std::vector<std::string> what;
    if (n.kind != NodeKind::kSymlink && (got.mode & 07777) != (n.mode & 07777))
      what.push_back(fmt::format("mode {:04o}, the backup has {:04o}", got.mode & 07777, n.mode & 07777));
    if (got.mtime_ns != n.mtime_ns) what.push_back("modification time");
    if (geteuid() == 0 && (got.uid != n.uid || got.gid != n.gid))
      what.push_back(fmt::format("owner {}:{}, the backup has {}:{}", got.uid, got.gid, n.uid, n.gid));
    if (got.xattrs != n.xattrs) what.push_back("extended attributes");
    if ((n.kind == NodeKind::kCharDev || n.kind == NodeKind::kBlockDev) && got.rdev != n.rdev) what.push_back("device number");
    if (what.empty()) return;
    ++out.metadata_count;
    if (out.metadata.size() < 20) out.metadata.push_back(fmt::format("{}: {}", rel, fmt::join(what, ", ")));
  };
  for (const auto& n : tree.nodes) {
    if (interrupted()) return Error(Code::kInterrupted, "interrupted");
    std::string rel = prefix.empty() ? n.name : prefix + "/" + n.name;
    std::string path = target + "/" + rel;
    struct stat st;
    bool present = lstat(path.c_str(), &st) == 0;
    switch (n.kind) {
      case NodeKind::kDir:
        ++out.dirs_expected;
        if (!present || !S_ISDIR(st.st_mode)) {
          missing(fmt::format("{}: directory missing", rel));
          break;
        }
        ++out.dirs_found;
        if (n.subtree) LB_RETURN_IF_ERROR(verify_tree(repo, *n.subtree, target, rel, roots, out));
        compare_metadata(n, rel, path, st);
        break;
      case NodeKind::kFile: {
        ++out.files_expected;
        if (!present || !S_ISREG(st.st_mode)) {
          missing(fmt::format("{}: file missing", rel));
          break;
        }
        ++out.files_found;
        int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) {
          problem(fmt::format("{}: cannot open: {}", rel, strerror(errno)));
          break;
        }
        Status s = static_cast<uint64_t>(st.st_size) == n.size
                       ? verify_file_content(repo, fd, n, rel)
                       : Error(Code::kCorrupt, fmt::format("verify {}: {} bytes, the backup has {}", rel, st.st_size, n.size));
        ::close(fd);
        if (s) ++out.files_verified;
        else problem(s.message());
        compare_metadata(n, rel, path, st);
        break;
      }
      case NodeKind::kSymlink: {
        ++out.others_expected;
        char buf[4096];
        ssize_t len = present && S_ISLNK(st.st_mode) ? readlink(path.c_str(), buf, sizeof buf) : -1;
        if (len < 0 || std::string(buf, static_cast<size_t>(len)) != n.link_target) missing(fmt::format("{}: symlink missing or changed", rel));
        else {
          ++out.others_found;
          compare_metadata(n, rel, path, st);
        }
        break;
      }
      case NodeKind::kSocket:
        break;
      default: {
        ++out.others_expected;
        bool same_type = present && ((n.kind == NodeKind::kFifo && S_ISFIFO(st.st_mode)) ||
                                     (n.kind == NodeKind::kCharDev && S_ISCHR(st.st_mode)) ||
                                     (n.kind == NodeKind::kBlockDev && S_ISBLK(st.st_mode)));
        if (same_type) {
          ++out.others_found;
          compare_metadata(n, rel, path, st);
        } else {
          missing(fmt::format("{}: {}", rel, present ? "another type of file than the backup's" : "special file missing"));
        }
      }
    }
  }
  return Status::ok();
}

}  // namespace

Result<TreeVerification> verify_restored_tree(Repository& repo, const BlobId& tree, const std::string& target,
                                              const std::vector<std::string>& roots) {
  LB_RETURN_IF_ERROR(repo.load_index());
  TreeVerification out;
  std::string t = target;
  while (t.size() > 1 && t.back() == '/') t.pop_back();
  Roots r;
  for (const auto& p : roots) {
    if (!p.starts_with("/")) continue;  // not a path (a URL, a project)
    std::string rel = p.substr(1);
    while (!rel.empty() && rel.back() == '/') rel.pop_back();
    r.rel.push_back(rel);
  }
  LB_RETURN_IF_ERROR(verify_tree(repo, tree, t, "", r, out));
  return out;
}

}  // namespace lifeboat::repo
