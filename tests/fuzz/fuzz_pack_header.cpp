// libFuzzer: the pack header decoder and the trailer/sealed-header reader must never crash. The input
// is also sealed here as a pack's header (with a blob area before it and the length trailer after),
// so the mutations reach the decoder behind authentication, as a header written by a buggy or
// hostile writer with the right key would; whatever decodes must re-encode to the same entries.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <tuple>

#include "repo/pack.h"

namespace {

auto fields(const lifeboat::repo::PackEntry& e) {
  return std::make_tuple(static_cast<int>(e.type), e.compressed, e.id, e.offset, e.stored_len, e.raw_len);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace lifeboat;
  ByteView in(data, size);
  (void)repo::decode_pack_header(in, size * 4);
  static const crypto::Aead aead(crypto::Key{});
  (void)repo::read_pack_header(in, aead);

  constexpr size_t kBlobArea = 4096;
  Bytes pack(kBlobArea, 0);
  aead.seal_append(in, pack);
  ByteWriter(pack).u32(static_cast<uint32_t>(pack.size() - kBlobArea));
  auto entries = repo::read_pack_header(pack, aead);
  if (entries.is_ok()) {
    auto again = repo::decode_pack_header(repo::encode_pack_header(*entries), kBlobArea);
    if (!again.is_ok() || again->size() != entries->size()) abort();
    for (size_t i = 0; i < entries->size(); ++i)
      if (fields((*entries)[i]) != fields((*again)[i])) abort();
  }
  return 0;
}
