// The system clock and the process environment behind the Clock and Environment seams.
#include "core/clock.h"

#include <cstdlib>

#include "core/environment.h"
#include "core/time.h"

namespace lifeboat {

namespace {
class SystemClock final : public Clock {
 public:
  int64_t now_ns() const override { return now_unix_ns(); }
};
}  // namespace

const Clock& system_clock() {
  static const SystemClock clock;
  return clock;
}

namespace {
class ProcessEnvironment final : public Environment {
 public:
  std::string get(const std::string& name) const override {
    const char* v = std::getenv(name.c_str());
    return v ? v : "";
  }
};
}  // namespace

const Environment& process_environment() {
  static const ProcessEnvironment env;
  return env;
}

}  // namespace lifeboat
