// Index files (which blob is in which pack, where) and the compact in-memory index built from them.
#pragma once

#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <vector>

#include "core/status.h"
#include "repo/blob.h"
#include "repo/pack.h"

namespace lifeboat::repo {

// The plaintext of one index file: packs and their entries, plus index files it replaces (prune).
struct IndexFile {
  struct Pack {
    PackId id{};
    std::vector<PackEntry> entries;
  };
  // A pack prune has taken out of service: its blobs are not offered for dedup but stay readable
  // until a sweep deletes the pack (docs/format.md, "Prune").
  struct Tombstone {
    PackId id{};
    int64_t marked_ns = 0;  // when the index without this pack became visible
    std::vector<PackEntry> entries;
  };
  std::vector<Pack> packs;
  std::vector<std::string> supersedes;  // names of index files whose content this one includes
  std::vector<Tombstone> tombstones;

  Bytes encode() const;
  static Result<IndexFile> decode(ByteView plain);
};

struct BlobLocation {
  PackId pack{};
  BlobType type = BlobType::kData;
  bool compressed = false;
  uint32_t offset = 0;
  uint32_t stored_len = 0;
  uint32_t raw_len = 0;
};

// Every known blob, 48 bytes an entry (a sorted array searched by binary search, plus a small hash map
// for blobs added since the last merge), so 10 M chunks take about 480 MB. Thread-safe.
class MasterIndex {
 public:
  void add_pack(const PackId& pack, const std::vector<PackEntry>& entries);
  // Loads many packs into an empty index in one pass (append, sort once): no per-blob allocations,
  // so loading leaves nothing behind but the 48-byte entries. A blob in several packs keeps the
  // first pack given (map order), as add_pack does.
  void bulk_load(const std::map<PackId, std::vector<PackEntry>>& packs);
  // Moves recent additions into the sorted array; call after loading many index files.
  void merge();
  void clear();
  // Takes `other`'s content in one step: concurrent lookups see the old index or the new one, never
  // an empty one in between.
  void replace_with(MasterIndex&& other);
  std::optional<BlobLocation> find(const BlobId& id) const;
  bool contains(const BlobId& id) const { return find(id).has_value(); }
  size_t blob_count() const;
  std::vector<PackId> packs() const;
  // Calls fn for every blob; used by check, stats and prune.
  void for_each(const std::function<void(const BlobId&, const BlobLocation&)>& fn) const;

  struct Entry {
    BlobId id;
    uint32_t pack;
    uint32_t offset;
    uint32_t stored_len_type;  // low 24 bits: stored length; bits 24-27: type; bit 31: compressed
    uint32_t raw_len;
  };
  static_assert(sizeof(Entry) == 48);
  // After merge(): the position of a blob in the sorted array (for compact bitsets), and its size.
  std::optional<size_t> position(const BlobId& id) const;
  size_t sorted_size() const { return sorted_.size(); }
  BlobLocation location_at(size_t position) const;

 private:
  BlobLocation location_of(const Entry& e) const;
  uint32_t pack_number(const PackId& pack);
  mutable std::mutex mu_;
  std::vector<Entry> sorted_;
  std::unordered_map<BlobId, Entry, BlobIdHash> recent_;
  std::vector<PackId> pack_ids_;
  std::unordered_map<PackId, uint32_t, BlobIdHash> pack_numbers_;
};

}  // namespace lifeboat::repo
