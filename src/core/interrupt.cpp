// SIGINT/SIGTERM set a flag; work loops check it and stop at a safe point. A second one exits at once.
#include "core/interrupt.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <thread>

namespace lifeboat {
namespace {
std::atomic<bool> g_interrupted{false};

extern "C" void on_signal(int) {
  if (g_interrupted.exchange(true)) {
    // Only async-signal-safe calls here.
    static const char msg[] = "\nlifeboat: interrupted again: stopping now (nothing stored is lost; run the command again)\n";
    ssize_t ignored = ::write(STDERR_FILENO, msg, sizeof msg - 1);
    (void)ignored;
    _exit(130);
  }
}
}  // namespace

void install_interrupt_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);
}

bool interrupted() { return g_interrupted.load(std::memory_order_relaxed); }
void request_interrupt() { g_interrupted.store(true); }
void clear_interrupt() { g_interrupted.store(false); }

bool sleep_unless_interrupted(int64_t ms) {
  auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
  while (!interrupted()) {
    auto left = until - std::chrono::steady_clock::now();
    if (left <= std::chrono::nanoseconds(0)) return true;
    std::this_thread::sleep_for(std::min<std::chrono::nanoseconds>(left, std::chrono::milliseconds(50)));
  }
  return false;
}

}  // namespace lifeboat
