// Plan status: per source, the last backup, the newest restorable point, the RPO now, the last drill.
#include <fmt/format.h>

#include <fstream>
#include <map>

#include "core/time.h"
#include "ops/drill.h"
#include "ops/plan_ops.h"

namespace lifeboat::ops {

namespace {
}  // namespace

NewestPoint newest_point(RepositorySet& repos, const plan::SourceSpec& s) {
  NewestPoint out;
  auto repo = repos.acquire_readable(s.repository);
  if (!repo) {
    out.error = repo.status().message();
    return out;
  }
  auto all = (*repo)->list_snapshots();
  if (!all) {
    out.error = all.status().with_context("repository " + repo->name()).message();
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
  // Each copy's listing, for the newest point each repository holds (null: it cannot be read).
  std::map<std::string, std::optional<std::vector<repo::SnapshotRef>>> copies;
  for (const auto& s : plan.sources) {
    nlohmann::json j = {{"source", s.name}, {"kind", s.kind}, {"repository", s.repository}};
    std::string reading = repos.reading_from(s.repository);
    if (!by_repo.count(s.repository)) {
      auto repo = repos.acquire_readable(s.repository);
      auto listed = repo ? (*repo)->list_snapshots() : Result<std::vector<repo::SnapshotRef>>(repo.status());
      if (repo) reading = repo->name();
      if (!listed) {
        j["error"] = listed.status().message();
        j["health"] = "unreachable";
        j["problems"] = {fmt::format("repository {} cannot be read: {}", s.repository, listed.status().message())};
        out.push_back(j);
        continue;
      }
      by_repo[s.repository] = std::move(*listed);
    }
    const auto& all = by_repo[s.repository];
    auto mine = snapshots_of(all, s.name);
    if (reading != s.repository) j["reading_from"] = reading;
    // The newest point each repository holding the source gives (the copy's bounds the RPO of a
    // restore after the region is lost).
    nlohmann::json points = nlohmann::json::object();
    for (const auto* copy : plan.copies_of(s.repository)) {
      if (!copies.count(copy->name)) {
        auto l = repos.acquire(copy->name);
        auto listed = l ? (*l)->list_snapshots() : Result<std::vector<repo::SnapshotRef>>(l.status());
        copies[copy->name] = listed ? std::optional(std::move(*listed)) : std::nullopt;
      }
      const auto& listed = copies[copy->name];
      std::optional<int64_t> p;
      if (listed && s.entry && s.entry->newest_point) p = s.entry->newest_point(*listed, s.name);
      points[copy->name] = p ? nlohmann::json(format_rfc3339(*p)) : nlohmann::json();
      if (p) points[copy->name + "_ns"] = *p;
    }
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
        if (reading == s.repository) {
          points[s.repository] = format_rfc3339(*p);
          points[s.repository + "_ns"] = *p;
        }
      }
    }
    if (!plan.copies_of(s.repository).empty()) j["points"] = points;
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
    // Health, most severe first: a failed last drill, then a point older than the RPO (or none).
    std::vector<std::string> problems;
    std::string health = "ok";
    if (reading != s.repository) {
      health = "unreachable";
      problems.push_back(fmt::format("repository {} cannot be opened: reading its copy {}", s.repository, reading));
    }
    if (last && !last->second) {
      if (health == "ok") health = "drill_failed";
      problems.push_back(fmt::format("the last drill ({}) failed or missed an objective", format_rfc3339(last->first)));
    }
    if (mine.empty()) {
      if (health == "ok") health = "stale";
      problems.push_back("never backed up");
    } else if (!j.contains("rpo_ms") && s.entry && s.entry->newest_point) {
      if (health == "ok") health = "stale";
      problems.push_back("no restorable point");
    } else if (j.contains("rpo_met") && !j["rpo_met"].get<bool>()) {
      if (health == "ok") health = "stale";
      problems.push_back(fmt::format("the newest restorable point is {} old, over the RPO objective of {}",
                                     format_duration_ms(j["rpo_ms"].get<int64_t>()), format_duration_ms(plan.rpo_ns / kNsPerMs)));
    }
    j["health"] = health;
    j["problems"] = problems;
    out.push_back(j);
  }
  if (listings) *listings = std::move(by_repo);
  return out;
}

void add_run_history(nlohmann::json& status, const std::string& state_dir) {
  std::ifstream in(state_dir + "/state.json");
  if (!in) return;
  auto j = nlohmann::json::parse(in, nullptr, false);
  if (!j.is_object() || !j.contains("sources") || !j["sources"].is_object()) return;
  for (auto& s : status) {
    const auto& runs = j["sources"];
    auto it = runs.find(s.value("source", ""));
    if (it == runs.end() || !it->is_object()) continue;
    auto num = [&](const char* k) { return it->contains(k) && (*it)[k].is_number_integer() ? (*it)[k].get<int64_t>() : int64_t{0}; };
    int64_t last_run = num("last_run_ns"), last_ok = num("last_ok_ns");
    if (!last_run || last_run <= last_ok) continue;
    std::string error = it->contains("last_error") && (*it)["last_error"].is_string() ? (*it)["last_error"].get<std::string>() : "";
    s["last_run_failed"] = format_rfc3339(last_run);
    s["problems"].push_back(fmt::format("the last scheduled backup ({}) failed{}", format_rfc3339(last_run),
                                        error.empty() ? "" : ": " + error));
    if (s.value("health", "ok") == "ok") s["health"] = "stale";
  }
}

}  // namespace lifeboat::ops
