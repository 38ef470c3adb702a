// A file node read back piece by piece (NodeReader, what a streaming upload sends) gives exactly the
// bytes stored, across blob boundaries and whatever the buffer size. A node stored from pushed pieces
// (store_pushed_node, what a streaming download feeds) is the node store_bytes_node makes of the same
// bytes, and an error on either side ends both.
#include <gtest/gtest.h>

#include <random>

#include "core/interrupt.h"
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

TEST(StorePushedNode, PiecesOfAnySizeMakeTheSameNodeAsTheWholeBytes) {
  testing::TempDir dir;
  auto repo = testing::init_repo(dir.path);
  ASSERT_TRUE(repo);
  Bytes data(9 * 1024 * 1024 + 5);
  std::mt19937 rng(11);
  for (auto& b : data) b = static_cast<uint8_t>(rng());
  WriteSession session(*repo);
  auto whole = store_bytes_node(session, "a", data, 0644, 0);
  ASSERT_TRUE(whole.is_ok()) << whole.status().message();
  // Pieces of odd sizes, pushed through a window smaller than one of them.
  for (size_t piece : {size_t{1} << 20, size_t{16384} + 3, size_t{3} << 20}) {
    auto pushed = store_pushed_node(session, "a", 0644, 0, [&](const Push& push) -> Status {
      for (size_t at = 0; at < data.size(); at += piece)
        LB_RETURN_IF_ERROR(push(ByteView(data).subspan(at, std::min(piece, data.size() - at))));
      return Status::ok();
    }, 1 << 20);
    ASSERT_TRUE(pushed.is_ok()) << pushed.status().message();
    EXPECT_EQ(pushed->size, data.size());
    EXPECT_EQ(pushed->content, whole->content) << "piece " << piece;
  }
  ASSERT_TRUE(session.flush().is_ok());
  auto back = read_node_bytes(*repo, *whole);
  ASSERT_TRUE(back.is_ok());
  EXPECT_EQ(*back, data);
}

TEST(StorePushedNode, AProducerErrorEndsTheStoreAndIsReturned) {
  testing::TempDir dir;
  auto repo = testing::init_repo(dir.path);
  ASSERT_TRUE(repo);
  WriteSession session(*repo);
  Bytes piece(1 << 20, 7);
  auto r = store_pushed_node(session, "a", 0644, 0, [&](const Push& push) -> Status {
    for (int i = 0; i < 5; ++i) LB_RETURN_IF_ERROR(push(piece));
    return Error(Code::kUnavailable, "the server went away at 5 MiB");
  }, 1 << 20);
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), Code::kUnavailable);
  EXPECT_EQ(r.status().message(), "the server went away at 5 MiB");
}

TEST(StorePushedNode, AStoreErrorStopsTheProducerInsteadOfLeavingItBlocked) {
  testing::TempDir dir;
  auto repo = testing::init_repo(dir.path);
  ASSERT_TRUE(repo);
  WriteSession session(*repo);
  Bytes piece(1 << 20, 9);
  int pushed = 0;
  Status last;
  // The store fails (interrupted) while the producer still has far more than the window to push:
  // its next push returns the store's error instead of waiting for room forever.
  auto r = store_pushed_node(session, "a", 0644, 0, [&](const Push& push) -> Status {
    for (int i = 0; i < 1000; ++i) {
      if (i == 3) request_interrupt();
      last = push(piece);
      if (!last) return last;
      ++pushed;
    }
    return Status::ok();
  }, 1 << 20);
  clear_interrupt();
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), Code::kInterrupted) << r.status().message();
  EXPECT_LT(pushed, 1000);
  EXPECT_EQ(last.code(), Code::kInterrupted);
}

}  // namespace
}  // namespace lifeboat::repo
