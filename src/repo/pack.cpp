// Pack building and header parsing.
#include "repo/pack.h"

#include <fmt/format.h>

namespace lifeboat::repo {

namespace {
constexpr char kPackMagic[4] = {'L', 'B', 'P', 'K'};
constexpr uint8_t kPackVersion = 1;
constexpr uint8_t kFlagCompressed = 0x80;
}  // namespace

uint8_t encode_type_byte(const PackEntry& e) {
  return static_cast<uint8_t>(static_cast<uint8_t>(e.type) | (e.compressed ? kFlagCompressed : 0));
}

bool decode_type_byte(uint8_t byte, PackEntry& e) {
  uint8_t type = byte & 0x0f;
  if (type > 1 || (byte & 0x70)) return false;
  e.type = static_cast<BlobType>(type);
  e.compressed = byte & kFlagCompressed;
  return true;
}

void PackBuilder::append(const PackEntry& e, ByteView sealed_blob) {
  PackEntry entry = e;
  entry.offset = static_cast<uint32_t>(data_.size());
  entry.stored_len = static_cast<uint32_t>(sealed_blob.size());
  entries_.push_back(entry);
  append_bytes(data_, sealed_blob);
}

Bytes encode_pack_header(const std::vector<PackEntry>& entries) {
  Bytes out;
  ByteWriter w(out);
  w.raw(as_bytes({kPackMagic, 4}));
  w.u8(kPackVersion);
  w.varint(entries.size());
  for (const auto& e : entries) {
    w.u8(encode_type_byte(e));
    w.raw({e.id.data(), e.id.size()});
    w.varint(e.stored_len);
    w.varint(e.raw_len);
  }
  return out;
}

Bytes PackBuilder::finish(const crypto::Aead& aead) {
  Bytes out = std::move(data_);
  size_t blobs_len = out.size();
  aead.seal_append(encode_pack_header(entries_), out);
  ByteWriter(out).u32(static_cast<uint32_t>(out.size() - blobs_len));
  data_.clear();
  return out;
}

Result<std::vector<PackEntry>> decode_pack_header(ByteView plain, uint64_t blobs_len) {
  ByteReader r(plain);
  ByteView magic = r.raw(4);
  if (r.failed() || std::memcmp(magic.data(), kPackMagic, 4) != 0)
    return Error(Code::kCorrupt, "pack header has a bad magic");
  if (r.u8() != kPackVersion) return Error(Code::kCorrupt, "pack header has an unknown version");
  uint64_t count = r.varint();
  // Each entry takes at least 35 bytes; a count beyond that is corrupt (and must not size an allocation).
  if (r.failed() || count > r.remaining() / 35) return Error(Code::kCorrupt, "pack header has a bad entry count");
  std::vector<PackEntry> entries;
  entries.reserve(count);
  uint64_t offset = 0;
  for (uint64_t i = 0; i < count; ++i) {
    PackEntry e;
    if (!decode_type_byte(r.u8(), e)) return Error(Code::kCorrupt, "pack header has an unknown blob type");
    ByteView id = r.raw(32);
    if (!r.failed()) std::memcpy(e.id.data(), id.data(), 32);
    uint64_t stored = r.varint(), raw = r.varint();
    if (r.failed()) return Error(Code::kCorrupt, "pack header is truncated");
    if (stored < crypto::kSealOverhead || stored > kMaxBlobStoredLen || raw > kMaxBlobStoredLen * 4ull)
      return Error(Code::kCorrupt, "pack header has an impossible blob length");
    e.offset = static_cast<uint32_t>(offset);
    e.stored_len = static_cast<uint32_t>(stored);
    e.raw_len = static_cast<uint32_t>(raw);
    offset += stored;
    if (offset > blobs_len) return Error(Code::kCorrupt, "pack header names blobs beyond the end of the pack");
    entries.push_back(e);
  }
  if (!r.done()) return Error(Code::kCorrupt, "pack header has trailing bytes");
  if (offset != blobs_len) return Error(Code::kCorrupt, "pack header does not cover the whole pack");
  return entries;
}

Result<std::vector<PackEntry>> read_pack_header(ByteView pack, const crypto::Aead& aead) {
  if (pack.size() < 4) return Error(Code::kCorrupt, "pack is shorter than its length trailer");
  ByteReader tr(pack.subspan(pack.size() - 4));
  uint32_t header_len = tr.u32();
  if (header_len < crypto::kSealOverhead || header_len > pack.size() - 4)
    return Error(Code::kCorrupt, fmt::format("pack header length {} does not fit a {}-byte pack (truncated?)",
                                             header_len, pack.size()));
  uint64_t blobs_len = pack.size() - 4 - header_len;
  auto plain = aead.open(pack.subspan(blobs_len, header_len));
  if (!plain) return plain.status().with_context("pack header");
  return decode_pack_header(*plain, blobs_len);
}

}  // namespace lifeboat::repo
