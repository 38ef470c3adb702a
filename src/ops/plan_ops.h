// What a plan does, source by source, with no knowledge of any source kind: backups (then retention
// and verification), restores into an environment (one source, or all at one instant), and status.
// Each kind's work comes from its entry (sources/source_kind.h). Drills are in ops/drill.h. The code
// is split by job: plan_common.cpp (selection, settings, outcomes), backup_run.cpp, restore_run.cpp,
// status.cpp.
#pragma once

#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "ops/repository_set.h"
#include "plan/plan.h"
#include "sources/source_kind.h"

namespace lifeboat::ops {

std::string plan_where(const plan::SourceSpec& source);

// The source's parsed settings with the environment's overrides applied (none when `environment` is empty).
Result<sources::SettingsPtr> environment_settings(const plan::SourceSpec& source, const std::string& environment);

// Sources named (all when empty), checked against the plan.
Result<std::vector<const plan::SourceSpec*>> select_sources(const plan::Plan& plan, const std::vector<std::string>& names);

// The snapshots a plan source wrote (its source tag), oldest first.
std::vector<repo::SnapshotRef> snapshots_of(const std::vector<repo::SnapshotRef>& all, const std::string& source);

struct SourceOutcome {
  std::string source, kind;
  bool ok = false;
  std::string error;
  int64_t duration_ms = 0;
  nlohmann::json result = nlohmann::json::object();
  nlohmann::json to_json() const;
};

// Runs one source's work, timing it and turning its status — or an exception — into the outcome.
SourceOutcome timed_outcome(const plan::SourceSpec& s, const std::function<Status(SourceOutcome&)>& work);

// Backs each source up, then applies its retention (snapshots tagged for it only; pins kept;
// dependents such as oplog slices kept exactly as long as the backup they extend), verifies that
// every pack the new snapshot needs exists with its indexed size, and refreshes copies. One failing
// source does not stop the others.
std::vector<SourceOutcome> run_backups(RepositorySet& repos, const std::vector<const plan::SourceSpec*>& sources);

// Copies every snapshot of the source its repository's copies (copy_of) lack: what a backup does
// after it commits, run on its own by the daemon (copy_every, and after each committed oplog slice).
Result<nlohmann::json> refresh_copies(RepositorySet& repos, const plan::SourceSpec& s);

// After a backup: every tree of snapshot `id` loads, and every blob it needs is in a pack that exists in
// storage and is long enough to hold it — read from the storage listing, not from the index the backup
// itself just wrote. A blob indexed in a missing pack and in an existing one counts as present. A
// `sample` share of the blobs (the source's `verify`, by blob ID) is read back from storage, decrypted
// and hashed, as `check --read-data` would: "verified" reads bytes, not only pack sizes.
Result<nlohmann::json> verify_snapshot(repo::Repository& repo, const std::string& id, double sample);

// Retention for one source's snapshots, with the reason for every decision ("explain").
Result<nlohmann::json> apply_source_retention(repo::Repository& repo, const plan::SourceSpec& s);

// One source restored into `environment` as of `at_ns` (default: newest), then each of its
// validations run against the restored target. `after_restore` (drills) runs between the two.
// `overrides`: settings a person gave on the command line for this one restore (--only, --dry-run),
// laid over the environment's. A dry run (the kind says so) runs no validation: nothing was written.
struct RestoreRun {
  SourceOutcome outcome;
  std::vector<sources::CheckResult> checks;
  std::optional<int64_t> point_ns;  // set when the restore succeeded
  sources::Report report;           // what the kind says about it, for a person
  std::string repository;           // the repository read (a copy, when the source's own was lost)
  nlohmann::json resume;            // the kind's marker for the next restore into this target (standby)
};
struct RestoreOptions {
  std::function<Status(const plan::SourceSpec&)> after_restore;
  nlohmann::json overrides = nlohmann::json::object();
  std::string repository;                  // read this repository (default: the source's, or its copy when lost)
  const nlohmann::json* resume = nullptr;  // a standby: the marker the previous restore into it returned
  bool validate = true;                    // false: run no check (a standby refresh; the failover checks)
  bool own_handle = false;                 // a handle of its own (no turn-taking with other runs on the repository)
};
RestoreRun restore_source(RepositorySet& repos, const plan::SourceSpec& s, const std::string& environment,
                          std::optional<int64_t> at_ns, const RestoreOptions& options);
RestoreRun restore_source(RepositorySet& repos, const plan::SourceSpec& s, const std::string& environment,
                          std::optional<int64_t> at_ns, const std::function<Status(const plan::SourceSpec&)>& after_restore = {},
                          const nlohmann::json& overrides = nlohmann::json::object());

// Restores each source; each result states the restored point and how far it lies from `at_ns`.
std::vector<SourceOutcome> run_restores(RepositorySet& repos, const std::vector<const plan::SourceSpec*>& sources,
                                        const std::string& environment, std::optional<int64_t> at_ns);

// The newest restorable point of each source (nullopt: none) and why it could not be found.
struct NewestPoint {
  std::optional<int64_t> point_ns;
  std::string error;  // the repository could not be opened or listed
};
NewestPoint newest_point(RepositorySet& repos, const plan::SourceSpec& s);

// Per source: last backup, its age, the newest restorable point (RPO now), snapshot count, last drill.
// `listings`, when given, receives each repository's snapshots as listed for it (report reuses them).
using SnapshotListings = std::map<std::string, std::vector<repo::SnapshotRef>>;
Result<nlohmann::json> plan_status(RepositorySet& repos, SnapshotListings* listings = nullptr);
// Adds what the daemon's run history (STATE_DIR/state.json) says to plan_status' sources: a source
// whose last scheduled backup failed gets that as a problem (health "stale" when it had none worse).
// A missing or unreadable history adds nothing.
void add_run_history(nlohmann::json& status, const std::string& state_dir);

}  // namespace lifeboat::ops
