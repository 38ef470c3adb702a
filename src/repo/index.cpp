// Index file codec and the in-memory index.
#include "repo/index.h"

#include <algorithm>

namespace lifeboat::repo {

namespace {
constexpr char kIndexMagic[4] = {'L', 'B', 'I', 'X'};
constexpr uint8_t kIndexVersion = 1;
}  // namespace

static void encode_entries(ByteWriter& w, const std::vector<PackEntry>& entries) {
  w.varint(entries.size());
  for (const auto& e : entries) {
    w.u8(encode_type_byte(e));
    w.raw({e.id.data(), e.id.size()});
    w.varint(e.offset);
    w.varint(e.stored_len);
    w.varint(e.raw_len);
  }
}

Bytes IndexFile::encode() const {
  Bytes out;
  ByteWriter w(out);
  w.raw(as_bytes({kIndexMagic, 4}));
  w.u8(kIndexVersion);
  w.varint(packs.size());
  for (const auto& p : packs) {
    w.raw({p.id.data(), p.id.size()});
    encode_entries(w, p.entries);
  }
  w.varint(supersedes.size());
  for (const auto& s : supersedes) w.str(s);
  w.varint(tombstones.size());
  for (const auto& t : tombstones) {
    w.raw({t.id.data(), t.id.size()});
    w.svarint(t.marked_ns);
    encode_entries(w, t.entries);
  }
  return out;
}

static Status decode_entries(ByteReader& r, std::vector<PackEntry>& entries) {
  uint64_t n = r.varint();
  if (r.failed() || n > r.remaining() / 36) return Error(Code::kCorrupt, "index file is truncated");
  entries.resize(n);
  for (auto& e : entries) {
    if (!decode_type_byte(r.u8(), e)) return Error(Code::kCorrupt, "index file has an unknown blob type");
    ByteView bid = r.raw(32);
    uint64_t off = r.varint(), stored = r.varint(), raw = r.varint();
    if (r.failed()) return Error(Code::kCorrupt, "index file is truncated");
    if (off > 0xffffffffull || stored > kMaxBlobStoredLen || raw > 0xffffffffull)
      return Error(Code::kCorrupt, "index file has an impossible blob position");
    std::memcpy(e.id.data(), bid.data(), 32);
    e.offset = static_cast<uint32_t>(off);
    e.stored_len = static_cast<uint32_t>(stored);
    e.raw_len = static_cast<uint32_t>(raw);
  }
  return Status::ok();
}

Result<IndexFile> IndexFile::decode(ByteView plain) {
  ByteReader r(plain);
  ByteView magic = r.raw(4);
  if (r.failed() || std::memcmp(magic.data(), kIndexMagic, 4) != 0)
    return Error(Code::kCorrupt, "index file has a bad magic");
  if (r.u8() != kIndexVersion) return Error(Code::kCorrupt, "index file has an unknown version");
  IndexFile f;
  uint64_t npacks = r.varint();
  if (r.failed() || npacks > r.remaining() / 33) return Error(Code::kCorrupt, "index file has a bad pack count");
  f.packs.resize(npacks);
  for (auto& p : f.packs) {
    ByteView id = r.raw(32);
    if (r.failed()) return Error(Code::kCorrupt, "index file is truncated");
    std::memcpy(p.id.data(), id.data(), 32);
    LB_RETURN_IF_ERROR(decode_entries(r, p.entries));
  }
  uint64_t nsup = r.varint();
  if (r.failed() || nsup > r.remaining()) return Error(Code::kCorrupt, "index file is truncated");
  for (uint64_t i = 0; i < nsup; ++i) f.supersedes.push_back(r.str(128));
  uint64_t ntomb = r.varint();
  if (r.failed() || ntomb > r.remaining() / 34) return Error(Code::kCorrupt, "index file is truncated");
  f.tombstones.resize(ntomb);
  for (auto& t : f.tombstones) {
    ByteView id = r.raw(32);
    t.marked_ns = r.svarint();
    if (r.failed()) return Error(Code::kCorrupt, "index file is truncated");
    std::memcpy(t.id.data(), id.data(), 32);
    LB_RETURN_IF_ERROR(decode_entries(r, t.entries));
  }
  if (r.failed() || !r.done()) return Error(Code::kCorrupt, "index file is truncated or has trailing bytes");
  return f;
}

uint32_t MasterIndex::pack_number(const PackId& pack) {
  auto it = pack_numbers_.find(pack);
  if (it != pack_numbers_.end()) return it->second;
  uint32_t n = static_cast<uint32_t>(pack_ids_.size());
  pack_ids_.push_back(pack);
  pack_numbers_.emplace(pack, n);
  return n;
}

void MasterIndex::add_pack(const PackId& pack, const std::vector<PackEntry>& entries) {
  std::lock_guard lock(mu_);
  uint32_t pn = pack_number(pack);
  for (const auto& e : entries) {
    Entry x{e.id, pn, e.offset,
            (e.stored_len & 0xffffff) | (static_cast<uint32_t>(e.type) << 24) | (e.compressed ? 1u << 31 : 0),
            e.raw_len};
    recent_.emplace(e.id, x);  // a blob stored twice (concurrent writers) keeps its first location
  }
}

void MasterIndex::bulk_load(const std::map<PackId, std::vector<PackEntry>>& packs) {
  std::unique_lock lock(mu_);
  if (!sorted_.empty() || !recent_.empty()) {
    lock.unlock();  // not empty: the incremental path (check and prune always start empty)
    for (const auto& [id, entries] : packs) add_pack(id, entries);
    merge();
    return;
  }
  size_t n = 0;
  for (const auto& [id, entries] : packs) n += entries.size();
  sorted_.reserve(n);
  for (const auto& [id, entries] : packs) {
    uint32_t pn = pack_number(id);
    for (const auto& e : entries)
      sorted_.push_back(Entry{
          e.id, pn, e.offset,
          (e.stored_len & 0xffffff) | (static_cast<uint32_t>(e.type) << 24) | (e.compressed ? 1u << 31 : 0),
          e.raw_len});
  }
  // Pack numbers follow map order, so (id, pack) order puts the first pack of a duplicate first.
  std::sort(sorted_.begin(), sorted_.end(),
            [](const Entry& a, const Entry& b) { return a.id != b.id ? a.id < b.id : a.pack < b.pack; });
  sorted_.erase(std::unique(sorted_.begin(), sorted_.end(), [](const Entry& a, const Entry& b) { return a.id == b.id; }),
                sorted_.end());
}

void MasterIndex::merge() {
  std::lock_guard lock(mu_);
  if (recent_.empty()) return;
  size_t old = sorted_.size();
  sorted_.reserve(old + recent_.size());
  for (auto& [id, e] : recent_) sorted_.push_back(e);
  recent_ = {};  // clear() would keep the bucket array: 8 bytes an entry for nothing
  auto less = [](const Entry& a, const Entry& b) { return a.id < b.id; };
  std::sort(sorted_.begin() + static_cast<ptrdiff_t>(old), sorted_.end(), less);
  std::inplace_merge(sorted_.begin(), sorted_.begin() + static_cast<ptrdiff_t>(old), sorted_.end(), less);
  auto eq = [](const Entry& a, const Entry& b) { return a.id == b.id; };
  sorted_.erase(std::unique(sorted_.begin(), sorted_.end(), eq), sorted_.end());
  sorted_.shrink_to_fit();
}

void MasterIndex::clear() {
  std::lock_guard lock(mu_);
  sorted_.clear();
  recent_.clear();
  pack_ids_.clear();
  pack_numbers_.clear();
}

void MasterIndex::replace_with(MasterIndex&& other) {
  std::scoped_lock lock(mu_, other.mu_);
  sorted_ = std::move(other.sorted_);
  recent_ = std::move(other.recent_);
  pack_ids_ = std::move(other.pack_ids_);
  pack_numbers_ = std::move(other.pack_numbers_);
}

BlobLocation MasterIndex::location_of(const Entry& e) const {
  BlobLocation l;
  l.pack = pack_ids_[e.pack];
  l.type = static_cast<BlobType>((e.stored_len_type >> 24) & 0x0f);
  l.compressed = e.stored_len_type >> 31;
  l.offset = e.offset;
  l.stored_len = e.stored_len_type & 0xffffff;
  l.raw_len = e.raw_len;
  return l;
}

std::optional<BlobLocation> MasterIndex::find(const BlobId& id) const {
  std::lock_guard lock(mu_);
  auto r = recent_.find(id);
  if (r != recent_.end()) return location_of(r->second);
  auto it = std::lower_bound(sorted_.begin(), sorted_.end(), id, [](const Entry& e, const BlobId& v) { return e.id < v; });
  if (it != sorted_.end() && it->id == id) return location_of(*it);
  return std::nullopt;
}

std::optional<size_t> MasterIndex::position(const BlobId& id) const {
  std::lock_guard lock(mu_);
  auto it = std::lower_bound(sorted_.begin(), sorted_.end(), id, [](const Entry& e, const BlobId& v) { return e.id < v; });
  if (it != sorted_.end() && it->id == id) return static_cast<size_t>(it - sorted_.begin());
  return std::nullopt;
}

BlobLocation MasterIndex::location_at(size_t position) const {
  std::lock_guard lock(mu_);  // a writer session may be adding packs meanwhile
  return location_of(sorted_[position]);
}

size_t MasterIndex::blob_count() const {
  std::lock_guard lock(mu_);
  return sorted_.size() + recent_.size();
}

std::vector<PackId> MasterIndex::packs() const {
  std::lock_guard lock(mu_);
  return pack_ids_;
}

void MasterIndex::for_each(const std::function<void(const BlobId&, const BlobLocation&)>& fn) const {
  std::lock_guard lock(mu_);
  for (const auto& e : sorted_) fn(e.id, location_of(e));
  for (const auto& [id, e] : recent_) fn(id, location_of(e));
}

}  // namespace lifeboat::repo
