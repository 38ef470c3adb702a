// The local backend's writes: a large file goes out with O_DIRECT for its whole pages (through an
// aligned buffer) and buffered for the rest. Whatever the sizes and the caller's alignment, the file
// reads back exact, also across the seam between the two.
#include <gtest/gtest.h>

#include <numeric>

#include "../repo/test_repo.h"
#include "storage/backend.h"

namespace lifeboat::storage {
namespace {

Bytes pattern(size_t n) {
  Bytes b(n);
  for (size_t i = 0; i < n; ++i) b[i] = static_cast<uint8_t>((i * 131) ^ (i >> 12));
  return b;
}

TEST(LocalBackend, LargeWritesReadBackExactWhetherAlignedOrNot) {
  lifeboat::testing::TempDir dir;
  auto backend = open_backend(dir.path);
  ASSERT_TRUE(backend);
  ASSERT_TRUE((*backend)->create_layout(false));
  // A pack-sized buffer with a tail that is not a whole page.
  Bytes big = pattern((3 << 20) + 777);
  ASSERT_TRUE((*backend)->save({FileType::kPack, std::string(64, 'a')}, big, {}));
  // A view one byte into its buffer, larger than any file before it (the aligned buffer grows).
  Bytes shifted = pattern((4 << 20) + 4096 + 1);
  ByteView view(shifted.data() + 1, shifted.size() - 1);
  ASSERT_TRUE((*backend)->save({FileType::kPack, std::string(64, 'b')}, view, {}));
  // Exactly whole pages: nothing is left for the buffered write.
  Bytes pages = pattern(2 << 20);
  ASSERT_TRUE((*backend)->save({FileType::kPack, std::string(64, 'c')}, pages, {}));

  auto a = (*backend)->load({FileType::kPack, std::string(64, 'a')});
  ASSERT_TRUE(a);
  EXPECT_TRUE(*a == big);
  auto b = (*backend)->load({FileType::kPack, std::string(64, 'b')});
  ASSERT_TRUE(b);
  EXPECT_TRUE(std::equal(b->begin(), b->end(), view.begin(), view.end()));
  auto c = (*backend)->load({FileType::kPack, std::string(64, 'c')});
  ASSERT_TRUE(c);
  EXPECT_TRUE(*c == pages);
  // A ranged read across the direct/buffered seam.
  auto seam = (*backend)->load({FileType::kPack, std::string(64, 'a')}, (3 << 20) - 100, 500);
  ASSERT_TRUE(seam);
  EXPECT_TRUE(std::equal(seam->begin(), seam->end(), big.begin() + (3 << 20) - 100));
}

}  // namespace
}  // namespace lifeboat::storage
