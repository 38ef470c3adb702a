// libFuzzer: snapshot JSON parsing and re-serialization; what parses must survive a round trip.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "repo/snapshot.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace lifeboat;
  auto s = repo::Snapshot::from_json(std::string_view(reinterpret_cast<const char*>(data), size));
  if (s.is_ok()) {
    (void)s->signed_message("repo");  // what a writer signs: the snapshot without its writer fields
    auto once = s->to_json();
    auto again = repo::Snapshot::from_json(once);
    if (!again.is_ok() || again->to_json() != once) abort();
  }
  return 0;
}
