// FastCDC with normalized chunking (Xia et al., USENIX ATC 2016), masks on the high bits of the gear hash.
#include "repo/chunker.h"

#include <bit>
#include <cstring>

namespace lifeboat::repo {

static uint64_t top_bits_mask(int bits) { return bits <= 0 ? 0 : ~uint64_t{0} << (64 - bits); }

Chunker::Chunker(const crypto::Key& key, const ChunkerParams& params) : params_(params) {
  Bytes table = crypto::hkdf_sha256({key.data(), key.size()}, "lifeboat-v1", "gear-table", 256 * 8);
  std::memcpy(gear_.data(), table.data(), table.size());
  int bits = std::countr_zero(params.avg_size);
  // The high bits of the gear hash depend on the last 64 bytes; masking them gives a 64-byte window.
  mask_small_ = top_bits_mask(bits + 2);
  mask_large_ = top_bits_mask(bits - 2);
}

size_t Chunker::next_boundary(const uint8_t* data, size_t n) const {
  if (n <= params_.min_size) return n;
  size_t limit = n < params_.max_size ? n : params_.max_size;
  size_t normal = params_.avg_size < limit ? params_.avg_size : limit;
  uint64_t fp = 0;
  size_t i = params_.min_size;
  for (; i < normal; ++i) {
    fp = (fp << 1) + gear_[data[i]];
    if (!(fp & mask_small_)) return i + 1;
  }
  for (; i < limit; ++i) {
    fp = (fp << 1) + gear_[data[i]];
    if (!(fp & mask_large_)) return i + 1;
  }
  return limit;
}

}  // namespace lifeboat::repo
