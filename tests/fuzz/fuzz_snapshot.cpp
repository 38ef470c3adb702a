// libFuzzer: snapshot JSON parsing and re-serialization.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "repo/snapshot.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace lifeboat;
  auto s = repo::Snapshot::from_json(std::string_view(reinterpret_cast<const char*>(data), size));
  if (s.is_ok()) (void)repo::Snapshot::from_json(s->to_json());
  return 0;
}
