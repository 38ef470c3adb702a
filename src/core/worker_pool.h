// A fixed pool of worker threads with a bounded task queue: submit() blocks when the queue is full, and
// wakes when it has drained to half (not at every task taken: a backup of 50k small files woke its walker
// once per file, a context switch each, and the walker then preempted a worker).
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace lifeboat {

class WorkerPool {
 public:
  WorkerPool(size_t threads, size_t max_queued);
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  void submit(std::function<void()> task);
  // Waits until every submitted task has finished.
  void wait_idle();

  static size_t default_threads();
  // How many submit() calls are blocked waiting for room (what a test waits for, instead of sleeping).
  size_t waiting_submitters();

 private:
  void run();
  std::mutex mu_;
  std::condition_variable has_work_, has_room_, idle_;
  std::deque<std::function<void()>> queue_;
  size_t max_queued_;
  size_t low_water_;  // a blocked submit() wakes when the queue has drained to this
  size_t waiting_submitters_ = 0;
  size_t active_ = 0;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace lifeboat
