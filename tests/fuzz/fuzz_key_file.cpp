// libFuzzer: key file JSON parsing (never unwraps: that would fuzz Argon2 instead of the parser);
// what parses must survive a round trip.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "crypto/key_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace lifeboat;
  auto k = crypto::KeyFile::from_json(std::string_view(reinterpret_cast<const char*>(data), size));
  if (k.is_ok()) {
    auto once = k->to_json();
    auto again = crypto::KeyFile::from_json(once);
    if (!again.is_ok() || again->to_json() != once) abort();
  }
  return 0;
}
