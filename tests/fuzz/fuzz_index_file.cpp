// libFuzzer: index file decoding, loading what it decoded into the in-memory index, and a stable
// re-encoding (what decodes, encodes to bytes that decode to the same encoding).
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "repo/index.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace lifeboat;
  auto f = repo::IndexFile::decode(ByteView(data, size));
  if (f.is_ok()) {
    repo::MasterIndex mi;
    for (const auto& p : f->packs) mi.add_pack(p.id, p.entries);
    mi.merge();
    Bytes once = f->encode();
    auto again = repo::IndexFile::decode(once);
    if (!again.is_ok() || again->encode() != once) abort();
  }
  return 0;
}
