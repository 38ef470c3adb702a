// The archiver: walks paths into trees through a write session (parallel file reading under a single
// walker, trees written bottom-up), reusing a parent tree for unchanged files. The files, config and
// models kinds store directories through it.
#include "repo/archiver/archiver.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <fmt/format.h>
#include <fnmatch.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <thread>

#include "core/interrupt.h"
#include "core/platform_user.h"
#include "core/time.h"
#include "core/worker_pool.h"
#include "repo/file_metadata.h"

namespace lifeboat::repo {

Result<size_t> FdSource::read(uint8_t* buf, size_t n) {
  for (;;) {
    if (waits_) {
      pollfd p{fd_, POLLIN, 0};
      if (interrupted()) return Error(Code::kInterrupted, "interrupted");
      if (::poll(&p, 1, 200) <= 0) continue;  // nothing yet, or a signal (EINTR): look at the flag again
    }
    ssize_t r = ::read(fd_, buf, n);
    if (r >= 0) return static_cast<size_t>(r);
    if (errno != EINTR) return Error(Code::kIo, fmt::format("read {}: {}", path_, strerror(errno)));
  }
}

namespace {

std::string join(const std::string& dir, const std::string& name) { return dir == "/" ? "/" + name : dir + "/" + name; }

// One directory being backed up. Entries fill in from worker threads; whoever completes the last
// outstanding entry stores the tree and reports to the parent, so the walker never waits for a
// directory to finish and the workers never drain at directory boundaries.
struct DirJob {
  std::string path;
  Tree tree;
  std::vector<char> failed;
  std::atomic<size_t> pending{1};  // one token held by the walker until the listing is processed
  DirJob* parent = nullptr;
  size_t slot = 0;
  Tree* out_tree = nullptr;  // a holder for top-level targets: hand the nodes over instead of storing
};

class Archiver {
 public:
  Archiver(repo::Repository& repo, repo::WriteSession& session, const ArchiveOptions& options,
              ProgressCounters& progress)
      : repo_(repo), session_(session), options_(options), progress_(progress),
        pool_(options.threads ? options.threads : WorkerPool::default_threads(), 256) {}

  Result<BlobId> run();
  std::vector<std::string> unreadable;
  uint64_t files_new = 0, files_changed = 0, files_unmodified = 0, dirs = 0, total_bytes = 0;

 private:
  struct PathPart {
    std::map<std::string, PathPart> children;
    bool is_target = false;
  };
  // Starts a directory; it completes (now or later) into parent->tree.nodes[slot] or *result.
  void start_dir(const std::string& path, const Tree* parent_tree, DirJob* parent, size_t slot);
  // Handles one listed entry of `job` at `slot`: reuse, submit for reading, or recurse.
  void start_entry(DirJob* job, size_t slot, const std::string& path, const Node* parent_node);
  void release(DirJob* job);
  Result<BlobId> build_prefix(const PathPart& part, const std::string& path, const Tree* parent);
  bool excluded(const std::string& path, const std::string& name) const;
  void note_unreadable(const std::string& path, const std::string& why) {
    std::lock_guard l(mu_);
    unreadable.push_back(path + ": " + why);
    progress_.errors++;
  }
  void note_fatal(const Status& s) {
    std::lock_guard l(mu_);
    if (fatal_) fatal_ = s;
  }
  std::optional<Tree> load_parent_subtree(const Node* parent_node) {
    if (!parent_node || parent_node->kind != NodeKind::kDir || !parent_node->subtree) return std::nullopt;
    auto t = repo_.load_tree(*parent_node->subtree);
    if (!t) return std::nullopt;  // a damaged parent only costs re-reading
    return std::move(*t);
  }
  void read_file(DirJob* job, size_t slot, const std::string& path, bool changed);

  repo::Repository& repo_;
  repo::WriteSession& session_;
  const ArchiveOptions& options_;
  ProgressCounters& progress_;
  WorkerPool pool_;
  std::mutex mu_;
  Status fatal_;
};

bool Archiver::excluded(const std::string& path, const std::string& name) const {
  for (const auto& p : options_.excludes)
    if (fnmatch(p.c_str(), name.c_str(), 0) == 0 || fnmatch(p.c_str(), path.c_str(), 0) == 0) return true;
  return false;
}

void Archiver::release(DirJob* job) {
  while (job) {
    if (job->pending.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
    // Last entry done: store this directory's tree.
    Tree out;
    out.nodes.reserve(job->tree.nodes.size());
    for (size_t i = 0; i < job->tree.nodes.size(); ++i)
      if (!job->failed[i]) out.nodes.push_back(std::move(job->tree.nodes[i]));
    DirJob* parent = job->parent;
    if (job->out_tree) {
      *job->out_tree = std::move(out);
    } else {
      auto id = session_.store_tree(out);
      if (!id) note_fatal(id.status().with_context(job->path));
      if (parent) {
        if (id) parent->tree.nodes[job->slot].subtree = *id;
        else parent->failed[job->slot] = 1;
      }
    }
    delete job;
    job = parent;  // our completion may complete the parent
  }
}

void Archiver::read_file(DirJob* job, size_t slot, const std::string& path, bool changed) {
  Node& node = job->tree.nodes[slot];
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOATIME);
  if (fd < 0 && errno == EPERM) fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);  // O_NOATIME needs ownership
  if (fd < 0) {
    note_unreadable(path, strerror(errno));
    job->failed[slot] = 1;
    return;
  }
  posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  FdSource src(fd, path);
  auto stored = session_.store_stream(src, &progress_);
  close(fd);
  if (!stored) {
    if (stored.status().code() == Code::kIo) note_unreadable(path, stored.status().message());
    else note_fatal(stored.status().with_context(path));
    job->failed[slot] = 1;
    return;
  }
  node.content = std::move(stored->content);
  node.size = stored->size_bytes;  // what was read, even if the file changed while reading
  std::lock_guard l(mu_);
  (changed ? files_changed : files_new)++;
  progress_.files_done++;
}

void Archiver::start_entry(DirJob* job, size_t slot, const std::string& path, const Node* parent_node) {
  Node& node = job->tree.nodes[slot];
  if (node.kind == NodeKind::kDir) {
    job->pending.fetch_add(1, std::memory_order_relaxed);
    std::optional<Tree> parent_tree = load_parent_subtree(parent_node);
    start_dir(path, parent_tree ? &*parent_tree : nullptr, job, slot);
    std::lock_guard l(mu_);
    dirs++;
    return;
  }
  if (node.kind != NodeKind::kFile) return;
  {
    std::lock_guard l(mu_);
    total_bytes += node.size;
  }
  // Unchanged since the parent snapshot: reuse its content list without reading the file.
  if (parent_node && parent_node->kind == NodeKind::kFile && parent_node->size == node.size &&
      parent_node->mtime_ns == node.mtime_ns && parent_node->ctime_ns == node.ctime_ns &&
      parent_node->inode == node.inode &&
      std::all_of(parent_node->content.begin(), parent_node->content.end(),
                  [&](const BlobId& id) { return repo_.index().contains(id); })) {
    node.content = parent_node->content;
    std::lock_guard l(mu_);
    files_unmodified++;
    progress_.files_done++;
    progress_.bytes_done += node.size;
    return;
  }
  bool changed = parent_node != nullptr;
  job->pending.fetch_add(1, std::memory_order_relaxed);
  pool_.submit([this, job, slot, path, changed] {
    read_file(job, slot, path, changed);
    release(job);
  });
}

void Archiver::start_dir(const std::string& path, const Tree* parent_tree, DirJob* parent, size_t slot) {
  // A directory that cannot be read is left out of its parent (and reported); the parent's token
  // taken for it by start_entry is given back.
  auto skip = [&](const Status& s) {
    parent->failed[slot] = 1;
    if (s.code() == Code::kIo) note_unreadable(path, s.message());
    else note_fatal(s);
    release(parent);
  };
  if (interrupted()) return skip(Error(Code::kInterrupted, "interrupted"));
  DIR* d = opendir(path.c_str());
  if (!d) return skip(Error(Code::kIo, fmt::format("cannot list directory: {}", strerror(errno))));
  auto* job = new DirJob;
  job->path = path;
  job->parent = parent;
  job->slot = slot;
  std::vector<std::string> names;
  while (struct dirent* e = readdir(d)) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
    names.emplace_back(e->d_name);
  }
  closedir(d);
  std::sort(names.begin(), names.end());
  std::vector<std::string> paths;
  job->tree.nodes.reserve(names.size());
  for (const auto& name : names) {
    std::string p = join(path, name);
    if (excluded(p, name)) continue;
    struct stat st;
    if (lstat(p.c_str(), &st) != 0) {
      if (errno != ENOENT) note_unreadable(p, strerror(errno));  // vanished entries are simply gone
      continue;
    }
    job->tree.nodes.push_back(node_from_stat(p, name, st));
    paths.push_back(p);
  }
  job->failed.assign(job->tree.nodes.size(), 0);
  // Files first (they go to the pool), then subdirectories (walked here), so reading overlaps walking.
  for (int pass = 0; pass < 2; ++pass)
    for (size_t i = 0; i < job->tree.nodes.size(); ++i) {
      if ((job->tree.nodes[i].kind == NodeKind::kDir) != (pass == 1)) continue;
      const Node* pn = parent_tree ? parent_tree->find(job->tree.nodes[i].name) : nullptr;
      start_entry(job, i, paths[i], pn);
    }
  release(job);
}

Result<BlobId> Archiver::build_prefix(const PathPart& part, const std::string& path, const Tree* parent) {
  Tree tree;
  for (const auto& [name, child] : part.children) {
    std::string p = join(path, name);
    struct stat st;
    if (lstat(p.c_str(), &st) != 0)
      return Error(Code::kInvalidArgument, fmt::format("cannot back up {}: {}", p, strerror(errno)));
    Node n = node_from_stat(p, name, st);
    const Node* pn = parent ? parent->find(name) : nullptr;
    if (child.is_target) {
      // A one-entry holder job for the target, so files and directories take the same path.
      Tree handed_over;
      auto* holder = new DirJob;
      holder->path = path;
      holder->tree.nodes.push_back(n);
      holder->failed.assign(1, 0);
      holder->out_tree = &handed_over;
      start_entry(holder, 0, p, pn);
      release(holder);
      pool_.wait_idle();
      {
        std::lock_guard l(mu_);
        LB_RETURN_IF_ERROR(fatal_);
      }
      // Empty when the target itself could not be read (reported as unreadable).
      for (auto& node : handed_over.nodes) tree.nodes.push_back(std::move(node));
      continue;
    }
    if (n.kind != NodeKind::kDir) return Error(Code::kInvalidArgument, p + " is not a directory");
    std::optional<Tree> pt = load_parent_subtree(pn);
    LB_ASSIGN_OR_RETURN(BlobId id, build_prefix(child, p, pt ? &*pt : nullptr));
    n.subtree = id;
    tree.nodes.push_back(std::move(n));
  }
  tree.sort();
  return session_.store_tree(tree);
}

Result<BlobId> Archiver::run() {
  PathPart root;
  for (const auto& path : options_.paths) {
    if (path == "/") return Error(Code::kInvalidArgument, "backing up / itself: name its top-level directories instead");
    PathPart* cur = &root;
    size_t pos = 1;
    while (pos <= path.size()) {
      size_t next = path.find('/', pos);
      if (next == std::string::npos) next = path.size();
      cur = &cur->children[path.substr(pos, next - pos)];
      pos = next + 1;
    }
    cur->is_target = true;
    cur->children.clear();  // a target includes everything below it
  }
  // A path given inside another one is included by it, unless the way down passes a symbolic link:
  // the outer path stores the link as a link, so what lies beyond it would be silently missing.
  for (const auto& inner : options_.paths)
    for (const auto& outer : options_.paths) {
      if (inner.size() <= outer.size() + 1 || inner.compare(0, outer.size() + 1, outer + "/") != 0) continue;
      for (size_t slash = inner.find('/', outer.size() + 1); slash != std::string::npos; slash = inner.find('/', slash + 1)) {
        std::string step = inner.substr(0, slash);
        struct stat st;
        if (lstat(step.c_str(), &st) == 0 && S_ISLNK(st.st_mode)) {
          note_unreadable(inner, fmt::format("not backed up: {} is a symbolic link, stored as a link inside {}; give "
                                             "the path it points to instead",
                                             step, outer));
          break;
        }
      }
    }
  std::optional<Tree> parent_root;
  std::optional<BlobId> parent_id = options_.parent_tree;
  if (parent_id) {
    auto t = repo_.load_tree(*parent_id);
    if (t) parent_root = std::move(*t);
  }
  auto id = build_prefix(root, "", parent_root ? &*parent_root : nullptr);
  pool_.wait_idle();
  return id;
}


}  // namespace

void count_path_totals(const std::vector<std::string>& paths, ProgressCounters& progress, const std::atomic<bool>& stop) {
  std::vector<std::string> stack(paths.begin(), paths.end());
  while (!stack.empty() && !stop) {
    std::string p = stack.back();
    stack.pop_back();
    struct stat st;
    if (lstat(p.c_str(), &st) != 0) continue;
    if (S_ISREG(st.st_mode)) {
      progress.files_total++;
      progress.bytes_total += static_cast<uint64_t>(st.st_size);
    } else if (S_ISDIR(st.st_mode)) {
      if (DIR* d = opendir(p.c_str())) {
        while (struct dirent* e = readdir(d))
          if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) stack.push_back(join(p, e->d_name));
        closedir(d);
      }
    }
  }
  progress.totals_final = !stop;
}

std::string absolute_path(const std::string& path) {
  std::string p = path;
  if (p.empty() || p[0] != '/') {
    char cwd[4096];
    if (getcwd(cwd, sizeof cwd)) p = std::string(cwd) + "/" + p;
  }
  std::vector<std::string> parts;
  size_t pos = 0;
  while (pos <= p.size()) {
    size_t next = p.find('/', pos);
    if (next == std::string::npos) next = p.size();
    std::string part = p.substr(pos, next - pos);
    if (part == "..") {
      if (!parts.empty()) parts.pop_back();
    } else if (!part.empty() && part != ".") {
      parts.push_back(part);
    }
    pos = next + 1;
  }
  std::string out;
  for (const auto& part : parts) out += "/" + part;
  return out.empty() ? "/" : out;
}

Result<ArchivedTree> archive_paths(repo::Repository& repo, repo::WriteSession& session, const ArchiveOptions& options,
                                ProgressCounters& progress) {
  if (options.paths.empty()) return Error(Code::kInvalidArgument, "nothing to back up: give at least one path");
  for (const auto& p : options.paths) {
    struct stat st;
    if (lstat(p.c_str(), &st) != 0)
      return Error(Code::kInvalidArgument, fmt::format("cannot back up {}: {}", p, strerror(errno)));
  }
  Archiver backup(repo, session, options, progress);
  LB_ASSIGN_OR_RETURN(auto tree, backup.run());
  ArchivedTree out;
  out.tree = tree;
  out.summary = {{"files_new", backup.files_new},   {"files_changed", backup.files_changed},
                 {"files_unmodified", backup.files_unmodified}, {"dirs", backup.dirs},
                 {"total_bytes", backup.total_bytes}, {"unreadable", backup.unreadable.size()}};
  out.unreadable = backup.unreadable;
  return out;
}

}  // namespace lifeboat::repo
