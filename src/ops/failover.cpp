// Warm standby refreshes and failover: catch up, check, run the steps, record.
#include "ops/failover.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <thread>

#include "core/atomic_file.h"
#include "core/names.h"
#include "core/platform_user.h"
#include "core/subprocess.h"
#include "core/time.h"
#include "ops/plan_ops.h"

namespace lifeboat::ops {

namespace {

std::mutex standby_file_mu;  // standby.json is read-modified-written by one process's threads in turn

nlohmann::json read_json_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) return nlohmann::json::object();
  auto j = nlohmann::json::parse(in, nullptr, false);
  return j.is_object() ? j : nlohmann::json::object();
}

std::string progress_path(const std::string& state_dir, const std::string& env) { return state_dir + "/failover-" + env + ".json"; }

}  // namespace

Result<nlohmann::json> failover_progress(const std::string& state_dir, const std::string& environment) {
  std::string path = progress_path(state_dir, environment);
  std::ifstream in(path);
  if (!in) return nlohmann::json::object();
  auto j = nlohmann::json::parse(in, nullptr, false);
  if (!j.is_object())
    return Error(Code::kCorrupt, fmt::format("{} is not a failover's progress this version can read: whether environment {} was "
                                             "promoted is unknown; look at it, and remove it only if no failover into {} ran",
                                             path, environment, environment));
  return j;
}

namespace {

// Sources in an order their after: lists allow; independent ones keep the plan's order.
std::vector<const plan::SourceSpec*> in_after_order(const std::vector<const plan::SourceSpec*>& list) {
  std::vector<const plan::SourceSpec*> out;
  std::set<std::string> done, names;
  for (const auto* s : list) names.insert(s->name);
  while (out.size() < list.size()) {
    size_t before = out.size();
    for (const auto* s : list) {
      if (done.count(s->name)) continue;
      bool ready = std::all_of(s->after.begin(), s->after.end(), [&](const std::string& a) { return !names.count(a) || done.count(a); });
      if (ready) {
        out.push_back(s);
        done.insert(s->name);
      }
    }
    if (out.size() == before) break;  // a cycle: the plan refuses those
  }
  return out;
}

std::vector<const plan::FailoverStep*> steps_in_order(const std::vector<plan::FailoverStep>& steps) {
  std::vector<const plan::FailoverStep*> out;
  std::set<std::string> done;
  while (out.size() < steps.size()) {
    size_t before = out.size();
    for (const auto& st : steps) {
      if (done.count(st.name)) continue;
      if (std::all_of(st.after.begin(), st.after.end(), [&](const std::string& a) { return done.count(a) > 0; })) {
        out.push_back(&st);
        done.insert(st.name);
      }
    }
    if (out.size() == before) break;
  }
  return out;
}

}  // namespace

std::map<std::string, StandbyEnvironment> load_standby(const std::string& state_dir) {
  std::map<std::string, StandbyEnvironment> out;
  std::lock_guard lk(standby_file_mu);
  auto j = read_json_file(state_dir + "/standby.json");
  for (const auto& [env, sources] : j.items()) {
    if (!sources.is_object()) continue;
    for (const auto& [name, v] : sources.items()) {
      if (!v.is_object()) continue;
      StandbySource s;
      s.point_ns = v.value("point_ns", int64_t{0});
      s.refreshed_ns = v.value("refreshed_ns", int64_t{0});
      s.snapshot = v.value("snapshot", "");
      s.repository = v.value("repository", "");
      s.error = v.value("error", "");
      s.resume = v.value("resume", nlohmann::json::object());
      out[env][name] = s;
    }
  }
  return out;
}

Status save_standby_source(const std::string& state_dir, const std::string& environment, const std::string& source,
                           const StandbySource& held) {
  std::lock_guard lk(standby_file_mu);
  auto j = read_json_file(state_dir + "/standby.json");
  j[environment][source] = {{"point_ns", held.point_ns}, {"point", held.point_ns ? format_rfc3339(held.point_ns) : ""},
                            {"refreshed_ns", held.refreshed_ns}, {"snapshot", held.snapshot},
                            {"repository", held.repository}, {"error", held.error}, {"resume", held.resume}};
  return write_file_atomic(state_dir + "/standby.json", j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace));
}

std::vector<const plan::SourceSpec*> environment_sources(const plan::Plan& plan, const std::string& environment) {
  std::vector<const plan::SourceSpec*> out;
  for (const auto& s : plan.sources)
    if (s.environments.count(environment)) out.push_back(&s);
  return out;
}

std::string standby_repository(const plan::Plan& plan, const plan::SourceSpec& s) {
  auto copies = plan.copies_of(s.repository);
  return copies.empty() ? s.repository : copies[0]->name;
}

Result<EnvironmentClaim> EnvironmentClaim::claim(const std::string& state_dir, const std::string& environment, bool wait) {
  std::string path = state_dir + "/standby-" + environment + ".lock";
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return Error(Code::kIo, fmt::format("cannot open {}: {}", path, std::strerror(errno)));
  if (::flock(fd, wait ? LOCK_EX : LOCK_EX | LOCK_NB) != 0) {
    int e = errno;
    ::close(fd);
    if (e == EWOULDBLOCK) return Error(Code::kLockFailed, fmt::format("environment {} is being written by another process", environment));
    return Error(Code::kIo, fmt::format("cannot lock {}: {}", path, std::strerror(e)));
  }
  return EnvironmentClaim(fd);
}

EnvironmentClaim::~EnvironmentClaim() {
  if (fd_ >= 0) ::close(fd_);
}

Result<nlohmann::json> refresh_standby_source(RepositorySet& repos, const std::string& environment, const plan::SourceSpec& s,
                                              StandbySource& held, const std::string& state_dir) {
  std::string from = standby_repository(repos.plan(), s);
  std::optional<int64_t> newest;
  {
    LB_ASSIGN_OR_RETURN(auto repo, repos.acquire(from));
    LB_ASSIGN_OR_RETURN(auto all, repo->list_snapshots());
    if (s.entry && s.entry->newest_point) newest = s.entry->newest_point(all, s.name);
    // Another process (a backup's copy, a follower) may have added data since this handle read the
    // index: a newer point is read with the index as it is now.
    if (newest && (*newest > held.point_ns || !held.error.empty())) LB_RETURN_IF_ERROR(repo->reload_index());
  }
  int64_t now = now_unix_ns();
  if (!newest) return nlohmann::json{{"refreshed", false}, {"why", "no backup in " + from}};
  if (held.point_ns >= *newest && held.error.empty()) {
    held.refreshed_ns = now;
    LB_RETURN_IF_ERROR(save_standby_source(state_dir, environment, s.name, held));
    return nlohmann::json{{"refreshed", false}, {"point", format_rfc3339(held.point_ns)}};
  }
  RestoreOptions o;
  o.overrides = s.entry->standby_settings;
  o.repository = from;
  o.resume = held.resume.empty() ? nullptr : &held.resume;
  o.validate = false;
  RestoreRun run = restore_source(repos, s, environment, std::nullopt, o);
  if (!run.outcome.ok) {
    held.error = run.outcome.error;
    held.resume = nlohmann::json::object();  // what the target holds is unknown now: the next refresh restores whole
    (void)save_standby_source(state_dir, environment, s.name, held);
    return Error(Code::kFatal, run.outcome.error);
  }
  held.point_ns = run.point_ns.value_or(*newest);
  held.refreshed_ns = now_unix_ns();
  held.snapshot = run.outcome.result.value("snapshot", "");
  held.repository = run.repository;
  held.resume = run.resume;
  held.error.clear();
  LB_RETURN_IF_ERROR(save_standby_source(state_dir, environment, s.name, held));
  return nlohmann::json{{"refreshed", true}, {"point", format_rfc3339(held.point_ns)}, {"duration_ms", run.outcome.duration_ms},
                        {"lag_ms", std::max<int64_t>(0, (held.refreshed_ns - held.point_ns) / kNsPerMs)},
                        {"details", run.outcome.result.value("details", nlohmann::json::object())}};
}

namespace {

// The sources of the failover and why any of the plan's are left out.
struct FailoverScope {
  std::vector<const plan::SourceSpec*> sources;  // in after: order
  std::vector<std::string> left_out;
};

Result<FailoverScope> failover_scope(const plan::Plan& plan, const std::string& env) {
  if (env.empty()) return Error(Code::kInvalidArgument, "name the environment to fail over to (--environment, or failover.environment in the plan)");
  if (env == "production") return Error(Code::kInvalidArgument, "a failover restores into its environment: not into production");
  FailoverScope scope;
  scope.sources = in_after_order(environment_sources(plan, env));
  if (scope.sources.empty())
    return Error(Code::kInvalidArgument, fmt::format("no source has settings for environment {} (sources.NAME.environments.{})", env, env));
  for (const auto& s : plan.sources)
    if (!s.environments.count(env)) scope.left_out.push_back(fmt::format("{}: not failed over (it has no environments.{} settings)", s.name, env));
  return scope;
}

std::vector<std::pair<std::string, std::string>> step_env(const FailoverOptions& o, const plan::FailoverStep& st, int64_t point_ns) {
  return {{"LIFEBOAT_ENVIRONMENT", o.environment},
          {"LIFEBOAT_STEP", st.name},
          {"LIFEBOAT_REHEARSAL", o.rehearsal ? "1" : "0"},
          {"LIFEBOAT_FAILOVER_POINT", point_ns ? format_rfc3339(point_ns) : ""}};
}

}  // namespace

Result<std::vector<std::string>> failover_actions(RepositorySet& repos, const FailoverOptions& o) {
  const plan::Plan& plan = repos.plan();
  LB_ASSIGN_OR_RETURN(auto scope, failover_scope(plan, o.environment));
  auto standby = load_standby(o.state_dir)[o.environment];
  LB_ASSIGN_OR_RETURN(auto progress, failover_progress(o.state_dir, o.environment));
  std::vector<std::string> out;
  out.push_back(fmt::format("claim environment {} (the daemon stops refreshing its standby)", o.environment));
  for (const auto* s : scope.sources) {
    if (o.resume && progress["sources"].contains(s->name) && progress["sources"][s->name].value("ok", false)) {
      out.push_back(fmt::format("{}: already caught up by the failover being resumed", s->name));
      continue;
    }
    NewestPoint np = newest_point(repos, *s);
    std::string read = repos.reading_from(s->repository);
    std::string target = o.at_ns ? format_rfc3339(*o.at_ns) : np.point_ns ? "its newest point " + format_rfc3339(*np.point_ns) : "(no restorable point)";
    auto held = standby.find(s->name);
    std::string how = held != standby.end() && held->second.point_ns
                          ? fmt::format("resume the standby from {}", format_rfc3339(held->second.point_ns))
                          : "restore whole (no standby state)";
    out.push_back(fmt::format("{} ({}): {} from repository {} to {}{}; then checks {}", s->name, s->kind, how, read, target,
                              s->after.empty() ? "" : fmt::format(" after {}", fmt::join(s->after, ", ")),
                              s->validation.empty() ? "none" : fmt::format("{}", fmt::join(s->validation, ", "))));
  }
  for (const auto& l : scope.left_out) out.push_back(l);
  for (const auto* st : steps_in_order(plan.failover.steps)) {
    if (o.rehearsal && !st->rehearse) {
      out.push_back(fmt::format("step {}: not rehearsed (rehearse: false)", st->name));
      continue;
    }
    if (o.resume && progress["steps"].contains(st->name) && progress["steps"][st->name].value("ok", false)) {
      out.push_back(fmt::format("step {}: already done", st->name));
      continue;
    }
    out.push_back(fmt::format("step {}: run `{}` (limit {}{})", st->name, st->run, format_duration_ms(st->timeout_ns / kNsPerMs),
                              st->after.empty() ? "" : fmt::format(", after {}", fmt::join(st->after, ", "))));
  }
  out.push_back(o.rehearsal ? "record the failover drill" : fmt::format("record the failover; environment {} is then promoted: its standby is never refreshed again", o.environment));
  return out;
}

Result<DrillRecord> run_failover(RepositorySet& repos, const FailoverOptions& o) {
  const plan::Plan& plan = repos.plan();
  auto say = [&](const std::string& m) {
    if (o.say) o.say(m);
  };
  LB_ASSIGN_OR_RETURN(auto scope, failover_scope(plan, o.environment));
  std::error_code ec;
  std::filesystem::create_directories(o.state_dir, ec);
  std::string ppath = progress_path(o.state_dir, o.environment);
  LB_ASSIGN_OR_RETURN(auto progress, failover_progress(o.state_dir, o.environment));
  std::string state = progress.value("state", "");
  if (!o.rehearsal && !o.resume && state == "running")
    return Error(Code::kInvalidArgument, fmt::format("a failover into {} stopped before it finished ({}): continue it with --resume",
                                                     o.environment, ppath));
  if (!o.rehearsal && !o.resume && state == "promoted")
    return Error(Code::kInvalidArgument, fmt::format("environment {} was promoted by the failover of {}; it now serves production and "
                                                     "a second failover would overwrite it (fail back as docs/failover.md says)",
                                                     o.environment, progress.value("started", "?")));
  if (o.resume && state != "running")
    return Error(Code::kInvalidArgument, fmt::format("no stopped failover into {} to resume{}", o.environment,
                                                     state.empty() ? "" : " (its last one is " + state + ")"));
  if (o.rehearsal && state == "promoted")
    return Error(Code::kInvalidArgument, fmt::format("environment {} was promoted: it serves production and a failover drill would overwrite it", o.environment));
  // The daemon's refreshes stop while the failover holds the environment.
  LB_ASSIGN_OR_RETURN(auto claim, EnvironmentClaim::claim(o.state_dir, o.environment, true));

  DrillRecord d;
  d.kind = o.rehearsal ? "drill" : "failover";
  d.rehearsal = o.rehearsal;
  d.plan = plan.file;
  d.environment = o.environment;
  d.host = platform::hostname();
  d.started_ns = o.resume ? progress.value("started_ns", now_unix_ns()) : now_unix_ns();
  d.rpo_objective_ms = plan.rpo_ns / kNsPerMs;
  d.rto_objective_ms = plan.rto_ns / kNsPerMs;
  d.deviations = scope.left_out;
  if (!o.resume) progress = {{"state", "running"}, {"environment", o.environment}, {"started_ns", d.started_ns},
                             {"started", format_rfc3339(d.started_ns)}, {"rehearsal", o.rehearsal},
                             {"sources", nlohmann::json::object()}, {"steps", nlohmann::json::object()}};
  auto save_progress = [&] { return write_file_atomic(ppath, progress.dump(2, ' ', false, nlohmann::json::error_handler_t::replace)); };
  if (!o.rehearsal) LB_RETURN_IF_ERROR(save_progress());
  int64_t start_mono = monotonic_ns();
  auto standby = load_standby(o.state_dir)[o.environment];

  // Sources: each starts when those it comes after have finished; the others run side by side
  // (two at a time: restores are I/O bound and this machine's peers share its cores).
  std::map<std::string, DrillSourceResult> results;
  std::map<std::string, int64_t> finish_ms;  // along the critical path: own duration + latest dependency's
  std::mutex mu;
  std::set<std::string> finished, failed;
  for (const auto* s : scope.sources)
    if (o.resume && progress["sources"].contains(s->name) && progress["sources"][s->name].value("ok", false)) {
      const auto& p = progress["sources"][s->name];
      DrillSourceResult r;
      r.source = s->name;
      r.kind = s->kind;
      r.ok = true;
      r.point = p.value("point", "");
      r.rto_ms = p.value("rto_ms", int64_t{0});
      r.details = {{"resumed", "caught up by the failover being resumed"}};
      if (p.contains("rpo_ms")) r.rpo_ms = p["rpo_ms"].get<int64_t>();
      results[s->name] = r;
      finish_ms[s->name] = p.value("finish_ms", r.rto_ms);
      finished.insert(s->name);
    }
  auto catch_up = [&](const plan::SourceSpec& s) {
    StandbySource held;
    {
      std::lock_guard lk(mu);
      if (auto it = standby.find(s.name); it != standby.end()) held = it->second;
    }
    RestoreOptions ro;
    ro.overrides = s.entry ? s.entry->standby_settings : nlohmann::json::object();
    ro.resume = held.resume.empty() || held.point_ns == 0 ? nullptr : &held.resume;
    ro.own_handle = true;  // sources of one repository restore side by side
    {
      // A source that failed in the failover being resumed restores whole: whatever its standby held
      // did not pass.
      std::lock_guard lk(mu);
      if (progress["sources"].contains(s.name) && !progress["sources"][s.name].value("ok", true)) ro.resume = nullptr;
    }
    RestoreRun run = restore_source(repos, s, o.environment, o.at_ns, ro);
    DrillSourceResult r = drill_result_of(s, run);
    r.details["repository"] = run.repository;
    r.details["resumed_from"] = ro.resume ? nlohmann::json(format_rfc3339(held.point_ns)) : nlohmann::json("nothing: restored whole");
    if (run.point_ns) {
      r.rpo_ms = std::max<int64_t>(0, (d.started_ns - *run.point_ns) / kNsPerMs);
      if (o.at_ns) r.details["skew_ms"] = std::max<int64_t>(0, (*o.at_ns - *run.point_ns) / kNsPerMs);
    }
    std::lock_guard lk(mu);
    if (run.outcome.ok) {
      held.point_ns = *run.point_ns;
      held.refreshed_ns = now_unix_ns();
      held.snapshot = r.snapshot;
      held.repository = run.repository;
      held.resume = run.resume;
      held.error.clear();
      standby[s.name] = held;
      (void)save_standby_source(o.state_dir, o.environment, s.name, held);
    }
    int64_t deps = 0;
    for (const auto& a : s.after)
      if (finish_ms.count(a)) deps = std::max(deps, finish_ms[a]);
    finish_ms[s.name] = deps + r.rto_ms;
    say(fmt::format("{}: {} in {}{}", s.name, r.ok ? "caught up to " + r.point : "FAILED", format_duration_ms(r.rto_ms),
                    r.ok ? "" : ": " + r.error));
    progress["sources"][s.name] = {{"ok", r.ok}, {"point", r.point}, {"rto_ms", r.rto_ms}, {"finish_ms", finish_ms[s.name]}};
    if (r.rpo_ms) progress["sources"][s.name]["rpo_ms"] = *r.rpo_ms;
    if (!o.rehearsal) (void)save_progress();
    if (!r.ok) failed.insert(s.name);
    finished.insert(s.name);
    results[s.name] = std::move(r);
  };
  {
    std::set<std::string> started = finished;
    std::vector<std::thread> running;
    constexpr size_t kParallel = 2;
    std::unique_lock lk(mu);
    while (started.size() < scope.sources.size()) {
      const plan::SourceSpec* next = nullptr;
      bool blocked = false;
      for (const auto* s : scope.sources) {
        if (started.count(s->name)) continue;
        bool dep_failed = std::any_of(s->after.begin(), s->after.end(), [&](const std::string& a) { return failed.count(a) > 0; });
        if (dep_failed) {
          DrillSourceResult r;
          r.source = s->name;
          r.kind = s->kind;
          r.error = "not restored: a source it comes after failed";
          results[s->name] = r;
          started.insert(s->name);
          finished.insert(s->name);
          failed.insert(s->name);
          blocked = true;
          break;
        }
        bool ready = std::all_of(s->after.begin(), s->after.end(), [&](const std::string& a) {
          return finished.count(a) > 0 || std::none_of(scope.sources.begin(), scope.sources.end(), [&](auto* x) { return x->name == a; });
        });
        if (ready) {
          next = s;
          break;
        }
      }
      if (blocked) continue;
      size_t active = started.size() - finished.size();
      if (next && active < kParallel) {
        started.insert(next->name);
        running.emplace_back([&, next] { catch_up(*next); });
        continue;
      }
      lk.unlock();
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      lk.lock();
    }
    lk.unlock();
    for (auto& t : running) t.join();
  }
  bool all_ok = true;
  int64_t critical = 0, latest_point = 0;
  for (const auto* s : scope.sources) {
    auto& r = results[s->name];
    critical = std::max(critical, finish_ms.count(s->name) ? finish_ms[s->name] : 0);
    for (const auto& c : r.checks)
      if (!c.ok) d.failures.push_back(fmt::format("{}: check {} failed: {}", s->name, c.name, c.detail));
    bool a_check_failed = std::any_of(r.checks.begin(), r.checks.end(), [](const auto& c) { return !c.ok; });
    if (!r.ok && !a_check_failed) d.failures.push_back(fmt::format("{}: {}", s->name, r.error));
    if (r.ok && s->validation.empty()) d.deviations.push_back(fmt::format("{}: no validation ran: the restore is unproven", s->name));
    if (r.rpo_ms) {
      d.worst_rpo_ms = std::max(d.worst_rpo_ms, *r.rpo_ms);
      latest_point = std::max(latest_point, d.started_ns - *r.rpo_ms * kNsPerMs);
      if (*r.rpo_ms * kNsPerMs > plan.rpo_ns) d.missed.push_back({s->name, "rpo", *r.rpo_ms, plan.rpo_ns / kNsPerMs});
    }
    all_ok = all_ok && r.ok;
    d.sources.push_back(r);
  }
  d.checks_passed = all_ok;

  // Steps, once every source is caught up and checked: a failed one stops the failover.
  bool steps_ok = all_ok;
  std::vector<std::string> done_steps, not_run;
  if (all_ok) {
    for (const auto* st : steps_in_order(plan.failover.steps)) {
      StepResult r;
      r.name = st->name;
      r.command = st->run;
      if (o.rehearsal && !st->rehearse) continue;
      r.rehearsed = o.rehearsal;
      if (!steps_ok) {
        not_run.push_back(st->name);
        continue;
      }
      if (o.resume && progress["steps"].contains(st->name) && progress["steps"][st->name].value("ok", false)) {
        const auto& p = progress["steps"][st->name];
        r.ok = true;
        r.outcome = "done by the failover being resumed";
        r.started_ms = p.value("started_ms", int64_t{0});
        r.duration_ms = p.value("duration_ms", int64_t{0});
        critical += r.duration_ms;
        done_steps.push_back(st->name);
        d.steps.push_back(r);
        continue;
      }
      say(fmt::format("step {}: {}", st->name, st->run));
      r.started_ms = (monotonic_ns() - start_mono) / kNsPerMs;
      std::vector<std::string> argv = {"/usr/bin/env"};
      for (const auto& [k, v] : step_env(o, *st, latest_point)) argv.push_back(k + "=" + v);
      argv.insert(argv.end(), {"/bin/sh", "-c", st->run});
      auto ran = lifeboat::run_command(argv, std::max<int64_t>(1, st->timeout_ns / kNsPerSecond));
      r.duration_ms = (monotonic_ns() - start_mono) / kNsPerMs - r.started_ms;
      critical += r.duration_ms;
      if (!ran) {
        r.outcome = ran.status().message();
      } else {
        r.ok = ran->ok();
        r.outcome = ran->describe();
        r.output = redact_urls_in(ran->output_tail);
      }
      say(fmt::format("step {}: {} in {}", st->name, r.ok ? "ok" : "FAILED (" + r.outcome + ")", format_duration_ms(r.duration_ms)));
      progress["steps"][st->name] = {{"ok", r.ok}, {"started_ms", r.started_ms}, {"duration_ms", r.duration_ms}, {"outcome", r.outcome}};
      if (!o.rehearsal) (void)save_progress();
      if (r.ok) done_steps.push_back(st->name);
      else {
        steps_ok = false;
        d.failures.push_back(fmt::format("step {} failed: {}{}", st->name, r.outcome, r.output.empty() ? "" : " (output: " + r.output + ")"));
      }
      d.steps.push_back(r);
    }
  }
  d.total_rto_ms = (monotonic_ns() - start_mono) / kNsPerMs;
  if (o.resume) d.total_rto_ms = std::max<int64_t>(d.total_rto_ms, (now_unix_ns() - d.started_ns) / kNsPerMs);
  d.critical_path_ms = critical;
  if (d.total_rto_ms * kNsPerMs > plan.rto_ns) d.missed.push_back({"", "rto", d.total_rto_ms, plan.rto_ns / kNsPerMs});
  d.rpo_met = all_ok && d.worst_rpo_ms * kNsPerMs <= plan.rpo_ns;
  d.rto_met = d.total_rto_ms * kNsPerMs <= plan.rto_ns;
  d.passed = all_ok && steps_ok && (!o.rehearsal || d.missed.empty());
  std::vector<std::string> caught, not_caught;
  for (const auto& r : d.sources) (r.ok ? caught : not_caught).push_back(r.source);
  if (o.rehearsal) {
    d.promoted = fmt::format("Rehearsal: nothing was promoted; the standby of {} goes on being refreshed.", o.environment);
  } else if (d.passed) {
    d.promoted = fmt::format("Promoted: environment {} serves every source ({}); every step ran ({}).", o.environment,
                             fmt::join(caught, ", "), done_steps.empty() ? "none declared" : fmt::format("{}", fmt::join(done_steps, ", ")));
  } else {
    std::string failed_step;
    for (const auto& st : d.steps)
      if (!st.ok) failed_step = st.name;
    d.promoted = fmt::format(
        "NOT promoted. Caught up and checked: {}. Not: {}. Steps done: {}. {}{}Continue with `lifeboat failover --environment {} --resume` "
        "once the cause is fixed.",
        caught.empty() ? "none" : fmt::format("{}", fmt::join(caught, ", ")), not_caught.empty() ? "none" : fmt::format("{}", fmt::join(not_caught, ", ")),
        done_steps.empty() ? "none" : fmt::format("{}", fmt::join(done_steps, ", ")),
        failed_step.empty() ? "" : fmt::format("Failed: {}. ", failed_step),
        not_run.empty() ? "" : fmt::format("Not run: {}. ", fmt::join(not_run, ", ")), o.environment);
  }
  Status stored = store_drill_record(repos, scope.sources[0]->repository, scope.sources, d);
  if (!stored) d.failures.push_back("the record could not be stored in a repository: " + stored.message());
  if (!o.rehearsal) {
    progress["state"] = d.passed ? "promoted" : "running";
    progress["record"] = d.to_json();
    LB_RETURN_IF_ERROR(save_progress());
  }
  return d;
}

void add_standby_to_report(nlohmann::json& report, const plan::Plan& plan, const std::string& state_dir) {
  auto standby = standby_status(plan, state_dir, now_unix_ns());
  if (standby.empty()) return;
  for (const auto& j : standby)
    if (j.value("behind", false) && !j.contains("failover"))
      report["warnings"].push_back(fmt::format("standby {} of {}: {}", j.value("environment", ""), j.value("source", ""),
                                               j.contains("error") ? j.value("error", "")
                                                                   : fmt::format("{} behind (bound {})", format_duration_ms(j.value("lag_ms", int64_t{0})),
                                                                                 format_duration_ms(j.value("max_lag_ms", int64_t{0})))));
  report["standby"] = standby;
}

nlohmann::json standby_status(const plan::Plan& plan, const std::string& state_dir, int64_t now_ns) {
  nlohmann::json out = nlohmann::json::array();
  auto held = load_standby(state_dir);
  for (const auto& env : plan.environments) {
    if (!env.standby) continue;
    auto progress = failover_progress(state_dir, env.name);
    std::string promoted = progress ? progress->value("state", "") : "unknown (" + progress.status().message() + ")";
    int64_t bound = env.max_lag_ns ? env.max_lag_ns : plan.rpo_ns;
    for (const auto* s : environment_sources(plan, env.name)) {
      nlohmann::json j = {{"environment", env.name}, {"source", s->name}, {"max_lag_ms", bound / kNsPerMs}};
      if (!promoted.empty()) j["failover"] = promoted;
      auto e = held.find(env.name);
      const StandbySource* h = nullptr;
      if (e != held.end())
        if (auto it = e->second.find(s->name); it != e->second.end()) h = &it->second;
      if (!h || !h->point_ns) {
        j["behind"] = true;
        j["error"] = h && !h->error.empty() ? h->error : "not restored into the standby yet (is the daemon running?)";
        out.push_back(j);
        continue;
      }
      int64_t lag = std::max<int64_t>(0, now_ns - h->point_ns);
      j["point"] = format_rfc3339(h->point_ns);
      j["point_ns"] = h->point_ns;
      j["lag_ms"] = lag / kNsPerMs;
      j["behind"] = lag > bound || !h->error.empty();
      if (!h->error.empty()) j["error"] = h->error;
      out.push_back(j);
    }
  }
  return out;
}

}  // namespace lifeboat::ops
