// A backend held in memory: for tests of everything above storage (no disk, no peer), with object
// lock like an object store's, so retention rules can be tested too. `memory:NAME` opens the store
// of that name; every handle on one name in a process sees the same files, and they live as long as
// the process.
#pragma once

#include <memory>
#include <string>

#include "core/clock.h"
#include "storage/backend.h"

namespace lifeboat::storage {

// `clock`: what its object lock compares retention with (it must outlive the backend).
std::unique_ptr<Backend> open_memory_backend(const std::string& name, const Clock& clock = system_clock());

}  // namespace lifeboat::storage
