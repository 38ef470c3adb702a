// Prune: removes data no snapshot needs, without stopping backups (docs/format.md, "Prune").
#pragma once

#include <string>
#include <vector>

#include "repo/lock.h"
#include "repo/repository.h"

namespace lifeboat::repo {

struct PruneOptions {
  double max_unused = 0.10;  // repack a pack when more than this share of its bytes is unused
  bool dry_run = false;
  // How far another host's clock may be ahead of ours; a lock started up to this long after a mark
  // still holds the sweep back.
  int64_t clock_skew_ns = 5LL * 60 * 1000000000;
  size_t index_part_entries = IndexPartWriter::kPartEntries;  // the index it writes, in parts of this many entries
};

struct PruneReport {
  uint64_t snapshots = 0, packs = 0, blobs_used = 0, blobs_unused = 0;
  uint64_t packs_tombstoned = 0, packs_repacked = 0, packs_resurrected = 0, packs_deleted = 0, orphans = 0;
  uint64_t bytes_before = 0, bytes_deleted = 0, bytes_repacked = 0;
  uint64_t tombstones_waiting = 0;  // marked but not yet deletable: a backup that started earlier runs
  uint64_t packs_retained = 0;      // unused, but under object lock: deleted by a prune after it ends
  uint64_t objects_lock_extended = 0;
  int locks_removed = 0;  // stale, released and replaced lock files, and release markers
  std::vector<std::string> notes;
};

// Runs under the caller's maintenance lock `own`. Backups (shared locks) may run throughout.
Result<PruneReport> prune_repository(Repository& repo, const PruneOptions& options, const RepoLock& own);

}  // namespace lifeboat::repo
