// Plan restores: a source into an environment as of an instant, then its validations on the target.
#include <fmt/format.h>

#include "core/time.h"
#include "ops/plan_ops.h"
#include "repo/lock.h"

namespace lifeboat::ops {

namespace {
}  // namespace

RestoreRun restore_source(RepositorySet& repos, const plan::SourceSpec& s, const std::string& environment,
                          std::optional<int64_t> at_ns, const std::function<Status(const plan::SourceSpec&)>& after_restore,
                          const nlohmann::json& overrides) {
  RestoreOptions o;
  o.after_restore = after_restore;
  o.overrides = overrides;
  return restore_source(repos, s, environment, at_ns, o);
}

RestoreRun restore_source(RepositorySet& repos, const plan::SourceSpec& s, const std::string& environment,
                          std::optional<int64_t> at_ns, const RestoreOptions& options) {
  const auto& overrides = options.overrides;
  const auto& after_restore = options.after_restore;
  RestoreRun run;
  run.outcome = timed_outcome(s, [&](SourceOutcome& o) -> Status {
    if (!s.entry) return Error(Code::kInvalidArgument, fmt::format("source kind {} cannot restore", s.kind));
    LB_ASSIGN_OR_RETURN(auto settings, environment_settings(s, environment));
    if (!overrides.empty()) {
      nlohmann::json merged = s.settings;
      if (auto e = s.environments.find(environment); e != s.environments.end()) merged.merge_patch(e->second);
      merged.merge_patch(overrides);
      std::vector<sources::SettingsProblem> problems;
      settings = s.entry->parse(merged, sources::SettingsFor::kPlan, problems);
      if (!settings || !problems.empty())
        return Error(Code::kInvalidArgument,
                     fmt::format("source {}: {}", s.name, sources::problems_as_flags(s.entry->options, problems)));
    }
    // The shared handle (runs on one repository take turns), or one of the restore's own so that
    // restores from one repository run side by side (a failover's).
    std::optional<RepositorySet::Lease> lease;
    std::unique_ptr<repo::Repository> own;
    if (options.own_handle) {
      std::string name = options.repository;
      if (name.empty()) {
        LB_ASSIGN_OR_RETURN(auto l, repos.acquire_readable(s.repository));  // resolves a lost repository to its copy
        name = l.name();
      }
      LB_ASSIGN_OR_RETURN(own, repos.separate_handle(name));
      run.repository = name;
    } else {
      LB_ASSIGN_OR_RETURN(auto l, options.repository.empty() ? repos.acquire_readable(s.repository) : repos.acquire(options.repository));
      run.repository = l.name();
      lease.emplace(std::move(l));
    }
    repo::Repository& repo = own ? *own : lease->get();
    LB_ASSIGN_OR_RETURN(auto lock, repo::RepoLock::acquire(repo, repo::LockKind::kShared));
    ProgressCounters progress;
    sources::SourceContext ctx{repo, s.name, progress};
    ctx.resume = options.resume;
    ctx.predict = options.validate;
    int64_t restore_start = monotonic_ns();
    LB_ASSIGN_OR_RETURN(auto r, s.entry->restore(ctx, *settings, at_ns));
    int64_t restore_ms = (monotonic_ns() - restore_start) / kNsPerMs;
    run.point_ns = r.point_ns;
    run.resume = r.resume;
    o.result = {{"snapshot", r.snapshot_id}, {"point", format_rfc3339(r.point_ns)}, {"point_ns", r.point_ns},
                {"details", r.details}};
    if (run.repository != s.repository) o.result["repository"] = run.repository;
    o.result["restore_ms"] = restore_ms;
    if (at_ns) o.result["behind_ms"] = std::max<int64_t>(0, (*at_ns - r.point_ns + kNsPerMs - 1) / kNsPerMs);  // 1 ns short is short
    if (!r.limit.empty()) o.result["limit"] = r.limit;
    run.report = r.report;
    if (after_restore) LB_RETURN_IF_ERROR(after_restore(s));
    int64_t checks_start = monotonic_ns();
    if (options.validate && !s.validation.empty() && !r.dry_run) {
      try {
        run.checks = s.entry->validate(ctx, *settings, r, s.validation);
      } catch (const std::exception& e) {
        run.checks.clear();
        for (const auto& name : s.validation) run.checks.push_back({name, false, fmt::format("internal error: {}", e.what())});
      }
    }
    nlohmann::json checks = nlohmann::json::array();
    bool checks_ok = true;
    for (const auto& c : run.checks) {
      checks.push_back({{"check", c.name}, {"ok", c.ok}, {"detail", c.detail}});
      checks_ok = checks_ok && c.ok;
    }
    o.result["checks"] = checks;
    o.result["checks_ms"] = (monotonic_ns() - checks_start) / kNsPerMs;
    if (!checks_ok) {
      // Which check failed and what it saw: the line an operator reads first.
      std::vector<std::string> failed;
      for (const auto& c : run.checks)
        if (!c.ok) failed.push_back(fmt::format("{}: {}", c.name, c.detail));
      return Error(Code::kCorrupt, fmt::format("source {}: validation failed after restore: {}", s.name, fmt::join(failed, "; ")));
    }
    return Status::ok();
  });
  if (!run.outcome.result.contains("checks")) run.outcome.result["checks"] = nlohmann::json::array();
  return run;
}

std::vector<SourceOutcome> run_restores(RepositorySet& repos, const std::vector<const plan::SourceSpec*>& list,
                                        const std::string& environment, std::optional<int64_t> at_ns) {
  std::vector<SourceOutcome> out;
  for (const auto* s : list) out.push_back(restore_source(repos, *s, environment, at_ns).outcome);
  return out;
}

}  // namespace lifeboat::ops
