// Files restore: plan the tree, create directories, write the files' data pack by pack, then links and metadata.
#include "sources/files/files_restore.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <fnmatch.h>
#include <linux/openat2.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <dirent.h>

#include <atomic>
#include <deque>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <unordered_map>

#include "core/interrupt.h"
#include "repo/pack_reader.h"
#include "crypto/crypto.h"
#include "sources/files/file_metadata.h"

namespace lifeboat::sources::files {

using repo::Node;
using repo::NodeKind;

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

struct Action {
  std::string rel;  // path relative to the snapshot root
  Node node;
  std::string link_to;  // for a hard link: the relative path of the first copy
};

bool matches_any(const std::vector<std::string>& patterns, const std::string& rel) {
  for (const auto& p : patterns) {
    std::string pat = p.size() > 1 && p[0] == '/' ? p.substr(1) : p;
    if (fnmatch(pat.c_str(), rel.c_str(), 0) == 0) return true;
    size_t slash = rel.rfind('/');
    if (fnmatch(pat.c_str(), rel.c_str() + (slash == std::string::npos ? 0 : slash + 1), 0) == 0) return true;
  }
  return false;
}

// Collects actions in pre-order; returns whether anything below (or the node itself) was selected.
Status plan(repo::Repository& repo, const repo::BlobId& tree_id, const std::string& prefix, bool selected_above,
            const std::vector<std::string>& includes, std::vector<Action>& out,
            std::map<std::pair<uint64_t, uint64_t>, std::string>& first_links, bool& any) {
  LB_ASSIGN_OR_RETURN(repo::Tree tree, repo.load_tree(tree_id));
  for (auto& n : tree.nodes) {
    std::string rel = prefix.empty() ? n.name : prefix + "/" + n.name;
    bool selected = selected_above || includes.empty() || matches_any(includes, rel);
    if (n.kind == NodeKind::kDir) {
      size_t at = out.size();
      out.push_back({rel, n, ""});
      bool below = false;
      if (n.subtree) LB_RETURN_IF_ERROR(plan(repo, *n.subtree, rel, selected, includes, out, first_links, below));
      if (!selected && !below) out.resize(at);  // nothing here was asked for
      if (selected || below) any = true;
      continue;
    }
    if (!selected) continue;
    any = true;
    Action a{rel, n, ""};
    if (n.kind == NodeKind::kFile && n.links > 1) {
      auto key = std::make_pair(n.device, n.inode);
      auto it = first_links.find(key);
      if (it != first_links.end()) a.link_to = it->second;
      else first_links.emplace(key, rel);
    }
    out.push_back(std::move(a));
  }
  return Status::ok();
}

bool all_zero(const uint8_t* p, size_t n) {
  static const uint8_t zeros[4096] = {};
  while (n >= sizeof zeros) {
    if (memcmp(p, zeros, sizeof zeros) != 0) return false;
    p += sizeof zeros;
    n -= sizeof zeros;
  }
  return memcmp(p, zeros, n) == 0;
}

Status write_all(int fd, const uint8_t* p, size_t n, off_t off, const std::string& path) {
  while (n) {
    ssize_t w = pwrite(fd, p, n, off);
    if (w < 0) {
      if (errno == EINTR) continue;
      return Error(Code::kIo, fmt::format("write {}: {}", path, strerror(errno)));
    }
    p += w;
    n -= static_cast<size_t>(w);
    off += w;
  }
  return Status::ok();
}

// `at` is where the entry is (see Beneath); `path` names it in messages.
Status remove_existing(const std::string& at, const std::string& path) {
  struct stat st;
  if (lstat(at.c_str(), &st) != 0) return Status::ok();
  if (S_ISDIR(st.st_mode)) {
    if (rmdir(at.c_str()) != 0)
      return Error(Code::kIo, fmt::format("{} exists as a non-empty directory; restore into an empty target", path));
  } else if (unlink(at.c_str()) != 0) {
    return Error(Code::kIo, fmt::format("remove {}: {}", path, strerror(errno)));
  }
  return Status::ok();
}

// Everything restore creates or changes lies beneath the target, reached without following a
// symbolic link it did not create: the parent directory of each entry is opened with openat2
// (RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS; one component at a time with O_NOFOLLOW where the kernel
// lacks openat2), and the entry is then named through that descriptor (/proc/self/fd/N/NAME), so
// no later step resolves the path again.
class Beneath {
 public:
  // The parent directory of a relative path, held open, and the entry's name in it.
  struct Entry {
    int dir = -1;
    bool owned = true;  // false: a descriptor DirHandles keeps open
    std::string name;
    ~Entry() {
      if (owned && dir >= 0) close(dir);
    }
    std::string at() const { return fmt::format("/proc/self/fd/{}/{}", dir, name); }
  };

  static Result<std::unique_ptr<Beneath>> open(const std::string& target) {
    int fd = ::open(target.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return Error(Code::kIo, fmt::format("open target {}: {}", target, strerror(errno)));
    auto b = std::unique_ptr<Beneath>(new Beneath());
    b->fd_ = fd;
    b->target_ = target;
    return b;
  }
  ~Beneath() {
    if (fd_ >= 0) close(fd_);
  }

  Result<std::shared_ptr<Entry>> entry(const std::string& rel) const {
    auto e = std::make_shared<Entry>();
    std::string parent;
    LB_RETURN_IF_ERROR(split(rel, parent, e->name));
    LB_ASSIGN_OR_RETURN(e->dir, open_dir(parent.empty() ? "." : parent, rel));
    return e;
  }

  // `rel` as parent ("" at the top) and a name that is never "", "." or "..".
  static Status split(const std::string& rel, std::string& parent, std::string& name) {
    size_t slash = rel.rfind('/');
    name = slash == std::string::npos ? rel : rel.substr(slash + 1);
    if (name.empty() || name == "." || name == "..")
      return Error(Code::kCorrupt, fmt::format("the snapshot names an entry {:?}: refusing to restore it", rel));
    parent = slash == std::string::npos ? "" : rel.substr(0, slash);
    return Status::ok();
  }

  int fd() const { return fd_; }
  const std::string& target() const { return target_; }

 private:
  Beneath() = default;

  Result<int> open_dir(const std::string& parent, const std::string& rel) const {
    struct open_how how = {};
    how.flags = O_PATH | O_DIRECTORY | O_CLOEXEC;
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
    long fd = syscall(SYS_openat2, fd_, parent.c_str(), &how, sizeof how);
    if (fd < 0 && errno == ENOSYS) return open_dir_stepwise(parent, rel);
    if (fd < 0) return in_the_way(rel, errno);
    return static_cast<int>(fd);
  }

  Result<int> open_dir_stepwise(const std::string& parent, const std::string& rel) const {
    int cur = dup(fd_);
    size_t pos = 0;
    while (cur >= 0 && pos < parent.size()) {
      size_t next = parent.find('/', pos);
      if (next == std::string::npos) next = parent.size();
      std::string part = parent.substr(pos, next - pos);
      pos = next + 1;
      if (part.empty() || part == ".") continue;
      if (part == "..") {
        close(cur);
        return in_the_way(rel, EXDEV);
      }
      int nfd = openat(cur, part.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      int err = errno;
      close(cur);
      if (nfd < 0) return in_the_way(rel, err);
      cur = nfd;
    }
    return cur;
  }

  Status in_the_way(const std::string& rel, int err) const {
    std::string where = target_ + "/" + rel;
    // kAlreadyExists: something the restore did not create stands where it needs a directory.
    if (err == ELOOP || err == ENOTDIR || err == EXDEV)
      return Error(Code::kAlreadyExists, fmt::format("{}: a symbolic link or a file inside the target is in the way; restore never "
                                          "follows links it did not create: remove it, or restore into an empty directory",
                                          where));
    return Error(Code::kIo, fmt::format("{}: {}", where, strerror(err)));
  }

  int fd_ = -1;
  std::string target_;
};

// The directories of the snapshot, each created through its parent's descriptor and then held open
// (O_PATH, reached with O_NOFOLLOW from a parent already held): files, links and metadata are
// written through them without resolving a path again, and nothing below the target is followed.
// Past `capacity` directories (descriptors are finite) entries are reached through Beneath instead.
class DirHandles {
 public:
  DirHandles(const Beneath& beneath, size_t capacity) : beneath_(beneath), capacity_(capacity) {}
  ~DirHandles() {
    for (auto& [rel, fd] : fds_) close(fd);
  }

  // Creates the directory `rel` (it may exist) and holds it open; fails naming it when something
  // other than a directory is there.
  Status make(const std::string& rel) {
    LB_ASSIGN_OR_RETURN(auto e, entry(rel));
    std::string path = beneath_.target() + "/" + rel;
    if (mkdirat(e->dir, e->name.c_str(), 0700) != 0 && errno != EEXIST)
      return Error(Code::kIo, fmt::format("mkdir {}: {}", path, strerror(errno)));
    int fd = openat(e->dir, e->name.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
      if (errno == ELOOP || errno == ENOTDIR)
        return Error(Code::kIo, fmt::format("{}: something other than a directory is in the way (a symbolic link is "
                                            "never followed); remove it, or restore into an empty directory",
                                            path));
      return Error(Code::kIo, fmt::format("{}: {}", path, strerror(errno)));
    }
    if (fds_.size() < capacity_) fds_.emplace(rel, fd);
    else close(fd);
    return Status::ok();
  }

  // Where `rel` goes: its parent's descriptor (borrowed when held here) and its name.
  Result<std::shared_ptr<Beneath::Entry>> entry(const std::string& rel) const {
    std::string parent, name;
    LB_RETURN_IF_ERROR(Beneath::split(rel, parent, name));
    int dir = parent.empty() ? beneath_.fd() : -1;
    if (dir < 0) {
      auto it = fds_.find(parent);
      if (it == fds_.end()) return beneath_.entry(rel);
      dir = it->second;
    }
    auto e = std::make_shared<Beneath::Entry>();
    e->dir = dir;
    e->owned = false;
    e->name = std::move(name);
    return e;
  }

 private:
  const Beneath& beneath_;
  size_t capacity_;
  std::unordered_map<std::string, int> fds_;  // filled before any reader runs, only read after
};

// A file being restored. Its blobs arrive in pack order, from several threads, in any order: the
// first opens an unnamed file (O_TMPFILE) in the parent directory, each is written at its offset,
// and the last one to arrive links the complete, authenticated file into place (atomic like
// temp+rename). Filesystems without O_TMPFILE get a temporary name instead.
struct FileJob {
  FileJob(const Action& a, std::string path, size_t blobs) : action(a), path(std::move(path)), pending(blobs) {}
  const Action& action;
  std::string path;            // for messages
  std::mutex mu;               // opening, the first error
  int fd = -1;
  std::shared_ptr<Beneath::Entry> place;
  std::string tmp;             // the temporary name, when O_TMPFILE is not supported
  std::string error;           // the first failure; the file is then never linked
  std::atomic<bool> failed{false};
  std::atomic<size_t> pending;              // blobs still to write
  std::atomic<uint64_t> data_end{0};        // where the furthest data write ended; past it, a hole
};

class FileAssembler {
 public:
  FileAssembler(repo::Repository& repo, const DirHandles& dirs, bool verify, ProgressCounters& progress)
      : repo_(repo), dirs_(dirs), verify_(verify), progress_(progress) {}

  // One blob's bytes for the file at `offset` (or the reason they cannot be had). Thread-safe.
  void put(FileJob& job, uint64_t offset, const Result<Bytes>& data) {
    if (!job.failed) {
      Status s = data ? open(job) : data.status().with_context("restoring " + job.path);
      if (s) s = write_sparse(job, *data, offset);
      if (!s) fail(job, s);
    }
    if (data) progress_.bytes_done += data->size();
    if (job.pending.fetch_sub(1) == 1) finish(job);
  }

  // Called once all blobs were put (or at once for an empty file): links the file or reports why not.
  void finish(FileJob& job) {
    Status s = job.failed ? Error(Code::kIo, job.error) : open(job);
    const Node& node = job.action.node;
    if (s && job.data_end != node.size && ftruncate(job.fd, static_cast<off_t>(node.size)) != 0)
      s = Error(Code::kIo, fmt::format("truncate {}: {}", job.path, strerror(errno)));  // a trailing hole
    bool verified = false;
    if (s && verify_) {
      s = verify_file_content(repo_, job.fd, node, job.path);
      verified = s.is_ok();
    }
    if (s) s = apply_metadata(job.path, job.fd, node, /*mode_is_set=*/true);
    if (s) s = link_into_place(job);
    if (job.fd >= 0) close(job.fd);
    job.fd = -1;
    if (!s && !job.tmp.empty()) unlinkat(job.place->dir, job.tmp.c_str(), 0);
    job.place.reset();
    std::lock_guard l(mu_);
    if (!s) {
      errors_.push_back(s.message());
      progress_.errors++;
      return;
    }
    files_++;
    bytes_ += node.size;
    if (verified) verified_++;
    progress_.files_done++;
  }

  // An interrupted restore: a file still waiting for blobs is dropped (an unnamed file vanishes on
  // close; a temporary name is removed), so nothing partial is left behind.
  void abandon(FileJob& job) {
    if (job.pending == 0 || job.fd < 0) return;
    close(job.fd);
    job.fd = -1;
    if (!job.tmp.empty()) unlinkat(job.place->dir, job.tmp.c_str(), 0);
  }

  void add_to(FilesRestoreResult& result) {
    std::lock_guard l(mu_);
    result.files += files_;
    result.bytes += bytes_;
    result.files_verified += verified_;
    for (auto& e : errors_) result.errors.push_back(std::move(e));
  }

 private:
  Status open(FileJob& job) {
    std::lock_guard l(job.mu);
    if (job.fd >= 0) return Status::ok();
    if (job.failed) return Error(Code::kIo, job.error);
    auto place = dirs_.entry(job.action.rel);
    if (!place) return place.status();
    job.place = *place;
    // Created with its final mode (the restore runs under umask 0); the descriptor stays writable.
    mode_t mode = job.action.node.mode & 07777;
    job.fd = openat(job.place->dir, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, mode);
    if (job.fd < 0) {
      job.tmp = ".lifeboat-tmp-" + hex_encode(crypto::random_bytes(8));
      job.fd = openat(job.place->dir, job.tmp.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, mode);
      if (job.fd < 0) {
        job.tmp.clear();
        return Error(Code::kIo, fmt::format("create {}: {}", job.path, strerror(errno)));
      }
    }
    return Status::ok();
  }

  void fail(FileJob& job, const Status& s) {
    std::lock_guard l(job.mu);
    if (job.failed.exchange(true)) return;
    job.error = s.message();
  }

  // Zero blocks are skipped, leaving holes: sparse files stay sparse. Runs of data are written at once.
  Status write_sparse(FileJob& job, const Bytes& data, uint64_t offset) {
    constexpr size_t kBlock = 4096;
    auto write_run = [&](size_t from, size_t to) -> Status {
      LB_RETURN_IF_ERROR(write_all(job.fd, data.data() + from, to - from, static_cast<off_t>(offset + from), job.path));
      uint64_t end = offset + to, seen = job.data_end;
      while (end > seen && !job.data_end.compare_exchange_weak(seen, end)) {
      }
      return Status::ok();
    };
    size_t run_start = 0;
    for (size_t pos = 0; pos < data.size(); pos += kBlock) {
      size_t n = std::min(kBlock, data.size() - pos);
      if (!all_zero(data.data() + pos, n)) continue;
      if (pos > run_start) LB_RETURN_IF_ERROR(write_run(run_start, pos));
      run_start = pos + n;
    }
    if (data.size() > run_start) LB_RETURN_IF_ERROR(write_run(run_start, data.size()));
    return Status::ok();
  }

  // Gives the unnamed file `fd` the name `name` in `dir`. linkat(AT_EMPTY_PATH) links the descriptor itself;
  // the kernel allows it only with CAP_DAC_READ_SEARCH (ENOENT otherwise), and then the file is linked
  // through /proc/self/fd: a path lookup in procfs, where 6% of a restore's CPU samples on tmpfs went (perf).
  static int link_unnamed(int fd, int dir, const char* name) {
    static std::atomic<bool> empty_path_refused{false};
    const bool tried = !empty_path_refused.load(std::memory_order_relaxed);
    if (tried) {
      if (linkat(fd, "", dir, name, AT_EMPTY_PATH) == 0) return 0;
      if (errno != ENOENT && errno != EPERM && errno != EINVAL) return -1;
    }
    std::string proc = fmt::format("/proc/self/fd/{}", fd);
    int rc = linkat(AT_FDCWD, proc.c_str(), dir, name, AT_SYMLINK_FOLLOW);
    // The fast path is turned off only when the /proc path then works: an ENOENT because the directory
    // itself is gone must not turn it off for the rest of the process (the daemon).
    if (rc == 0 && tried) empty_path_refused = true;
    return rc;
  }

  Status link_into_place(FileJob& job) {
    int dir = job.place->dir;
    const std::string& name = job.place->name;
    if (job.tmp.empty()) {
      if (link_unnamed(job.fd, dir, name.c_str()) == 0) return Status::ok();
      if (errno != EEXIST) return Error(Code::kIo, fmt::format("link {}: {}", job.path, strerror(errno)));
      // Something is in the way: give the file a temporary name and rename it over.
      job.tmp = ".lifeboat-tmp-" + hex_encode(crypto::random_bytes(8));
      if (link_unnamed(job.fd, dir, job.tmp.c_str()) != 0) {
        job.tmp.clear();
        return Error(Code::kIo, fmt::format("link {}: {}", job.path, strerror(errno)));
      }
    }
    // rename() replaces an existing file atomically; only a directory in the way needs removing first.
    if (renameat(dir, job.tmp.c_str(), dir, name.c_str()) != 0) {
      if (errno != EISDIR && errno != ENOTEMPTY && errno != EEXIST)
        return Error(Code::kIo, fmt::format("rename into {}: {}", job.path, strerror(errno)));
      LB_RETURN_IF_ERROR(remove_existing(job.place->at(), job.path));
      if (renameat(dir, job.tmp.c_str(), dir, name.c_str()) != 0)
        return Error(Code::kIo, fmt::format("rename into {}: {}", job.path, strerror(errno)));
    }
    job.tmp.clear();
    return Status::ok();
  }

  repo::Repository& repo_;
  const DirHandles& dirs_;
  bool verify_;
  ProgressCounters& progress_;
  std::mutex mu_;
  uint64_t files_ = 0, bytes_ = 0, verified_ = 0;
  std::vector<std::string> errors_;
};

// Descriptors for the held directories and the files in flight: raise the soft limit to the hard one
// (as Go programs do at start) and keep a margin for packs, sockets and files being written.
size_t directory_capacity() {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return 0;
  if (rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    (void)setrlimit(RLIMIT_NOFILE, &rl);
    (void)getrlimit(RLIMIT_NOFILE, &rl);
  }
  uint64_t limit = rl.rlim_cur == RLIM_INFINITY ? 1 << 20 : rl.rlim_cur;
  return limit > 2048 ? static_cast<size_t>(limit / 2) : 0;
}

}  // namespace

std::optional<Overwrite> parse_overwrite(const std::string& name) {
  if (name == "always") return Overwrite::kAlways;
  if (name == "if-changed") return Overwrite::kIfChanged;
  if (name == "if-newer") return Overwrite::kIfNewer;
  if (name == "never") return Overwrite::kNever;
  return std::nullopt;
}

namespace {

enum class Decision { kCreate, kReplace, kKeep };

// What to do with one entry, from what the target holds there (nothing written yet).
Decision decide(const Node& n, const struct stat& st, Overwrite mode, const std::string& at) {
  if (n.kind == NodeKind::kDir) return mode == Overwrite::kNever ? Decision::kKeep : Decision::kReplace;
  switch (mode) {
    case Overwrite::kAlways: return Decision::kReplace;
    case Overwrite::kNever: return Decision::kKeep;
    case Overwrite::kIfNewer: {
      int64_t have = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
      return n.mtime_ns > have ? Decision::kReplace : Decision::kKeep;
    }
    case Overwrite::kIfChanged: {
      int64_t have = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
      if (n.kind == NodeKind::kSymlink) {
        char buf[4096];
        ssize_t len = S_ISLNK(st.st_mode) ? readlink(at.c_str(), buf, sizeof buf) : -1;
        return len >= 0 && std::string(buf, static_cast<size_t>(len)) == n.link_target ? Decision::kKeep : Decision::kReplace;
      }
      bool same_type = n.kind == NodeKind::kFile ? S_ISREG(st.st_mode) : !S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode);
      return same_type && static_cast<uint64_t>(st.st_size) == n.size && have == n.mtime_ns ? Decision::kKeep : Decision::kReplace;
    }
  }
  return Decision::kReplace;
}

bool dir_is_empty(const std::string& at) {
  DIR* d = opendir(at.c_str());
  if (!d) return true;
  bool empty = true;
  while (struct dirent* e = readdir(d))
    if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
      empty = false;
      break;
    }
  closedir(d);
  return empty;
}

}  // namespace

Result<FilesRestoreResult> restore_files(repo::Repository& repo, const repo::Snapshot& snapshot,
                                         const FilesRestoreOptions& options, ProgressCounters& progress) {
  LB_RETURN_IF_ERROR(repo.load_index());
  std::string target = options.target;
  while (target.size() > 1 && target.back() == '/') target.pop_back();
  if (target.empty()) return Error(Code::kInvalidArgument, "restore needs --target DIR");
  std::vector<Action> actions;
  std::map<std::pair<uint64_t, uint64_t>, std::string> first_links;
  bool any = false;
  LB_RETURN_IF_ERROR(plan(repo, snapshot.tree, "", false, options.includes, actions, first_links, any));
  if (!options.includes.empty() && !any)
    return Error(Code::kNotFound, "no path in the snapshot matches the --include patterns");
  for (const auto& a : actions)
    if (a.node.kind == NodeKind::kFile && a.link_to.empty()) {
      progress.files_total++;
      progress.bytes_total += a.node.size;
    }
  progress.totals_final = true;

  FilesRestoreResult result;
  std::mutex mu;
  auto fail = [&](const Status& s) {
    std::lock_guard l(mu);
    result.errors.push_back(s.message());
    progress.errors++;
  };
  if (options.delete_extra && !options.includes.empty())
    return Error(Code::kInvalidArgument, "--delete restores whole directories: it cannot be combined with --include");
  struct stat target_st;
  bool target_exists = lstat(target.c_str(), &target_st) == 0;
  if (target_exists && options.refuse_non_empty && S_ISDIR(target_st.st_mode) && !dir_is_empty(target))
    return Error(Code::kInvalidArgument,
                 fmt::format("target {} is not empty: choose what happens to what it holds with --overwrite "
                             "always|if-changed|if-newer|never (and --delete to remove what the snapshot lacks); "
                             "--dry-run lists the changes first",
                             target));
  if (!options.dry_run && mkdir(target.c_str(), 0700) != 0 && errno != EEXIST)
    return Error(Code::kIo, fmt::format("create target {}: {}", target, strerror(errno)));

  // Before anything is written: what each entry meets in the target, the conflicts, what --delete
  // removes. A target that does not exist yet (dry run) meets nothing.
  std::vector<Decision> decisions(actions.size(), Decision::kCreate);
  std::vector<std::string> conflicts, doomed;
  std::unique_ptr<Beneath> beneath;
  if (!options.dry_run) {
    LB_ASSIGN_OR_RETURN(beneath, Beneath::open(target));
  }
  // An empty target meets nothing: each entry would only be looked up to find it absent.
  if (target_exists && !(S_ISDIR(target_st.st_mode) && dir_is_empty(target))) {
    if (!beneath) {
      LB_ASSIGN_OR_RETURN(beneath, Beneath::open(target));
    }
    std::set<std::string> planned;
    for (const auto& a : actions) planned.insert(a.rel);
    for (size_t i = 0; i < actions.size(); ++i) {
      const auto& a = actions[i];
      if (a.node.kind == NodeKind::kSocket) continue;
      std::string path = target + "/" + a.rel;
      auto entry = beneath->entry(a.rel);
      if (!entry) {
        // Below a directory that does not exist yet there is nothing to meet; a link or file in the way is a conflict.
        if (entry.status().code() == Code::kAlreadyExists) conflicts.push_back(entry.status().message());
        continue;
      }
      struct stat st;
      if (lstat((*entry)->at().c_str(), &st) != 0) continue;  // nothing there: create
      bool is_dir = S_ISDIR(st.st_mode);
      if (a.node.kind == NodeKind::kDir && !is_dir) {
        conflicts.push_back(S_ISLNK(st.st_mode)
                                ? fmt::format("{}: a symbolic link is in the way where the snapshot has a directory; "
                                              "restore never follows links it did not create: remove it, or restore "
                                              "into an empty directory",
                                              path)
                                : fmt::format("{}: the snapshot has a directory here, the target something else", path));
        continue;
      }
      if (a.node.kind != NodeKind::kDir && is_dir && !dir_is_empty((*entry)->at())) {
        conflicts.push_back(fmt::format("{}: the snapshot has a file here, the target a non-empty directory", path));
        continue;
      }
      decisions[i] = decide(a.node, st, options.overwrite, (*entry)->at());
      if (options.delete_extra && a.node.kind == NodeKind::kDir && is_dir) {
        DIR* d = opendir((*entry)->at().c_str());
        while (d) {
          struct dirent* e = readdir(d);
          if (!e) break;
          if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
          std::string rel = a.rel + "/" + e->d_name;
          if (!planned.count(rel)) doomed.push_back(rel);
        }
        if (d) closedir(d);
      }
    }
  }
  if (!conflicts.empty())
    return Error(Code::kInvalidArgument,
                 fmt::format("{} conflict(s) in the target, nothing was written; the first: {}", conflicts.size(),
                             conflicts.front()));
  for (size_t i = 0; i < actions.size(); ++i) {
    if (actions[i].node.kind == NodeKind::kSocket) continue;
    const char* what = decisions[i] == Decision::kCreate ? "+" : decisions[i] == Decision::kReplace ? "M" : "=";
    if (actions[i].node.kind == NodeKind::kDir && decisions[i] != Decision::kCreate) continue;  // not news
    result.changes.emplace_back(what, target + "/" + actions[i].rel);
    if (decisions[i] == Decision::kKeep) result.skipped++;
  }
  for (const auto& rel : doomed) result.changes.emplace_back("-", target + "/" + rel);
  if (options.dry_run) return result;
  for (const auto& rel : doomed) {
    auto entry = beneath->entry(rel);
    std::error_code ec;
    if (entry) std::filesystem::remove_all((*entry)->at(), ec);  // never follows a link: removes the link
    if (!entry || ec) fail(Error(Code::kIo, fmt::format("delete {}/{}: {}", target, rel, entry ? ec.message() : entry.status().message())));
    else result.deleted++;
  }

  // Files are created with their recorded mode; restore the caller's umask when done.
  struct UmaskScope {
    mode_t old = umask(0);
    ~UmaskScope() { umask(old); }
  } umask_scope;

  // Directories first, in tree order (each through its parent), then links and special files, then
  // the files' data pack by pack; hard links, and directory metadata deepest first, last.
  DirHandles dirs(*beneath, directory_capacity());
  FileAssembler assembler(repo, dirs, options.verify, progress);
  std::deque<FileJob> jobs;
  std::vector<repo::BlobId> blobs;  // every blob of every file, in tree order
  struct Use {
    FileJob* job;
    uint64_t offset;
    size_t next_same;  // the next use of the same blob, or kNone
  };
  constexpr size_t kNone = SIZE_MAX;
  std::vector<Use> uses;
  for (const auto& a : actions) {
    if (interrupted()) break;
    size_t i = &a - actions.data();
    if (a.node.kind == NodeKind::kSocket || (a.node.kind == NodeKind::kFile && !a.link_to.empty())) continue;
    if (decisions[i] == Decision::kKeep && a.node.kind != NodeKind::kDir) continue;
    std::string path = target + "/" + a.rel;
    if (a.node.kind == NodeKind::kDir) {
      if (Status s = dirs.make(a.rel); !s) fail(s);
      else result.dirs++;
      continue;
    }
    if (a.node.kind == NodeKind::kFile) {
      FileJob& job = jobs.emplace_back(a, path, a.node.content.size());
      uint64_t offset = 0;
      for (const auto& id : a.node.content) {
        auto loc = repo.index().find(id);
        if (!loc) loc = repo.tombstoned().find(id);
        blobs.push_back(id);
        uses.push_back({&job, offset, kNone});
        offset += loc ? loc->raw_len : 0;  // an unknown blob fails the file before its offset matters
      }
      if (offset != a.node.size && !a.node.content.empty())
        job.failed = true, job.error = fmt::format("restoring {}: content adds up to {} bytes, the snapshot says {}",
                                                    path, offset, a.node.size);
      continue;
    }
    auto entry = dirs.entry(a.rel);
    if (!entry) {
      fail(entry.status());
      continue;
    }
    const std::string at = (*entry)->at();
    // In a target that held nothing there, nothing can be in the way: no need to look.
    Status s = decisions[i] == Decision::kCreate ? Status::ok() : remove_existing(at, path);
    if (a.node.kind == NodeKind::kSymlink) {
      if (s && symlinkat(a.node.link_target.c_str(), (*entry)->dir, (*entry)->name.c_str()) != 0)
        s = Error(Code::kIo, fmt::format("symlink {}: {}", path, strerror(errno)));
    } else {
      mode_t type = a.node.kind == NodeKind::kFifo ? S_IFIFO : a.node.kind == NodeKind::kCharDev ? S_IFCHR : S_IFBLK;
      if (s && mknodat((*entry)->dir, (*entry)->name.c_str(), type | (a.node.mode & 07777), static_cast<dev_t>(a.node.rdev)) != 0)
        s = Error(Code::kIo, fmt::format("mknod {}: {}", path, strerror(errno)));
    }
    if (s) s = apply_metadata(at, -1, a.node);
    if (!s) fail(s);
    else result.others++;
  }
  if (interrupted()) return Error(Code::kInterrupted, "interrupted");
  {
    std::unordered_map<repo::BlobId, size_t, repo::BlobIdHash> last_use;
    for (size_t k = 0; k < blobs.size(); ++k) {
      auto [it, first] = last_use.emplace(blobs[k], k);
      if (!first) uses[it->second].next_same = k, it->second = k;
    }
  }
  for (auto& job : jobs)
    if (job.action.node.content.empty()) assembler.finish(job);
  repo::PackOrderOptions read_options;
  read_options.threads = options.threads;
  Status read = repo::read_in_pack_order(repo, blobs, read_options, [&](size_t k, Result<Bytes> data) {
    for (; k != kNone; k = uses[k].next_same) assembler.put(*uses[k].job, uses[k].offset, data);
  });
  assembler.add_to(result);
  if (!read || interrupted()) {
    for (auto& job : jobs) assembler.abandon(job);
    return Error(Code::kInterrupted, "interrupted");
  }
  for (const auto& a : actions) {
    if (a.link_to.empty() || decisions[&a - actions.data()] == Decision::kKeep) continue;
    std::string path = target + "/" + a.rel;
    auto to = dirs.entry(a.rel);
    auto from = to ? dirs.entry(a.link_to) : to;
    Status s = from ? remove_existing((*to)->at(), path) : from.status();
    if (s && linkat((*from)->dir, (*from)->name.c_str(), (*to)->dir, (*to)->name.c_str(), 0) != 0)
      s = Error(Code::kIo, fmt::format("hard link {}: {}", path, strerror(errno)));
    if (!s) fail(s);
    else result.files++;
  }
  // Directory metadata last and deepest first, so writing contents does not disturb their mtimes.
  // Each directory is opened through its parent without following links, and changed through its
  // descriptor.
  for (auto it = actions.rbegin(); it != actions.rend(); ++it) {
    if (it->node.kind != NodeKind::kDir || decisions[&*it - actions.data()] == Decision::kKeep) continue;
    std::string path = target + "/" + it->rel;
    auto entry = dirs.entry(it->rel);
    if (!entry) {
      fail(entry.status());
      continue;
    }
    int fd = openat((*entry)->dir, (*entry)->name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
      fail(Error(Code::kIo, fmt::format("{}: {}", path, strerror(errno))));
      continue;
    }
    Status s = apply_metadata(path, fd, it->node);
    close(fd);
    if (!s) fail(s);
  }
  return result;
}

}  // namespace lifeboat::sources::files

namespace lifeboat::sources::files {

namespace {

Status verify_tree(repo::Repository& repo, const repo::BlobId& tree_id, const std::string& target, const std::string& prefix,
                   TreeVerification& out) {
  LB_ASSIGN_OR_RETURN(repo::Tree tree, repo.load_tree(tree_id));
  auto problem = [&](std::string p) {
    if (out.problems.size() < 20) out.problems.push_back(std::move(p));
  };
  auto missing = [&](std::string p) {
    if (out.missing.size() < 20) out.missing.push_back(p);
    problem(std::move(p));
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
        if (n.subtree) LB_RETURN_IF_ERROR(verify_tree(repo, *n.subtree, target, rel, out));
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
        break;
      }
      case NodeKind::kSymlink: {
        ++out.others_expected;
        char buf[4096];
        ssize_t len = present && S_ISLNK(st.st_mode) ? readlink(path.c_str(), buf, sizeof buf) : -1;
        if (len < 0 || std::string(buf, static_cast<size_t>(len)) != n.link_target) missing(fmt::format("{}: symlink missing or changed", rel));
        else ++out.others_found;
        break;
      }
      case NodeKind::kSocket:
        break;
      default:
        ++out.others_expected;
        if (present) ++out.others_found;
        else missing(fmt::format("{}: special file missing", rel));
    }
  }
  return Status::ok();
}

}  // namespace

Result<TreeVerification> verify_restored_tree(repo::Repository& repo, const repo::Snapshot& snapshot, const std::string& target) {
  LB_RETURN_IF_ERROR(repo.load_index());
  TreeVerification out;
  std::string t = target;
  while (t.size() > 1 && t.back() == '/') t.pop_back();
  LB_RETURN_IF_ERROR(verify_tree(repo, snapshot.tree, t, "", out));
  return out;
}

}  // namespace lifeboat::sources::files
