// The MongoDB source, restore side: choose the newest full backup at or before a time, replay oplog
// slices up to that time, into a server or a mongodump-layout directory.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/progress.h"
#include "repo/repository.h"
#include "sources/mongodb/mongo_client.h"
#include "sources/mongodb/restore_sink.h"
#include "sources/source_kind.h"

namespace lifeboat::sources::mongodb {

// What a restore to `at` will use, and how close to `at` it gets.
struct MongoRestorePlan {
  std::string name;                      // deployment
  repo::SnapshotRef full;
  std::vector<repo::SnapshotRef> slices;  // in order; each continues where the previous one ended
  OplogTime replay_from;                  // entries after this ...
  std::optional<uint32_t> replay_until_s; // ... with ts.t at most this (none: all)
  int64_t point_ns = 0;                   // the restored state is the source's state as of this time
  std::optional<int64_t> at_ns;
  bool proved = false;                    // the server's evidence proves the state exactly at at_ns
  std::string proof;                      // that evidence (docs/format.md, "What a slice proves")
  std::string limit;                      // why point_ns is before at_ns, if it is
};

// Picks the newest full backup consistent at or before `at_ns` (default: now) and every slice of
// the unbroken chain after it that can hold entries at or before `at_ns`; replays only as far as
// the server's recorded evidence proves the oplog complete, so the point is exact or says why not. `name` may be empty when the repository holds one deployment.
Result<MongoRestorePlan> plan_mongodb_restore(const std::vector<repo::SnapshotRef>& snapshots, const std::string& name,
                                              std::optional<int64_t> at_ns);

struct MongoRestoreOptions {
  std::string uri;     // target server, or
  std::string to_dir;  // a mongodump-layout directory
  bool drop = false;
  std::vector<std::string> databases;
  std::vector<std::pair<std::string, std::string>> rename;  // --to-db OLD=NEW
  size_t threads = 4;
  bool skip_unknown = false;  // go on past oplog entries we do not understand (counted and named)
  // A standby this restore wrote before from the same full backup: its documents are in place and
  // every entry through `resume_applied` was applied, so only later entries are written; the replay
  // reads from `resume_restart` on (at or before an open transaction's first entry).
  std::optional<OplogTime> resume_applied, resume_restart;
  // false: no validation follows, so a resumed restore reads neither the full backup's documents nor
  // the oplog before resume_restart to predict the target's state (expected stays empty).
  bool predict = true;
};

struct CollectionCheck {
  std::string db, name;  // as backed up
  uint64_t count = 0, duplicates = 0;
  bool hash_ok = false;
};

struct MongoRestoreResult {
  std::vector<CollectionCheck> collections;
  MongoRestorePlan plan;  // as restored: the point can end inside the requested second, or stop short
  uint64_t documents = 0, entries_read = 0, ops_applied = 0;
  uint64_t warnings = 0;              // unknown entries skipped (--skip-unknown)
  std::vector<std::string> skipped;   // the first of them, described
  std::optional<std::string> stopped_before;  // the unknown entry the replay stopped before
  // Target "db.coll" -> what it must hold now (for validations that read the target back).
  std::map<std::string, ExpectedState::Collection> expected;
  // Where a later restore into the same target resumes: the last entry applied, and where its
  // replay must read from (the first entry of a transaction still open, else `applied`).
  OplogTime applied, restart;
  bool resumed = false;  // the documents were in place: only the oplog after resume_applied was written
};

// Every collection's count and hash are checked against the backup as it streams; a mismatch fails
// the restore (kCorrupt). The oplog is replayed as OplogUnpacker reads it; an entry it does not know
// ends the replay before it (result.stopped_before, the plan no longer proved) unless skip_unknown.
Result<MongoRestoreResult> restore_mongodb(repo::Repository& repo, const MongoRestorePlan& plan,
                                           const MongoRestoreOptions& options, ProgressCounters& progress);

// The prediction as JSON ("db.coll" -> count, hash, predictable, why, exists, metadata), as restores
// hand it to checks.
nlohmann::json expected_json(const std::map<std::string, ExpectedState::Collection>& expected);

// The checks `counts` and `hashes`: every database `expected` names is read back from the target
// (server `uri`, or the directory `to_dir`) once for all checks: each collection's documents, options
// and indexes are compared with the prediction. `counts` fails on a missing collection, a wrong count,
// and (when `replaced`: the restore dropped what it restored) a collection the prediction lacks;
// `hashes` on content, options or indexes that differ.
std::vector<CheckResult> check_restored(const std::string& uri, const std::string& to_dir, const nlohmann::json& expected,
                                        const std::vector<std::string>& checks, bool replaced);

}  // namespace lifeboat::sources::mongodb
