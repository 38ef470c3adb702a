// Keeps a year of continuous oplog capture cheap: slices older than a day are compacted into one
// slice an hour (entries unchanged: the merged slice's oplog.bson is the parts' blobs in order), and
// slices older than the point-in-time window are forgotten once a full backup before the window's
// start makes them unnecessary.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <set>
#include <string>

#include "repo/repository.h"

namespace lifeboat::sources::mongodb {

struct TidyOptions {
  std::string name;                          // deployment (the snapshots' path)
  int64_t now_ns = 0;
  int64_t window_ns = 0;                     // 0: slices live as long as the full backup they extend
  int64_t compact_after_ns = 86400LL * 1000000000;  // 0: no compaction
  std::set<std::string> pinned;              // never merged nor forgotten
};

struct TidyResult {
  uint64_t compacted = 0, compacted_into = 0;  // slices merged, and the hourly slices they became
  uint64_t forgotten = 0;                      // slices before the window's anchoring full backup
  uint64_t redundant = 0;                      // left by an interrupted compaction inside a merged slice's range
  uint64_t kept_by_object_lock = 0;
};

// Safe to interrupt at any point: a merged slice is committed before its parts are removed, a
// restore treats the overlap of a merged slice with parts still there as one chain, and the next
// tidy forgets those parts (and any second merged slice inside the range) instead of merging again.
Result<TidyResult> tidy_slices(repo::Repository& repo, const TidyOptions& options);

// The counts, as `mongodb tidy --json` and plan backups report them.
nlohmann::json tidy_json(const TidyResult& r);

}  // namespace lifeboat::sources::mongodb
