// The storage contract (storage/backend.h), run against every backend: local, memory, and, when the
// end-to-end suite starts their peers and names them, S3 (LIFEBOAT_TEST_S3_URL, versitygw) and GCS
// (LIFEBOAT_TEST_GCS_URL, fake-gcs-server). A new backend adds one line to backends() and inherits
// every test. restic's internal/backend/test/suite.go is the model.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <set>

#include "../repo/test_repo.h"
#include "core/time.h"
#include "storage/backend.h"
#include "storage/memory_backend.h"

namespace lifeboat::storage {
namespace {

struct BackendUnderTest {
  std::string name;
  std::function<std::unique_ptr<Backend>()> open;  // a fresh, empty location each call
};

std::vector<BackendUnderTest> backends() {
  static lifeboat::testing::TempDir dir;
  static std::atomic<int> n{0};
  std::vector<BackendUnderTest> out = {
      {"local",
       [] {
         auto b = open_backend(dir.path + "/r" + std::to_string(n++));
         return b ? std::move(*b) : nullptr;
       }},
      {"memory", [] { return open_memory_backend("conformance-" + std::to_string(n++) + "-" + std::to_string(now_unix_ns())); }},
  };
  for (auto [name, var] : {std::pair{"s3", "LIFEBOAT_TEST_S3_URL"}, std::pair{"gcs", "LIFEBOAT_TEST_GCS_URL"}}) {
    const char* url = std::getenv(var);
    if (!url || !*url) continue;
    std::string base = url;
    out.push_back({name, [base] {
                     auto b = open_backend(base + "/c" + std::to_string(n++) + "-" + std::to_string(now_unix_ns()));
                     return b ? std::move(*b) : nullptr;
                   }});
  }
  return out;
}

class BackendConformance : public ::testing::TestWithParam<BackendUnderTest> {
 protected:
  void SetUp() override {
    b = GetParam().open();
    ASSERT_NE(b, nullptr);
    ASSERT_TRUE(b->create_layout(false)) << GetParam().name;
  }
  std::unique_ptr<Backend> b;
};

Bytes pattern(size_t n, uint8_t seed) {
  Bytes out(n);
  for (size_t i = 0; i < n; ++i) out[i] = static_cast<uint8_t>((i * 131 + seed) ^ (i >> 9));
  return out;
}

const std::string kPackName = std::string(64, 'a');

TEST_P(BackendConformance, SavedFilesLoadBackWholeAndInRanges) {
  Bytes data = pattern(100000, 1);
  ASSERT_TRUE(b->save({FileType::kPack, kPackName}, data, {}));
  auto whole = b->load({FileType::kPack, kPackName});
  ASSERT_TRUE(whole) << whole.status().message();
  EXPECT_TRUE(*whole == data);
  auto mid = b->load({FileType::kPack, kPackName}, 1000, 500);
  ASSERT_TRUE(mid) << mid.status().message();
  EXPECT_TRUE(*mid == Bytes(data.begin() + 1000, data.begin() + 1500));
  auto tail = b->load({FileType::kPack, kPackName}, 99000);  // length 0: to the end
  ASSERT_TRUE(tail) << tail.status().message();
  EXPECT_TRUE(*tail == Bytes(data.begin() + 99000, data.end()));
}

TEST_P(BackendConformance, EmptyFilesAndTheConfigRoundTrip) {
  ASSERT_TRUE(b->save({FileType::kIndex, std::string(64, 'e')}, Bytes{}, {}));
  auto empty = b->load({FileType::kIndex, std::string(64, 'e')});
  ASSERT_TRUE(empty) << empty.status().message();
  EXPECT_TRUE(empty->empty());
  Bytes config = pattern(300, 2);
  ASSERT_TRUE(b->save({FileType::kConfig, ""}, config, {}));
  auto back = b->load({FileType::kConfig, ""});
  ASSERT_TRUE(back);
  EXPECT_TRUE(*back == config);
}

TEST_P(BackendConformance, MissingFilesAreNotFound) {
  auto l = b->load({FileType::kSnapshot, std::string(64, 'f')});
  ASSERT_FALSE(l);
  EXPECT_EQ(l.status().code(), Code::kNotFound);
  auto s = b->stat({FileType::kSnapshot, std::string(64, 'f')});
  ASSERT_FALSE(s);
  EXPECT_EQ(s.status().code(), Code::kNotFound);
}

TEST_P(BackendConformance, ARangePastTheEndIsAnErrorNeverShortData) {
  ASSERT_TRUE(b->save({FileType::kPack, kPackName}, pattern(1000, 3), {}));
  auto past = b->load({FileType::kPack, kPackName}, 900, 200);
  EXPECT_FALSE(past && past->size() != 200) << "a short range came back as if whole";
}

TEST_P(BackendConformance, CreateOnlyRefusesAnExistingNameAndKeepsIt) {
  Bytes first = pattern(100, 4), second = pattern(120, 5);
  ASSERT_TRUE(b->save({FileType::kKey, "k1"}, first, {}));
  Status again = b->save({FileType::kKey, "k1"}, second, {});
  ASSERT_FALSE(again);
  EXPECT_EQ(again.code(), Code::kAlreadyExists);
  auto kept = b->load({FileType::kKey, "k1"});
  ASSERT_TRUE(kept);
  EXPECT_TRUE(*kept == first);
  SaveOptions replace;
  replace.create_only = false;
  ASSERT_TRUE(b->save({FileType::kLock, "l1"}, first, replace));
  ASSERT_TRUE(b->save({FileType::kLock, "l1"}, second, replace));
  auto replaced = b->load({FileType::kLock, "l1"});
  ASSERT_TRUE(replaced);
  EXPECT_TRUE(*replaced == second);
}

TEST_P(BackendConformance, StatGivesTheSize) {
  ASSERT_TRUE(b->save({FileType::kSnapshot, std::string(64, 'c')}, pattern(4321, 6), {}));
  auto info = b->stat({FileType::kSnapshot, std::string(64, 'c')});
  ASSERT_TRUE(info) << info.status().message();
  EXPECT_EQ(info->size_bytes, 4321u);
}

TEST_P(BackendConformance, ListNamesEachFileOfTheTypeOnce) {
  std::set<std::string> want;
  for (int i = 0; i < 7; ++i) {
    static const char* hex = "0123456789abcdef";
    std::string name(64, '0');  // pack names are hex: the local backend files them by their first byte
    name[0] = hex[i];
    name[1] = hex[(i * 3) % 16];
    want.insert(name);
    ASSERT_TRUE(b->save({FileType::kPack, name}, pattern(10 + i, 7), {}));
  }
  ASSERT_TRUE(b->save({FileType::kIndex, std::string(64, 'd')}, pattern(5, 8), {}));
  std::multiset<std::string> seen;
  ASSERT_TRUE(b->list(FileType::kPack, [&](const FileInfo& fi) {
    seen.insert(fi.name);
    return Status::ok();
  }));
  EXPECT_EQ(std::set<std::string>(seen.begin(), seen.end()), want);
  EXPECT_EQ(seen.size(), want.size()) << "a file was listed twice";
  // The first error stops the listing and comes back.
  int calls = 0;
  Status stopped = b->list(FileType::kPack, [&](const FileInfo&) {
    ++calls;
    return Error(Code::kFatal, "enough");
  });
  EXPECT_FALSE(stopped);
  EXPECT_EQ(calls, 1);
}

TEST_P(BackendConformance, RemoveIsIdempotent) {
  ASSERT_TRUE(b->save({FileType::kSnapshot, std::string(64, 'b')}, pattern(10, 9), {}));
  ASSERT_TRUE(b->remove({FileType::kSnapshot, std::string(64, 'b')}));
  ASSERT_TRUE(b->remove({FileType::kSnapshot, std::string(64, 'b')}));
  auto gone = b->load({FileType::kSnapshot, std::string(64, 'b')});
  ASSERT_FALSE(gone);
  EXPECT_EQ(gone.status().code(), Code::kNotFound);
  size_t listed = 0;
  ASSERT_TRUE(b->list(FileType::kSnapshot, [&](const FileInfo&) {
    ++listed;
    return Status::ok();
  }));
  EXPECT_EQ(listed, 0u);
}

TEST_P(BackendConformance, ALayoutIsNotMadeTwiceOverARepository) {
  ASSERT_TRUE(b->save({FileType::kConfig, ""}, pattern(10, 10), {}));
  EXPECT_FALSE(b->create_layout(false));
}

TEST_P(BackendConformance, LargeFilesRoundTrip) {
  Bytes big = pattern((6 << 20) + 12345, 11);
  ASSERT_TRUE(b->save({FileType::kPack, kPackName}, big, {}));
  auto back = b->load({FileType::kPack, kPackName});
  ASSERT_TRUE(back) << back.status().message();
  EXPECT_TRUE(*back == big);
}

INSTANTIATE_TEST_SUITE_P(Every, BackendConformance, ::testing::ValuesIn(backends()),
                         [](const ::testing::TestParamInfo<BackendUnderTest>& p) { return p.param.name; });

// The memory backend's object lock (the local backend has none): what tests of retention rely on.
TEST(MemoryBackend, ObjectLockRefusesRemovalAndReplacementUntilItEnds) {
  auto b = open_memory_backend("lock-" + std::to_string(now_unix_ns()));
  ASSERT_TRUE(b->create_layout(true));
  SaveOptions locked;
  locked.retain_until_ns = now_unix_ns() + 3600LL * 1000000000;
  ASSERT_TRUE(b->save({FileType::kSnapshot, "s"}, pattern(10, 12), locked));
  EXPECT_FALSE(b->remove({FileType::kSnapshot, "s"}));
  SaveOptions replace;
  replace.create_only = false;
  EXPECT_FALSE(b->save({FileType::kSnapshot, "s"}, pattern(10, 13), replace));
  auto info = b->stat({FileType::kSnapshot, "s"});
  ASSERT_TRUE(info);
  EXPECT_EQ(info->retain_until_ns, locked.retain_until_ns);
  // Retention only grows.
  ASSERT_TRUE(b->extend_retention({FileType::kSnapshot, "s"}, 5));
  EXPECT_EQ(b->stat({FileType::kSnapshot, "s"})->retain_until_ns, locked.retain_until_ns);
  // Unlocked files go.
  ASSERT_TRUE(b->save({FileType::kSnapshot, "t"}, pattern(10, 14), {}));
  EXPECT_TRUE(b->remove({FileType::kSnapshot, "t"}));
}

TEST(MemoryBackend, OneNameIsOneStoreAcrossHandles) {
  std::string name = "shared-" + std::to_string(now_unix_ns());
  ASSERT_TRUE(open_memory_backend(name)->save({FileType::kKey, "k"}, pattern(5, 15), {}));
  auto again = open_backend("memory:" + name);
  ASSERT_TRUE(again);
  EXPECT_TRUE((*again)->load({FileType::kKey, "k"}));
}

}  // namespace
}  // namespace lifeboat::storage
