// Blob identifiers and types: a blob is one chunk of file data or one serialized tree.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <functional>
#include <string>

#include "core/bytes.h"

namespace lifeboat::repo {

using BlobId = std::array<uint8_t, 32>;  // HMAC-SHA256(content-id key, plaintext)
using PackId = std::array<uint8_t, 32>;  // SHA-256 of the stored pack file

enum class BlobType : uint8_t { kData = 0, kTree = 1 };
inline const char* blob_type_name(BlobType t) { return t == BlobType::kTree ? "tree" : "data"; }

inline std::string to_hex(const BlobId& id) { return hex_encode({id.data(), id.size()}); }
inline std::string short_hex(const BlobId& id) { return to_hex(id).substr(0, 8); }
bool parse_id(std::string_view hex, BlobId& out);

struct BlobIdHash {
  size_t operator()(const BlobId& id) const {
    size_t h;
    std::memcpy(&h, id.data(), sizeof h);  // IDs are uniformly random already
    return h;
  }
};

}  // namespace lifeboat::repo
