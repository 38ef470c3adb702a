// libFuzzer: index file decoding, and loading what it decoded into the in-memory index.
#include <cstddef>
#include <cstdint>

#include "repo/index.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace lifeboat;
  auto f = repo::IndexFile::decode(ByteView(data, size));
  if (f.is_ok()) {
    repo::MasterIndex mi;
    for (const auto& p : f->packs) mi.add_pack(p.id, p.entries);
    mi.merge();
    (void)repo::IndexFile::decode(f->encode());
  }
  return 0;
}
