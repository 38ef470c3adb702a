// Live progress on a terminal (files, bytes, rate, ETA); silent when stderr is not a TTY.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>

namespace lifeboat {

struct ProgressCounters {
  std::atomic<uint64_t> files_done{0};
  std::atomic<uint64_t> bytes_done{0};
  std::atomic<uint64_t> files_total{0};
  std::atomic<uint64_t> bytes_total{0};
  std::atomic<uint64_t> errors{0};
  std::atomic<bool> totals_final{false};  // the scanner has finished counting
};

class ProgressDisplay {
 public:
  // Shows progress only if `enabled` and stderr is a terminal.
  ProgressDisplay(std::string verb, const ProgressCounters& counters, bool enabled);
  ~ProgressDisplay();
  void stop();
  static std::string render(const std::string& verb, uint64_t files, uint64_t bytes, uint64_t files_total,
                            uint64_t bytes_total, bool totals_final, double elapsed_s);

 private:
  void loop();
  std::string verb_;
  const ProgressCounters& counters_;
  bool active_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread thread_;
  int64_t start_ns_;
};

}  // namespace lifeboat
