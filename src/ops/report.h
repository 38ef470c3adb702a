// The plan's daily report: status of every source, last success, storage and growth per source,
// validation results of the last drill, warnings, and the RPO/RTO trend across drills; as text,
// JSON, or one self-contained HTML file with inline SVG charts. Also Prometheus metrics.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "ops/repository_set.h"
#include "plan/plan.h"

namespace lifeboat::ops {

Result<nlohmann::json> build_report(RepositorySet& repos, int64_t since_ns);
std::string report_text(const nlohmann::json& report);
std::string report_html(const nlohmann::json& report);
// Prometheus text exposition format (for /metrics and the node-exporter textfile collector).
std::string report_metrics(const nlohmann::json& report);

}  // namespace lifeboat::ops
