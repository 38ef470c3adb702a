// libFuzzer: the pack header decoder and the trailer/sealed-header reader must never crash.
#include <cstddef>
#include <cstdint>

#include "repo/pack.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace lifeboat;
  lifeboat::ByteView in(data, size);
  (void)repo::decode_pack_header(in, size * 4);
  static const crypto::Aead aead(crypto::Key{});
  (void)repo::read_pack_header(in, aead);
  return 0;
}
