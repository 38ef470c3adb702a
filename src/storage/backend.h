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
  int64_t retain_until_ns = 0;  // object lock / retention, when the backend reports it (0: none known)
};

struct SaveOptions {
  // Fail with kAlreadyExists instead of replacing an existing file. Content-addressed files are always
  // written create-only; only locks (refresh) replace.
  bool create_only = true;
  // Object lock (S3) / object retention (GCS): nobody can delete or replace the object before then.
  int64_t retain_until_ns = 0;
};

class Backend {
 public:
  virtual ~Backend() = default;
  // A human-readable location, e.g. "local:/srv/repo".
  virtual std::string location() const = 0;
  // Prepares an empty repository location (directories; an object store's bucket, created when absent,
  // with object lock when asked). Fails if a config already exists.
  virtual Status create_layout(bool object_lock) = 0;
  // Stores `data` under `h` atomically: a reader sees all of it or nothing, and after OK it is durable.
  virtual Status save(const Handle& h, ByteView data, const SaveOptions& options) = 0;
  // Reads `length` bytes from `offset` (length 0: to the end). kNotFound when absent; a short read is kIo.
  virtual Result<Bytes> load(const Handle& h, uint64_t offset = 0, uint64_t length = 0) = 0;
  virtual Result<FileInfo> stat(const Handle& h) = 0;
  // Calls fn exactly once for each stored file of type t, in no particular order; stops at fn's first error.
  virtual Status list(FileType t, const std::function<Status(const FileInfo&)>& fn) = 0;
  // Removes h; removing a missing file is OK (idempotent, so retries are safe).
  virtual Status remove(const Handle& h) = 0;
  // Remote (object store): requests are costly, so readers batch ranges.
  virtual bool remote() const { return false; }
  // Object-lock support: only object stores have it.
  virtual bool supports_retention() const { return false; }
  virtual Status extend_retention(const Handle& h, int64_t retain_until_ns) {
    (void)h;
    (void)retain_until_ns;
    return Error(Code::kInvalidArgument, "this backend has no object lock (use an s3: or gs: repository)");
  }
};

// A decorator's base: every call goes to `inner`; a subclass overrides what it changes.
class ForwardingBackend : public Backend {
 public:
  explicit ForwardingBackend(std::unique_ptr<Backend> inner) : inner_(std::move(inner)) {}
  std::string location() const override { return inner_->location(); }
  Status create_layout(bool object_lock) override { return inner_->create_layout(object_lock); }
  Status save(const Handle& h, ByteView data, const SaveOptions& o) override { return inner_->save(h, data, o); }
  Result<Bytes> load(const Handle& h, uint64_t offset = 0, uint64_t length = 0) override {
    return inner_->load(h, offset, length);
  }
  Result<FileInfo> stat(const Handle& h) override { return inner_->stat(h); }
  Status list(FileType t, const std::function<Status(const FileInfo&)>& fn) override { return inner_->list(t, fn); }
  Status remove(const Handle& h) override { return inner_->remove(h); }
  bool remote() const override { return inner_->remote(); }
  bool supports_retention() const override { return inner_->supports_retention(); }
  Status extend_retention(const Handle& h, int64_t until) override { return inner_->extend_retention(h, until); }

 protected:
  std::unique_ptr<Backend> inner_;
};

// The object name of a file inside a repository prefix: "<prefix>/data/ab/ab12…", "<prefix>/config".
std::string object_key(const std::string& prefix, const Handle& h);

// Decorators: retry transient failures (kUnavailable) with exponential backoff and full jitter; and
// inject faults (tests): LIFEBOAT_FAULTS="seed=7,fail=0.1,lose=0.05,truncate=0.05,delay=0.05,delay_ms=300".
std::unique_ptr<Backend> with_retries(std::unique_ptr<Backend> inner, int max_attempts = 8, int64_t base_delay_ms = 100);
Result<std::unique_ptr<Backend>> with_fault_injection(std::unique_ptr<Backend> inner, const std::string& spec);

// Opens a backend from a repository URL: a plain path, "local:/path", "s3:http(s)://host[:port]/bucket[/prefix]",
// "gs:bucket[/prefix]" or "memory:NAME" (this process only: tests). Object stores come wrapped in retries (and faults when LIFEBOAT_FAULTS is set).
Result<std::unique_ptr<Backend>> open_backend(const std::string& url);
Result<std::unique_ptr<Backend>> open_object_backend(const std::string& url);  // s3: and gs: only

}  // namespace lifeboat::storage
