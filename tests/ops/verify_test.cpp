// A plan backup's verification reads the storage listing, not the index the backup just wrote.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "../repo/test_repo.h"
#include "ops/plan_ops.h"
#include "repo/write_session.h"

namespace lifeboat::ops {

using testing::TempDir;

namespace {

// Commits a snapshot whose single file holds `data`; returns the snapshot ID.
std::string commit_file(repo::Repository& repo, const Bytes& data) {
  repo::WriteSession s(repo);
  repo::MemorySource src(data);
  auto stored = s.store_stream(src);
  EXPECT_TRUE(stored.is_ok());
  repo::Tree t;
  repo::Node n;
  n.name = "f";
  n.size = stored->size_bytes;
  n.content = stored->content;
  t.nodes = {n};
  repo::Snapshot snap;
  snap.time_ns = 1;
  snap.tree = *s.store_tree(t);
  return *s.commit(snap);
}

void delete_packs(const std::string& dir) {
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir + "/data"))
    if (e.is_regular_file()) std::filesystem::remove(e.path());
}

}  // namespace

TEST(VerifySnapshot, APackGoneFromStorageFailsEvenThoughTheIndexNamesIt) {
  TempDir dir;
  auto repo = testing::init_repo(dir.path);
  Bytes data = testing::pseudo_random(200000, 1);
  std::string id = commit_file(*repo, data);
  ASSERT_TRUE(verify_snapshot(*repo, id, 0.05).is_ok());
  delete_packs(dir.path);
  auto r = verify_snapshot(*testing::open_repo(dir.path), id, 0.05);
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status().message().find("is missing from storage"), std::string::npos) << r.status().message();
}

// The index files name each blob twice: in the deleted pack and in the one a later backup stored it in
// again. Which copy a lookup finds first depends on the IDs, so several contents are tried.
TEST(VerifySnapshot, ABlobStoredAgainAfterItsPackWentMissingCountsAsPresent) {
  for (uint64_t seed = 1; seed <= 6; ++seed) {
    TempDir dir;
    auto repo = testing::init_repo(dir.path);
    Bytes data = testing::pseudo_random(200000, seed);
    commit_file(*repo, data);
    delete_packs(dir.path);
    auto again = testing::open_repo(dir.path);
    ASSERT_TRUE(again->load_index().is_ok());
    ASSERT_TRUE(again->drop_missing_packs().is_ok());  // as a backup's pack reconciliation does
    std::string id = commit_file(*again, data);
    auto r = verify_snapshot(*testing::open_repo(dir.path), id, 0.05);
    EXPECT_TRUE(r.is_ok()) << "seed " << seed << ": " << r.status().message();
  }
}

// A pack damaged in place (same size, one byte flipped): the listing alone cannot tell; the sampled
// read-back (here every blob) decrypts the blob and fails naming it.
TEST(VerifySnapshot, ASampledReadBackSeesABytechangedPackTheListingCannot) {
  TempDir dir;
  auto repo = testing::init_repo(dir.path);
  Bytes data = testing::pseudo_random(200000, 3);
  std::string id = commit_file(*repo, data);
  std::filesystem::path largest;  // the data pack (trees sit in a small pack of their own)
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir.path + "/data"))
    if (e.is_regular_file() && (largest.empty() || e.file_size() > std::filesystem::file_size(largest))) largest = e.path();
  {
    auto size = std::filesystem::file_size(largest);
    std::fstream f(largest, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(static_cast<std::streamoff>(size / 3));
    char c = 0;
    f.read(&c, 1);
    f.seekp(static_cast<std::streamoff>(size / 3));
    c = static_cast<char>(c ^ 0x40);
    f.write(&c, 1);
  }
  EXPECT_TRUE(verify_snapshot(*testing::open_repo(dir.path), id, 0).is_ok()) << "sizes alone cannot see it";
  auto r = verify_snapshot(*testing::open_repo(dir.path), id, 1.0);
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status().message().find("reading blob"), std::string::npos) << r.status().message();
  auto unsampled = verify_snapshot(*testing::open_repo(dir.path), id, 0);
  ASSERT_TRUE(unsampled.is_ok());
  EXPECT_EQ((*unsampled)["blobs_read"], 0);
}

}  // namespace lifeboat::ops
