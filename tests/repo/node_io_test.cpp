// A file node read back piece by piece (NodeReader, what a streaming upload sends) gives exactly the
// bytes stored, across blob boundaries and whatever the buffer size.
#include <gtest/gtest.h>

#include <random>

#include "repo/node_io.h"
#include "test_repo.h"

namespace lifeboat::repo {
namespace {

TEST(NodeReader, StreamsTheStoredBytesOneBlobAtATime) {
  testing::TempDir dir;
  auto repo = testing::init_repo(dir.path);
  ASSERT_TRUE(repo);
  Bytes data(5 * 1024 * 1024 + 17);
  std::mt19937 rng(7);
  for (auto& b : data) b = static_cast<uint8_t>(rng());
  WriteSession session(*repo);
  auto node = store_bytes_node(session, "model.bin", data, 0644, 0);
  ASSERT_TRUE(node.is_ok()) << node.status().message();
  ASSERT_TRUE(session.flush().is_ok());
  ASSERT_GT(node->content.size(), 1u) << "the test needs a file of several blobs";
  for (size_t buf_size : {size_t{1} << 20, size_t{4096}, size_t{7}}) {
    NodeReader reader(*repo, *node);
    Bytes got;
    std::vector<uint8_t> buf(buf_size);
    while (true) {
      auto n = reader.read(buf.data(), buf.size());
      ASSERT_TRUE(n.is_ok()) << n.status().message();
      if (*n == 0) break;
      got.insert(got.end(), buf.begin(), buf.begin() + static_cast<long>(*n));
      if (buf_size == 7 && got.size() > 100000) break;  // enough to cross into the stream; the rest is slow
    }
    if (buf_size == 7) EXPECT_TRUE(std::equal(got.begin(), got.end(), data.begin()));
    else EXPECT_EQ(got, data);
  }
}

}  // namespace
}  // namespace lifeboat::repo
