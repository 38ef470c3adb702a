// check: indexes, packs, snapshots and trees, then optionally the data itself.
#include "repo/check.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <unordered_set>

#include "core/interrupt.h"
#include "core/worker_pool.h"
#include "repo/backend_access.h"
#include "repo/compress.h"

namespace lifeboat::repo {

std::vector<std::string> verify_pack(Repository& repo, const PackId& id, const std::vector<PackEntry>* expected,
                                     uint64_t* bytes_read) {
  std::vector<std::string> problems;
  std::string name = to_hex(id);
  // load_content_addressed hashes what it reads (three tries): a pack that never matches its name is
  // damage, and its bytes are still read to report which blobs survive.
  auto bytes = load_content_addressed(BackendAccess::of(repo), {FileType::kPack, name});
  if (!bytes && bytes.status().code() == Code::kCorrupt) {
    problems.push_back(fmt::format("pack {}: content does not match its name (damaged file)", name));
    bytes = BackendAccess::of(repo).load({FileType::kPack, name});
  }
  if (!bytes) {
    problems.push_back(fmt::format("pack {}: {}", name, bytes.status().message()));
    return problems;
  }
  if (bytes_read) *bytes_read += bytes->size();
  std::optional<crypto::Capsule> capsule;
  auto entries = read_pack_header(*bytes, repo.pack_key_for(), &capsule);
  if (!entries) {
    problems.push_back(fmt::format("pack {}: {}", name, entries.status().message()));
    return problems;
  }
  // The trailer's capsule is the one the index recorded: a different one would be a swapped trailer.
  if (capsule != repo.capsule_of(id) && expected)
    problems.push_back(fmt::format("pack {}: its capsule differs from the one the index records", name));
  auto key = repo.aead_for(capsule);
  if (!key) {
    problems.push_back(fmt::format("pack {}: {}", name, key.status().message()));
    return problems;
  }
  for (const auto& e : *entries) {
    ByteView sealed(bytes->data() + e.offset, e.stored_len);
    auto plain = key->open(sealed);
    if (!plain) {
      problems.push_back(fmt::format("pack {}: blob {}: {}", name, short_hex(e.id), plain.status().message()));
      continue;
    }
    Bytes data;
    if (e.compressed) {
      auto d = decompress_blob(*plain, e.raw_len);
      if (!d) {
        problems.push_back(fmt::format("pack {}: blob {}: {}", name, short_hex(e.id), d.status().message()));
        continue;
      }
      data = std::move(*d);
    } else {
      data = std::move(*plain);
    }
    if (data.size() != e.raw_len || repo.blob_id(data) != e.id)
      problems.push_back(fmt::format("pack {}: blob {} does not match its ID", name, short_hex(e.id)));
  }
  if (expected) {
    // Every field restore relies on: where the blob is, how long, and how to decode it (type, compressed).
    auto key = [](const PackEntry& e) {
      return std::make_tuple(e.id, e.offset, e.stored_len, e.raw_len, static_cast<int>(e.type), e.compressed);
    };
    std::vector<decltype(key(PackEntry{}))> a, b;
    for (const auto& e : *entries) a.push_back(key(e));
    for (const auto& e : *expected) b.push_back(key(e));
    std::sort(a.begin(), a.end());
    std::sort(b.begin(), b.end());
    if (!std::includes(a.begin(), a.end(), b.begin(), b.end()))
      problems.push_back(fmt::format("pack {}: header disagrees with the index", name));
  }
  return problems;
}

Result<CheckReport> check_repository(Repository& repo, const CheckOptions& options, ProgressCounters* progress) {
  LB_RETURN_IF_ERROR(repo.require_reader("check"));
  CheckReport report;
  // 1. Index files: each must match its name and decode; collect what each pack should hold.
  // Tolerant: a damaged index file is reported (by name) and the rest still checked.
  LB_ASSIGN_OR_RETURN(IndexState state, repo.read_index_state(/*tolerant=*/true));
  report.errors.insert(report.errors.end(), repo.index_warnings().begin(), repo.index_warnings().end());
  repo.use_index_state(state);
  const auto& expected = state.live;
  report.blobs = repo.index().blob_count();

  // 2. Packs: every indexed pack exists with a plausible size; packs nobody indexes are leftovers.
  std::map<std::string, uint64_t> stored;
  LB_RETURN_IF_ERROR(BackendAccess::of(repo).list(FileType::kPack, [&](const storage::FileInfo& fi) {
    stored[fi.name] = fi.size_bytes;
    return Status::ok();
  }));
  for (const auto& [id, entries] : expected) {
    std::string name = to_hex(id);
    auto it = stored.find(name);
    if (it == stored.end()) {
      report.errors.push_back(fmt::format("pack {}: named by the index but missing", name));
      continue;
    }
    uint64_t end = 0;
    for (const auto& e : entries) end = std::max<uint64_t>(end, uint64_t{e.offset} + e.stored_len);
    if (it->second < end + 4 + crypto::kSealOverhead)
      report.errors.push_back(fmt::format("pack {}: {} bytes, too short for the blobs the index names (truncated)",
                                          name, it->second));
  }
  for (const auto& [name, size] : stored) {
    PackId id;
    if (parse_id(name, id) && state.tombstones.count(id)) continue;  // prune's to delete; not a leftover
    if (!parse_id(name, id) || !expected.count(id))
      report.warnings.push_back(fmt::format("pack {}: not in any index (left by an interrupted backup; prune removes it)", name));
  }
  report.packs = stored.size();

  // 3. Snapshots and trees: every blob a snapshot reaches must be indexed. A blob found only in a
  // pack prune has tombstoned is still restorable while that pack exists: such packs are collected,
  // must exist (a prune killed between deleting packs and rewriting the index leaves them gone) and
  // are read under --read-data like live ones.
  LB_ASSIGN_OR_RETURN(auto snapshot_names, repo.list_names(FileType::kSnapshot));
  std::unordered_set<BlobId, BlobIdHash> seen_trees;
  std::map<PackId, std::string> needed_tombstoned;  // pack → the first snapshot that needs it
  auto through_tombstone = [&](const BlobId& b, const std::string& snapshot) {
    if (repo.index().contains(b)) return;
    if (auto loc = repo.tombstoned().find(b)) needed_tombstoned.emplace(loc->pack, snapshot);
  };
  for (const auto& name : snapshot_names) {
    if (interrupted()) return Error(Code::kInterrupted, "interrupted");
    auto ref = repo.load_snapshot(name);
    if (!ref) {
      report.errors.push_back(ref.status().message());
      continue;
    }
    report.snapshots++;
    std::vector<BlobId> stack{ref->snapshot.tree};
    while (!stack.empty()) {
      BlobId tid = stack.back();
      stack.pop_back();
      if (!seen_trees.insert(tid).second) continue;
      through_tombstone(tid, name);
      auto tree = repo.load_tree(tid);
      if (!tree) {
        report.errors.push_back(fmt::format("snapshot {}: tree {}: {}", name.substr(0, 8), short_hex(tid),
                                            tree.status().message()));
        continue;
      }
      report.trees++;
      for (const auto& n : tree->nodes) {
        if (n.subtree) stack.push_back(*n.subtree);
        for (const auto& c : n.content) {
          if (repo.index().contains(c)) continue;
          if (auto loc = repo.tombstoned().find(c)) {
            needed_tombstoned.emplace(loc->pack, name);
            continue;
          }
          report.errors.push_back(fmt::format("snapshot {}: file {}: data blob {} is missing", name.substr(0, 8),
                                              n.name, short_hex(c)));
        }
      }
    }
  }
  for (const auto& [id, snapshot] : needed_tombstoned) {
    std::string name = to_hex(id);
    if (!stored.count(name))
      report.errors.push_back(fmt::format(
          "pack {}: missing, but snapshot {} needs blobs that only it holds (prune had marked it for deletion; "
          "forget the snapshot or restore the pack)",
          name, snapshot.substr(0, 8)));
  }

  // 4. Data: read packs (all or the chosen subset) and verify every byte.
  if (options.read_data) {
    std::vector<std::pair<PackId, const std::vector<PackEntry>*>> todo;
    for (const auto& [id, entries] : expected) {
      if (!stored.count(to_hex(id))) continue;
      if (options.subset_t && id[0] % options.subset_t != options.subset_n - 1) continue;
      todo.emplace_back(id, &entries);
    }
    for (const auto& [id, snapshot] : needed_tombstoned) {
      if (!stored.count(to_hex(id))) continue;
      if (options.subset_t && id[0] % options.subset_t != options.subset_n - 1) continue;
      todo.emplace_back(id, &state.tombstones.at(id).entries);
    }
    // Every other pack file too (leftovers, prune's tombstoned packs): a file whose name is not the
    // SHA-256 of its content is damage wherever it is.
    for (const auto& [name, size] : stored) {
      PackId id;
      if (!parse_id(name, id)) {
        report.errors.push_back(fmt::format("pack file {}: the name is not a pack ID (not written by Lifeboat)", name));
        continue;
      }
      if (expected.count(id) || needed_tombstoned.count(id)) continue;
      if (options.subset_t && id[0] % options.subset_t != options.subset_n - 1) continue;
      todo.emplace_back(id, nullptr);
    }
    if (progress) {
      progress->files_total = todo.size();
      progress->totals_final = true;
    }
    std::mutex mu;
    WorkerPool pool(WorkerPool::default_threads(), 4);
    for (const auto& [id, entries] : todo) {
      pool.submit([&, id = id, entries = entries] {
        if (interrupted()) return;
        uint64_t bytes = 0;
        auto problems = verify_pack(repo, id, entries, &bytes);
        std::lock_guard lock(mu);
        report.errors.insert(report.errors.end(), problems.begin(), problems.end());
        report.packs_read++;
        report.bytes_read += bytes;
        if (progress) {
          progress->files_done++;
          progress->bytes_done += bytes;
        }
      });
    }
    pool.wait_idle();
    if (interrupted()) return Error(Code::kInterrupted, "interrupted");
  }
  return report;
}

}  // namespace lifeboat::repo
