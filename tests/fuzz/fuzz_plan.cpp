// libFuzzer: the plan loader (YAML, anchors and aliases, every source kind's settings, schedules,
// retention, objectives). Any input ends in a plan or an error, within the expansion bounds.
#include <cstddef>
#include <cstdint>
#include <string>

#include "plan/plan.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  (void)lifeboat::plan::parse_plan(text, "fuzz.yaml");
  return 0;
}
