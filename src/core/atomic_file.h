// One way to replace a file so that a crash leaves either the old or the new content, never a mix.
#pragma once

#include <string>
#include <string_view>

#include "core/bytes.h"
#include "core/status.h"

namespace lifeboat {

// Writes `data` to a temporary file beside `path`, fsyncs it, renames it over `path` and fsyncs the
// directory; every step is checked and a failure removes the temporary file and names the step.
Status write_file_atomic(const std::string& path, std::string_view data, unsigned mode = 0644);

// The same, the content written piece by piece (a download as it arrives: never in memory whole).
// Nothing appears at `path` until commit() succeeds; destroyed without a commit, the temporary file
// is removed.
class AtomicFileWriter {
 public:
  static Result<AtomicFileWriter> open(const std::string& path, unsigned mode = 0644);
  AtomicFileWriter(AtomicFileWriter&& o) noexcept : path_(std::move(o.path_)), tmp_(std::move(o.tmp_)), fd_(o.fd_) { o.fd_ = -1; }
  AtomicFileWriter& operator=(AtomicFileWriter&&) = delete;
  ~AtomicFileWriter();

  Status write(ByteView data);
  // fsync, rename over the path, fsync the directory.
  Status commit();

 private:
  AtomicFileWriter(std::string path, std::string tmp, int fd) : path_(std::move(path)), tmp_(std::move(tmp)), fd_(fd) {}
  std::string path_, tmp_;
  int fd_ = -1;  // -1 once committed or failed (the temporary file is then gone or renamed)
};

}  // namespace lifeboat
