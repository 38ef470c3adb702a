// Index file codec and the in-memory index.
#include "repo/index.h"

#include <algorithm>
#include <cstring>
#include <iterator>

namespace lifeboat::repo {

namespace {
constexpr char kIndexMagic[4] = {'L', 'B', 'I', 'X'};
constexpr uint8_t kIndexVersion = 2;  // 2 adds the capsules; 1 is read as before
constexpr char kIdsMagic[4] = {'L', 'B', 'I', 'D'};
constexpr uint8_t kIdsVersion = 1;
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
  w.varint(capsules.size());
  for (const auto& [id, c] : capsules) {
    w.raw({id.data(), id.size()});
    c.append_to(out);
  }
  return out;
}

Bytes IndexFile::encode_ids() const {
  Bytes out;
  ByteWriter w(out);
  w.raw(as_bytes({kIdsMagic, 4}));
  w.u8(kIdsVersion);
  w.varint(supersedes.size());
  for (const auto& s : supersedes) w.str(s);
  size_t n = 0;
  for (const auto& p : packs) n += p.entries.size();
  w.varint(n);
  for (const auto& p : packs)
    for (const auto& e : p.entries) w.raw({e.id.data(), 20});
  return out;
}

Result<IndexIds> IndexIds::decode(ByteView plain) {
  ByteReader r(plain);
  ByteView magic = r.raw(4);
  if (r.failed() || std::memcmp(magic.data(), kIdsMagic, 4) != 0)
    return Error(Code::kCorrupt, "index file's ID list has a bad magic");
  if (r.u8() != kIdsVersion) return Error(Code::kCorrupt, "index file's ID list has an unknown version");
  IndexIds out;
  uint64_t nsup = r.varint();
  if (r.failed() || nsup > r.remaining()) return Error(Code::kCorrupt, "index file's ID list is truncated");
  for (uint64_t i = 0; i < nsup; ++i) out.supersedes.push_back(r.str(128));
  uint64_t n = r.varint();
  if (r.failed() || n > r.remaining() / 20) return Error(Code::kCorrupt, "index file's ID list is truncated");
  out.keys.resize(n);
  for (auto& k : out.keys) std::memcpy(k.data(), r.raw(20).data(), 20);
  if (r.failed() || !r.done()) return Error(Code::kCorrupt, "index file's ID list is truncated or has trailing bytes");
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
  uint8_t version = r.u8();
  if (version != 1 && version != kIndexVersion)
    return Error(Code::kCorrupt, "index file has an unknown version (written by a newer lifeboat?)");
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
  if (version >= 2) {
    uint64_t ncaps = r.varint();
    if (r.failed() || ncaps > r.remaining() / (32 + crypto::Capsule::kSize))
      return Error(Code::kCorrupt, "index file is truncated");
    for (uint64_t i = 0; i < ncaps; ++i) {
      PackId id;
      ByteView idb = r.raw(32);
      ByteView cb = r.raw(crypto::Capsule::kSize);
      if (r.failed()) return Error(Code::kCorrupt, "index file is truncated");
      std::memcpy(id.data(), idb.data(), 32);
      LB_ASSIGN_OR_RETURN(f.capsules[id], crypto::Capsule::parse(cb));
    }
  }
  if (r.failed() || !r.done()) return Error(Code::kCorrupt, "index file is truncated or has trailing bytes");
  return f;
}

MasterIndex::Key MasterIndex::key_of(const BlobId& id) {
  Key k;
  std::memcpy(k.data(), id.data(), kKeyBytes);
  return k;
}

namespace {
bool key_less(const MasterIndex::Entry& a, const MasterIndex::Entry& b) {
  return std::memcmp(a.key.data(), b.key.data(), MasterIndex::kKeyBytes) < 0;
}
bool key_equal(const MasterIndex::Entry& a, const MasterIndex::Entry& b) {
  return std::memcmp(a.key.data(), b.key.data(), MasterIndex::kKeyBytes) == 0;
}
// The entry of `key` in a sorted array, or null.
const MasterIndex::Entry* search(const std::vector<MasterIndex::Entry>& v, const MasterIndex::Key& key) {
  auto it = std::lower_bound(v.begin(), v.end(), key, [](const MasterIndex::Entry& e, const MasterIndex::Key& k) {
    return std::memcmp(e.key.data(), k.data(), MasterIndex::kKeyBytes) < 0;
  });
  if (it != v.end() && std::memcmp(it->key.data(), key.data(), MasterIndex::kKeyBytes) == 0) return &*it;
  return nullptr;
}
}  // namespace

uint32_t MasterIndex::pack_number(const PackId& pack) {
  auto it = pack_numbers_.find(pack);
  if (it != pack_numbers_.end()) return it->second;
  uint32_t n = static_cast<uint32_t>(pack_ids_.size());
  pack_ids_.push_back(pack);
  pack_numbers_.emplace(pack, n);
  return n;
}

MasterIndex::Entry MasterIndex::entry_of(uint32_t pack, const PackEntry& e) const {
  return Entry{key_of(e.id), pack, e.offset,
               (e.stored_len & 0xffffff) | (static_cast<uint32_t>(e.type) << 24) | (e.compressed ? 1u << 31 : 0),
               e.raw_len};
}

void MasterIndex::sort_unique(std::vector<Entry>& v) const {
  std::sort(v.begin(), v.end(), [&](const Entry& a, const Entry& b) {
    int c = std::memcmp(a.key.data(), b.key.data(), kKeyBytes);
    if (c != 0) return c < 0;
    return a.pack != b.pack && pack_ids_[a.pack] < pack_ids_[b.pack];
  });
  v.erase(std::unique(v.begin(), v.end(), key_equal), v.end());
}

void MasterIndex::add_pack(const PackId& pack, const std::vector<PackEntry>& entries) {
  std::lock_guard lock(mu_);
  uint32_t pn = pack_number(pack);
  std::vector<Entry> run;
  run.reserve(entries.size());
  for (const auto& e : entries) run.push_back(entry_of(pn, e));
  sort_unique(run);
  runs_.push_back(std::move(run));
  // Merge while the run before is less than twice as big. std::merge takes equal keys from its first
  // range first and unique keeps the first, so an older location wins (a blob stored twice by
  // concurrent writers keeps its first location).
  while (runs_.size() >= 2) {
    auto& a = runs_[runs_.size() - 2];
    auto& b = runs_.back();
    if (a.size() >= 2 * b.size() || a.size() + b.size() > kRunCap) break;
    std::vector<Entry> m;
    m.reserve(a.size() + b.size());
    std::merge(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(m), key_less);
    m.erase(std::unique(m.begin(), m.end(), key_equal), m.end());
    runs_.pop_back();
    runs_.back() = std::move(m);
  }
}

void MasterIndex::bulk_load(const std::map<PackId, std::vector<PackEntry>>& packs) {
  {
    std::unique_lock lock(mu_);
    if (!sorted_.empty() || !runs_.empty()) {
      lock.unlock();  // not empty: the incremental path (check and prune always start empty)
      for (const auto& [id, entries] : packs) add_pack(id, entries);
      merge();
      return;
    }
  }
  size_t n = 0;
  for (const auto& [id, entries] : packs) n += entries.size();
  begin_load(n);
  for (const auto& [id, entries] : packs) load_pack(id, entries);
  finish_load({});
}

void MasterIndex::begin_load(size_t max_entries) {
  std::lock_guard lock(mu_);
  sorted_.reserve(max_entries);
}

void MasterIndex::load_pack(const PackId& pack, const std::vector<PackEntry>& entries) {
  std::lock_guard lock(mu_);
  uint32_t pn = pack_number(pack);
  for (const auto& e : entries) sorted_.push_back(entry_of(pn, e));
}

size_t MasterIndex::loaded() const {
  std::lock_guard lock(mu_);
  return sorted_.size();
}

void MasterIndex::finish_load(const std::vector<std::pair<size_t, size_t>>& drop) {
  std::lock_guard lock(mu_);
  if (!drop.empty()) {
    std::vector<std::pair<size_t, size_t>> ranges = drop;
    std::sort(ranges.begin(), ranges.end());
    size_t out = 0, in = 0;
    for (const auto& [b, e] : ranges) {
      size_t begin = std::max(b, in), end = std::min(e, sorted_.size());
      if (begin >= end) continue;
      std::move(sorted_.begin() + static_cast<ptrdiff_t>(in), sorted_.begin() + static_cast<ptrdiff_t>(begin),
                sorted_.begin() + static_cast<ptrdiff_t>(out));
      out += begin - in;
      in = end;
    }
    std::move(sorted_.begin() + static_cast<ptrdiff_t>(in), sorted_.end(), sorted_.begin() + static_cast<ptrdiff_t>(out));
    out += sorted_.size() - in;
    sorted_.resize(out);
    // Forget packs named only by dropped files: renumber the rest in first-seen order.
    std::vector<uint32_t> renumber(pack_ids_.size(), UINT32_MAX);
    for (const auto& e : sorted_) renumber[e.pack] = 0;
    std::vector<PackId> kept;
    for (size_t i = 0; i < pack_ids_.size(); ++i)
      if (renumber[i] == 0) {
        renumber[i] = static_cast<uint32_t>(kept.size());
        kept.push_back(pack_ids_[i]);
      }
    for (auto& e : sorted_) e.pack = renumber[e.pack];
    pack_ids_ = std::move(kept);
    pack_numbers_.clear();
    for (size_t i = 0; i < pack_ids_.size(); ++i) pack_numbers_.emplace(pack_ids_[i], static_cast<uint32_t>(i));
  }
  sort_unique(sorted_);
}

void MasterIndex::merge() {
  std::lock_guard lock(mu_);
  if (runs_.empty()) return;
  for (auto& run : runs_) {
    size_t old = sorted_.size();
    sorted_.insert(sorted_.end(), run.begin(), run.end());
    run = {};
    std::inplace_merge(sorted_.begin(), sorted_.begin() + static_cast<ptrdiff_t>(old), sorted_.end(), key_less);
    sorted_.erase(std::unique(sorted_.begin(), sorted_.end(), key_equal), sorted_.end());
  }
  runs_.clear();
  sorted_.shrink_to_fit();
}

void MasterIndex::clear() {
  std::lock_guard lock(mu_);
  sorted_ = {};
  runs_.clear();
  pack_ids_.clear();
  pack_numbers_.clear();
}

void MasterIndex::replace_with(MasterIndex&& other) {
  std::scoped_lock lock(mu_, other.mu_);
  sorted_ = std::move(other.sorted_);
  runs_ = std::move(other.runs_);
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
  Key key = key_of(id);
  std::lock_guard lock(mu_);
  if (const Entry* e = search(sorted_, key)) return location_of(*e);
  for (const auto& run : runs_)
    if (const Entry* e = search(run, key)) return location_of(*e);
  return std::nullopt;
}

std::optional<size_t> MasterIndex::position(const BlobId& id) const {
  Key key = key_of(id);
  std::lock_guard lock(mu_);
  if (const Entry* e = search(sorted_, key)) return static_cast<size_t>(e - sorted_.data());
  return std::nullopt;
}

size_t MasterIndex::sorted_size() const {
  std::lock_guard lock(mu_);
  return sorted_.size();
}

BlobLocation MasterIndex::location_at(size_t position) const {
  std::lock_guard lock(mu_);  // a writer session may be adding packs meanwhile
  return location_of(sorted_[position]);
}

size_t MasterIndex::blob_count() const {
  std::lock_guard lock(mu_);
  size_t n = sorted_.size();
  for (const auto& run : runs_) n += run.size();
  return n;  // a blob in the base and a run (stored again) counts twice: rare, and only a count
}

size_t MasterIndex::run_count() const {
  std::lock_guard lock(mu_);
  return runs_.size();
}

std::vector<PackId> MasterIndex::packs() const {
  std::lock_guard lock(mu_);
  return pack_ids_;
}

}  // namespace lifeboat::repo
