// The storage contract every backend (local, S3, GCS) implements; retries and faults are decorators.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "core/bytes.h"
#include "core/status.h"

namespace lifeboat::storage {

enum class FileType { kConfig, kKey, kPack, kIndex, kSnapshot, kLock, kPin };
const char* file_type_name(FileType t);

struct Handle {
  FileType type;
  std::string name;  // empty for kConfig
};

struct FileInfo {
  std::string name;
  uint64_t size_bytes = 0;
  int64_t mtime_ns = 0;
};

struct SaveOptions {
  // Fail with kAlreadyExists instead of replacing an existing file. Content-addressed files are always
  // written create-only; only locks (refresh) replace.
  bool create_only = true;
};

class Backend {
 public:
  virtual ~Backend() = default;
  // A human-readable location, e.g. "local:/srv/repo".
  virtual std::string location() const = 0;
  // Prepares an empty repository location (directories, bucket check). Fails if a config already exists.
  virtual Status create_layout() = 0;
  // Stores `data` under `h` atomically: a reader sees all of it or nothing, and after OK it is durable.
  virtual Status save(const Handle& h, ByteView data, const SaveOptions& options) = 0;
  // Reads `length` bytes from `offset` (length 0: to the end). kNotFound when absent; a short read is kIo.
  virtual Result<Bytes> load(const Handle& h, uint64_t offset = 0, uint64_t length = 0) = 0;
  virtual Result<FileInfo> stat(const Handle& h) = 0;
  // Calls fn exactly once for each stored file of type t, in no particular order; stops at fn's first error.
  virtual Status list(FileType t, const std::function<Status(const FileInfo&)>& fn) = 0;
  // Removes h; removing a missing file is OK (idempotent, so retries are safe).
  virtual Status remove(const Handle& h) = 0;
};

// Opens a backend from a repository URL: a plain path or "local:/path".
Result<std::unique_ptr<Backend>> open_backend(const std::string& url);

}  // namespace lifeboat::storage
