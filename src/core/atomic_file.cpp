// write_file_atomic and AtomicFileWriter: temp file, fsync, rename, fsync the directory.
#include "core/atomic_file.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

namespace lifeboat {

namespace {

Status fail(const std::string& what, const std::string& path) {
  return Error(Code::kIo, fmt::format("{} {}: {}", what, path, std::strerror(errno)));
}

}  // namespace

Result<AtomicFileWriter> AtomicFileWriter::open(const std::string& path, unsigned mode) {
  static std::atomic<uint64_t> serial{0};  // threads of one process writing beside the same path
  std::string tmp = fmt::format("{}.tmp-{}-{}", path, static_cast<long>(getpid()), serial++);
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, static_cast<mode_t>(mode));
  if (fd < 0) return fail("cannot create", tmp);
  return AtomicFileWriter(path, tmp, fd);
}

AtomicFileWriter::~AtomicFileWriter() {
  if (fd_ < 0) return;
  ::close(fd_);
  ::unlink(tmp_.c_str());
}

Status AtomicFileWriter::write(ByteView data) {
  if (fd_ < 0) return Error(Code::kFatal, "internal error: writing " + tmp_ + " after it was committed or failed");
  size_t done = 0;
  while (done < data.size()) {
    ssize_t w = ::write(fd_, data.data() + done, data.size() - done);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      Status s = fail("cannot write", tmp_);
      ::close(fd_);
      ::unlink(tmp_.c_str());
      fd_ = -1;
      return s;
    }
    done += static_cast<size_t>(w);
  }
  return Status::ok();
}

Status AtomicFileWriter::commit() {
  if (fd_ < 0) return Error(Code::kFatal, "internal error: committing " + tmp_ + " twice or after a failure");
  int fd = fd_;
  fd_ = -1;
  if (::fsync(fd) != 0) {
    Status s = fail("cannot sync", tmp_);
    ::close(fd);
    ::unlink(tmp_.c_str());
    return s;
  }
  if (::close(fd) != 0) {
    Status s = fail("cannot close", tmp_);
    ::unlink(tmp_.c_str());
    return s;
  }
  if (::rename(tmp_.c_str(), path_.c_str()) != 0) {
    Status s = fail("cannot rename " + tmp_ + " to", path_);
    ::unlink(tmp_.c_str());
    return s;
  }
  size_t slash = path_.rfind('/');
  std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : path_.substr(0, slash);
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return fail("cannot open directory", dir);
  int r = ::fsync(dfd);
  Status s = r == 0 ? Status::ok() : fail("cannot sync directory", dir);
  ::close(dfd);
  return s;
}

Status write_file_atomic(const std::string& path, std::string_view data, unsigned mode) {
  LB_ASSIGN_OR_RETURN(auto w, AtomicFileWriter::open(path, mode));
  LB_RETURN_IF_ERROR(w.write(ByteView(reinterpret_cast<const uint8_t*>(data.data()), data.size())));
  return w.commit();
}

}  // namespace lifeboat
