// libFuzzer: key file JSON parsing (never unwraps: that would fuzz Argon2 instead of the parser).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "crypto/key_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace lifeboat;
  auto k = crypto::KeyFile::from_json(std::string_view(reinterpret_cast<const char*>(data), size));
  if (k.is_ok()) (void)crypto::KeyFile::from_json(k->to_json());
  return 0;
}
