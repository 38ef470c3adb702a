// The daemon: a scheduler loop, a bounded pool for runs, followers, and the HTTP endpoints.
#include "ops/daemon.h"

#include <fmt/format.h>
#include <httplib.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "core/atomic_file.h"
#include "core/interrupt.h"
#include "core/names.h"
#include "core/time.h"
#include "core/worker_pool.h"
#include "ops/drill.h"
#include "ops/failover.h"
#include "ops/maintenance.h"
#include "ops/notify.h"
#include "ops/plan_ops.h"
#include "ops/report.h"
#include "ops/scheduler.h"

namespace lifeboat::ops {

namespace {

constexpr const char* kBackup = "backup:";
constexpr const char* kDrill = "drill:";   // a source's own drill cadence
constexpr const char* kPlanDrill = "drill";
constexpr const char* kReport = "report";
constexpr const char* kMaintenance = "maintenance:";  // maintenance:KIND:REPOSITORY

class Daemon {
 public:
  Daemon(const plan::Plan& p, const DaemonOptions& o)
      : plan_(p), o_(o), repos_(p), scheduler_(o.max_retries, o.retry_base_ns) {}

  Status run() {
    std::error_code ec;
    std::filesystem::create_directories(o_.state_dir, ec);
    if (ec) return Error(Code::kIo, fmt::format("cannot create state directory {}: {}", o_.state_dir, ec.message()));
    if (!o_.standby_only.empty()) return run_standby_only();
    auto last_runs = load_state();
    int64_t now = clock();
    size_t scheduled = 0;
    for (const auto& s : plan_.sources) {
      // Incrementals (files: another backup; MongoDB without a follower: another full). A continuous
      // source already has a follower for them.
      std::vector<std::string> crons = {s.schedule.full};
      if (!s.schedule.continuous) crons.push_back(s.schedule.incremental);
      if (s.schedule.full.empty()) crons.clear();
      std::string job = kBackup + s.name;
      if (last_runs.count(s.name)) scheduler_.restore_state(job, last_runs[s.name].first, last_runs[s.name].second);
      LB_ASSIGN_OR_RETURN(int64_t missed, scheduler_.add(job, crons, now, 0));
      if (!crons.empty()) ++scheduled;
      if (missed) log(fmt::format("{}: missed the run due {}; running it now", s.name, format_rfc3339(missed)));
      if (!s.drill_schedule.empty()) LB_RETURN_IF_ERROR(scheduler_.add(kDrill + s.name, {s.drill_schedule}, now, 0, false).status());
    }
    if (!plan_.report_schedule.empty()) LB_RETURN_IF_ERROR(scheduler_.add(kReport, {plan_.report_schedule}, now, 0, false).status());
    if (!plan_.drills.schedule.empty()) LB_RETURN_IF_ERROR(scheduler_.add(kPlanDrill, {plan_.drills.schedule}, now, 0, false).status());
    for (const auto& r : plan_.repositories) {
      if (!r.prune_schedule.empty())
        LB_RETURN_IF_ERROR(scheduler_.add(std::string(kMaintenance) + "prune:" + r.name, {r.prune_schedule}, now, 0, false).status());
      if (!r.check_schedule.empty())
        LB_RETURN_IF_ERROR(scheduler_.add(std::string(kMaintenance) + "check:" + r.name, {r.check_schedule}, now, 0, false).status());
    }
    std::unique_ptr<httplib::Server> http;
    std::thread http_thread;
    if (!o_.listen.empty()) LB_RETURN_IF_ERROR(start_http(http, http_thread));
    for (const auto& s : plan_.sources)
      if (s.schedule.continuous && s.entry && s.entry->follow) followers_.emplace_back([this, &s] { follow(s); });
    size_t followers = followers_.size(), standbys = 0;
    for (const auto& e : plan_.environments)
      if (e.standby && !o_.no_standby) {
        followers_.emplace_back([this, &e] { keep_standby(e); });
        ++standbys;
      }
    for (const auto& r : plan_.repositories)
      if (r.copy_every_ns > 0) followers_.emplace_back([this, &r] { keep_copy(r); });
    repos_.notice = [this](const std::string& m) { log(m); };
    log(fmt::format("daemon started: {} scheduled source(s), {} follower(s), {} standby environment(s){}", scheduled, followers,
                    standbys, o_.listen.empty() ? "" : ", http on " + o_.listen));
    {
      // Runs share one bounded pool; each job is never queued twice (the scheduler marks it running).
      WorkerPool pool(2, plan_.sources.size() * 2 + 4);
      while (!stopping()) {
        std::vector<std::string> due;
        {
          std::lock_guard lk(mu_);
          due = scheduler_.take_due(clock());
        }
        for (const auto& job : due) pool.submit([this, job] { run_job(job); });
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
      }
      log("stopping: waiting for running backups and followers to finish or stop cleanly");
      pool.wait_idle();
    }
    for (auto& t : followers_) t.join();
    if (http) http->stop();
    if (http_thread.joinable()) http_thread.join();
    save_state();
    log("daemon stopped");
    return Status::ok();
  }

 private:
  // The DR region's daemon: the named standby environments only, and /metrics for their lag.
  Status run_standby_only() {
    std::vector<const plan::EnvironmentSpec*> envs;
    for (const auto& name : o_.standby_only) {
      const auto* e = plan_.environment(name);
      if (!e || !e->standby)
        return Error(Code::kInvalidArgument, fmt::format("environment {} is not a standby in the plan (environments.{}.standby: true)", name, name));
      envs.push_back(e);
    }
    std::unique_ptr<httplib::Server> http;
    std::thread http_thread;
    if (!o_.listen.empty()) LB_RETURN_IF_ERROR(start_http(http, http_thread));
    repos_.notice = [this](const std::string& m) { log(m); };
    for (const auto* e : envs) followers_.emplace_back([this, e] { keep_standby(*e); });
    log(fmt::format("daemon started (standby only): {}", fmt::join(o_.standby_only, ", ")));
    while (!stopping()) std::this_thread::sleep_for(std::chrono::milliseconds(200));
    for (auto& t : followers_) t.join();
    if (http) http->stop();
    if (http_thread.joinable()) http_thread.join();
    log("daemon stopped");
    return Status::ok();
  }

  bool stopping() const { return interrupted() || (o_.should_stop && o_.should_stop()); }
  int64_t clock() const { return o_.now_ns ? o_.now_ns() : now_unix_ns(); }

  void log(const std::string& m) {
    if (o_.log) o_.log(redact_urls_in(m));
  }

  // The exception barrier: whatever a run does, the daemon goes on and the job is rescheduled.
  void run_job(const std::string& job) {
    bool ok = false;
    std::string error;
    try {
      Status s = dispatch(job);
      ok = s.is_ok();
      error = s.message();
    } catch (const std::exception& e) {
      error = fmt::format("internal error: {}", e.what());
      log(fmt::format("{}: {}", job, error));
    }
    std::lock_guard lk(mu_);
    scheduler_.finished(job, ok, error, clock(), stopping());
    if (job.rfind(kBackup, 0) == 0) save_state_locked();
  }

  Status dispatch(const std::string& job) {
    if (job == kReport) {
      send_report(repos_, o_.log, o_.state_dir);
      return Status::ok();
    }
    if (job == kPlanDrill) {
      auto list = select_sources(plan_, plan_.drills.sources);
      if (!list) return list.status();
      return run_scheduled_drill(*list);
    }
    if (job.rfind(kMaintenance, 0) == 0) {
      std::string rest = job.substr(std::string(kMaintenance).size());
      std::string kind = rest.substr(0, rest.find(':')), repository = rest.substr(rest.find(':') + 1);
      auto r = run_maintenance(repos_, repository, kind, clock());
      log(fmt::format("{} of repository {}: {}", kind, repository, r ? "ok" : "FAILED: " + r.status().message()));
      if (!(stopping() && !r)) {
        Event e{"maintenance", r.is_ok(), fmt::format("{} of repository {} {}", kind, repository, r ? "succeeded" : "failed"),
                r ? r->dump() : r.status().message(), r ? *r : nlohmann::json::object()};
        for (const auto& f : notify(plan_, e)) log(f);
      }
      return r.status();
    }
    if (job.rfind(kDrill, 0) == 0) {
      const auto* s = plan_.source(job.substr(std::string(kDrill).size()));
      if (!s) return Error(Code::kNotFound, "no source for " + job);
      return run_scheduled_drill({s});
    }
    const auto* s = plan_.source(job.substr(std::string(kBackup).size()));
    if (!s) return Error(Code::kNotFound, "no source for " + job);
    return run_backup(*s);
  }

  Status run_backup(const plan::SourceSpec& s) {
    auto outcomes = run_backups(repos_, {&s});
    const auto& o = outcomes[0];
    log(fmt::format("{}: backup {} in {}{}", s.name, o.ok ? "ok" : "FAILED", format_duration_ms(o.duration_ms),
                    o.ok ? "" : ": " + o.error));
    if (!(stopping() && !o.ok)) {
      Event e{"backup", o.ok, fmt::format("{} backup {}", s.name, o.ok ? "succeeded" : "failed"),
              o.ok ? fmt::format("snapshot {} in {}", o.result.value("snapshot", ""), format_duration_ms(o.duration_ms)) : o.error,
              o.to_json()};
      e.source = s.name;
      e.source_kind = s.kind;
      for (const auto& f : notify(plan_, e)) log(f);
    }
    return o.ok ? Status::ok() : Error(Code::kFatal, o.error);
  }

  void follow(const plan::SourceSpec& s) {
    int64_t backoff = 1;
    while (!stopping()) {
      Status st;
      auto repo = repos_.separate_handle(s.repository);
      auto interval = parse_duration(s.schedule.interval);
      if (!repo) {
        st = repo.status();
      } else {
        sources::FollowHooks hooks;
        hooks.should_stop = [this] { return stopping(); };
        // Each committed slice goes to the copies at once: the RPO reachable from the second region
        // is about one follow interval, not the next backup.
        hooks.on_commit = [this, &s] {
          if (plan_.copies_of(s.repository).empty()) return;
          int64_t start = monotonic_ns();
          auto c = refresh_copies(repos_, s);
          int64_t ms = (monotonic_ns() - start) / kNsPerMs;
          if (!c) log(fmt::format("{}: copying the new oplog slice failed: {}", s.name, c.status().message()));
          else if (ms > 2000) log(fmt::format("{}: copying the new oplog slice took {} (the copy's RPO grows by as much)", s.name, format_duration_ms(ms)));
        };
        hooks.on_warning = [this, &s](const std::string& w) {
          log(s.name + ": " + w);
          if (w.rfind("OPLOG GAP", 0) == 0) {
            Event e{"backup", false, s.name + ": oplog gap", w};
            e.source = s.name;
            e.source_kind = s.kind;
            for (const auto& f : notify(plan_, e)) log(f);
          }
        };
        try {
          st = s.entry->follow(**repo, s.name, *s.parsed, interval ? *interval : 60 * kNsPerSecond, hooks);
        } catch (const std::exception& e) {
          st = Error(Code::kFatal, fmt::format("internal error: {}", e.what()));
        }
      }
      if (stopping()) break;
      log(fmt::format("{}: follower stopped ({}); restarting in {} s", s.name, st.message(), backoff));
      for (int64_t i = 0; i < backoff * 5 && !stopping(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(200));
      backoff = std::min<int64_t>(backoff * 2, 60);
    }
  }

  // Sleeps up to `ns`, waking early when the daemon stops.
  void pause(int64_t ns) {
    for (int64_t waited = 0; waited < ns && !stopping(); waited += 100 * kNsPerMs) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }

  // A repository's copy refreshed every copy_every, besides after backups and slices.
  void keep_copy(const plan::RepositorySpec& r) {
    std::map<std::string, std::string> said;  // the last failure said per source: said once, and when it clears
    while (!stopping()) {
      pause(r.copy_every_ns);
      if (stopping()) break;
      for (const auto& s : plan_.sources) {
        if (s.repository != r.copy_of) continue;
        auto c = refresh_copies(repos_, s);
        std::string now = c ? "" : c.status().message();
        if (now != said[s.name])
          log(now.empty() ? fmt::format("{}: copy to {} works again", s.name, r.name)
                          : fmt::format("{}: copy to {} failed: {}", s.name, r.name, now));
        said[s.name] = now;
      }
    }
  }

  // A warm standby: every source with settings for the environment restored into it as its copy
  // gains a newer point, writing only what changed. A failover holds the environment while it runs;
  // once it promoted the environment, the standby is never written again.
  void keep_standby(const plan::EnvironmentSpec& env) {
    auto list = environment_sources(plan_, env.name);
    int64_t poll = 2 * kNsPerSecond;
    for (const auto* s : list)
      if (s->schedule.continuous)
        if (auto d = parse_duration(s->schedule.interval)) poll = std::min(poll, std::max<int64_t>(*d / 2, 200 * kNsPerMs));
    int64_t bound = env.max_lag_ns ? env.max_lag_ns : plan_.rpo_ns;
    std::set<std::string> behind, failing;
    bool said_promoted = false;
    log(fmt::format("standby {}: keeping {} source(s) current", env.name, list.size()));
    while (!stopping()) {
      auto claim = EnvironmentClaim::claim(o_.state_dir, env.name, false);
      if (claim) {
        auto p = failover_progress(o_.state_dir, env.name);
        std::string state = p ? p->value("state", "") : "";
        if (!p || state == "promoted" || state == "running") {
          // An unreadable progress file may record a promotion: nothing is written into the environment.
          if (!said_promoted)
            log(!p ? fmt::format("standby {}: not refreshed: {}", env.name, p.status().message())
                   : fmt::format("standby {}: a failover {} it; it is no longer refreshed", env.name,
                                 state == "promoted" ? "promoted" : "is promoting"));
          said_promoted = true;
          pause(poll);
          continue;
        }
        auto held = load_standby(o_.state_dir)[env.name];
        for (const auto* s : list) {
          if (stopping()) break;
          auto& h = held[s->name];
          Result<nlohmann::json> r = Error(Code::kFatal, "not run");
          try {
            r = refresh_standby_source(repos_, env.name, *s, h, o_.state_dir);
          } catch (const std::exception& e) {
            r = Error(Code::kFatal, fmt::format("internal error: {}", e.what()));
          }
          if (!r) {
            if (failing.insert(s->name).second) {
              log(fmt::format("standby {}: {} FAILED: {}", env.name, s->name, r.status().message()));
              Event e{"standby", false, fmt::format("{}: standby {} refresh failed", s->name, env.name), r.status().message()};
              e.source = s->name;
              e.source_kind = s->kind;
              for (const auto& f : notify(plan_, e)) log(f);
            }
            continue;
          }
          failing.erase(s->name);
          if (r->value("refreshed", false))
            log(fmt::format("standby {}: {} at {} (lag {})", env.name, s->name, r->value("point", ""),
                            format_duration_ms(r->value("lag_ms", int64_t{0}))));
        }
      }
      // A standby behind its bound notifies once, and again after it caught up and fell behind anew.
      for (const auto& j : standby_status(plan_, o_.state_dir, clock())) {
        if (j.value("environment", "") != env.name) continue;
        std::string name = j.value("source", "");
        bool late = j.value("lag_ms", int64_t{0}) * kNsPerMs > bound;
        if (late && behind.insert(name).second) {
          std::string what = fmt::format("standby {} of {} is {} behind (bound {})", env.name, name,
                                         format_duration_ms(j.value("lag_ms", int64_t{0})), format_duration_ms(bound / kNsPerMs));
          log(what);
          Event e{"standby", false, fmt::format("{}: standby {} behind", name, env.name), what, j};
          e.source = name;
          for (const auto& f : notify(plan_, e)) log(f);
        } else if (!late) {
          behind.erase(name);
        }
      }
      pause(poll);
    }
  }

  // Plan §4 drills, run by the daemon: the whole plan's, or one source's own cadence. Operations
  // hear about the drill; each source's own notifiers hear about its failed validations.
  Status run_scheduled_drill(const std::vector<const plan::SourceSpec*>& list) {
    const std::string& env = plan_.drills.environment;
    auto d = run_drill(repos_, list, env, false);
    bool ok = d && d->passed;
    log(fmt::format("scheduled drill into {}: {}", env, !d ? d.status().message() : ok ? "passed" : "FAILED"));
    Event e{"drill", ok, fmt::format("drill into {} {}", env, ok ? "passed" : "failed"),
            d ? drill_markdown(*d) : d.status().message(), d ? d->to_json() : nlohmann::json::object()};
    for (const auto& f : notify(plan_, e)) log(f);
    if (d)
      for (const auto& s : d->sources) {
        if (s.ok) continue;
        const auto* spec = plan_.source(s.source);
        Event v{"drill", false, fmt::format("{}: validation in the drill into {} failed", s.source, env),
                s.error.empty() ? "a check failed" : s.error, d->to_json()};
        v.source = s.source;
        v.source_kind = spec ? spec->kind : "";
        for (const auto& f : notify(plan_, v)) log(f);
      }
    if (!d) return d.status();
    return ok ? Status::ok() : Error(Code::kFatal, "the drill failed");
  }

  Status start_http(std::unique_ptr<httplib::Server>& server, std::thread& thread) {
    auto colon = o_.listen.rfind(':');
    if (colon == std::string::npos) return Error(Code::kInvalidArgument, "--listen expects HOST:PORT (e.g. 127.0.0.1:9464)");
    std::string host = o_.listen.substr(0, colon);
    int port = std::atoi(o_.listen.c_str() + colon + 1);
    server = std::make_unique<httplib::Server>();
    server->Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
      auto r = build_report(repos_, clock() - 86400 * kNsPerSecond);
      if (!r) {
        res.status = 500;
        res.set_content(r.status().message(), "text/plain");
        return;
      }
      std::string m = report_metrics(*r);
      auto standby = standby_status(plan_, o_.state_dir, clock());
      if (!standby.empty()) {
        m += "# HELP lifeboat_standby_lag_seconds How far each standby source trails the source (now minus the point it holds).\n"
             "# TYPE lifeboat_standby_lag_seconds gauge\n";
        for (const auto& j : standby)
          if (j.contains("lag_ms"))
            m += fmt::format("lifeboat_standby_lag_seconds{{environment=\"{}\",source=\"{}\"}} {:.3f}\n", j.value("environment", ""),
                             j.value("source", ""), j.value("lag_ms", int64_t{0}) / 1000.0);
        m += "# HELP lifeboat_standby_behind 1 when a standby source is past its lag bound or failing.\n# TYPE lifeboat_standby_behind gauge\n";
        for (const auto& j : standby)
          m += fmt::format("lifeboat_standby_behind{{environment=\"{}\",source=\"{}\"}} {}\n", j.value("environment", ""),
                           j.value("source", ""), j.value("behind", false) ? 1 : 0);
      }
      m += "# HELP lifeboat_daemon_source_failures Consecutive failed runs per source.\n# TYPE lifeboat_daemon_source_failures gauge\n";
      std::lock_guard lk(mu_);
      for (const auto& [job, st] : scheduler_.jobs())
        if (job.rfind(kBackup, 0) == 0)
          m += fmt::format("lifeboat_daemon_source_failures{{source=\"{}\"}} {}\n", job.substr(std::string(kBackup).size()), st.failures);
      res.set_content(m, "text/plain; version=0.0.4");
    });
    server->Get("/healthz", [](const httplib::Request&, httplib::Response& res) { res.set_content("ok\n", "text/plain"); });
    server->Get("/", [this](const httplib::Request&, httplib::Response& res) {
      auto r = build_report(repos_, clock() - 86400 * kNsPerSecond);
      if (r) add_standby_to_report(*r, plan_, o_.state_dir);
      std::string html = r ? report_html(*r) : "<p>" + r.status().message() + "</p>";
      std::string sched = "<h2>Schedule</h2><table><tr><th>Job</th><th>Next run</th><th>Running</th><th>Last error</th></tr>";
      {
        std::lock_guard lk(mu_);
        for (const auto& [job, st] : scheduler_.jobs())
          sched += fmt::format("<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>", job,
                               st.next_ns && st.next_ns != INT64_MAX ? format_rfc3339(st.next_ns) : "—", st.running ? "yes" : "no",
                               st.last_error);
      }
      sched += "</table>";
      auto pos = html.find("<h2>Storage</h2>");
      if (pos != std::string::npos) html.insert(pos, sched);
      auto style = html.find("<style>");
      if (style != std::string::npos) html.insert(style, "<meta http-equiv=\"refresh\" content=\"30\">");
      res.set_content(html, "text/html; charset=utf-8");
    });
    if (!server->bind_to_port(host.c_str(), port))
      return Error(Code::kIo, fmt::format("cannot listen on {} (in use?)", o_.listen));
    thread = std::thread([&server] { server->listen_after_bind(); });
    return Status::ok();
  }

  // state.json: {"sources": {NAME: {last_run_ns, last_ok_ns, failures, last_error}}}
  std::map<std::string, std::pair<int64_t, int64_t>> load_state() {
    std::map<std::string, std::pair<int64_t, int64_t>> out;
    std::ifstream in(o_.state_dir + "/state.json");
    if (!in) return out;
    auto j = nlohmann::json::parse(in, nullptr, false);
    if (j.is_discarded() || !j.contains("sources") || !j["sources"].is_object()) {
      log("state.json is unreadable: starting without run history (no catch-up)");
      return out;
    }
    for (const auto& [name, value] : j["sources"].items()) {
      const auto& v = value;  // clang before 16 cannot capture a structured binding
      if (!v.is_object()) continue;
      auto num = [&](const char* k) { return v.contains(k) && v[k].is_number_integer() ? v[k].get<int64_t>() : int64_t{0}; };
      out[name] = {num("last_run_ns"), num("last_ok_ns")};
    }
    return out;
  }

  void save_state() {
    std::lock_guard lk(mu_);
    save_state_locked();
  }

  void save_state_locked() {
    nlohmann::json j = {{"sources", nlohmann::json::object()}};
    for (const auto& [job, st] : scheduler_.jobs())
      if (job.rfind(kBackup, 0) == 0)
        j["sources"][job.substr(std::string(kBackup).size())] = {
            {"last_run_ns", st.last_run_ns}, {"last_ok_ns", st.last_ok_ns}, {"failures", st.failures}, {"last_error", st.last_error}};
    Status s = write_file_atomic(o_.state_dir + "/state.json", j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace));
    if (!s) log("cannot save the run history: " + s.message());
  }

  const plan::Plan& plan_;
  DaemonOptions o_;
  RepositorySet repos_;
  std::mutex mu_;  // guards scheduler_
  Scheduler scheduler_;
  std::vector<std::thread> followers_;
};

}  // namespace

void send_report(RepositorySet& repos, const std::function<void(const std::string&)>& log, const std::string& state_dir) {
  auto r = build_report(repos, now_unix_ns() - 86400 * kNsPerSecond);
  if (!r) {
    if (log) log("report: " + r.status().message());
    return;
  }
  if (!state_dir.empty()) add_standby_to_report(*r, repos.plan(), state_dir);
  bool ok = r->value("warnings", nlohmann::json::array()).empty();
  for (const auto& f : notify(repos.plan(), Event{"report", ok, "daily report", report_text(*r), *r}))
    if (log) log(f);
}

Status run_daemon(const plan::Plan& plan, const DaemonOptions& options) {
  Daemon d(plan, options);
  return d.run();
}

}  // namespace lifeboat::ops
