// Process-wide interrupt flag set by SIGINT/SIGTERM, polled by long operations.
#pragma once

namespace lifeboat {

void install_interrupt_handlers();
bool interrupted();
void request_interrupt();  // for tests


}  // namespace lifeboat
