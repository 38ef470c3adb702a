// Index files (which blob is in which pack, where) and the compact in-memory index built from them.
#pragma once

#include <array>
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
  // The capsules of the packs (live or tombstoned) an append key sealed to the repository's public key.
  std::map<PackId, crypto::Capsule> capsules;

  Bytes encode() const;
  static Result<IndexFile> decode(ByteView plain);

  // What an append key may read of an index file (docs/format.md, "Index files"): the files it
  // supersedes and the first 20 bytes of each live blob's ID, so writers deduplicate without learning
  // where blobs are, how large, or of what type.
  Bytes encode_ids() const;
};

struct IndexIds {
  std::vector<std::string> supersedes;
  std::vector<std::array<uint8_t, 20>> keys;
  static Result<IndexIds> decode(ByteView plain);
};

struct BlobLocation {
  PackId pack{};
  BlobType type = BlobType::kData;
  bool compressed = false;
  uint32_t offset = 0;
  uint32_t stored_len = 0;
  uint32_t raw_len = 0;
};

// Every known blob, 36 bytes an entry, so 50 M blobs take about 1.8 GB. Thread-safe.
//
// A blob is found by the first 20 bytes (160 bits) of its ID. IDs are keyed (HMAC-SHA256 under the
// repository's content-ID key), so no one outside can aim two blobs at one key, and two blobs of a
// repository share a key by chance with a probability near n^2 / 2^161 (below 10^-24 at 10^12 blobs;
// kopia's whole content IDs are 128 bits).
// Every read still checks the blob's full ID (Repository::read_blob), so even that case fails closed
// on read instead of returning the wrong bytes. docs/memory.md, "The index".
//
// Three parts:
// - the base: one sorted array, built once from the index files (begin_load / load_pack / finish_load,
//   or bulk_load), searched by binary search;
// - runs: blobs added since (add_pack, one sorted run per pack). A run is merged into the run before
//   it while that one is less than twice its size and the merge stays under kRunCap entries, so a
//   backup of N new blobs keeps about log2(N / pack size) + N / kRunCap runs, and no merge copies more
//   than kRunCap entries at once: the base is never reallocated during a backup;
// - merge() folds the runs into the base (one reallocation of the base; callers that need positions).
class MasterIndex {
 public:
  static constexpr size_t kKeyBytes = 20;
  static constexpr size_t kRunCap = size_t{1} << 20;  // entries: 36 MiB
  using Key = std::array<uint8_t, kKeyBytes>;
  static Key key_of(const BlobId& id);

  void add_pack(const PackId& pack, const std::vector<PackEntry>& entries);
  // Loads many packs into an empty index in one pass (append, sort once): no per-blob allocations,
  // so loading leaves nothing behind but the 36-byte entries. A blob in several packs keeps the
  // pack whose ID sorts first, as add_pack's first-location-wins does for a map in ID order.
  void bulk_load(const std::map<PackId, std::vector<PackEntry>>& packs);

  // Loading index files one at a time (Repository::load_index): begin_load on an empty index with an
  // upper bound of the entries to come (reserved, but only pages filled become resident), load_pack
  // for each pack of each file in file order, then finish_load with the [begin, end) ranges of
  // loaded() positions to drop (files another file supersedes). Packs left only in dropped ranges
  // are forgotten.
  void begin_load(size_t max_entries);
  void load_pack(const PackId& pack, const std::vector<PackEntry>& entries);
  size_t loaded() const;
  void finish_load(const std::vector<std::pair<size_t, size_t>>& drop);

  // Folds the runs into the base.
  void merge();
  void clear();
  // Takes `other`'s content in one step: concurrent lookups see the old index or the new one, never
  // an empty one in between.
  void replace_with(MasterIndex&& other);
  std::optional<BlobLocation> find(const BlobId& id) const;
  bool contains(const BlobId& id) const { return find(id).has_value(); }
  size_t blob_count() const;
  std::vector<PackId> packs() const;
  size_t run_count() const;

  struct Entry {
    Key key;
    uint32_t pack;
    uint32_t offset;
    uint32_t stored_len_type;  // low 24 bits: stored length; bits 24-27: type; bit 31: compressed
    uint32_t raw_len;
  };
  static_assert(sizeof(Entry) == 36);
  // Positions in the base (after merge(): every blob), for compact bitsets, and the base's size.
  std::optional<size_t> position(const BlobId& id) const;
  size_t sorted_size() const;
  BlobLocation location_at(size_t position) const;

 private:
  BlobLocation location_of(const Entry& e) const;
  uint32_t pack_number(const PackId& pack);
  Entry entry_of(uint32_t pack, const PackEntry& e) const;
  // Sorts by key, the pack whose ID sorts first ahead, and keeps the first of each key.
  void sort_unique(std::vector<Entry>& v) const;
  mutable std::mutex mu_;
  std::vector<Entry> sorted_;
  std::vector<std::vector<Entry>> runs_;  // oldest first
  std::vector<PackId> pack_ids_;
  std::unordered_map<PackId, uint32_t, BlobIdHash> pack_numbers_;
};

}  // namespace lifeboat::repo
