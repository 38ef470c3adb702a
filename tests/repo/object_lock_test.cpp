// Object lock as the repository keeps it, on the in-memory backend with a clock the test moves: a
// snapshot under retention is kept (and says until when), then forgotten once its retention ended —
// without waiting a day.
#include <gtest/gtest.h>

#include "core/clock.h"
#include "core/time.h"
#include "repo/write_session.h"
#include "storage/memory_backend.h"
#include "test_repo.h"

namespace lifeboat::repo {
namespace {

constexpr int64_t kDayNs = 86400LL * 1000000000;

TEST(ObjectLock, ASnapshotIsKeptUntilItsRetentionEndsThenForgotten) {
  ManualClock clock(now_unix_ns());
  auto options = testing::small_options();
  options.object_lock_ns = kDayNs;
  auto opened = Repository::init(storage::open_memory_backend("object-lock-" + std::to_string(now_unix_ns()), clock), "pw", options);
  ASSERT_TRUE(opened) << opened.status().message();
  auto& repo = **opened;
  repo.use_clock(clock);

  WriteSession s(repo);
  Tree empty;
  Snapshot snap;
  snap.time_ns = clock.now_ns();
  snap.tree = *s.store_tree(empty);
  auto id = s.commit(snap);
  ASSERT_TRUE(id) << id.status().message();

  auto kept = repo.forget_snapshot(*id);
  ASSERT_TRUE(kept) << kept.status().message();
  EXPECT_GE(*kept, clock.now_ns() + kDayNs - 60LL * 1000000000);  // held for the lock period
  ASSERT_EQ(repo.list_snapshots()->size(), 1u);

  clock.advance(kDayNs / 2);
  ASSERT_TRUE(repo.forget_snapshot(*id));
  EXPECT_EQ(repo.list_snapshots()->size(), 1u) << "half way through its retention it must stay";

  clock.advance(kDayNs);
  auto gone = repo.forget_snapshot(*id);
  ASSERT_TRUE(gone) << gone.status().message();
  EXPECT_EQ(*gone, 0);
  EXPECT_TRUE(repo.list_snapshots()->empty());
}

}  // namespace
}  // namespace lifeboat::repo
