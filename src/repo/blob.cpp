// Blob ID parsing.
#include "repo/blob.h"

namespace lifeboat::repo {

bool parse_id(std::string_view hex, BlobId& out) {
  if (hex.size() != 64) return false;
  auto b = hex_decode(hex);
  if (!b) return false;
  std::memcpy(out.data(), b->data(), 32);
  return true;
}

}  // namespace lifeboat::repo
