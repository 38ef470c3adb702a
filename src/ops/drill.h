// Drills (plan §4): every source restored into a non-production environment, validated against the
// restored target, RTO measured per source and in total, RPO from each source's newest restorable
// point, compared with the objectives. The record is typed and shared by `drill`, `status` and `report`.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "ops/repository_set.h"
#include "plan/plan.h"
#include "sources/source_kind.h"

namespace lifeboat::ops {

struct DrillSourceResult {
  std::string source, kind;
  bool ok = false;
  std::string error;
  int64_t rto_ms = 0;
  std::optional<int64_t> rpo_ms;  // none: no restorable point
  std::string point, snapshot, limit;
  std::vector<sources::CheckResult> checks;
  nlohmann::json details = nlohmann::json::object();
};

// An objective the drill missed: "rpo" or "rto" of one source, "rto" of the whole drill (source ""),
// or "validation" (a source restored with no check to prove it, not in drills.allow_unvalidated).
struct MissedObjective {
  std::string source, objective;
  int64_t measured_ms = 0, objective_ms = 0;  // both 0 for "validation"
  std::string to_string() const;
};

// A failover step as it ran: timing relative to the failover's start, and how it ended.
struct StepResult {
  std::string name, command;
  bool ok = false, rehearsed = false;
  int64_t started_ms = 0, duration_ms = 0;
  std::string outcome, output;  // "exited 0", "ran past its 10s limit …"; the tail of what it printed
};

// passed = every restore and check succeeded (checks_passed) and no objective was missed. `drill`
// exits 1 when a restore or check failed, 4 when only objectives were missed (docs/cli.md).
struct DrillRecord {
  std::string plan, environment, host, snapshot;
  int64_t started_ns = 0;
  int64_t rpo_objective_ms = 0, rto_objective_ms = 0;
  std::vector<DrillSourceResult> sources;
  int64_t total_rto_ms = 0, worst_rpo_ms = 0;
  bool passed = false, checks_passed = false, rpo_met = false, rto_met = false;
  std::vector<MissedObjective> missed;
  std::vector<std::string> deviations, failures;
  // "drill" or "failover"; a failover (and `drill --failover`) adds its steps, the RTO along the
  // critical path of the sources' after: order plus the steps, and what the failover promoted.
  std::string kind = "drill";
  bool rehearsal = false;
  std::vector<StepResult> steps;
  int64_t critical_path_ms = 0;
  std::string promoted;

  nlohmann::json to_json() const;
  // nullopt for a record this version cannot read (damaged or foreign metadata).
  static std::optional<DrillRecord> from_json(const nlohmann::json& j);
};

// Runs a drill; `after_restore` (plan drills.after_restore) runs after each restore, before checks.
Result<DrillRecord> run_drill(RepositorySet& repos, const std::vector<const plan::SourceSpec*>& sources,
                              const std::string& environment, bool allow_production);

struct RestoreRun;
// One source's line of a record, from its restore (and checks).
DrillSourceResult drill_result_of(const plan::SourceSpec& s, const RestoreRun& run);

// Stores the record as a `drill` snapshot (tagged with its kind) in `repository`, or its copy when
// that is lost; sets d.snapshot.
Status store_drill_record(RepositorySet& repos, const std::string& repository, const std::vector<const plan::SourceSpec*>& list,
                          DrillRecord& d);

// Markdown drill record (plan §6.2): steps, timings, deviations, failures.
std::string drill_markdown(const DrillRecord& drill);

// Drill records stored in `all`, oldest first.
std::vector<std::pair<repo::SnapshotRef, DrillRecord>> stored_drills(const std::vector<repo::SnapshotRef>& all);
// When `source` was last drilled (time, passed), from the drill records in `all`.
std::optional<std::pair<int64_t, bool>> last_drill_of(const std::vector<repo::SnapshotRef>& all, const std::string& source);
// When the next drill is due under `cron` after the last one (now-or-past when never drilled).
std::optional<int64_t> drill_due_ns(const std::string& cron, std::optional<int64_t> last_ns);

}  // namespace lifeboat::ops
