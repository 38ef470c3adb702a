// WorkerPool: every task runs once, and a blocked submitter waits for the queue to drain to half.
#include "core/worker_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

namespace lifeboat {
namespace {

TEST(WorkerPool, EveryTaskRunsOnceWithSeveralSubmitters) {
  WorkerPool pool(2, 8);
  std::atomic<int> runs{0};
  std::vector<std::thread> submitters;
  for (int s = 0; s < 4; ++s)
    submitters.emplace_back([&] {
      for (int i = 0; i < 1000; ++i) pool.submit([&] { runs.fetch_add(1); });
    });
  for (auto& t : submitters) t.join();
  pool.wait_idle();
  EXPECT_EQ(runs.load(), 4000);
}

// One worker, room for four: task k may finish once `allowed` exceeds k.
TEST(WorkerPool, ABlockedSubmitterWakesOnlyWhenTheQueueHasDrainedToHalf) {
  WorkerPool pool(1, 4);
  std::mutex mu;
  std::condition_variable cv;
  int allowed = 0, started = 0;
  auto task = [&](int k) {
    return [&, k] {
      std::unique_lock l(mu);
      ++started;
      cv.notify_all();
      cv.wait(l, [&] { return allowed > k; });
    };
  };
  auto wait_started = [&](int n) {
    std::unique_lock l(mu);
    cv.wait(l, [&] { return started >= n; });
  };
  auto allow = [&](int n) {
    std::lock_guard l(mu);
    allowed = n;
    cv.notify_all();
  };
  pool.submit(task(0));
  wait_started(1);                                    // the worker holds task 0; the queue is empty
  for (int k = 1; k <= 4; ++k) pool.submit(task(k));  // queue full: 4
  std::atomic<bool> submitted{false};
  std::thread late([&] {
    pool.submit(task(5));
    std::lock_guard l(mu);
    submitted = true;
    cv.notify_all();
  });
  // Events, not sleeps: the late submit() is seen blocked by the pool itself.
  while (pool.waiting_submitters() == 0) std::this_thread::yield();
  EXPECT_FALSE(submitted.load()) << "the queue was full";
  allow(1);  // task 0 ends, the worker takes task 1: three queued
  wait_started(2);
  EXPECT_EQ(pool.waiting_submitters(), 1u) << "woken with three of four queued, not at half";
  EXPECT_FALSE(submitted.load()) << "woken with three of four queued, not at half";
  allow(2);  // task 1 ends, the worker takes task 2: two queued, half
  {
    std::unique_lock l(mu);
    EXPECT_TRUE(cv.wait_for(l, std::chrono::seconds(10), [&] { return submitted.load(); })) << "still blocked with the queue at half";
  }
  allow(6);
  late.join();
  pool.wait_idle();
  EXPECT_EQ(started, 6);
}

}  // namespace
}  // namespace lifeboat
