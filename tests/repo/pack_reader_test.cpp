// Pack-ordered reading: every distinct blob once, with its bytes; damage fails only the damaged blob.
#include "repo/pack_reader.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>

#include "repo/write_session.h"
#include "test_repo.h"

namespace lifeboat::repo {

using testing::TempDir;

namespace {

// Two streams over several 1 MiB packs; returns their blob IDs in order.
std::vector<BlobId> store_two_streams(Repository& repo, std::vector<Bytes>& originals) {
  std::vector<BlobId> ids;
  WriteSession s(repo);
  for (uint64_t seed : {11, 12}) {
    originals.push_back(testing::pseudo_random(3 << 20, seed));
    MemorySource src(originals.back());
    auto r = s.store_stream(src);
    EXPECT_TRUE(r.is_ok());
    ids.insert(ids.end(), r->content.begin(), r->content.end());
  }
  EXPECT_TRUE(s.flush().is_ok());
  return ids;
}

struct Delivered {
  std::mutex mu;
  std::map<size_t, int> times;             // by first position
  std::map<size_t, Result<Bytes>> results;
};

Status read_all(Repository& repo, const std::vector<BlobId>& ids, Delivered& out) {
  PackOrderOptions options;
  options.threads = 3;
  return read_in_pack_order(repo, ids, options, [&](size_t i, Result<Bytes> data) {
    std::lock_guard l(out.mu);
    out.times[i]++;
    out.results.insert_or_assign(i, std::move(data));
  });
}

}  // namespace

TEST(PackReader, DeliversEachDistinctBlobOnceWithItsVerifiedBytes) {
  TempDir dir;
  auto repo = testing::init_repo(dir.path);
  std::vector<Bytes> originals;
  std::vector<BlobId> stored = store_two_streams(*repo, originals);
  ASSERT_GT(stored.size(), 60u);

  // Asked in reverse, with every blob asked twice and one blob nobody stored.
  std::vector<BlobId> ids(stored.rbegin(), stored.rend());
  ids.insert(ids.end(), stored.begin(), stored.end());
  BlobId unknown{};
  unknown[0] = 0x42;
  ids.push_back(unknown);

  auto fresh = testing::open_repo(dir.path);
  Delivered got;
  ASSERT_TRUE(read_all(*fresh, ids, got).is_ok());
  ASSERT_EQ(got.times.size(), stored.size() + 1);
  for (const auto& [i, n] : got.times) {
    EXPECT_EQ(n, 1) << "blob at " << i;
    EXPECT_TRUE(i < stored.size() || i == ids.size() - 1) << "delivered under a later position than its first: " << i;
  }
  ASSERT_FALSE(got.results.at(ids.size() - 1).is_ok());
  EXPECT_NE(got.results.at(ids.size() - 1).status().message().find("not in the index"), std::string::npos);
  // The bytes, reassembled in stream order, are the originals.
  Bytes joined;
  for (size_t k = 0; k < stored.size(); ++k) {
    const auto& r = got.results.at(stored.size() - 1 - k);
    ASSERT_TRUE(r.is_ok()) << r.status().message();
    joined.insert(joined.end(), r->begin(), r->end());
  }
  Bytes expected = originals[0];
  expected.insert(expected.end(), originals[1].begin(), originals[1].end());
  EXPECT_EQ(joined, expected);
}

TEST(PackReader, ADamagedBlobFailsAloneAndItsNeighboursInTheSameReadArrive) {
  TempDir dir;
  auto repo = testing::init_repo(dir.path);
  std::vector<Bytes> originals;
  std::vector<BlobId> ids = store_two_streams(*repo, originals);
  // Damage one byte in the middle of a blob with neighbours on both sides in its pack.
  const BlobId victim = ids[5];
  auto loc = repo->index().find(victim);
  ASSERT_TRUE(loc.has_value());
  std::string pack = dir.path + "/data/" + to_hex(loc->pack).substr(0, 2) + "/" + to_hex(loc->pack);
  ASSERT_TRUE(std::filesystem::exists(pack)) << pack;
  {
    std::fstream f(pack, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(loc->offset + loc->stored_len / 2);
    char c;
    f.read(&c, 1);
    c ^= 0x01;
    f.seekp(loc->offset + loc->stored_len / 2);
    f.write(&c, 1);
  }
  auto fresh = testing::open_repo(dir.path);
  Delivered got;
  ASSERT_TRUE(read_all(*fresh, ids, got).is_ok());
  ASSERT_EQ(got.results.size(), ids.size());
  size_t failed = 0;
  for (size_t i = 0; i < ids.size(); ++i) {
    const auto& r = got.results.at(i);
    if (ids[i] == victim) {
      ASSERT_FALSE(r.is_ok());
      EXPECT_EQ(r.status().code(), Code::kCorrupt);
      EXPECT_NE(r.status().message().find(to_hex(loc->pack)), std::string::npos) << r.status().message();
      ++failed;
    } else {
      ASSERT_TRUE(r.is_ok()) << i << ": " << r.status().message();
      EXPECT_EQ(fresh->blob_id(*r), ids[i]);
    }
  }
  EXPECT_EQ(failed, 1u);
}

}  // namespace lifeboat::repo
