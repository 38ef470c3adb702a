// Pack files: sealed blobs back to back, then a sealed header listing them, then the header's length.
#pragma once

#include <functional>
#include <optional>
#include <vector>

#include "core/status.h"
#include "crypto/crypto.h"
#include "crypto/public_key.h"
#include "repo/blob.h"

namespace lifeboat::repo {

// One blob as stored in a pack (docs/format.md, "Packs").
struct PackEntry {
  BlobType type = BlobType::kData;
  bool compressed = false;
  BlobId id{};
  uint32_t offset = 0;      // from the start of the pack
  uint32_t stored_len = 0;  // sealed length: nonce + (compressed) payload + tag
  uint32_t raw_len = 0;     // plaintext length
};

// The byte packs and index files store before each blob ID: its type in the low nibble, 0x80 when compressed.
uint8_t encode_type_byte(const PackEntry& e);
// Sets `e`'s type and compression; false for an unknown type or a reserved bit set.
bool decode_type_byte(uint8_t byte, PackEntry& e);

constexpr uint32_t kMaxBlobStoredLen = (1u << 24) - 1;  // fits the index's 24-bit length field

// Builds one pack in memory. Not thread-safe; the session serializes appends.
class PackBuilder {
 public:
  // Reserves capacity once, so appending never reallocates (and copies) a nearly full pack.
  void reserve(size_t bytes) { data_.reserve(bytes); }
  // Starts this (empty) pack in `buffer`, a finished pack's bytes handed back for reuse: its pages are
  // already resident, where a fresh 16 MiB buffer costs 4096 page faults and as many zeroed pages.
  void reuse(Bytes&& buffer) {
    data_ = std::move(buffer);
    data_.clear();
  }
  void append(const PackEntry& entry_without_offset, ByteView sealed_blob);
  size_t size_bytes() const { return data_.size(); }
  size_t count() const { return entries_.size(); }
  // Appends the sealed header and its length (and, for a pack sealed to the repository's public key,
  // the capsule its key came from); returns the finished pack bytes.
  Bytes finish(const crypto::Aead& aead, const std::optional<crypto::Capsule>& capsule = std::nullopt);
  const std::vector<PackEntry>& entries() const { return entries_; }

 private:
  Bytes data_;
  std::vector<PackEntry> entries_;
};

Bytes encode_pack_header(const std::vector<PackEntry>& entries);
// Parses a decrypted header, checking every entry lies inside `blobs_len` bytes and entries do not overlap.
Result<std::vector<PackEntry>> decode_pack_header(ByteView plain, uint64_t blobs_len);
// The end of a pack: the sealed header's length and, for a pack an append key wrote, its capsule
// (docs/format.md, "Packs"). `tail` is the pack's last min(size, kMaxPackTrailer) bytes.
constexpr size_t kMaxPackTrailer = crypto::Capsule::kSize + 8;
struct PackTrailer {
  uint32_t header_len = 0;
  std::optional<crypto::Capsule> capsule;
  size_t size = 4;  // bytes after the sealed header
};
Result<PackTrailer> parse_pack_trailer(ByteView tail, uint64_t pack_size);

// The key that opens a pack's header and blobs, given the pack's capsule (none: the repository's AEAD key).
using PackKeyFor = std::function<Result<crypto::Aead>(const std::optional<crypto::Capsule>&)>;
// Reads the header from a whole pack file: trailer, sealed header, entries; `capsule_out` gets the
// pack's capsule when it has one.
Result<std::vector<PackEntry>> read_pack_header(ByteView pack, const PackKeyFor& key_for,
                                                std::optional<crypto::Capsule>* capsule_out = nullptr);
// For packs sealed with one known key (tests, fuzzing).
inline Result<std::vector<PackEntry>> read_pack_header(ByteView pack, const crypto::Aead& aead) {
  return read_pack_header(pack, [&](const std::optional<crypto::Capsule>&) -> Result<crypto::Aead> { return aead; });
}

}  // namespace lifeboat::repo
