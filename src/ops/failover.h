// Warm standby and failover (plan §7.3). A standby environment (environments.NAME.standby) is kept
// current by the daemon from the copy repository: each source's newest point is restored into it as
// it lands, writing only what changed (the kind's resume marker). `failover` then catches every source
// up to the newest point the surviving repository holds (or one instant), checks the standby, runs
// the plan's failover.steps in order, and records it all in the drill record's form. State lives in
// the daemon's state directory: standby.json (what each standby holds) and failover-ENV.json (how far
// a failover got, for --resume). A lock file per environment keeps the daemon's refreshes and a
// failover from writing into the same standby at once.
#pragma once

#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "ops/drill.h"
#include "ops/repository_set.h"
#include "plan/plan.h"

namespace lifeboat::ops {

// What one source of a standby holds.
struct StandbySource {
  int64_t point_ns = 0;      // the source's state as of this instant
  int64_t refreshed_ns = 0;  // when it was last brought up to date (or found up to date)
  std::string snapshot, repository, error;
  nlohmann::json resume;     // the kind's marker for the next restore into it
};
using StandbyEnvironment = std::map<std::string, StandbySource>;

// STATE_DIR/standby.json: environment -> source -> what it holds. Missing: empty.
std::map<std::string, StandbyEnvironment> load_standby(const std::string& state_dir);
Status save_standby_source(const std::string& state_dir, const std::string& environment, const std::string& source,
                           const StandbySource& held);

// The sources that take part in an environment: those with settings for it (environments.ENV).
std::vector<const plan::SourceSpec*> environment_sources(const plan::Plan& plan, const std::string& environment);

// The repository a standby is kept from: the first copy of the source's repository (a second
// region), or the repository itself when it has none.
std::string standby_repository(const plan::Plan& plan, const plan::SourceSpec& s);

// An exclusive claim on writing into an environment (its standby refreshes, a failover); released
// when destroyed. try_claim returns nullopt when another process holds it.
class EnvironmentClaim {
 public:
  static Result<EnvironmentClaim> claim(const std::string& state_dir, const std::string& environment, bool wait);
  EnvironmentClaim(EnvironmentClaim&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  EnvironmentClaim& operator=(EnvironmentClaim&&) = delete;
  ~EnvironmentClaim();

 private:
  explicit EnvironmentClaim(int fd) : fd_(fd) {}
  int fd_;
};

// Brings one source of a standby up to the newest point its repository holds, writing only what
// changed since the last refresh; runs no check. `held` is updated. Returns what it did:
// {"refreshed": bool, "point", "lag_ms", …}.
Result<nlohmann::json> refresh_standby_source(RepositorySet& repos, const std::string& environment, const plan::SourceSpec& s,
                                              StandbySource& held, const std::string& state_dir);

// The failover's progress (STATE_DIR/failover-ENV.json): which sources are caught up, which steps ran.
struct FailoverOptions {
  std::string environment, state_dir;
  std::optional<int64_t> at_ns;  // one instant across systems (default: each source's newest point)
  bool dry_run = false;          // say every action, change nothing
  bool resume = false;           // continue a failover that stopped
  bool rehearsal = false;        // drill --failover: only steps with rehearse: true; the standby is not promoted
  std::function<void(const std::string&)> say;  // progress for a person (stderr)
};

// How far the last failover into `environment` got: its progress file (STATE_DIR/failover-ENV.json),
// {} when there is none. A file that exists but does not parse is an error naming it: whether the
// environment was promoted is unknown, so nothing may write into it.
Result<nlohmann::json> failover_progress(const std::string& state_dir, const std::string& environment);

// The record is a DrillRecord with kind "failover" (or a rehearsal's "drill") and its steps; `passed`
// when every source was caught up and checked and every step succeeded (and, for a rehearsal, the RTO
// objective was met). A failure stops the failover and the record says what was promoted and what not.
Result<DrillRecord> run_failover(RepositorySet& repos, const FailoverOptions& options);

// Each line of what a failover would do (dry run), in order.
Result<std::vector<std::string>> failover_actions(RepositorySet& repos, const FailoverOptions& options);

// The standby's lag per source for status and /metrics: {"environment", "source", "point", "lag_ms",
// "max_lag_ms", "behind": bool, "error"}; empty when the plan has no standby.
nlohmann::json standby_status(const plan::Plan& plan, const std::string& state_dir, int64_t now_ns);

// Adds the standby's lag (standby_status) to a report: "standby", and a warning for each source
// behind its bound. Nothing when the plan has no standby.
void add_standby_to_report(nlohmann::json& report, const plan::Plan& plan, const std::string& state_dir);

}  // namespace lifeboat::ops
