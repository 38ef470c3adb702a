// Backend over an object store (S3, GCS): the repository layout as object keys under a prefix.
#include <fmt/format.h>

#include <cstdlib>

#include "cloud/object_store.h"
#include "storage/backend.h"
#include "storage/local_backend.h"

namespace lifeboat::storage {

std::string object_key(const std::string& prefix, const Handle& h) {
  std::string p = prefix.empty() ? "" : prefix + "/";
  if (h.type == FileType::kConfig) return p + "config";
  if (h.type == FileType::kPack) return fmt::format("{}data/{}/{}", p, h.name.substr(0, 2), h.name);
  return fmt::format("{}{}/{}", p, file_type_name(h.type), h.name);
}

namespace {

class ObjectBackend final : public Backend {
 public:
  ObjectBackend(std::unique_ptr<cloud::ObjectStore> store, std::string prefix)
      : store_(std::move(store)), prefix_(std::move(prefix)) {}

  std::string location() const override { return store_->location() + (prefix_.empty() ? "" : "/" + prefix_); }

  Status create_layout(bool object_lock) override {
    LB_RETURN_IF_ERROR(store_->ensure_bucket(true, object_lock));
    auto existing = store_->head(object_key(prefix_, {FileType::kConfig, ""}));
    if (existing) return Error(Code::kAlreadyExists, fmt::format("{} already holds a repository", location()));
    if (existing.status().code() != Code::kNotFound) return existing.status();
    return Status::ok();
  }

  Status save(const Handle& h, ByteView data, const SaveOptions& o) override {
    return store_->put(object_key(prefix_, h), data, {o.create_only, o.retain_until_ns});
  }

  Result<Bytes> load(const Handle& h, uint64_t offset, uint64_t length) override {
    auto r = store_->get(object_key(prefix_, h), offset, length);
    if (!r && r.status().code() == Code::kNotFound && h.type == FileType::kConfig)
      return Error(Code::kRepoMissing, fmt::format("no repository at {} (run `lifeboat init`)", location()));
    return r;
  }

  Result<FileInfo> stat(const Handle& h) override {
    LB_ASSIGN_OR_RETURN(auto info, store_->head(object_key(prefix_, h)));
    return FileInfo{h.name, info.size_bytes, info.mtime_ns, info.retain_until_ns};
  }

  Status list(FileType t, const std::function<Status(const FileInfo&)>& fn) override {
    std::string dir = (prefix_.empty() ? "" : prefix_ + "/") + file_type_name(t) + "/";
    return store_->list(dir, [&](const cloud::ObjectInfo& o) -> Status {
      std::string name = o.key.substr(o.key.rfind('/') + 1);
      if (name.empty() || name[0] == '.') return Status::ok();
      return fn(FileInfo{name, o.size_bytes, o.mtime_ns, o.retain_until_ns});
    });
  }

  Status remove(const Handle& h) override { return store_->remove(object_key(prefix_, h)); }
  bool supports_retention() const override { return true; }
  bool remote() const override { return true; }
  Status extend_retention(const Handle& h, int64_t until) override {
    return store_->set_retention(object_key(prefix_, h), until);
  }

 private:
  std::unique_ptr<cloud::ObjectStore> store_;
  std::string prefix_;
};

}  // namespace

Result<std::unique_ptr<Backend>> open_object_backend(const std::string& url) {
  std::unique_ptr<cloud::ObjectStore> store;
  std::string prefix;
  if (url.rfind("s3:", 0) == 0) {
    std::string rest = url.substr(3);
    auto scheme = rest.find("://");
    if (scheme == std::string::npos)
      return Error(Code::kInvalidArgument, fmt::format("repository '{}': expected s3:http(s)://host[:port]/bucket[/prefix]", url));
    auto slash = rest.find('/', scheme + 3);
    if (slash == std::string::npos || slash + 1 == rest.size())
      return Error(Code::kInvalidArgument, fmt::format("repository '{}': no bucket after the host", url));
    std::string endpoint = rest.substr(0, slash), path = rest.substr(slash + 1);
    auto s2 = path.find('/');
    std::string bucket = path.substr(0, s2);
    prefix = s2 == std::string::npos ? "" : path.substr(s2 + 1);
    LB_ASSIGN_OR_RETURN(store, cloud::open_s3(endpoint, bucket));
  } else {
    std::string path = url.substr(3);
    auto s2 = path.find('/');
    std::string bucket = path.substr(0, s2);
    if (bucket.empty()) return Error(Code::kInvalidArgument, fmt::format("repository '{}': expected gs:bucket[/prefix]", url));
    prefix = s2 == std::string::npos ? "" : path.substr(s2 + 1);
    LB_ASSIGN_OR_RETURN(store, cloud::open_gcs(bucket));
  }
  while (!prefix.empty() && prefix.back() == '/') prefix.pop_back();
  std::unique_ptr<Backend> b(new ObjectBackend(std::move(store), prefix));
  if (const char* faults = std::getenv("LIFEBOAT_FAULTS"); faults && *faults) {
    LB_ASSIGN_OR_RETURN(b, with_fault_injection(std::move(b), faults));
  }
  return with_retries(std::move(b));
}

}  // namespace lifeboat::storage
