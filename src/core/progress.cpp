// Progress line renderer, redrawn five times a second on stderr.
#include "core/progress.h"

#include <fmt/format.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>

#include "core/time.h"

namespace lifeboat {

ProgressDisplay::ProgressDisplay(std::string verb, const ProgressCounters& counters, bool enabled)
    : verb_(std::move(verb)), counters_(counters), active_(enabled && isatty(STDERR_FILENO)),
      start_ns_(monotonic_ns()) {
  if (active_) thread_ = std::thread([this] { loop(); });
}

ProgressDisplay::~ProgressDisplay() { stop(); }

void ProgressDisplay::stop() {
  if (!active_) return;
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
  active_ = false;
  fputs("\r\033[K", stderr);
  fflush(stderr);
}

static std::string clock_text(double s) {
  auto t = static_cast<int64_t>(s);
  if (t >= 3600) return fmt::format("{}:{:02}:{:02}", t / 3600, (t / 60) % 60, t % 60);
  return fmt::format("{}:{:02}", t / 60, t % 60);
}

std::string ProgressDisplay::render(const std::string& verb, uint64_t files, uint64_t bytes, uint64_t files_total,
                                    uint64_t bytes_total, bool totals_final, double elapsed_s) {
  double rate = elapsed_s > 0 ? static_cast<double>(bytes) / elapsed_s : 0;
  std::string line = fmt::format("[{}] {} {} files", clock_text(elapsed_s), verb, files);
  if (files_total) line += fmt::format("/{}", files_total);
  line += fmt::format(", {}", format_bytes(bytes));
  if (bytes_total) line += fmt::format("/{}", format_bytes(bytes_total));
  line += fmt::format(", {}/s", format_bytes(static_cast<uint64_t>(rate)));
  if (totals_final && bytes_total > bytes && rate > 0) {
    line += fmt::format(", ETA {}", clock_text(static_cast<double>(bytes_total - bytes) / rate));
  }
  return line;
}

void ProgressDisplay::loop() {
  std::unique_lock lock(mu_);
  while (!cv_.wait_for(lock, std::chrono::milliseconds(200), [&] { return stopping_; })) {
    double elapsed = static_cast<double>(monotonic_ns() - start_ns_) / 1e9;
    std::string line = render(verb_, counters_.files_done, counters_.bytes_done, counters_.files_total,
                              counters_.bytes_total, counters_.totals_final, elapsed);
    if (counters_.errors) line += fmt::format(", {} errors", counters_.errors.load());
    fmt::print(stderr, "\r\033[K{}", line);
    fflush(stderr);
  }
}

}  // namespace lifeboat
