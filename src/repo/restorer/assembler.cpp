// The file assembler (see assembler.h).
#include "repo/restorer/assembler.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "crypto/crypto.h"
#include "repo/file_metadata.h"
#include "repo/restorer/verify.h"

namespace lifeboat::repo::restorer {

namespace {

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

// Gives the unnamed file `fd` the name `name` in `dir`. linkat(AT_EMPTY_PATH) links the descriptor itself;
// the kernel allows it only with CAP_DAC_READ_SEARCH (ENOENT otherwise), and then the file is linked
// through /proc/self/fd: a path lookup in procfs, where 6% of a restore's CPU samples on tmpfs went (perf).
int link_unnamed(int fd, int dir, const char* name) {
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

}  // namespace

void FileAssembler::put(FileJob& job, uint64_t offset, const Result<Bytes>& data) {
  if (!job.failed) {
    Status s = data ? open(job) : data.status().with_context("restoring " + job.path);
    if (s) s = write_sparse(job, *data, offset);
    if (!s) fail(job, s);
  }
  if (data) progress_.bytes_done += data->size();
  if (job.pending.fetch_sub(1) == 1) finish(job);
}

void FileAssembler::finish(FileJob& job) {
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

void FileAssembler::abandon(FileJob& job) {
  if (job.pending == 0 || job.fd < 0) return;
  close(job.fd);
  job.fd = -1;
  if (!job.tmp.empty()) unlinkat(job.place->dir, job.tmp.c_str(), 0);
}

void FileAssembler::add_to(TreeRestoreResult& result) {
  std::lock_guard l(mu_);
  result.files += files_;
  result.bytes += bytes_;
  result.files_verified += verified_;
  for (auto& e : errors_) result.errors.push_back(std::move(e));
}

Status FileAssembler::open(FileJob& job) {
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

void FileAssembler::fail(FileJob& job, const Status& s) {
  std::lock_guard l(job.mu);
  if (job.failed.exchange(true)) return;
  job.error = s.message();
}

Status FileAssembler::write_sparse(FileJob& job, const Bytes& data, uint64_t offset) {
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

Status FileAssembler::link_into_place(FileJob& job) {
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

}  // namespace lifeboat::repo::restorer
