// Bounded worker pool.
#include "core/worker_pool.h"

namespace lifeboat {

WorkerPool::WorkerPool(size_t threads, size_t max_queued)
    : max_queued_(max_queued ? max_queued : 1), low_water_(max_queued_ / 2) {
  if (threads == 0) threads = 1;
  for (size_t i = 0; i < threads; ++i) threads_.emplace_back([this] { run(); });
}

WorkerPool::~WorkerPool() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  has_work_.notify_all();
  for (auto& t : threads_) t.join();
}

size_t WorkerPool::default_threads() {
  unsigned n = std::thread::hardware_concurrency();
  return n ? n : 2;
}

void WorkerPool::submit(std::function<void()> task) {
  std::unique_lock lock(mu_);
  if (queue_.size() >= max_queued_) {
    ++waiting_submitters_;
    has_room_.wait(lock, [&] { return queue_.size() <= low_water_; });
    --waiting_submitters_;
  }
  queue_.push_back(std::move(task));
  has_work_.notify_one();
}

void WorkerPool::wait_idle() {
  std::unique_lock lock(mu_);
  idle_.wait(lock, [&] { return queue_.empty() && active_ == 0; });
}

void WorkerPool::run() {
  for (;;) {
    std::function<void()> task;
    {
      std::unique_lock lock(mu_);
      has_work_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;
      task = std::move(queue_.front());
      queue_.pop_front();
      ++active_;
      if (waiting_submitters_ && queue_.size() <= low_water_) has_room_.notify_all();
    }
    task();
    {
      std::lock_guard lock(mu_);
      --active_;
      if (queue_.empty() && active_ == 0) idle_.notify_all();
    }
  }
}

size_t WorkerPool::waiting_submitters() {
  std::lock_guard l(mu_);
  return waiting_submitters_;
}

}  // namespace lifeboat
