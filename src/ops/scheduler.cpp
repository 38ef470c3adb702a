// Scheduler: cron, catch-up, retries.
#include "ops/scheduler.h"

#include <climits>

#include "core/time.h"

namespace lifeboat::ops {

namespace {
}  // namespace

Result<int64_t> Scheduler::add(const std::string& job, const std::vector<std::string>& crons, int64_t now_ns,
                               int64_t last_run_ns, bool retries) {
  for (const auto& text : crons) {
    if (text.empty()) continue;
    auto c = CronSchedule::parse(text);
    if (!c) return c.status();
    crons_[job].push_back(*c);
  }
  if (!crons_.count(job)) return int64_t{0};
  retries_[job] = retries;
  auto& st = state_[job];
  if (last_run_ns) st.last_run_ns = last_run_ns;
  int64_t due = st.last_run_ns ? next_run(job, st.last_run_ns) : 0;
  bool missed = due && due <= now_ns;
  st.next_ns = missed ? now_ns : next_run(job, now_ns);
  return missed ? due : int64_t{0};
}

void Scheduler::restore_state(const std::string& job, int64_t last_run_ns, int64_t last_ok_ns) {
  auto& st = state_[job];
  st.last_run_ns = last_run_ns;
  st.last_ok_ns = last_ok_ns;
}

std::vector<std::string> Scheduler::take_due(int64_t now_ns) {
  std::vector<std::string> out;
  for (auto& [job, st] : state_) {
    if (!crons_.count(job) || st.running || st.next_ns > now_ns) continue;
    st.running = true;
    out.push_back(job);
  }
  return out;
}

void Scheduler::finished(const std::string& job, bool ok, const std::string& error, int64_t now_ns, bool stopping) {
  auto& st = state_[job];
  st.running = false;
  st.last_run_ns = now_ns;
  if (ok) {
    st.last_ok_ns = now_ns;
    st.failures = 0;
    st.last_error.clear();
    st.next_ns = next_run(job, now_ns);
    return;
  }
  st.last_error = error;
  ++st.failures;
  if (stopping) {
    st.next_ns = now_ns;
  } else if (retries_[job] && st.failures <= max_retries_) {
    st.next_ns = now_ns + (retry_base_ns_ << (st.failures - 1));
  } else {
    st.failures = 0;
    st.next_ns = next_run(job, now_ns);
  }
}

int64_t Scheduler::next_run(const std::string& job, int64_t after_ns) const {
  int64_t best = -1;
  auto it = crons_.find(job);
  if (it == crons_.end()) return INT64_MAX;
  for (const auto& c : it->second) {
    int64_t t = c.next_after(after_ns / kNsPerSecond);
    if (t >= 0 && (best < 0 || t < best)) best = t;
  }
  return best < 0 ? INT64_MAX : best * kNsPerSecond;
}

}  // namespace lifeboat::ops
