// Drills: restore, validate the target, measure, record.
#include "ops/drill.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>

#include "core/cron.h"
#include "core/names.h"
#include "core/platform_user.h"
#include "core/subprocess.h"
#include "core/time.h"
#include "ops/plan_ops.h"
#include "repo/lock.h"
#include "repo/write_session.h"

namespace lifeboat::ops {

namespace {


// drills.after_restore: a command run with LIFEBOAT_SOURCE, LIFEBOAT_KIND and LIFEBOAT_ENVIRONMENT set
// (e.g. starting the application on the restored data); a non-zero exit fails that source. What it
// prints goes to standard error, so `drill --json` stays one JSON document.
Status run_after_restore(const std::string& command, const plan::SourceSpec& s, const std::string& environment) {
  LB_ASSIGN_OR_RETURN(int rc, run_shell_with_env(command, {{"LIFEBOAT_SOURCE", s.name},
                                                           {"LIFEBOAT_KIND", s.kind},
                                                           {"LIFEBOAT_ENVIRONMENT", environment}}));
  if (rc != 0) return Error(Code::kFatal, fmt::format("drills.after_restore command exited {} for source {}", rc, s.name));
  return Status::ok();
}

nlohmann::json checks_json(const std::vector<sources::CheckResult>& checks) {
  nlohmann::json a = nlohmann::json::array();
  for (const auto& c : checks) a.push_back({{"check", c.name}, {"ok", c.ok}, {"detail", c.detail}});
  return a;
}


}  // namespace

Status store_drill_record(RepositorySet& repos, const std::string& repository, const std::vector<const plan::SourceSpec*>& list,
                    DrillRecord& d) {
  LB_ASSIGN_OR_RETURN(auto repo, repos.acquire_readable(repository));
  LB_ASSIGN_OR_RETURN(auto lock, repo::RepoLock::acquire(*repo, repo::LockKind::kShared));
  LB_RETURN_IF_ERROR(repo->load_index());
  repo::WriteSession session(*repo);
  LB_ASSIGN_OR_RETURN(auto tree, session.store_tree(repo::Tree{}));
  repo::Snapshot snap;
  snap.time_ns = d.started_ns;
  snap.hostname = d.host;
  snap.source = repo::Snapshot::kDrillSource;
  snap.paths = {repos.plan().file};
  snap.tags = {d.kind, "environment:" + d.environment};
  for (const auto* s : list) snap.tags.push_back("drilled:" + s->name);
  snap.tree = tree;
  snap.metadata = redact_urls_in_json(d.to_json());
  LB_ASSIGN_OR_RETURN(d.snapshot, session.commit(snap));
  return Status::ok();
}

DrillSourceResult drill_result_of(const plan::SourceSpec& s, const RestoreRun& run) {
  DrillSourceResult r;
  r.source = s.name;
  r.kind = s.kind;
  r.ok = run.outcome.ok;
  r.error = run.outcome.error;
  r.rto_ms = run.outcome.duration_ms;
  r.point = run.outcome.result.value("point", "");
  r.snapshot = run.outcome.result.value("snapshot", "");
  r.limit = run.outcome.result.value("limit", "");
  r.details = run.outcome.result.value("details", nlohmann::json::object());
  // Where the RTO went: the kind's restore, and the checks reading the target back.
  for (const char* k : {"restore_ms", "checks_ms"})
    if (run.outcome.result.contains(k)) r.details[k] = run.outcome.result[k];
  r.checks = run.checks;
  return r;
}

std::string MissedObjective::to_string() const {
  std::string who = source.empty() ? "the whole drill" : source;
  if (objective == "validation")
    return fmt::format("{}: restored with no check to prove it (its validation is empty; list it in drills.allow_unvalidated "
                       "to accept that)", who);
  return fmt::format("{}: {} {} missed the objective {} by {}", who, objective == "rpo" ? "RPO" : "RTO",
                     format_duration_ms(measured_ms), format_duration_ms(objective_ms), format_duration_ms(measured_ms - objective_ms));
}

nlohmann::json DrillRecord::to_json() const {
  nlohmann::json list = nlohmann::json::array();
  for (const auto& s : sources) {
    nlohmann::json result = {{"checks", checks_json(s.checks)}, {"details", s.details}};
    if (!s.point.empty()) result["point"] = s.point;
    if (!s.snapshot.empty()) result["snapshot"] = s.snapshot;
    if (!s.limit.empty()) result["limit"] = s.limit;
    nlohmann::json j = {{"source", s.source}, {"kind", s.kind},     {"ok", s.ok},
                        {"rto_ms", s.rto_ms}, {"duration_ms", s.rto_ms}, {"result", result}};
    j["rpo_ms"] = s.rpo_ms ? nlohmann::json(*s.rpo_ms) : nlohmann::json();
    if (!s.error.empty()) j["error"] = s.error;
    list.push_back(j);
  }
  nlohmann::json missed_json = nlohmann::json::array();
  for (const auto& m : missed)
    missed_json.push_back({{"source", m.source}, {"objective", m.objective}, {"measured_ms", m.measured_ms},
                           {"objective_ms", m.objective_ms}, {"over_ms", m.measured_ms - m.objective_ms}});
  nlohmann::json j = {{"kind", "drill"},
                      {"plan", plan},
                      {"environment", environment},
                      {"started", format_rfc3339(started_ns)},
                      {"started_ns", started_ns},
                      {"host", host},
                      {"objectives", {{"rpo_ms", rpo_objective_ms}, {"rto_ms", rto_objective_ms}}},
                      {"sources", list},
                      {"total_rto_ms", total_rto_ms},
                      {"worst_rpo_ms", worst_rpo_ms},
                      {"passed", passed},
                      {"checks_passed", checks_passed},
                      {"missed_objectives", missed_json},
                      {"rpo_met", rpo_met},
                      {"rto_met", rto_met},
                      {"deviations", deviations},
                      {"failures", failures}};
  if (!snapshot.empty()) j["snapshot"] = snapshot;
  j["kind"] = kind;
  if (kind == "failover" || rehearsal || !steps.empty()) {
    nlohmann::json st = nlohmann::json::array();
    for (const auto& x : steps)
      st.push_back({{"name", x.name}, {"command", x.command}, {"ok", x.ok}, {"rehearsed", x.rehearsed}, {"started_ms", x.started_ms},
                    {"duration_ms", x.duration_ms}, {"outcome", x.outcome}, {"output", x.output}});
    j["steps"] = st;
    j["rehearsal"] = rehearsal;
    j["critical_path_ms"] = critical_path_ms;
    j["promoted"] = promoted;
  }
  return j;
}

std::optional<DrillRecord> DrillRecord::from_json(const nlohmann::json& j) {
  try {
    DrillRecord d;
    d.plan = j.value("plan", "");
    d.environment = j.value("environment", "");
    d.host = j.value("host", "");
    d.snapshot = j.value("snapshot", "");
    d.started_ns = j.value("started_ns", int64_t{0});
    if (j.contains("objectives")) {
      d.rpo_objective_ms = j["objectives"].value("rpo_ms", int64_t{0});
      d.rto_objective_ms = j["objectives"].value("rto_ms", int64_t{0});
    }
    for (const auto& s : j.value("sources", nlohmann::json::array())) {
      DrillSourceResult r;
      r.source = s.value("source", "");
      r.kind = s.value("kind", "");
      r.ok = s.value("ok", false);
      r.error = s.value("error", "");
      r.rto_ms = s.value("rto_ms", int64_t{0});
      if (s.contains("rpo_ms") && s["rpo_ms"].is_number()) r.rpo_ms = s["rpo_ms"].get<int64_t>();
      const auto& res = s.value("result", nlohmann::json::object());
      r.point = res.value("point", "");
      r.snapshot = res.value("snapshot", "");
      r.limit = res.value("limit", "");
      r.details = res.value("details", nlohmann::json::object());
      for (const auto& c : res.value("checks", nlohmann::json::array()))
        r.checks.push_back({c.value("check", ""), c.value("ok", false), c.value("detail", "")});
      d.sources.push_back(std::move(r));
    }
    d.total_rto_ms = j.value("total_rto_ms", int64_t{0});
    d.worst_rpo_ms = j.value("worst_rpo_ms", int64_t{0});
    d.passed = j.value("passed", false);
    d.checks_passed = j.value("checks_passed", d.passed);  // records before missed objectives failed a drill
    for (const auto& m : j.value("missed_objectives", nlohmann::json::array()))
      d.missed.push_back({m.value("source", ""), m.value("objective", ""), m.value("measured_ms", int64_t{0}),
                          m.value("objective_ms", int64_t{0})});
    d.rpo_met = j.value("rpo_met", false);
    d.rto_met = j.value("rto_met", false);
    d.deviations = j.value("deviations", std::vector<std::string>{});
    d.failures = j.value("failures", std::vector<std::string>{});
    d.kind = j.value("kind", "drill");
    d.rehearsal = j.value("rehearsal", false);
    d.critical_path_ms = j.value("critical_path_ms", int64_t{0});
    d.promoted = j.value("promoted", "");
    for (const auto& x : j.value("steps", nlohmann::json::array()))
      d.steps.push_back({x.value("name", ""), x.value("command", ""), x.value("ok", false), x.value("rehearsed", false),
                         x.value("started_ms", int64_t{0}), x.value("duration_ms", int64_t{0}), x.value("outcome", ""),
                         x.value("output", "")});
    return d;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

Result<DrillRecord> run_drill(RepositorySet& repos, const std::vector<const plan::SourceSpec*>& list,
                              const std::string& environment, bool allow_production) {
  const plan::Plan& plan = repos.plan();
  if (environment == "production" && !allow_production)
    return Error(Code::kInvalidArgument, "a drill restores over its environment: not into production (pass --allow-production to insist)");
  if (list.empty()) return Error(Code::kInvalidArgument, "the plan has no sources to drill");
  DrillRecord d;
  d.plan = plan.file;
  d.environment = environment;
  d.host = platform::hostname();
  d.started_ns = now_unix_ns();
  d.rpo_objective_ms = plan.rpo_ns / kNsPerMs;
  d.rto_objective_ms = plan.rto_ns / kNsPerMs;
  int64_t start_mono = monotonic_ns();
  bool all_points = true, all_ok = true;
  std::function<Status(const plan::SourceSpec&)> hook;
  if (!plan.drills.after_restore.empty())
    hook = [&](const plan::SourceSpec& s) { return run_after_restore(plan.drills.after_restore, s, environment); };
  for (const auto* s : list) {
    // RPO: how old the newest restorable point is as the drill starts.
    NewestPoint np = newest_point(repos, *s);
    RestoreRun run = restore_source(repos, *s, environment, std::nullopt, hook);
    DrillSourceResult r = drill_result_of(*s, run);
    if (!np.error.empty()) {
      d.failures.push_back(fmt::format("{}: repository {} cannot be opened: {}", s->name, s->repository, np.error));
      r.ok = false;
      all_points = false;
    } else if (!np.point_ns) {
      d.failures.push_back(fmt::format("{}: no restorable backup", s->name));
      r.ok = false;
      all_points = false;
    } else {
      int64_t rpo = std::max<int64_t>(0, (d.started_ns - *np.point_ns) / kNsPerMs);
      r.rpo_ms = rpo;
      d.worst_rpo_ms = std::max(d.worst_rpo_ms, rpo);
      if (rpo * kNsPerMs > plan.rpo_ns) d.missed.push_back({s->name, "rpo", rpo, plan.rpo_ns / kNsPerMs});
    }
    if (r.rto_ms * kNsPerMs > plan.rto_ns) d.missed.push_back({s->name, "rto", r.rto_ms, plan.rto_ns / kNsPerMs});
    const auto& allowed = plan.drills.allow_unvalidated;
    if (run.outcome.ok && s->validation.empty()) {
      if (std::find(allowed.begin(), allowed.end(), s->name) == allowed.end()) d.missed.push_back({s->name, "validation", 0, 0});
      else d.deviations.push_back(fmt::format("{}: no validation ran (allowed by drills.allow_unvalidated): the restore is unproven", s->name));
    }
    for (const auto& c : r.checks)
      if (!c.ok) d.failures.push_back(fmt::format("{}: check {} failed: {}", s->name, c.name, c.detail));
    bool a_check_failed = std::any_of(r.checks.begin(), r.checks.end(), [](const auto& c) { return !c.ok; });
    if (!run.outcome.ok && !a_check_failed) d.failures.push_back(fmt::format("{}: {}", s->name, run.outcome.error));
    all_ok = all_ok && r.ok;
    d.sources.push_back(std::move(r));
  }
  d.total_rto_ms = (monotonic_ns() - start_mono) / kNsPerMs;
  if (d.total_rto_ms * kNsPerMs > plan.rto_ns) d.missed.push_back({"", "rto", d.total_rto_ms, plan.rto_ns / kNsPerMs});
  d.checks_passed = all_ok;
  // A drill proves what the plan asks or it fails: missed objectives fail it too (exit 4, not 1).
  d.passed = all_ok && d.missed.empty();
  d.rpo_met = all_points && d.worst_rpo_ms * kNsPerMs <= plan.rpo_ns;
  d.rto_met = d.total_rto_ms * kNsPerMs <= plan.rto_ns;
  // The record lives with the backups it proves: a `drill` snapshot in the first source's repository.
  // When that cannot be written (the repository does not open), the drill has failed and says so.
  Status stored = store_drill_record(repos, list[0]->repository, list, d);
  if (!stored) {
    d.passed = d.checks_passed = false;
    d.failures.push_back("the drill record could not be stored: " + stored.message());
  }
  return d;
}

std::string drill_markdown(const DrillRecord& d) {
  std::string title = d.kind == "failover" ? "Failover" : d.rehearsal ? "Failover drill" : "Recovery drill";
  std::string md = fmt::format("# {} {} — environment {}\n\n", title, format_rfc3339(d.started_ns), d.environment);
  // A source without a restorable point has no RPO to show: say so instead of "worst 0ms".
  size_t pointless = std::count_if(d.sources.begin(), d.sources.end(), [](const auto& s) { return !s.rpo_ms; });
  std::string worst = pointless ? fmt::format("{} source(s) with no restorable point{}", pointless,
                                              d.worst_rpo_ms ? fmt::format(", worst of the others {}", format_duration_ms(d.worst_rpo_ms)) : "")
                                : "worst " + format_duration_ms(d.worst_rpo_ms);
  md += fmt::format("Plan: `{}`. Objectives: RPO {}, RTO {}. Result: **{}**; RPO {} ({}), RTO {} (total {}).\n\n", d.plan,
                    format_duration_ms(d.rpo_objective_ms), format_duration_ms(d.rto_objective_ms), d.passed ? "passed" : "FAILED",
                    d.rpo_met ? "met" : "NOT met", worst, d.rto_met ? "met" : "NOT met", format_duration_ms(d.total_rto_ms));
  md += "## Steps\n\n| # | source | kind | restored point | RTO | RPO | checks | result |\n|---|---|---|---|---|---|---|---|\n";
  int n = 0;
  for (const auto& s : d.sources) {
    std::string checks;
    for (const auto& c : s.checks) checks += fmt::format("{}{} {}", checks.empty() ? "" : ", ", c.name, c.ok ? "ok" : "FAILED");
    md += fmt::format("| {} | {} | {} | {} | {} | {} | {} | {} |\n", ++n, s.source, s.kind, s.point.empty() ? "—" : s.point,
                      format_duration_ms(s.rto_ms), s.rpo_ms ? format_duration_ms(*s.rpo_ms) : "—", checks.empty() ? "—" : checks,
                      s.ok ? "ok" : "failed: " + s.error);
  }
  if (d.kind == "failover" || d.rehearsal) {
    md += fmt::format("\n## Failover steps\n\nCritical path (sources in their after: order, then the steps): {}.{}\n\n",
                      format_duration_ms(d.critical_path_ms), d.promoted.empty() ? "" : " " + d.promoted);
    md += "| # | step | started | took | result |\n|---|---|---|---|---|\n";
    int k = 0;
    for (const auto& x : d.steps)
      md += fmt::format("| {} | {} | +{} | {} | {} |\n", ++k, x.name, format_duration_ms(x.started_ms), format_duration_ms(x.duration_ms),
                        x.ok ? "ok" : "FAILED: " + x.outcome);
    if (d.steps.empty()) md += "| — | no steps ran | | | |\n";
  }
  md += "\n## Missed objectives\n\n";
  if (d.missed.empty()) md += "None.\n";
  for (const auto& m : d.missed) md += "- " + m.to_string() + "\n";
  md += "\n## Deviations\n\n";
  if (d.deviations.empty()) md += "None.\n";
  for (const auto& x : d.deviations) md += "- " + x + "\n";
  md += "\n## Failures\n\n";
  if (d.failures.empty()) md += "None.\n";
  for (const auto& x : d.failures) md += "- " + x + "\n";
  return md;
}

std::vector<std::pair<repo::SnapshotRef, DrillRecord>> stored_drills(const std::vector<repo::SnapshotRef>& all) {
  std::vector<std::pair<repo::SnapshotRef, DrillRecord>> out;
  for (const auto& r : all) {
    if (r.snapshot.source != "drill") continue;
    if (auto d = DrillRecord::from_json(r.snapshot.metadata)) out.emplace_back(r, std::move(*d));
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.first.snapshot.time_ns < b.first.snapshot.time_ns; });
  return out;
}

std::optional<std::pair<int64_t, bool>> last_drill_of(const std::vector<repo::SnapshotRef>& all, const std::string& source) {
  std::optional<std::pair<int64_t, bool>> last;
  for (const auto& [ref, d] : stored_drills(all))
    for (const auto& s : d.sources)
      if (s.source == source) last = std::make_pair(ref.snapshot.time_ns, s.ok);
  return last;
}

std::optional<int64_t> drill_due_ns(const std::string& cron, std::optional<int64_t> last_ns) {
  auto c = CronSchedule::parse(cron);
  if (!c) return std::nullopt;
  if (!last_ns) return now_unix_ns();
  int64_t t = c->next_after(*last_ns / 1000000000LL);
  if (t < 0) return std::nullopt;
  return t * 1000000000LL;
}

}  // namespace lifeboat::ops
