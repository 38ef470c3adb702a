// lifeboat daemon: runs the plan's schedules (cron, UTC), never two runs of one source at once,
// catches up runs missed while it was down, retries failures with backoff, keeps MongoDB followers
// running, sends notifications and the daily report, and serves /metrics and a status page on
// loopback. SIGTERM stops it without half-committed snapshots.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "ops/repository_set.h"
#include "plan/plan.h"

namespace lifeboat::ops {

struct DaemonOptions {
  std::string state_dir;          // state.json: last run and last success per source (for catch-up)
  std::string listen;             // "127.0.0.1:9464"; empty: no HTTP
  int max_retries = 3;
  int64_t retry_base_ns = 30LL * 1000000000;
  std::function<bool()> should_stop;  // besides SIGINT/SIGTERM
  std::function<void(const std::string&)> log;
  std::function<int64_t()> now_ns;  // the clock (default: the system's); tests inject one
  // The DR region's daemon: keep only these standby environments current (no backups, followers,
  // copies, drills or reports: those run in the production region's daemon).
  std::vector<std::string> standby_only;
  // The production region's daemon when a DR region's daemon keeps the standbys: none kept here (two
  // daemons writing into one standby would fight over it).
  bool no_standby = false;
};

Status run_daemon(const plan::Plan& plan, const DaemonOptions& options);

// The daily report (last 24 h) to every notifier that wants `report`; failures go to `log`.
// `state_dir`: the daemon's, for the standby's lag (none: left out).
void send_report(RepositorySet& repos, const std::function<void(const std::string&)>& log, const std::string& state_dir = "");

}  // namespace lifeboat::ops
