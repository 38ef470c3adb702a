// Safe path walking for the restorer: everything a restore creates or changes lies beneath the
// target, reached without following a symbolic link it did not create.
#pragma once

#include <fcntl.h>
#include <fmt/format.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <string>
#include <unordered_map>

#include "core/status.h"

namespace lifeboat::repo::restorer {

// `at` is where the entry is (see Beneath); `path` names it in messages.
Status remove_existing(const std::string& at, const std::string& path);

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

// Descriptors for the held directories and the files in flight: raise the soft limit to the hard one
// (as Go programs do at start) and keep a margin for packs, sockets and files being written.
size_t directory_capacity();

// Whether the directory at `at` holds nothing (or cannot be read).
bool dir_is_empty(const std::string& at);

}  // namespace lifeboat::repo::restorer
