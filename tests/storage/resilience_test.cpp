// The retry decorator over the fault injector over a local directory: transient faults are absorbed,
// lost replies to create-only writes count as done, persistent faults end in a clear error.
#include <gtest/gtest.h>

#include "../repo/test_repo.h"
#include "storage/backend.h"

namespace lifeboat::storage {
namespace {

std::unique_ptr<Backend> faulty(const std::string& dir, const std::string& spec) {
  auto local = open_backend(dir);
  EXPECT_TRUE(local);
  EXPECT_TRUE((*local)->create_layout(false));
  auto f = with_fault_injection(std::move(*local), spec);
  EXPECT_TRUE(f);
  return with_retries(std::move(*f), 8, 1);
}

TEST(Resilience, TransientFaultsAreRetriedAway) {
  lifeboat::testing::TempDir dir;
  auto b = faulty(dir.path, "seed=5,fail=0.2,lose=0.2,truncate=0.2");
  std::string data(100000, 'x');
  for (int i = 0; i < 50; ++i) {
    Handle h{FileType::kSnapshot, "file" + std::to_string(i)};
    ASSERT_TRUE(b->save(h, as_bytes(data), {})) << i;
    auto back = b->load(h, 10, 1000);
    ASSERT_TRUE(back) << back.status().message();
    EXPECT_EQ(back->size(), 1000u);
  }
  int n = 0;
  ASSERT_TRUE(b->list(FileType::kSnapshot, [&](const FileInfo&) { ++n; return Status::ok(); }));
  EXPECT_EQ(n, 50);  // a listing restarted after a fault reports each file once
}

TEST(Resilience, PersistentFaultsFailClearly) {
  lifeboat::testing::TempDir dir;
  auto b = faulty(dir.path, "fail=1");
  auto s = b->save({FileType::kSnapshot, "x"}, as_bytes(std::string("data")), {});
  EXPECT_EQ(s.code(), Code::kUnavailable);
  EXPECT_NE(s.message().find("after 8 attempts"), std::string::npos);
  EXPECT_NE(s.message().find("injected fault"), std::string::npos);
}

TEST(Resilience, BadFaultSpecIsRejected) {
  lifeboat::testing::TempDir dir;
  auto local = open_backend(dir.path);
  ASSERT_TRUE(local);
  EXPECT_FALSE(with_fault_injection(std::move(*local), "explode=1"));
}

}  // namespace
}  // namespace lifeboat::storage
