// When each job of the daemon is due: cron schedules (UTC), catch-up of a run missed while the
// daemon was down, one run of a job at a time, retries with doubling delays. It never reads a clock:
// every call is given "now", so tests drive it through days in microseconds.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/cron.h"
#include "core/status.h"

namespace lifeboat::ops {

struct JobState {
  int64_t last_run_ns = 0, last_ok_ns = 0, next_ns = 0;
  int failures = 0;  // consecutive
  bool running = false;
  std::string last_error;
};

class Scheduler {
 public:
  Scheduler(int max_retries, int64_t retry_base_ns) : max_retries_(max_retries), retry_base_ns_(retry_base_ns) {}

  // A job with one or more cron schedules. `last_run_ns` (from the state file) makes a run that fell
  // due between it and `now_ns` due at once; returns that missed instant (0 when none).
  Result<int64_t> add(const std::string& job, const std::vector<std::string>& crons, int64_t now_ns, int64_t last_run_ns = 0,
                      bool retries = true);
  // Jobs due at `now_ns` that are not running; each is marked running.
  std::vector<std::string> take_due(int64_t now_ns);
  // A run ended: the next one is scheduled (a retry after a failure, while retries remain). A run
  // cut short by the daemon's stop is due again at the next start.
  void finished(const std::string& job, bool ok, const std::string& error, int64_t now_ns, bool stopping = false);

  const std::map<std::string, JobState>& jobs() const { return state_; }
  void restore_state(const std::string& job, int64_t last_run_ns, int64_t last_ok_ns);

 private:
  int64_t next_run(const std::string& job, int64_t after_ns) const;
  int max_retries_;
  int64_t retry_base_ns_;
  std::map<std::string, std::vector<CronSchedule>> crons_;
  std::map<std::string, bool> retries_;
  std::map<std::string, JobState> state_;
};

}  // namespace lifeboat::ops
