// Plan maintenance (repositories.<name>.maintenance: prune and check on a schedule): one run, as the
// daemon and the emitted units run it, and its record in the repository it maintained.
#pragma once

#include <map>
#include <string>

#include <nlohmann/json.hpp>

#include "ops/repository_set.h"

namespace lifeboat::ops {

// Runs `kind` ("prune" or "check") on the plan's repository now. A check with read_data_subset 1/T
// reads the T-th of the packs that day's number selects (all of them every T days). The run is
// recorded in that repository as a record snapshot (source "maintenance", tag the kind; the older
// record of that kind is forgotten), whether it succeeded or not; the returned JSON is the record.
// A check that found damage is an error (kCorrupt) naming the first problem.
Result<nlohmann::json> run_maintenance(RepositorySet& repos, const std::string& repository, const std::string& kind,
                                       int64_t now_ns);

// The newest recorded run of each kind ("prune", "check") in a repository's listing.
std::map<std::string, nlohmann::json> last_maintenance(const std::vector<repo::SnapshotRef>& all);

// Per listed repository: its maintenance schedules, the last run of each kind (time, ok, error) and
// the problems `status` counts (a last check that found damage, a failed last prune).
// One repository's maintenance_status entry in words: "prune never (cron …); check TIME ok (reads 1/T
// of the data a day)", as status and the report print it.
std::string maintenance_summary(const nlohmann::json& repository);

nlohmann::json maintenance_status(const plan::Plan& plan, const std::map<std::string, std::vector<repo::SnapshotRef>>& listings);

}  // namespace lifeboat::ops
