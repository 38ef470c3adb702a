// The time a component reads, passed in rather than taken from the system where a test needs to move
// it: object-lock retention, lock staleness and prune's grace periods follow the repository's clock,
// and the in-memory backend's retention follows its own. The system clock is the default everywhere.
#pragma once

#include <atomic>
#include <cstdint>

namespace lifeboat {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual int64_t now_ns() const = 0;  // nanoseconds since the Unix epoch
};

// The system's real-time clock (now_unix_ns).
const Clock& system_clock();

// A clock that stands still until told to move (tests).
class ManualClock final : public Clock {
 public:
  explicit ManualClock(int64_t start_ns) : now_(start_ns) {}
  int64_t now_ns() const override { return now_.load(); }
  void advance(int64_t ns) { now_ += ns; }

 private:
  std::atomic<int64_t> now_;
};

}  // namespace lifeboat
