// The scheduler, followers, and HTTP endpoints.
#include "ops/daemon.h"

#include <fmt/format.h>
#include <httplib.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <thread>

#include "core/cron.h"
#include "core/interrupt.h"
#include "core/time.h"
#include "ops/notify.h"
#include "ops/plan_ops.h"
#include "ops/report.h"
#include "sources/mongodb/oplog_follow.h"

namespace lifeboat::ops {

namespace {

constexpr int64_t kS = 1000000000LL;

struct SourceState {
  int64_t last_run_ns = 0, last_ok_ns = 0, next_ns = 0;
  int failures = 0;
  bool running = false;
  std::string last_error;
};

class Daemon {
 public:
  Daemon(const plan::Plan& p, const DaemonOptions& o) : plan_(p), o_(o) {}

  Status run() {
    std::error_code ec;
    std::filesystem::create_directories(o_.state_dir, ec);
    if (ec) return Error(Code::kIo, fmt::format("cannot create state directory {}: {}", o_.state_dir, ec.message()));
    load_state();
    int64_t now = now_unix_ns();
    for (const auto& s : plan_.sources) {
      if (s.schedule.full.empty()) continue;
      auto cron = CronSchedule::parse(s.schedule.full);
      if (!cron) return cron.status();
      crons_[s.name].push_back(*cron);
      // Incrementals (files: another backup; MongoDB without a follower: another full). A continuous
      // MongoDB source already has a follower for them.
      if (!s.schedule.incremental.empty() && !s.schedule.continuous) {
        auto inc = CronSchedule::parse(s.schedule.incremental);
        if (!inc) return inc.status();
        crons_[s.name].push_back(*inc);
      }
      auto& st = state_[s.name];
      // Catch-up: a run due between the last one and now (the daemon was down) runs at once.
      int64_t due = st.last_run_ns ? next_run(s.name, st.last_run_ns) : 0;
      st.next_ns = (due && due <= now) ? now : next_run(s.name, now);
      if (due && due <= now) log(fmt::format("{}: missed the run due {}; running it now", s.name, format_rfc3339(due)));
    }
    if (plan_.reports.contains("schedule")) {
      auto c = CronSchedule::parse(plan_.reports["schedule"].get<std::string>());
      if (c) report_cron_.emplace(*c), next_report_ns_ = c->next_after(now / kS) * kS;
    }
    if (plan_.drills.contains("schedule")) {
      auto c = CronSchedule::parse(plan_.drills["schedule"].get<std::string>());
      if (c) drill_cron_.emplace(*c), next_drill_ns_ = c->next_after(now / kS) * kS;
    }
    std::unique_ptr<httplib::Server> http;
    std::thread http_thread;
    if (!o_.listen.empty()) LB_RETURN_IF_ERROR(start_http(http, http_thread));
    for (const auto& s : plan_.sources)
      if (s.schedule.continuous && s.kind == "mongodb") followers_.emplace_back([this, &s] { follow(s); });
    log(fmt::format("daemon started: {} scheduled source(s), {} follower(s){}", crons_.size(), followers_.size(),
                    o_.listen.empty() ? "" : ", http on " + o_.listen));
    while (!stopping()) {
      now = now_unix_ns();
      for (const auto& s : plan_.sources) {
        std::lock_guard lk(mu_);
        auto& st = state_[s.name];
        if (!crons_.count(s.name) || st.running || st.next_ns > now) continue;
        st.running = true;  // never two runs of one source at once
        auto done = std::make_shared<std::atomic<bool>>(false);
        workers_.push_back({std::thread([this, &s, done] {
                              run_backup(s);
                              *done = true;
                            }),
                            done});
      }
      // Join finished runs so a long-lived daemon does not collect threads.
      for (auto it = workers_.begin(); it != workers_.end();) {
        if (*it->done) {
          it->thread.join();
          it = workers_.erase(it);
        } else {
          ++it;
        }
      }
      if (report_cron_ && now >= next_report_ns_) {
        next_report_ns_ = report_cron_->next_after(now / kS) * kS;
        send_report(plan_, o_.log);
      }
      if (drill_cron_ && now >= next_drill_ns_ && !drill_running_) {
        next_drill_ns_ = drill_cron_->next_after(now / kS) * kS;
        drill_running_ = true;
        auto done = std::make_shared<std::atomic<bool>>(false);
        workers_.push_back({std::thread([this, done] {
                              run_scheduled_drill();
                              drill_running_ = false;
                              *done = true;
                            }),
                            done});
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    log("stopping: waiting for running backups and followers to finish or stop cleanly");
    for (auto& w : workers_) w.thread.join();
    for (auto& t : followers_) t.join();
    if (http) http->stop();
    if (http_thread.joinable()) http_thread.join();
    save_state();
    log("daemon stopped");
    return Status::ok();
  }

 private:
  bool stopping() const { return interrupted() || stop_.load() || (o_.should_stop && o_.should_stop()); }

  void log(const std::string& m) {
    if (o_.log) o_.log(m);
  }

  void run_backup(const plan::SourceSpec& s) {
    auto outcomes = run_backups(plan_, {&s});
    const auto& o = outcomes[0];
    int64_t now = now_unix_ns();
    {
      std::lock_guard lk(mu_);
      auto& st = state_[s.name];
      st.running = false;
      st.last_run_ns = now;
      if (o.ok) {
        st.last_ok_ns = now;
        st.failures = 0;
        st.last_error.clear();
        st.next_ns = next_run(s.name, now);
      } else {
        st.last_error = o.error;
        ++st.failures;
        if (stopping()) {
          st.next_ns = now;  // interrupted by the stop: due again at the next start
        } else if (st.failures <= o_.max_retries) {
          st.next_ns = now + (o_.retry_base_ns << (st.failures - 1));
        } else {
          st.failures = 0;
          st.next_ns = next_run(s.name, now);
        }
      }
      save_state_locked();
    }
    log(fmt::format("{}: backup {} in {}{}", s.name, o.ok ? "ok" : "FAILED", format_duration_ms(o.duration_ms),
                    o.ok ? "" : ": " + o.error));
    if (stopping() && !o.ok) return;
    Event e{"backup", o.ok, fmt::format("{} backup {}", s.name, o.ok ? "succeeded" : "failed"),
            o.ok ? fmt::format("snapshot {} in {}", o.result.value("snapshot", ""), format_duration_ms(o.duration_ms)) : o.error,
            o.to_json()};
    for (const auto& f : notify(plan_, e)) log(f);
  }

  void follow(const plan::SourceSpec& s) {
    int64_t backoff = 1;
    while (!stopping()) {
      auto repo = open_plan_repository(plan_, s.repository);
      Status st;
      if (!repo) {
        st = repo.status();
      } else {
        sources::mongodb::FollowOptions fo;
        fo.uri = s.settings.value("uri", "");
        fo.name = s.name;
        if (auto d = parse_duration(s.schedule.interval)) fo.interval_ns = *d;
        fo.should_stop = [this] { return stopping(); };
        sources::mongodb::FollowEvents ev;
        ev.on_warning = [this, &s](const std::string& w) {
          log(s.name + ": " + w);
          if (w.rfind("OPLOG GAP", 0) == 0)
            for (const auto& f : notify(plan_, Event{"backup", false, s.name + ": oplog gap", w})) log(f);
        };
        ev.on_commit = [this, &s](const sources::mongodb::SliceCommitted& c) {
          std::lock_guard lk(mu_);
          slices_[s.name] = now_unix_ns();
          (void)c;
        };
        st = sources::mongodb::follow_oplog(**repo, fo, ev);
      }
      if (stopping()) break;
      log(fmt::format("{}: follower stopped ({}); restarting in {} s", s.name, st.message(), backoff));
      for (int64_t i = 0; i < backoff * 5 && !stopping(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(200));
      backoff = std::min<int64_t>(backoff * 2, 60);
    }
  }

  // The earliest of the source's schedules after `after_ns`.
  int64_t next_run(const std::string& name, int64_t after_ns) const {
    int64_t best = -1;
    for (const auto& c : crons_.at(name)) {
      int64_t t = c.next_after(after_ns / kS);
      if (t >= 0 && (best < 0 || t < best)) best = t;
    }
    return best < 0 ? INT64_MAX : best * kS;
  }

  // plan `drills: {schedule, environment, sources}`: the plan's §4 drills, run by the daemon.
  void run_scheduled_drill() {
    std::vector<std::string> names = plan_.drills.value("sources", std::vector<std::string>{});
    std::string env = plan_.drills.value("environment", "test");
    auto list = select_sources(plan_, names);
    Result<nlohmann::json> d = list ? run_drill(plan_, *list, env, false) : Result<nlohmann::json>(list.status());
    bool ok = d && d->value("passed", false);
    log(fmt::format("scheduled drill into {}: {}", env, !d ? d.status().message() : ok ? "passed" : "FAILED"));
    Event e{"drill", ok, fmt::format("drill into {} {}", env, ok ? "passed" : "failed"),
            d ? drill_markdown(*d) : d.status().message(), d ? *d : nlohmann::json::object()};
    for (const auto& f : notify(plan_, e)) log(f);
  }

  Status start_http(std::unique_ptr<httplib::Server>& server, std::thread& thread) {
    auto colon = o_.listen.rfind(':');
    if (colon == std::string::npos) return Error(Code::kInvalidArgument, "--listen expects HOST:PORT (e.g. 127.0.0.1:9464)");
    std::string host = o_.listen.substr(0, colon);
    int port = std::atoi(o_.listen.c_str() + colon + 1);
    server = std::make_unique<httplib::Server>();
    server->Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
      auto r = build_report(plan_, now_unix_ns() - 86400 * kS);
      if (!r) {
        res.status = 500;
        res.set_content(r.status().message(), "text/plain");
        return;
      }
      std::string m = report_metrics(*r);
      m += "# HELP lifeboat_daemon_source_failures Consecutive failed runs per source.\n# TYPE lifeboat_daemon_source_failures gauge\n";
      std::lock_guard lk(mu_);
      for (const auto& [name, st] : state_) m += fmt::format("lifeboat_daemon_source_failures{{source=\"{}\"}} {}\n", name, st.failures);
      res.set_content(m, "text/plain; version=0.0.4");
    });
    server->Get("/healthz", [](const httplib::Request&, httplib::Response& res) { res.set_content("ok\n", "text/plain"); });
    server->Get("/", [this](const httplib::Request&, httplib::Response& res) {
      auto r = build_report(plan_, now_unix_ns() - 86400 * kS);
      std::string html = r ? report_html(*r) : "<p>" + r.status().message() + "</p>";
      std::string sched = "<h2>Schedule</h2><table><tr><th>Source</th><th>Next run</th><th>Running</th><th>Last error</th></tr>";
      {
        std::lock_guard lk(mu_);
        for (const auto& [name, st] : state_)
          sched += fmt::format("<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>", name,
                               st.next_ns ? format_rfc3339(st.next_ns) : "—", st.running ? "yes" : "no", st.last_error);
      }
      sched += "</table>";
      auto pos = html.find("<h2>Storage</h2>");
      if (pos != std::string::npos) html.insert(pos, sched);
      html.insert(html.find("<style>"), "<meta http-equiv=\"refresh\" content=\"30\">");
      res.set_content(html, "text/html; charset=utf-8");
    });
    if (!server->bind_to_port(host.c_str(), port))
      return Error(Code::kIo, fmt::format("cannot listen on {} (in use?)", o_.listen));
    thread = std::thread([&server] { server->listen_after_bind(); });
    return Status::ok();
  }

  void load_state() {
    std::ifstream in(o_.state_dir + "/state.json");
    if (!in) return;
    auto j = nlohmann::json::parse(in, nullptr, false);
    if (j.is_discarded()) return;
    if (!j.contains("sources") || !j["sources"].is_object()) return;
    const nlohmann::json& sources = j["sources"];
    for (const auto& [name, v] : sources.items()) {
      auto& st = state_[name];
      st.last_run_ns = v.value("last_run_ns", int64_t{0});
      st.last_ok_ns = v.value("last_ok_ns", int64_t{0});
    }
  }

  void save_state() {
    std::lock_guard lk(mu_);
    save_state_locked();
  }

  void save_state_locked() {
    nlohmann::json j = {{"sources", nlohmann::json::object()}};
    for (const auto& [name, st] : state_)
      j["sources"][name] = {{"last_run_ns", st.last_run_ns}, {"last_ok_ns", st.last_ok_ns}, {"failures", st.failures},
                            {"last_error", st.last_error}};
    std::string tmp = o_.state_dir + "/state.json.tmp";
    {
      std::ofstream out(tmp);
      out << j.dump(2);
    }
    std::rename(tmp.c_str(), (o_.state_dir + "/state.json").c_str());
  }

  const plan::Plan& plan_;
  DaemonOptions o_;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::map<std::string, SourceState> state_;
  std::map<std::string, std::vector<CronSchedule>> crons_;
  std::optional<CronSchedule> drill_cron_;
  int64_t next_drill_ns_ = 0;
  std::atomic<bool> drill_running_{false};
  std::map<std::string, int64_t> slices_;
  std::optional<CronSchedule> report_cron_;
  int64_t next_report_ns_ = 0;
  struct Worker {
    std::thread thread;
    std::shared_ptr<std::atomic<bool>> done;
  };
  std::vector<Worker> workers_;
  std::vector<std::thread> followers_;
};

}  // namespace

void send_report(const plan::Plan& plan, const std::function<void(const std::string&)>& log) {
  auto r = build_report(plan, now_unix_ns() - 86400 * kS);
  if (!r) {
    if (log) log("report: " + r.status().message());
    return;
  }
  bool ok = r->value("warnings", nlohmann::json::array()).empty();
  for (const auto& f : notify(plan, Event{"report", ok, "daily report", report_text(*r), *r}))
    if (log) log(f);
}

Status run_daemon(const plan::Plan& plan, const DaemonOptions& options) {
  Daemon d(plan, options);
  return d.run();
}

}  // namespace lifeboat::ops
