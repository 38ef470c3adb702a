#include "ops/maintenance.h"

#include <fmt/format.h>

#include "core/names.h"
#include "plan/plan.h"
#include "core/time.h"
#include "repo/check.h"
#include "repo/lock.h"
#include "repo/prune.h"
#include "repo/write_session.h"

namespace lifeboat::ops {

namespace {

Result<nlohmann::json> prune_now(repo::Repository& r) {
  LB_ASSIGN_OR_RETURN(auto lock, repo::RepoLock::acquire(r, repo::LockKind::kMaintenance));
  LB_ASSIGN_OR_RETURN(auto rep, repo::prune_repository(r, repo::PruneOptions{}, *lock));
  return nlohmann::json{{"packs_deleted", rep.packs_deleted}, {"packs_repacked", rep.packs_repacked},
                        {"bytes_deleted", rep.bytes_deleted}, {"blobs_unused", rep.blobs_unused},
                        {"tombstones_waiting", rep.tombstones_waiting}, {"locks_removed", rep.locks_removed}};
}

Result<nlohmann::json> check_now(repo::Repository& r, uint32_t subset_t, int64_t now_ns) {
  repo::CheckOptions o;
  if (subset_t) {
    o.read_data = true;
    o.subset_t = subset_t;
    o.subset_n = static_cast<uint32_t>((now_ns / (86400 * kNsPerSecond)) % subset_t) + 1;  // the day's T-th
  }
  LB_ASSIGN_OR_RETURN(auto lock, repo::RepoLock::acquire(r, repo::LockKind::kExclusive));
  LB_ASSIGN_OR_RETURN(auto rep, repo::check_repository(r, o, nullptr));
  nlohmann::json j = {{"snapshots", rep.snapshots}, {"packs", rep.packs}, {"packs_read", rep.packs_read},
                      {"bytes_read", rep.bytes_read}, {"errors", rep.errors}, {"warnings", rep.warnings.size()}};
  if (subset_t) j["read_data_subset"] = fmt::format("{}/{}", o.subset_n, subset_t);
  if (!rep.ok())
    return Error(Code::kCorrupt, fmt::format("check found {} problem(s), the first: {}", rep.errors.size(), rep.errors[0]));
  return j;
}

Status store(repo::Repository& r, const std::string& kind, const nlohmann::json& record, int64_t started_ns) {
  LB_ASSIGN_OR_RETURN(auto lock, repo::RepoLock::acquire(r, repo::LockKind::kShared));
  LB_RETURN_IF_ERROR(r.load_index());
  LB_ASSIGN_OR_RETURN(auto older, r.list_snapshots());
  repo::WriteSession session(r);
  LB_ASSIGN_OR_RETURN(auto tree, session.store_tree(repo::Tree{}));
  repo::Snapshot snap;
  snap.time_ns = started_ns;
  snap.source = repo::Snapshot::kMaintenanceSource;
  snap.tags = {repo::Snapshot::kMaintenanceSource, kind};
  snap.paths = {kind};
  snap.tree = tree;
  snap.metadata = record;
  LB_ASSIGN_OR_RETURN(auto id, session.commit(snap));
  // One record per kind: the newest.
  for (const auto& o : older)
    if (o.snapshot.source == repo::Snapshot::kMaintenanceSource && o.snapshot.has_tag(kind) && o.id != id) (void)r.forget_snapshot(o.id);
  return Status::ok();
}

}  // namespace

Result<nlohmann::json> run_maintenance(RepositorySet& repos, const std::string& repository, const std::string& kind,
                                       int64_t now_ns) {
  const auto* spec = repos.plan().repository(repository);
  if (!spec) return Error(Code::kNotFound, fmt::format("the plan has no repository {}", repository));
  if (kind != "prune" && kind != "check") return Error(Code::kInvalidArgument, fmt::format("no maintenance called {}", kind));
  LB_ASSIGN_OR_RETURN(auto r, repos.acquire(repository));
  int64_t start = monotonic_ns();
  auto result = kind == "prune" ? prune_now(*r) : check_now(*r, spec->read_data_subset, now_ns);
  nlohmann::json record = {{"kind", kind}, {"repository", repository}, {"time", format_rfc3339(now_ns)},
                           {"duration_ms", (monotonic_ns() - start) / kNsPerMs}, {"ok", result.is_ok()}};
  if (result) record["result"] = *result;
  else record["error"] = redact_urls_in(result.status().message());
  Status stored = store(*r, kind, record, now_ns);
  if (!result) return result.status().with_context(fmt::format("{} of repository {}", kind, repository));
  if (!stored) return stored.with_context(fmt::format("recording the {} of repository {}", kind, repository));
  return record;
}

std::map<std::string, nlohmann::json> last_maintenance(const std::vector<repo::SnapshotRef>& all) {
  std::map<std::string, nlohmann::json> out;
  for (const auto& s : all)  // oldest first: the newest wins
    if (s.snapshot.source == repo::Snapshot::kMaintenanceSource) out[s.snapshot.metadata.value("kind", "")] = s.snapshot.metadata;
  return out;
}

nlohmann::json maintenance_status(const plan::Plan& plan, const std::map<std::string, std::vector<repo::SnapshotRef>>& listings) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& r : plan.repositories) {
    auto listed = listings.find(r.name);
    if (listed == listings.end()) continue;
    auto last = last_maintenance(listed->second);
    if (r.prune_schedule.empty() && r.check_schedule.empty() && last.empty()) continue;
    nlohmann::json j = {{"repository", r.name}, {"problems", nlohmann::json::array()}};
    if (!r.prune_schedule.empty()) j["prune_schedule"] = r.prune_schedule;
    if (!r.check_schedule.empty()) j["check_schedule"] = r.check_schedule;
    if (r.read_data_subset) j["read_data_subset"] = fmt::format("1/{}", r.read_data_subset);
    for (const char* kind : {"prune", "check"}) {
      auto it = last.find(kind);
      if (it == last.end()) continue;
      const auto& m = it->second;
      j[std::string("last_") + kind] = {{"time", m.value("time", "")}, {"ok", m.value("ok", false)}};
      if (!m.value("ok", false)) {
        j[std::string("last_") + kind]["error"] = m.value("error", "");
        j["problems"].push_back(fmt::format("repository {}: the last {} ({}) failed: {}", r.name, kind, m.value("time", ""),
                                            m.value("error", "")));
      }
    }
    out.push_back(j);
  }
  return out;
}

std::string maintenance_summary(const nlohmann::json& m) {
  auto last = [&](const std::string& kind) {
    std::string key = "last_" + kind, sched = m.value(kind + "_schedule", "");
    if (!m.contains(key)) return fmt::format("{} never{}", kind, sched.empty() ? "" : " (cron " + sched + ")");
    return fmt::format("{} {} {}", kind, m[key].value("time", ""), m[key].value("ok", false) ? "ok" : "FAILED");
  };
  return fmt::format("{}; {}{}", last("prune"), last("check"),
                     m.contains("read_data_subset") ? " (reads " + m["read_data_subset"].get<std::string>() + " of the data a day)" : "");
}

}  // namespace lifeboat::ops
