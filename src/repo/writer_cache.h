// An append key's cache on its own host: the trees and snapshots it wrote, sealed with a key only
// its key file holds, so its next backup compares with its last one without reading the repository
// (which it cannot decrypt). Lost or damaged, it costs one full rescan, still deduplicated.
// docs/security.md, "The writer's cache".
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "core/bytes.h"
#include "core/status.h"
#include "crypto/crypto.h"
#include "repo/blob.h"

namespace lifeboat::repo {

class WriterCache {
 public:
  // $LIFEBOAT_CACHE_DIR, else $XDG_CACHE_HOME/lifeboat, else ~/.cache/lifeboat; then
  // writer/<repository id>/<key file name>.
  static std::string default_dir(const std::string& repo_id, const std::string& key_name);
  WriterCache(std::string dir, const crypto::Key& key) : dir_(std::move(dir)), aead_(key) {}

  Status put_tree(const BlobId& id, ByteView plain);
  // kNotFound when this host never wrote (or lost) it; a damaged entry is kNotFound too, with a warning.
  Result<Bytes> get_tree(const BlobId& id) const;
  Status put_snapshot(const std::string& id, const std::string& json);
  // Every snapshot this key wrote from this host, (id, JSON); damaged entries are skipped with a warning.
  Result<std::vector<std::pair<std::string, std::string>>> snapshots() const;
  const std::string& dir() const { return dir_; }

 private:
  Status put(const std::string& path, ByteView plain) const;
  Result<Bytes> get(const std::string& path) const;
  std::string dir_;
  crypto::Aead aead_;
};

}  // namespace lifeboat::repo
