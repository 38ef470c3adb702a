// Helpers for repository tests: a fresh local repository in a temp directory, cheap KDF.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <string>

#include "repo/repository.h"
#include "storage/local_backend.h"

namespace lifeboat::testing {

inline std::string make_temp_dir() {
  std::string tmpl = (std::filesystem::temp_directory_path() / "lifeboat-test-XXXXXX").string();
  char* p = mkdtemp(tmpl.data());
  return p ? std::string(p) : std::string();
}

struct TempDir {
  std::string path = make_temp_dir();
  ~TempDir() { std::filesystem::remove_all(path); }
};

inline repo::InitOptions small_options() {
  repo::InitOptions o;
  o.kdf = {64, 1, 1};
  o.pack_size_bytes = 1 << 20;
  o.chunker = {4096, 16384, 65536};
  return o;
}

inline std::unique_ptr<repo::Repository> init_repo(const std::string& dir, const repo::InitOptions& o = small_options()) {
  auto r = repo::Repository::init(std::make_unique<storage::LocalBackend>(dir), "pw", o);
  EXPECT_TRUE(r.is_ok()) << r.status().message();
  return r.is_ok() ? std::move(r).value() : nullptr;
}

inline std::unique_ptr<repo::Repository> open_repo(const std::string& dir) {
  auto r = repo::Repository::open(std::make_unique<storage::LocalBackend>(dir), "pw");
  EXPECT_TRUE(r.is_ok()) << r.status().message();
  return r.is_ok() ? std::move(r).value() : nullptr;
}

inline Bytes pseudo_random(size_t n, uint64_t seed) {
  Bytes out(n);
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
  for (auto& b : out) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    b = static_cast<uint8_t>(x);
  }
  return out;
}

}  // namespace lifeboat::testing
