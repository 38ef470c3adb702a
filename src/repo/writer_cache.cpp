// The append writer's cache: one sealed file per tree and per snapshot.
#include "repo/writer_cache.h"

#include <fmt/format.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "repo/compress.h"

namespace lifeboat::repo {

namespace fs = std::filesystem;

std::string WriterCache::default_dir(const std::string& repo_id, const std::string& key_name) {
  std::string base;
  if (const char* d = std::getenv("LIFEBOAT_CACHE_DIR"); d && *d) base = d;
  else if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) base = std::string(x) + "/lifeboat";
  else if (const char* h = std::getenv("HOME"); h && *h) base = std::string(h) + "/.cache/lifeboat";
  else base = "/tmp/lifeboat-cache-" + std::to_string(getuid());
  return base + "/writer/" + repo_id + "/" + key_name.substr(0, 16);
}

Status WriterCache::put(const std::string& path, ByteView plain) const {
  // Not fsynced: a cache lost in a crash costs a rescan, never data.
  std::error_code ec;
  fs::create_directories(fs::path(path).parent_path(), ec);
  if (ec) return Error(Code::kIo, fmt::format("writer cache {}: {}", fs::path(path).parent_path().string(), ec.message()));
  Bytes sealed = aead_.seal(compress_frame(plain, 3));
  // Two threads may store the same tree at once (sealed with different nonces): each its own temporary.
  std::string tmp = path + ".tmp" + hex_encode(crypto::random_bytes(8));
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    f.write(reinterpret_cast<const char*>(sealed.data()), static_cast<std::streamsize>(sealed.size()));
    if (!f) return Error(Code::kIo, "writing the writer cache at " + tmp);
  }
  fs::rename(tmp, path, ec);
  if (ec) return Error(Code::kIo, fmt::format("writer cache {}: {}", path, ec.message()));
  return Status::ok();
}

Result<Bytes> WriterCache::get(const std::string& path) const {
  std::ifstream f(path, std::ios::binary);
  if (!f) return Error(Code::kNotFound, "not in the writer cache: " + path);
  Bytes sealed((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  auto opened = aead_.open(sealed);
  auto plain = opened ? decompress_frame(*opened, 1ull << 31) : Result<Bytes>(opened.status());
  if (!plain) {
    fmt::print(stderr, "lifeboat: warning: writer cache entry {} is damaged ({}): treated as absent\n", path,
               plain.status().message());
    return Error(Code::kNotFound, "damaged in the writer cache: " + path);
  }
  return plain;
}

Status WriterCache::put_tree(const BlobId& id, ByteView plain) {
  std::string hex = to_hex(id);
  return put(dir_ + "/trees/" + hex.substr(0, 2) + "/" + hex, plain);
}

Result<Bytes> WriterCache::get_tree(const BlobId& id) const {
  std::string hex = to_hex(id);
  return get(dir_ + "/trees/" + hex.substr(0, 2) + "/" + hex);
}

Status WriterCache::put_snapshot(const std::string& id, const std::string& json) {
  return put(dir_ + "/snapshots/" + id, as_bytes(json));
}

Result<std::vector<std::pair<std::string, std::string>>> WriterCache::snapshots() const {
  std::vector<std::pair<std::string, std::string>> out;
  std::error_code ec;
  fs::directory_iterator it(dir_ + "/snapshots", ec);
  if (ec) return out;  // none yet
  for (const auto& e : it) {
    std::string name = e.path().filename().string();
    if (name.find(".tmp") != std::string::npos) continue;
    auto plain = get(e.path().string());
    if (!plain) continue;
    out.emplace_back(name, to_string(*plain));
  }
  return out;
}

}  // namespace lifeboat::repo
