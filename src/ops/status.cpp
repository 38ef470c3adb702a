// Plan status: per source, the last backup, the newest restorable point, the RPO now, the last drill.
#include <fmt/format.h>

#include <map>

#include "core/time.h"
#include "ops/drill.h"
#include "ops/plan_ops.h"

namespace lifeboat::ops {

namespace {
}  // namespace

NewestPoint newest_point(RepositorySet& repos, const plan::SourceSpec& s) {
  NewestPoint out;
  auto repo = repos.acquire(s.repository);
  if (!repo) {
    out.error = repo.status().message();
    return out;
  }
  auto all = (*repo)->list_snapshots();
  if (!all) {
    out.error = all.status().with_context("repository " + s.repository).message();
    return out;
  }
  if (s.entry && s.entry->newest_point) out.point_ns = s.entry->newest_point(*all, s.name);
  return out;
}

Result<nlohmann::json> plan_status(RepositorySet& repos, SnapshotListings* listings) {
  const plan::Plan& plan = repos.plan();
  nlohmann::json out = nlohmann::json::array();
  int64_t now = now_unix_ns();
  SnapshotListings by_repo;
  for (const auto& s : plan.sources) {
    nlohmann::json j = {{"source", s.name}, {"kind", s.kind}, {"repository", s.repository}};
    if (!by_repo.count(s.repository)) {
      auto repo = repos.acquire(s.repository);
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
      j["last_backup_age_ms"] = (now - mine.back().snapshot.time_ns) / kNsPerMs;
    }
    if (s.entry && s.entry->newest_point) {
      if (auto p = s.entry->newest_point(all, s.name)) {
        j["newest_point"] = format_rfc3339(*p / 1000000000 * 1000000000);
        j["rpo_ms"] = std::max<int64_t>(0, (now - *p) / kNsPerMs);
        j["rpo_met"] = now - *p <= plan.rpo_ns;
      }
    }
    // The newest drill that restored this source, and its cadence when the plan gives one.
    auto last = last_drill_of(all, s.name);
    if (last) {
      j["last_drill"] = format_rfc3339(last->first);
      j["last_drill_passed"] = last->second;
    }
    std::string cadence = s.drill_schedule.empty() ? plan.drills.schedule : s.drill_schedule;
    if (!cadence.empty()) {
      j["drill_schedule"] = cadence;
      if (auto due = drill_due_ns(cadence, last ? std::optional<int64_t>(last->first) : std::nullopt)) {
        j["drill_due"] = format_rfc3339(*due);
        j["drill_overdue"] = *due <= now;
      }
    }
    out.push_back(j);
  }
  if (listings) *listings = std::move(by_repo);
  return out;
}

}  // namespace lifeboat::ops
