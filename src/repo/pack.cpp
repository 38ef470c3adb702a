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

Bytes PackBuilder::finish(const crypto::Aead& aead, const std::optional<crypto::Capsule>& capsule) {
  Bytes out = std::move(data_);
  size_t blobs_len = out.size();
  aead.seal_append(encode_pack_header(entries_), out);
  auto header_len = static_cast<uint32_t>(out.size() - blobs_len);
  if (capsule) capsule->append_to(out);
  ByteWriter(out).u32(header_len);
  if (capsule) out.insert(out.end(), crypto::kCapsuleMagic, crypto::kCapsuleMagic + 4);
  data_.clear();
  return out;
}

Result<PackTrailer> parse_pack_trailer(ByteView tail, uint64_t pack_size) {
  if (tail.size() < 4 || tail.size() > pack_size) return Error(Code::kCorrupt, "pack is shorter than its length trailer");
  PackTrailer t;
  ByteView last4 = tail.subspan(tail.size() - 4);
  // A plain pack ends with its header's length, which is far below the magic read as a number (0x3158424C, 827 MB).
  if (std::memcmp(last4.data(), crypto::kCapsuleMagic, 4) == 0) {
    if (tail.size() < kMaxPackTrailer) return Error(Code::kCorrupt, "pack is shorter than its capsule trailer");
    ByteView rest = tail.subspan(tail.size() - kMaxPackTrailer);
    LB_ASSIGN_OR_RETURN(t.capsule, crypto::Capsule::parse(rest.subspan(0, crypto::Capsule::kSize)));
    t.header_len = ByteReader(rest.subspan(crypto::Capsule::kSize, 4)).u32();
    t.size = kMaxPackTrailer;
  } else {
    t.header_len = ByteReader(last4).u32();
  }
  if (t.header_len < crypto::kSealOverhead || t.header_len > pack_size - t.size)
    return Error(Code::kCorrupt, fmt::format("pack header length {} does not fit a {}-byte pack (truncated?)",
                                             t.header_len, pack_size));
  return t;
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

Result<std::vector<PackEntry>> read_pack_header(ByteView pack, const PackKeyFor& key_for,
                                                std::optional<crypto::Capsule>* capsule_out) {
  LB_ASSIGN_OR_RETURN(PackTrailer t, parse_pack_trailer(pack.subspan(pack.size() - std::min(pack.size(), kMaxPackTrailer)),
                                                        pack.size()));
  if (capsule_out) *capsule_out = t.capsule;
  uint64_t blobs_len = pack.size() - t.size - t.header_len;
  LB_ASSIGN_OR_RETURN(crypto::Aead aead, key_for(t.capsule));
  auto plain = aead.open(pack.subspan(blobs_len, t.header_len));
  if (!plain) return plain.status().with_context("pack header");
  return decode_pack_header(*plain, blobs_len);
}

}  // namespace lifeboat::repo
