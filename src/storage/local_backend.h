// A repository in a local directory: temp file + fsync + atomic link/rename + directory fsync.
#pragma once

#include <list>
#include <memory>
#include <mutex>
#include <unordered_map>

#include "storage/backend.h"

namespace lifeboat::storage {

class LocalBackend final : public Backend {
 public:
  explicit LocalBackend(std::string root);
  ~LocalBackend() override;
  std::string location() const override { return "local:" + root_; }
  Status create_layout(bool object_lock) override;
  Status save(const Handle& h, ByteView data, const SaveOptions& options) override;
  Result<Bytes> load(const Handle& h, uint64_t offset, uint64_t length) override;
  Result<FileInfo> stat(const Handle& h) override;
  Status list(FileType t, const std::function<Status(const FileInfo&)>& fn) override;
  Status remove(const Handle& h) override;

  std::string path_of(const Handle& h) const;

 private:
  // Packs never change once written, so ranged reads share open descriptors (a restore of many small
  // files would otherwise open and close a pack once per blob). Bounded LRU.
  struct OpenFile {
    explicit OpenFile(int f) : fd(f) {}
    OpenFile(const OpenFile&) = delete;
    OpenFile& operator=(const OpenFile&) = delete;
    ~OpenFile();
    int fd;
  };
  using SharedFile = std::shared_ptr<const OpenFile>;  // closed when the last reader lets go
  Result<SharedFile> open_cached(const std::string& path);
  void evict(const std::string& path);
  std::string root_;
  std::mutex fd_mu_;
  std::list<std::pair<std::string, SharedFile>> fd_lru_;
  std::unordered_map<std::string, std::list<std::pair<std::string, SharedFile>>::iterator> fd_map_;
};

}  // namespace lifeboat::storage
