// Plan operations over the source registry.
#include "ops/plan_ops.h"

#include <fmt/format.h>

#include <cstdlib>
#include <fstream>
#include <functional>
#include <map>

#include "core/platform_user.h"
#include "core/time.h"
#include "repo/copy.h"
#include "repo/lock.h"
#include "repo/retention.h"
#include "repo/tree_walk.h"
#include "repo/write_session.h"
#include "sources/registry.h"
#include "storage/backend.h"

namespace lifeboat::ops {

namespace {

constexpr int64_t kMs = 1000000;

Result<std::string> repository_password(const plan::RepositorySpec& r) {
  if (!r.password_file.empty()) {
    std::ifstream in(r.password_file);
    std::string line;
    if (!in || !std::getline(in, line))
      return Error(Code::kInvalidArgument, fmt::format("repository {}: cannot read password file {}", r.name, r.password_file));
    return line;
  }
  const char* p = std::getenv(r.password_env.c_str());
  if (!p) return Error(Code::kInvalidArgument, fmt::format("repository {}: set {} (its password)", r.name, r.password_env));
  return std::string(p);
}

std::vector<repo::SnapshotRef> snapshots_of(const std::vector<repo::SnapshotRef>& all, const std::string& source) {
  std::vector<repo::SnapshotRef> out;
  for (const auto& s : all)
    if (s.snapshot.has_tag(sources::source_tag(source))) out.push_back(s);
  return out;
}

repo::RetentionPolicy policy_of(const plan::RetentionSpec& r) {
  repo::RetentionPolicy p;
  p.keep_last = r.last;
  p.keep_hourly = r.hourly;
  p.keep_daily = r.daily;
  p.keep_weekly = r.weekly;
  p.keep_monthly = r.monthly;
  p.keep_yearly = r.yearly;
  if (!r.within.empty())
    if (auto d = parse_duration(r.within)) p.keep_within_ns = *d;
  return p;
}

// Retention for one source: its tagged snapshots only. Keep-forever sources are pinned instead.
Result<nlohmann::json> apply_source_retention(repo::Repository& repo, const plan::SourceSpec& s, const std::string& new_id) {
  if (s.retention.forever) {
    LB_RETURN_IF_ERROR(repo.pin(new_id, "plan: " + s.name + " is kept forever"));
    return nlohmann::json{{"pinned", new_id}};
  }
  auto policy = policy_of(s.retention);
  if (policy.empty()) return nlohmann::json{{"policy", "none"}};
  LB_ASSIGN_OR_RETURN(auto all, repo.list_snapshots());
  LB_ASSIGN_OR_RETURN(auto pinned, repo.pinned());
  auto decisions = repo::apply_retention(snapshots_of(all, s.name), policy, pinned);
  uint64_t removed = 0, kept_locked = 0;
  for (const auto& d : decisions) {
    if (d.keep) continue;
    LB_ASSIGN_OR_RETURN(int64_t locked, repo.retained_until({storage::FileType::kSnapshot, d.ref.id}));
    if (locked) {
      ++kept_locked;
      continue;
    }
    LB_RETURN_IF_ERROR(repo.backend().remove({storage::FileType::kSnapshot, d.ref.id}));
    ++removed;
  }
  return nlohmann::json{{"policy", policy.describe()}, {"forgotten", removed}, {"kept_by_object_lock", kept_locked}};
}

// After a backup: every tree of the new snapshot loads and every content blob is in the index.
Result<nlohmann::json> verify_snapshot(repo::Repository& repo, const std::string& id) {
  LB_RETURN_IF_ERROR(repo.reload_index());
  LB_ASSIGN_OR_RETURN(auto ref, repo.load_snapshot(id));
  uint64_t nodes = 0, blobs = 0;
  Status s = repo::walk_tree(repo, ref.snapshot.tree, [&](const std::string& path, const repo::Node& n) -> Status {
    ++nodes;
    for (const auto& b : n.content) {
      if (!repo.index().contains(b)) return Error(Code::kCorrupt, fmt::format("{}: a blob is missing from the index", path));
      ++blobs;
    }
    return Status::ok();
  });
  LB_RETURN_IF_ERROR(s);
  return nlohmann::json{{"nodes", nodes}, {"blobs", blobs}};
}

// Copies (second regions): every snapshot of the source the copy lacks, oplog slices included, so a
// point-in-time restore works from the copy too. A copy repository that does not exist yet is created
// sharing the primary's keys, so blobs travel sealed.
Result<nlohmann::json> copy_to_regions(const plan::Plan& plan, const plan::SourceSpec& s, repo::Repository& primary) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& r : plan.repositories) {
    if (r.copy_of != s.repository) continue;
    auto dst = open_plan_repository(plan, r.name);
    if (!dst && dst.status().code() == Code::kRepoMissing) {
      LB_ASSIGN_OR_RETURN(auto backend, storage::open_backend(r.url));
      LB_ASSIGN_OR_RETURN(std::string password, repository_password(r));
      repo::InitOptions o;
      o.master = primary.master_key();
      o.chunker = primary.config().chunker;
      o.pack_size_bytes = primary.config().pack_size_bytes;
      if (!r.object_lock.empty()) {
        LB_ASSIGN_OR_RETURN(o.object_lock_ns, parse_duration(r.object_lock));
      }
      auto created = repo::Repository::init(std::move(backend), password, o);
      if (!created) return created.status().with_context("creating copy repository " + r.name);
      dst = std::move(created);
    }
    if (!dst) return dst.status();
    LB_ASSIGN_OR_RETURN(auto lock, repo::RepoLock::acquire(**dst, repo::LockKind::kShared));
    LB_ASSIGN_OR_RETURN(auto all, primary.list_snapshots());
    std::vector<repo::SnapshotRef> mine;
    for (const auto& x : all)
      if (x.snapshot.has_tag(sources::source_tag(s.name)) ||
          (x.snapshot.source == "mongodb-oplog" && !x.snapshot.paths.empty() && x.snapshot.paths[0] == s.name))
        mine.push_back(x);
    auto rep = repo::copy_snapshots(primary, **dst, mine, true);
    if (!rep) return rep.status().with_context("copy to " + r.name);
    out.push_back({{"repository", r.name}, {"snapshots_copied", rep->snapshots_copied}, {"bytes_sent", rep->bytes_sent},
                   {"mode", rep->same_keys ? "sealed" : "re-encrypted"}, {"blobs_verified", rep->blobs_verified}});
  }
  return out;
}

// Runs one source's work, timing it and turning its status into the outcome (never stopping the others).
SourceOutcome timed_outcome(const plan::SourceSpec& s, const std::function<Status(SourceOutcome&)>& work) {
  SourceOutcome o{s.name, s.kind};
  int64_t start = monotonic_ns();
  Status st = work(o);
  o.ok = st.is_ok();
  o.error = st.message();
  o.duration_ms = (monotonic_ns() - start) / kMs;
  return o;
}

}  // namespace

nlohmann::json SourceOutcome::to_json() const {
  nlohmann::json j = {{"source", source}, {"kind", kind}, {"ok", ok}, {"duration_ms", duration_ms}, {"result", result}};
  if (!error.empty()) j["error"] = error;
  return j;
}

Result<std::unique_ptr<repo::Repository>> open_plan_repository(const plan::Plan& plan, const std::string& name) {
  const auto* r = plan.repository(name);
  if (!r) return Error(Code::kNotFound, fmt::format("the plan has no repository {}", name));
  LB_ASSIGN_OR_RETURN(auto backend, storage::open_backend(r->url));
  LB_ASSIGN_OR_RETURN(std::string password, repository_password(*r));
  auto repo = repo::Repository::open(std::move(backend), password);
  if (!repo) return repo.status().with_context("repository " + name);
  return repo;
}

Result<nlohmann::json> environment_settings(const plan::SourceSpec& s, const std::string& env) {
  nlohmann::json out = s.settings;
  if (env.empty()) return out;
  auto it = s.environments.find(env);
  if (it == s.environments.end()) {
    std::vector<std::string> names;
    for (const auto& [k, v] : s.environments) names.push_back(k);
    return Error(Code::kInvalidArgument, fmt::format("{}: source {} has no environment {} (it has: {})", plan_where(s), s.name,
                                                     env, names.empty() ? "none" : fmt::format("{}", fmt::join(names, ", "))));
  }
  out.merge_patch(it->second);
  return out;
}

std::string plan_where(const plan::SourceSpec& s) { return "sources." + s.name; }

Result<std::vector<const plan::SourceSpec*>> select_sources(const plan::Plan& plan, const std::vector<std::string>& names) {
  std::vector<const plan::SourceSpec*> out;
  if (names.empty()) {
    for (const auto& s : plan.sources) out.push_back(&s);
    return out;
  }
  for (const auto& n : names) {
    const auto* s = plan.source(n);
    if (!s) {
      std::vector<std::string> all;
      for (const auto& x : plan.sources) all.push_back(x.name);
      return Error(Code::kNotFound, fmt::format("the plan has no source {} (it has: {})", n, fmt::join(all, ", ")));
    }
    out.push_back(s);
  }
  return out;
}

std::vector<SourceOutcome> run_backups(const plan::Plan& plan, const std::vector<const plan::SourceSpec*>& list) {
  std::vector<SourceOutcome> out;
  for (const auto* s : list) {
    out.push_back(timed_outcome(*s, [&](SourceOutcome& o) -> Status {
      const auto* kind = sources::find_source_kind(s->kind);
      if (!kind || !kind->backup) return Error(Code::kInvalidArgument, fmt::format("source kind {} cannot back up", s->kind));
      LB_ASSIGN_OR_RETURN(auto repo, open_plan_repository(plan, s->repository));
      LB_ASSIGN_OR_RETURN(auto lock, repo::RepoLock::acquire(*repo, repo::LockKind::kShared));
      ProgressCounters progress;
      LB_ASSIGN_OR_RETURN(auto b, kind->backup(*repo, s->name, s->settings, progress));
      o.result = {{"snapshot", b.snapshot_id}, {"summary", b.summary}, {"warnings", b.warnings}};
      LB_ASSIGN_OR_RETURN(o.result["verified"], verify_snapshot(*repo, b.snapshot_id));
      LB_ASSIGN_OR_RETURN(o.result["retention"], apply_source_retention(*repo, *s, b.snapshot_id));
      LB_ASSIGN_OR_RETURN(o.result["copies"], copy_to_regions(plan, *s, *repo));
      return Status::ok();
    }));
  }
  return out;
}

std::vector<SourceOutcome> run_restores(const plan::Plan& plan, const std::vector<const plan::SourceSpec*>& list,
                                        const std::string& environment, std::optional<int64_t> at_ns) {
  std::vector<SourceOutcome> out;
  for (const auto* s : list) {
    out.push_back(timed_outcome(*s, [&](SourceOutcome& o) -> Status {
      const auto* kind = sources::find_source_kind(s->kind);
      if (!kind || !kind->restore) return Error(Code::kInvalidArgument, fmt::format("source kind {} cannot restore", s->kind));
      LB_ASSIGN_OR_RETURN(auto settings, environment_settings(*s, environment));
      LB_ASSIGN_OR_RETURN(auto repo, open_plan_repository(plan, s->repository));
      LB_ASSIGN_OR_RETURN(auto lock, repo::RepoLock::acquire(*repo, repo::LockKind::kShared));
      ProgressCounters progress;
      LB_ASSIGN_OR_RETURN(auto r, kind->restore(*repo, s->name, settings, at_ns, s->validation, progress));
      nlohmann::json checks = nlohmann::json::array();
      bool checks_ok = true;
      for (const auto& c : r.checks) {
        checks.push_back({{"check", c.name}, {"ok", c.ok}, {"detail", c.detail}});
        checks_ok = checks_ok && c.ok;
      }
      o.result = {{"snapshot", r.snapshot_id}, {"point", format_rfc3339(r.point_ns)}, {"point_ns", r.point_ns},
                  {"checks", checks}, {"details", r.details}};
      if (at_ns) o.result["behind_ms"] = std::max<int64_t>(0, (*at_ns - r.point_ns) / kMs);
      if (!r.limit.empty()) o.result["limit"] = r.limit;
      if (!checks_ok) return Error(Code::kCorrupt, fmt::format("source {}: validation failed after restore", s->name));
      return Status::ok();
    }));
  }
  return out;
}

Result<nlohmann::json> run_drill(const plan::Plan& plan, const std::vector<const plan::SourceSpec*>& list,
                                 const std::string& environment, bool allow_production) {
  if (environment == "production" && !allow_production)
    return Error(Code::kInvalidArgument, "a drill restores over its environment: not into production (pass --allow-production to insist)");
  if (list.empty()) return Error(Code::kInvalidArgument, "the plan has no sources to drill");
  int64_t started = now_unix_ns();
  int64_t start_mono = monotonic_ns();
  // RPO: how old the newest restorable point of each source is as the drill starts.
  std::map<std::string, std::optional<int64_t>> newest;
  for (const auto* s : list) {
    const auto* kind = sources::find_source_kind(s->kind);
    auto repo = open_plan_repository(plan, s->repository);
    if (!repo || !kind || !kind->newest_point) continue;
    auto all = (*repo)->list_snapshots();
    if (all) newest[s->name] = kind->newest_point(*all, s->name);
  }
  auto outcomes = run_restores(plan, list, environment, std::nullopt);
  int64_t total_ms = (monotonic_ns() - start_mono) / kMs;
  nlohmann::json sources = nlohmann::json::array();
  std::vector<std::string> deviations, failures;
  int64_t worst_rpo_ms = 0;
  bool all_ok = true;
  for (const auto& o : outcomes) {
    nlohmann::json j = o.to_json();
    j["rto_ms"] = o.duration_ms;
    auto np = newest[o.source];
    if (np) {
      int64_t rpo = std::max<int64_t>(0, (started - *np) / kMs);
      j["rpo_ms"] = rpo;
      worst_rpo_ms = std::max(worst_rpo_ms, rpo);
      if (rpo * kMs > plan.rpo_ns)
        deviations.push_back(fmt::format("{}: RPO {} exceeds the objective {}", o.source, format_duration_ms(rpo),
                                         format_duration_ms(plan.rpo_ns / kMs)));
    } else {
      j["rpo_ms"] = nullptr;
      deviations.push_back(fmt::format("{}: no restorable backup", o.source));
    }
    if (o.duration_ms * kMs > plan.rto_ns)
      deviations.push_back(fmt::format("{}: RTO {} exceeds the objective {}", o.source, format_duration_ms(o.duration_ms),
                                       format_duration_ms(plan.rto_ns / kMs)));
    if (!o.ok) failures.push_back(fmt::format("{}: {}", o.source, o.error));
    all_ok = all_ok && o.ok;
    sources.push_back(j);
  }
  if (total_ms * kMs > plan.rto_ns)
    deviations.push_back(fmt::format("total RTO {} exceeds the objective {}", format_duration_ms(total_ms),
                                     format_duration_ms(plan.rto_ns / kMs)));
  nlohmann::json drill = {{"kind", "drill"},
                          {"plan", plan.file},
                          {"environment", environment},
                          {"started", format_rfc3339(started)},
                          {"started_ns", started},
                          {"host", platform::hostname()},
                          {"objectives", {{"rpo_ms", plan.rpo_ns / kMs}, {"rto_ms", plan.rto_ns / kMs}}},
                          {"sources", sources},
                          {"total_rto_ms", total_ms},
                          {"worst_rpo_ms", worst_rpo_ms},
                          {"passed", all_ok},
                          {"rpo_met", worst_rpo_ms * kMs <= plan.rpo_ns && newest.size() == list.size()},
                          {"rto_met", total_ms * kMs <= plan.rto_ns},
                          {"deviations", deviations},
                          {"failures", failures}};
  // The record lives with the backups it proves: a `drill` snapshot in the first source's repository.
  LB_ASSIGN_OR_RETURN(auto repo, open_plan_repository(plan, list[0]->repository));
  LB_ASSIGN_OR_RETURN(auto lock, repo::RepoLock::acquire(*repo, repo::LockKind::kShared));
  LB_RETURN_IF_ERROR(repo->load_index());
  repo::WriteSession session(*repo);
  LB_ASSIGN_OR_RETURN(auto tree, session.store_tree(repo::Tree{}));
  repo::Snapshot snap;
  snap.time_ns = started;
  snap.hostname = platform::hostname();
  snap.username = platform::username();
  snap.source = "drill";
  snap.paths = {plan.file};
  snap.tags = {"drill", "environment:" + environment};
  snap.tree = tree;
  snap.metadata = drill;
  LB_ASSIGN_OR_RETURN(std::string id, session.commit(snap));
  drill["snapshot"] = id;
  return drill;
}

std::string drill_markdown(const nlohmann::json& d) {
  std::string md = fmt::format("# Recovery drill {} — environment {}\n\n", d.value("started", ""), d.value("environment", ""));
  md += fmt::format("Plan: `{}`. Objectives: RPO {}, RTO {}. Result: **{}**; RPO {} (worst {}), RTO {} (total {}).\n\n",
                    d.value("plan", ""), format_duration_ms(d["objectives"].value("rpo_ms", int64_t{0})),
                    format_duration_ms(d["objectives"].value("rto_ms", int64_t{0})), d.value("passed", false) ? "passed" : "FAILED",
                    d.value("rpo_met", false) ? "met" : "NOT met", format_duration_ms(d.value("worst_rpo_ms", int64_t{0})),
                    d.value("rto_met", false) ? "met" : "NOT met", format_duration_ms(d.value("total_rto_ms", int64_t{0})));
  md += "## Steps\n\n| # | source | kind | restored point | RTO | RPO | checks | result |\n|---|---|---|---|---|---|---|---|\n";
  int n = 0;
  for (const auto& s : d["sources"]) {
    std::string checks;
    for (const auto& c : s["result"].value("checks", nlohmann::json::array()))
      checks += fmt::format("{}{} {}", checks.empty() ? "" : ", ", c.value("check", ""), c.value("ok", false) ? "ok" : "FAILED");
    md += fmt::format("| {} | {} | {} | {} | {} | {} | {} | {} |\n", ++n, s.value("source", ""), s.value("kind", ""),
                      s["result"].value("point", "—"), format_duration_ms(s.value("rto_ms", int64_t{0})),
                      s["rpo_ms"].is_null() ? "—" : format_duration_ms(s["rpo_ms"].get<int64_t>()),
                      checks.empty() ? "—" : checks, s.value("ok", false) ? "ok" : "failed: " + s.value("error", ""));
  }
  md += "\n## Deviations\n\n";
  if (d["deviations"].empty()) md += "None.\n";
  for (const auto& x : d["deviations"]) md += "- " + x.get<std::string>() + "\n";
  md += "\n## Failures\n\n";
  if (d["failures"].empty()) md += "None.\n";
  for (const auto& x : d["failures"]) md += "- " + x.get<std::string>() + "\n";
  return md;
}

Result<nlohmann::json> plan_status(const plan::Plan& plan) {
  nlohmann::json out = nlohmann::json::array();
  int64_t now = now_unix_ns();
  std::map<std::string, std::vector<repo::SnapshotRef>> by_repo;
  for (const auto& s : plan.sources) {
    nlohmann::json j = {{"source", s.name}, {"kind", s.kind}, {"repository", s.repository}};
    if (!by_repo.count(s.repository)) {
      auto repo = open_plan_repository(plan, s.repository);
      if (!repo) {
        j["error"] = repo.status().message();
        out.push_back(j);
        continue;
      }
      LB_ASSIGN_OR_RETURN(by_repo[s.repository], (*repo)->list_snapshots());
    }
    const auto& all = by_repo[s.repository];
    auto mine = snapshots_of(all, s.name);
    j["snapshots"] = mine.size();
    if (!mine.empty()) {
      j["last_backup"] = format_rfc3339(mine.back().snapshot.time_ns / 1000000000 * 1000000000);
      j["last_backup_age_ms"] = (now - mine.back().snapshot.time_ns) / kMs;
    }
    const auto* kind = sources::find_source_kind(s.kind);
    if (kind && kind->newest_point) {
      if (auto p = kind->newest_point(all, s.name)) {
        j["newest_point"] = format_rfc3339(*p / 1000000000 * 1000000000);
        j["rpo_ms"] = std::max<int64_t>(0, (now - *p) / kMs);
        j["rpo_met"] = now - *p <= plan.rpo_ns;
      }
    }
    for (auto it = all.rbegin(); it != all.rend(); ++it)
      if (it->snapshot.source == "drill") {
        j["last_drill"] = format_rfc3339(it->snapshot.time_ns);
        j["last_drill_passed"] = it->snapshot.metadata.value("passed", false);
        break;
      }
    out.push_back(j);
  }
  return out;
}

}  // namespace lifeboat::ops
