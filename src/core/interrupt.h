// Process-wide interrupt flag set by SIGINT/SIGTERM, polled by long operations.
//
// The first signal sets the flag: loops stop at their next safe point, network transfers are
// aborted (http.cpp's progress callback), sleeps between retries end early, and the command exits
// 130 after committing nothing half-done. A second signal ends the process at once (exit 130): every
// file Lifeboat writes appears by rename only when complete, and the lock it leaves names a process
// that no longer exists, so it counts as stale.
#pragma once

#include <cstdint>

namespace lifeboat {

void install_interrupt_handlers();
bool interrupted();
void request_interrupt();  // for tests
void clear_interrupt();    // for tests: the next test starts uninterrupted

// Sleeps for `ms` milliseconds, or less when an interrupt arrives; returns false if interrupted.
bool sleep_unless_interrupted(int64_t ms);

}  // namespace lifeboat
