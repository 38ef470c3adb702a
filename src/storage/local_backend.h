// A repository in a local directory: temp file + fsync + atomic link/rename + directory fsync.
#pragma once

#include "storage/backend.h"

namespace lifeboat::storage {

class LocalBackend final : public Backend {
 public:
  explicit LocalBackend(std::string root);
  std::string location() const override { return "local:" + root_; }
  Status create_layout() override;
  Status save(const Handle& h, ByteView data, const SaveOptions& options) override;
  Result<Bytes> load(const Handle& h, uint64_t offset, uint64_t length) override;
  Result<FileInfo> stat(const Handle& h) override;
  Status list(FileType t, const std::function<Status(const FileInfo&)>& fn) override;
  Status remove(const Handle& h) override;

  std::string path_of(const Handle& h) const;

 private:
  std::string root_;
};

}  // namespace lifeboat::storage
