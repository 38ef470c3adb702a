// What a plan does, source by source, with no knowledge of any source kind: backups (then retention
// and verification), restores into an environment (one source, or all at one instant), drills that
// measure RTO and RPO, and status. Each kind's work comes from sources/registry.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "plan/plan.h"
#include "repo/repository.h"

namespace lifeboat::ops {

std::string plan_where(const plan::SourceSpec& source);
Result<std::unique_ptr<repo::Repository>> open_plan_repository(const plan::Plan& plan, const std::string& name);

// The source's settings with the environment's overrides applied (JSON merge patch).
Result<nlohmann::json> environment_settings(const plan::SourceSpec& source, const std::string& environment);

// Sources named (all when empty), checked against the plan.
Result<std::vector<const plan::SourceSpec*>> select_sources(const plan::Plan& plan, const std::vector<std::string>& names);

struct SourceOutcome {
  std::string source, kind;
  bool ok = false;
  std::string error;
  int64_t duration_ms = 0;
  nlohmann::json result = nlohmann::json::object();
  nlohmann::json to_json() const;
};

// Backs each source up, then applies its retention (snapshots tagged for it only; pins kept) and
// verifies the new snapshot's trees and blob references. One failing source does not stop the others.
std::vector<SourceOutcome> run_backups(const plan::Plan& plan, const std::vector<const plan::SourceSpec*>& sources);

// Restores each source into `environment` as of `at_ns` (default: newest), running its validation.
// Each result states the restored point and how far it lies from `at_ns`.
std::vector<SourceOutcome> run_restores(const plan::Plan& plan, const std::vector<const plan::SourceSpec*>& sources,
                                        const std::string& environment, std::optional<int64_t> at_ns);

// Plan §4: restores every source into the (non-production) environment, validates, measures RTO per
// source and in total and the achieved RPO, compares them with the objectives, stores the record as a
// `drill` snapshot in the first source's repository and returns it.
Result<nlohmann::json> run_drill(const plan::Plan& plan, const std::vector<const plan::SourceSpec*>& sources,
                                 const std::string& environment, bool allow_production);

// Markdown drill record (plan §6.2): steps, timings, deviations, failures.
std::string drill_markdown(const nlohmann::json& drill);

// Per source: last backup, its age, the newest restorable point (RPO now), snapshot count.
Result<nlohmann::json> plan_status(const plan::Plan& plan);

}  // namespace lifeboat::ops
