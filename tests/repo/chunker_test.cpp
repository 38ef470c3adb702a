// Content-defined chunking: bounds, determinism, keying, and resilience to insertions.
#include "repo/chunker.h"

#include <gtest/gtest.h>

#include <set>

#include "test_repo.h"

namespace lifeboat::repo {

static std::vector<size_t> cut(const Chunker& c, const Bytes& data) {
  std::vector<size_t> sizes;
  size_t pos = 0;
  while (pos < data.size()) {
    size_t n = c.next_boundary(data.data() + pos, data.size() - pos);
    sizes.push_back(n);
    pos += n;
  }
  return sizes;
}

TEST(Chunker, RespectsBoundsAndAveragesNearTarget) {
  ChunkerParams p{};  // production: 512 KiB / 1 MiB / 8 MiB
  Chunker c(crypto::random_key(), p);
  Bytes data = testing::pseudo_random(64 << 20, 1);
  auto sizes = cut(c, data);
  for (size_t i = 0; i + 1 < sizes.size(); ++i) {
    EXPECT_GE(sizes[i], p.min_size);
    EXPECT_LE(sizes[i], p.max_size);
  }
  double avg = static_cast<double>(data.size()) / static_cast<double>(sizes.size());
  EXPECT_GT(avg, 0.6 * p.avg_size);
  EXPECT_LT(avg, 1.8 * p.avg_size);
}

TEST(Chunker, SameKeySameCutsOtherKeyOtherCuts) {
  ChunkerParams p{4096, 16384, 65536};
  crypto::Key k = crypto::random_key();
  Bytes data = testing::pseudo_random(4 << 20, 2);
  EXPECT_EQ(cut(Chunker(k, p), data), cut(Chunker(k, p), data));
  EXPECT_NE(cut(Chunker(k, p), data), cut(Chunker(crypto::random_key(), p), data));
}

TEST(Chunker, InsertionOnlyDisturbsNearbyChunks) {
  ChunkerParams p{4096, 16384, 65536};
  Chunker c(crypto::random_key(), p);
  Bytes data = testing::pseudo_random(4 << 20, 3);
  Bytes edited = data;
  edited.insert(edited.begin() + (2 << 20), {1, 2, 3, 4, 5, 6, 7});
  auto chunks = [&](const Bytes& d) {
    std::set<std::string> out;
    size_t pos = 0;
    for (size_t n : cut(c, d)) {
      out.insert(std::string(d.begin() + static_cast<long>(pos), d.begin() + static_cast<long>(pos + n)));
      pos += n;
    }
    return out;
  };
  auto a = chunks(data), b = chunks(edited);
  size_t shared = 0;
  for (const auto& s : b) shared += a.count(s);
  EXPECT_GE(shared + 3, a.size());  // at most a few chunks around the edit change
}

TEST(Chunker, ShortInputIsOneChunk) {
  Chunker c(crypto::random_key(), ChunkerParams{4096, 16384, 65536});
  Bytes small(100, 7);
  EXPECT_EQ(c.next_boundary(small.data(), small.size()), 100u);
}

}  // namespace lifeboat::repo
