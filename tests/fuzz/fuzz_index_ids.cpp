// libFuzzer: the ID list every index file starts with (what an append key reads to deduplicate) and
// the pack trailer with its capsule; what decodes must encode back to the same list.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "repo/index.h"
#include "repo/pack.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace lifeboat;
  ByteView in(data, size);
  (void)repo::parse_pack_trailer(in.subspan(size - std::min(size, repo::kMaxPackTrailer)), size);
  auto ids = repo::IndexIds::decode(in);
  if (ids.is_ok()) {
    repo::IndexFile f;
    f.supersedes = ids->supersedes;
    repo::IndexFile::Pack p;
    for (const auto& k : ids->keys) {
      repo::PackEntry e;
      std::memcpy(e.id.data(), k.data(), k.size());
      p.entries.push_back(e);
    }
    f.packs.push_back(std::move(p));
    Bytes once = f.encode_ids();
    auto again = repo::IndexIds::decode(once);
    if (!again.is_ok() || again->keys != ids->keys || again->supersedes != ids->supersedes) abort();
  }
  return 0;
}
