// Keyed FastCDC content-defined chunking: boundaries depend on content and on a per-repository secret.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

#include "crypto/crypto.h"

namespace lifeboat::repo {

struct ChunkerParams {
  uint32_t min_size = 512 * 1024;
  uint32_t avg_size = 1024 * 1024;  // a power of two
  uint32_t max_size = 8 * 1024 * 1024;
};

class Chunker {
 public:
  // The gear table is 256 64-bit words expanded from `key` by HKDF, so two repositories cut the same
  // data at different places and a boundary reveals nothing about content to someone without the key.
  Chunker(const crypto::Key& key, const ChunkerParams& params);

  // Given data that starts at a chunk boundary, returns the length of the first chunk. `at_end` says no
  // more data follows `data`; otherwise `n` must be at least max_size (or the rest of the stream).
  size_t next_boundary(const uint8_t* data, size_t n) const;

  const ChunkerParams& params() const { return params_; }

 private:
  ChunkerParams params_;
  std::array<uint64_t, 256> gear_{};
  uint64_t mask_small_;  // more bits: harder to cut before avg_size
  uint64_t mask_large_;  // fewer bits: easier to cut after avg_size
};

}  // namespace lifeboat::repo
