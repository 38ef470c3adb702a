// The in-memory backend (see memory_backend.h).
#include "storage/memory_backend.h"

#include <fmt/format.h>

#include <map>
#include <mutex>


namespace lifeboat::storage {

namespace {

struct StoredFile {
  Bytes data;
  int64_t mtime_ns = 0;
  int64_t retain_until_ns = 0;
};

struct MemoryStore {
  std::mutex mu;
  bool object_lock = false;
  std::map<std::pair<FileType, std::string>, StoredFile> files;
};

class MemoryBackend final : public Backend {
 public:
  MemoryBackend(std::string name, std::shared_ptr<MemoryStore> store, const Clock& clock)
      : name_(std::move(name)), store_(std::move(store)), clock_(clock) {}

  std::string location() const override { return "memory:" + name_; }

  Status create_layout(bool object_lock) override {
    std::lock_guard l(store_->mu);
    if (store_->files.count({FileType::kConfig, ""}))
      return Error(Code::kAlreadyExists, fmt::format("{} already holds a repository", location()));
    store_->object_lock = object_lock;
    return Status::ok();
  }

  Status save(const Handle& h, ByteView data, const SaveOptions& options) override {
    std::lock_guard l(store_->mu);
    auto key = std::make_pair(h.type, h.name);
    auto it = store_->files.find(key);
    if (it != store_->files.end()) {
      if (options.create_only)
        return Error(Code::kAlreadyExists, fmt::format("{} {} already exists", file_type_name(h.type), h.name));
      if (held(it->second)) return locked(h, it->second);
    }
    StoredFile f{Bytes(data.begin(), data.end()), clock_.now_ns(), store_->object_lock ? options.retain_until_ns : 0};
    store_->files[key] = std::move(f);
    return Status::ok();
  }

  Result<Bytes> load(const Handle& h, uint64_t offset, uint64_t length) override {
    std::lock_guard l(store_->mu);
    LB_ASSIGN_OR_RETURN(const StoredFile* f, find(h));
    uint64_t size = f->data.size();
    if (offset > size || (length && offset + length > size))
      return Error(Code::kIo, fmt::format("{} {}: {} bytes from {} asked, {} stored", file_type_name(h.type), h.name, length,
                                          offset, size));
    uint64_t n = length ? length : size - offset;
    return Bytes(f->data.begin() + static_cast<ptrdiff_t>(offset), f->data.begin() + static_cast<ptrdiff_t>(offset + n));
  }

  Result<FileInfo> stat(const Handle& h) override {
    std::lock_guard l(store_->mu);
    LB_ASSIGN_OR_RETURN(const StoredFile* f, find(h));
    return FileInfo{h.name, f->data.size(), f->mtime_ns, f->retain_until_ns};
  }

  Status list(FileType t, const std::function<Status(const FileInfo&)>& fn) override {
    std::vector<FileInfo> infos;  // called without the lock held: fn may use the backend
    {
      std::lock_guard l(store_->mu);
      for (const auto& [key, f] : store_->files)
        if (key.first == t) infos.push_back({key.second, f.data.size(), f.mtime_ns, f.retain_until_ns});
    }
    for (const auto& fi : infos) LB_RETURN_IF_ERROR(fn(fi));
    return Status::ok();
  }

  Status remove(const Handle& h) override {
    std::lock_guard l(store_->mu);
    auto it = store_->files.find({h.type, h.name});
    if (it == store_->files.end()) return Status::ok();
    if (held(it->second)) return locked(h, it->second);
    store_->files.erase(it);
    return Status::ok();
  }

  bool supports_retention() const override { return true; }

  Status extend_retention(const Handle& h, int64_t retain_until_ns) override {
    std::lock_guard l(store_->mu);
    auto it = store_->files.find({h.type, h.name});
    if (it == store_->files.end()) return Error(Code::kNotFound, fmt::format("{} {} not found", file_type_name(h.type), h.name));
    it->second.retain_until_ns = std::max(it->second.retain_until_ns, retain_until_ns);  // retention only grows
    return Status::ok();
  }

 private:
  Result<const StoredFile*> find(const Handle& h) const {
    auto it = store_->files.find({h.type, h.name});
    if (it == store_->files.end()) return Error(Code::kNotFound, fmt::format("{} {} not found", file_type_name(h.type), h.name));
    return &it->second;
  }
  bool held(const StoredFile& f) const { return f.retain_until_ns > clock_.now_ns(); }
  static Status locked(const Handle& h, const StoredFile& f) {
    return Error(Code::kIo, fmt::format("{} {} is under object lock until {} ns", file_type_name(h.type), h.name, f.retain_until_ns));
  }

  std::string name_;
  std::shared_ptr<MemoryStore> store_;
  const Clock& clock_;
};

}  // namespace

std::unique_ptr<Backend> open_memory_backend(const std::string& name, const Clock& clock) {
  static std::mutex mu;
  static std::map<std::string, std::shared_ptr<MemoryStore>> stores;
  std::lock_guard l(mu);
  auto& store = stores[name];
  if (!store) store = std::make_shared<MemoryStore>();
  return std::make_unique<MemoryBackend>(name, store, clock);
}

}  // namespace lifeboat::storage
