// Process-wide interrupt flag set by SIGINT/SIGTERM, polled by long operations.
#pragma once

namespace lifeboat {

void install_interrupt_handlers();
bool interrupted();
void request_interrupt();  // for tests
// For a service that stops on a signal but must finish one last piece of work (the oplog follower's
// final slice); a second signal interrupts that too.
void clear_interrupt();

}  // namespace lifeboat
