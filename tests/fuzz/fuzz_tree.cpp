// libFuzzer: tree decoding; whatever decodes must re-encode to the same bytes.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "repo/tree.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace lifeboat;
  auto t = repo::Tree::decode(ByteView(data, size));
  if (t.is_ok()) {
    auto again = repo::Tree::decode(t->encode());
    if (!again.is_ok() || !(again->nodes == t->nodes)) abort();
  }
  return 0;
}
