// Reports and metrics from the repositories' snapshots (backups, slices, drills).
#include "ops/report.h"

#include "repo/tree_walk.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>

#include "core/time.h"
#include "ops/drill.h"
#include "ops/maintenance.h"
#include "ops/plan_ops.h"

namespace lifeboat::ops {

namespace {


std::string esc(const std::string& s) {
  std::string o;
  for (char c : s) o += c == '<' ? "&lt;" : c == '>' ? "&gt;" : c == '&' ? "&amp;" : c == '"' ? "&quot;" : std::string(1, c);
  return o;
}

std::string age(int64_t ms) { return ms < 0 ? "—" : format_duration_ms(ms); }

}  // namespace

Result<nlohmann::json> build_report(RepositorySet& repos, int64_t since_ns) {
  const plan::Plan& plan = repos.plan();
  int64_t now = now_unix_ns();
  SnapshotListings by_repo;  // listed once, by plan_status
  LB_ASSIGN_OR_RETURN(nlohmann::json status, plan_status(repos, &by_repo));
  nlohmann::json sources = nlohmann::json::array(), warnings = nlohmann::json::array(), drills = nlohmann::json::array();
  for (size_t i = 0; i < plan.sources.size(); ++i) {
    const auto& s = plan.sources[i];
    nlohmann::json j = status[i];
    uint64_t stored = 0, growth = 0, backups = 0, unreadable = 0;
    nlohmann::json backup_checks = nlohmann::json::array();  // checks a kind ran after its newest backup
    auto mine = snapshots_of(by_repo[s.repository], s.name);
    // Stored bytes: every blob the source's snapshots reference, once (repo/tree_walk.h) — as `stats`
    // gives it; growth: what the window's backups added.
    if (!mine.empty() && !j.contains("error")) {
      auto repo = repos.acquire_readable(s.repository);
      if (repo && (*repo)->load_index()) {
        std::vector<repo::BlobId> roots;
        for (const auto& r : mine) roots.push_back(r.snapshot.tree);
        auto size = repo::referenced_size(**repo, roots);
        if (size) stored = size->stored_bytes;
        else j["stored_error"] = size.status().message();
      }
    }
    for (const auto& r : mine) {
      if (r.snapshot.summary.contains("checks")) backup_checks = r.snapshot.summary["checks"];
      uint64_t b = r.snapshot.summary.value("data_stored_bytes", uint64_t{0});
      if (r.snapshot.time_ns >= since_ns) {
        growth += b;
        bool dependent = s.entry && s.entry->is_dependent && s.entry->is_dependent(r.snapshot);
        if (!dependent) ++backups;
        unreadable += r.snapshot.summary.value("unreadable", uint64_t{0});
      }
    }
    j["stored_bytes"] = stored;
    j["growth_bytes"] = growth;
    j["backups_in_window"] = backups;
    j["backup_checks"] = backup_checks;
    for (const auto& c : backup_checks)
      if (!c.value("ok", false))
        warnings.push_back(fmt::format("{}: check {} after the last backup failed: {}", s.name, c.value("check", ""), c.value("detail", "")));
    std::string state = "ok";
    if (j.contains("error")) state = "failing: " + j["error"].get<std::string>();  // every "failing" says why
    else if (!j.contains("last_backup")) state = "never backed up";
    else if (!j.value("rpo_met", true)) state = "stale";
    j["state"] = state;
    if (state != "ok") warnings.push_back(fmt::format("{}: {}", s.name, state));
    if (unreadable) warnings.push_back(fmt::format("{}: {} unreadable file(s) in the window", s.name, unreadable));
    if (j.value("drill_overdue", false))
      warnings.push_back(fmt::format("{}: drill overdue (cadence {}, last {})", s.name, j.value("drill_schedule", ""),
                                     j.value("last_drill", "never")));
    sources.push_back(j);
  }
  // Drills, oldest first, from every repository the plan uses.
  std::vector<std::pair<repo::SnapshotRef, DrillRecord>> ds;
  for (const auto& [name, all] : by_repo)
    for (auto& d : stored_drills(all)) ds.push_back(std::move(d));
  std::sort(ds.begin(), ds.end(), [](const auto& a, const auto& b) { return a.first.snapshot.time_ns < b.first.snapshot.time_ns; });
  for (const auto& [ref, m] : ds) {
    nlohmann::json per = nlohmann::json::object();
    for (const auto& s : m.sources) {
      nlohmann::json checks = nlohmann::json::array();
      for (const auto& c : s.checks) checks.push_back({{"check", c.name}, {"ok", c.ok}, {"detail", c.detail}});
      per[s.source] = {{"rto_ms", s.rto_ms}, {"rpo_ms", s.rpo_ms ? nlohmann::json(*s.rpo_ms) : nlohmann::json()},
                       {"ok", s.ok}, {"checks", checks}};
    }
    nlohmann::json missed = nlohmann::json::array();
    for (const auto& x : m.missed)
      missed.push_back({{"source", x.source}, {"objective", x.objective}, {"measured_ms", x.measured_ms},
                        {"objective_ms", x.objective_ms}, {"over_ms", x.measured_ms - x.objective_ms}, {"text", x.to_string()}});
    drills.push_back({{"time", format_rfc3339(ref.snapshot.time_ns)}, {"environment", m.environment}, {"passed", m.passed},
                      {"checks_passed", m.checks_passed}, {"missed_objectives", missed},
                      {"total_rto_ms", m.total_rto_ms}, {"worst_rpo_ms", m.worst_rpo_ms}, {"sources", per},
                      {"deviations", m.deviations}});
  }
  if (!drills.empty() && !drills.back().value("passed", false)) {
    std::string why;
    for (const auto& x : drills.back()["missed_objectives"]) why += "; " + x["text"].get<std::string>();
    warnings.push_back(drills.back().value("checks_passed", false) ? "the last drill failed: it missed its objectives" + why
                                                                   : "the last drill failed" + why);
  }
  if (drills.empty()) warnings.push_back("no drill has been run: restores are unproven (run `lifeboat drill`)");
  auto maintenance = maintenance_status(plan, by_repo);
  for (const auto& m : maintenance)
    for (const auto& why : m["problems"]) warnings.push_back(why.get<std::string>());
  return nlohmann::json{{"plan", plan.file},
                        {"generated", format_rfc3339(now)},
                        {"since", format_rfc3339(since_ns)},
                        {"objectives", {{"rpo_ms", plan.rpo_ns / kNsPerMs}, {"rto_ms", plan.rto_ns / kNsPerMs}}},
                        {"sources", sources},
                        {"drills", drills},
                        {"repositories", maintenance},
                        {"warnings", warnings},
                        {"key_derivations", repo::Repository::key_derivations()}};
}

std::string report_text(const nlohmann::json& r) {
  std::string out = fmt::format("Lifeboat report {} (since {}) — plan {}\nObjectives: RPO {}, RTO {}\n\n", r["generated"].get<std::string>(),
                                r["since"].get<std::string>(), r["plan"].get<std::string>(),
                                format_duration_ms(r["objectives"]["rpo_ms"]), format_duration_ms(r["objectives"]["rto_ms"]));
  out += fmt::format("{:<20} {:<10} {:<16} {:<22} {:<10} {:>10} {:>10} {:>7}\n", "SOURCE", "KIND", "STATE", "LAST BACKUP", "RPO",
                     "STORED", "GROWTH", "BACKUPS");
  for (const auto& s : r["sources"])
    // The state's reason ("failing: …") is whole under Warnings; the table keeps its columns.
    out += fmt::format("{:<20} {:<10} {:<16} {:<22} {:<10} {:>10} {:>10} {:>7}\n", s.value("source", ""), s.value("kind", ""),
                       s.value("state", "").substr(0, s.value("state", "").find(':')), s.value("last_backup", "—"), age(s.value("rpo_ms", int64_t{-1})),
                       format_bytes(s.value("stored_bytes", uint64_t{0})), format_bytes(s.value("growth_bytes", uint64_t{0})),
                       s.value("backups_in_window", uint64_t{0}));
  if (r.contains("repositories") && !r["repositories"].empty()) {
    out += "\nMaintenance:\n";
    for (const auto& m : r["repositories"]) out += fmt::format("  {}: {}\n", m.value("repository", ""), maintenance_summary(m));
  }
  if (r.contains("standby")) {
    out += "\nStandby:\n";
    for (const auto& sb : r["standby"])
      out += fmt::format("  {} {}: {}\n", sb.value("environment", ""), sb.value("source", ""),
                         sb.contains("point") ? fmt::format("at {}, lag {}{}", sb.value("point", ""), format_duration_ms(sb.value("lag_ms", int64_t{0})),
                                                            sb.value("behind", false) ? " (BEHIND)" : "")
                                              : sb.value("error", ""));
  }
  out += "\nDrills (RTO / RPO trend):\n";
  if (r["drills"].empty()) out += "  none\n";
  for (const auto& d : r["drills"])
    out += fmt::format("  {} {:<8} {:<6} RTO {:<10} RPO {}\n", d["time"].get<std::string>(), d["environment"].get<std::string>(),
                       d["passed"].get<bool>() ? "passed" : "FAILED", format_duration_ms(d["total_rto_ms"]),
                       format_duration_ms(d["worst_rpo_ms"]));
  if (!r["drills"].empty()) {
    out += "Validation in the last drill:\n";
    for (const auto& [src, v] : r["drills"].back()["sources"].items())
      for (const auto& c : v["checks"])
        out += fmt::format("  {} {}: {} — {}\n", src, c.value("check", ""), c.value("ok", false) ? "ok" : "FAILED", c.value("detail", ""));
  }
  bool any_backup_check = false;
  for (const auto& s : r["sources"])
    for (const auto& c : s.value("backup_checks", nlohmann::json::array())) {
      if (!any_backup_check) out += "Validation after the last backup:\n";
      any_backup_check = true;
      out += fmt::format("  {} {}: {} — {}\n", s.value("source", ""), c.value("check", ""), c.value("ok", false) ? "ok" : "FAILED",
                         c.value("detail", ""));
    }
  out += "\nDrill cadence per source:\n";
  bool any_cadence = false;
  for (const auto& s : r["sources"]) {
    if (!s.contains("drill_schedule")) continue;
    any_cadence = true;
    out += fmt::format("  {:<20} every \"{}\": last drilled {}{}, next due {}{}\n", s.value("source", ""), s.value("drill_schedule", ""),
                       s.value("last_drill", "never"), s.contains("last_drill") ? (s.value("last_drill_passed", false) ? " (passed)" : " (FAILED)") : "",
                       s.value("drill_due", "—"), s.value("drill_overdue", false) ? " — OVERDUE" : "");
  }
  if (!any_cadence) out += "  none in the plan\n";
  out += "\nWarnings:\n";
  if (r["warnings"].empty()) out += "  none\n";
  for (const auto& w : r["warnings"]) out += "  - " + w.get<std::string>() + "\n";
  return out;
}

namespace {

// A line chart of one or two series over the drills, as inline SVG.
std::string svg_trend(const nlohmann::json& drills, const char* key, const char* title) {
  const int w = 560, h = 160, pad = 36;
  double maxv = 1;
  for (const auto& d : drills) maxv = std::max(maxv, d.value(key, 0.0));
  std::string pts, dots;
  size_t n = drills.size();
  for (size_t i = 0; i < n; ++i) {
    double x = pad + (n == 1 ? (w - 2 * pad) / 2.0 : (w - 2 * pad) * static_cast<double>(i) / static_cast<double>(n - 1));
    double y = h - pad - (h - 2 * pad) * drills[i].value(key, 0.0) / maxv;
    pts += fmt::format("{:.1f},{:.1f} ", x, y);
    dots += fmt::format(R"(<circle cx="{:.1f}" cy="{:.1f}" r="4" class="{}"/>)", x, y,
                        drills[i].value("passed", false) ? "pass" : "fail");
  }
  std::string svg = fmt::format(R"(<svg class="chart" viewBox="0 0 {} {}" width="{}" height="{}" role="img" aria-label="{}">)", w, h, w, h, esc(title));
  svg += fmt::format(R"(<text x="{}" y="18" class="t">{} (max {})</text>)", pad, esc(title), format_duration_ms(static_cast<int64_t>(maxv)));
  svg += fmt::format(R"(<line x1="{0}" y1="{1}" x2="{2}" y2="{1}" class="axis"/><line x1="{0}" y1="{3}" x2="{0}" y2="{1}" class="axis"/>)",
                     pad, h - pad, w - pad, pad);
  svg += fmt::format(R"(<polyline points="{}" class="line"/>)", pts);
  return svg + dots + "</svg>";
}

std::string svg_bars(const nlohmann::json& sources) {
  const int w = 560, bar = 22;
  int h = 30 + bar * static_cast<int>(sources.size()) * 3 / 2;
  double maxv = 1;
  for (const auto& s : sources) maxv = std::max(maxv, s.value("stored_bytes", 0.0));
  std::string svg = fmt::format(R"(<svg class="chart" viewBox="0 0 {} {}" width="{}" height="{}" role="img" aria-label="storage per source">)", w, h, w, h);
  svg += R"(<text x="10" y="18" class="t">Stored per source</text>)";
  int y = 30;
  for (const auto& s : sources) {
    double len = 300.0 * s.value("stored_bytes", 0.0) / maxv;
    svg += fmt::format(R"(<text x="10" y="{}" class="l">{}</text><rect x="150" y="{}" width="{:.1f}" height="{}" class="bar"/><text x="{:.1f}" y="{}" class="l">{}</text>)",
                       y + 15, esc(s.value("source", "")), y, std::max(1.0, len), bar, 156 + len, y + 15,
                       format_bytes(s.value("stored_bytes", uint64_t{0})));
    y += bar * 3 / 2;
  }
  return svg + "</svg>";
}

}  // namespace

std::string report_html(const nlohmann::json& r) {
  std::string h = R"(<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Lifeboat report</title><style>
body{font-family:system-ui,sans-serif;margin:2em;color:#1b2733;background:#f7f9fb}h1{font-size:1.5em}
table{border-collapse:collapse;margin:1em 0;background:#fff}td,th{border:1px solid #d5dde5;padding:.35em .7em;text-align:left}
th{background:#e8eef4}.ok{color:#17803d;font-weight:600}.bad{color:#b42318;font-weight:600}
.chart{background:#fff;border:1px solid #d5dde5;margin:.5em 1em .5em 0}.axis{stroke:#8795a1}.line{fill:none;stroke:#2563eb;stroke-width:2}
.pass{fill:#17803d}.fail{fill:#b42318}.bar{fill:#2563eb}.t{font-size:13px;font-weight:600}.l{font-size:12px}
</style></head><body>)";
  h += fmt::format("<h1>Lifeboat report</h1><p>Plan <code>{}</code>, generated {}, covering since {}. Objectives: RPO {}, RTO {}.</p>",
                   esc(r["plan"]), esc(r["generated"]), esc(r["since"]), format_duration_ms(r["objectives"]["rpo_ms"]),
                   format_duration_ms(r["objectives"]["rto_ms"]));
  h += "<h2>Systems</h2><table><tr><th>Source</th><th>Kind</th><th>State</th><th>Last backup</th><th>Newest restorable point</th>"
       "<th>RPO now</th><th>Stored</th><th>Growth</th><th>Backups</th></tr>";
  for (const auto& s : r["sources"])
    h += fmt::format("<tr><td>{}</td><td>{}</td><td class=\"{}\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                     esc(s.value("source", "")), esc(s.value("kind", "")), s.value("state", "") == "ok" ? "ok" : "bad",
                     esc(s.value("state", "")), esc(s.value("last_backup", "—")), esc(s.value("newest_point", "—")),
                     age(s.value("rpo_ms", int64_t{-1})), format_bytes(s.value("stored_bytes", uint64_t{0})),
                     format_bytes(s.value("growth_bytes", uint64_t{0})), s.value("backups_in_window", uint64_t{0}));
  h += "</table>";
  if (r.contains("standby")) {
    h += "<h2>Standby</h2><table><tr><th>Environment</th><th>Source</th><th>Point held</th><th>Lag</th><th>State</th></tr>";
    for (const auto& sb : r["standby"])
      h += fmt::format("<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>", esc(sb.value("environment", "")),
                       esc(sb.value("source", "")), esc(sb.value("point", "—")),
                       sb.contains("lag_ms") ? format_duration_ms(sb.value("lag_ms", int64_t{0})) : "—",
                       esc(sb.contains("failover") ? "failover " + sb.value("failover", "")
                           : sb.value("behind", false) ? "BEHIND" + (sb.contains("error") ? ": " + sb.value("error", "") : std::string())
                                                       : "ok"));
    h += "</table>";
  }
  h += "<h2>Storage</h2>" + svg_bars(r["sources"]);
  h += "<h2>Drills: RTO and RPO trend</h2>";
  if (r["drills"].empty()) h += "<p class=\"bad\">No drill yet: restores are unproven.</p>";
  else h += svg_trend(r["drills"], "total_rto_ms", "Total RTO per drill") + svg_trend(r["drills"], "worst_rpo_ms", "Worst RPO per drill");
  if (!r["drills"].empty()) {
    h += "<h2>Validation (last drill)</h2><table><tr><th>Source</th><th>Check</th><th>Result</th><th>Detail</th></tr>";
    for (const auto& [src, v] : r["drills"].back()["sources"].items())
      for (const auto& c : v["checks"])
        h += fmt::format("<tr><td>{}</td><td>{}</td><td class=\"{}\">{}</td><td>{}</td></tr>", esc(src), esc(c.value("check", "")),
                         c.value("ok", false) ? "ok" : "bad", c.value("ok", false) ? "ok" : "FAILED", esc(c.value("detail", "")));
    h += "</table>";
  }
  std::string after_backup;
  for (const auto& s : r["sources"])
    for (const auto& c : s.value("backup_checks", nlohmann::json::array()))
      after_backup += fmt::format("<tr><td>{}</td><td>{}</td><td class=\"{}\">{}</td><td>{}</td></tr>", esc(s.value("source", "")),
                                  esc(c.value("check", "")), c.value("ok", false) ? "ok" : "bad", c.value("ok", false) ? "ok" : "FAILED",
                                  esc(c.value("detail", "")));
  if (!after_backup.empty())
    h += "<h2>Validation (last backups)</h2><table><tr><th>Source</th><th>Check</th><th>Result</th><th>Detail</th></tr>" + after_backup +
         "</table>";
  h += "<h2>Errors and warnings</h2><ul>";
  if (r["warnings"].empty()) h += "<li class=\"ok\">None.</li>";
  for (const auto& w : r["warnings"]) h += "<li class=\"bad\">" + esc(w.get<std::string>()) + "</li>";
  return h + "</ul></body></html>\n";
}

std::string report_metrics(const nlohmann::json& r) {
  std::string m;
  auto family = [&](const char* name, const char* help, const char* type) {
    m += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
  };
  auto label = [](const std::string& v) {
    std::string o;
    for (char c : v) o += c == '"' ? "\\\"" : c == '\\' ? "\\\\" : c == '\n' ? "\\n" : std::string(1, c);
    return o;
  };
  family("lifeboat_last_backup_timestamp_seconds", "Time of the newest backup of each source.", "gauge");
  for (const auto& s : r["sources"])
    if (s.contains("last_backup"))
      m += fmt::format("lifeboat_last_backup_timestamp_seconds{{source=\"{}\",kind=\"{}\"}} {}\n", label(s["source"]), label(s["kind"]),
                       parse_time(s["last_backup"].get<std::string>()).value() / 1000000000);
  family("lifeboat_rpo_seconds", "Age of the newest restorable point of each source.", "gauge");
  for (const auto& s : r["sources"])
    if (s.contains("rpo_ms")) m += fmt::format("lifeboat_rpo_seconds{{source=\"{}\"}} {:.3f}\n", label(s["source"]), s["rpo_ms"].get<int64_t>() / 1000.0);
  family("lifeboat_stored_bytes", "Bytes stored for each source (after dedup and compression).", "gauge");
  for (const auto& s : r["sources"])
    m += fmt::format("lifeboat_stored_bytes{{source=\"{}\"}} {}\n", label(s["source"]), s.value("stored_bytes", uint64_t{0}));
  family("lifeboat_source_ok", "1 when the source is backed up within its RPO.", "gauge");
  for (const auto& s : r["sources"])
    m += fmt::format("lifeboat_source_ok{{source=\"{}\"}} {}\n", label(s["source"]), s.value("state", "") == "ok" ? 1 : 0);
  family("lifeboat_rpo_objective_seconds", "The plan's RPO objective.", "gauge");
  m += fmt::format("lifeboat_rpo_objective_seconds {}\n", r["objectives"]["rpo_ms"].get<int64_t>() / 1000);
  family("lifeboat_rto_objective_seconds", "The plan's RTO objective.", "gauge");
  m += fmt::format("lifeboat_rto_objective_seconds {}\n", r["objectives"]["rto_ms"].get<int64_t>() / 1000);
  if (!r["drills"].empty()) {
    const auto& d = r["drills"].back();
    family("lifeboat_last_drill_rto_seconds", "Measured total RTO of the last drill.", "gauge");
    m += fmt::format("lifeboat_last_drill_rto_seconds {:.3f}\n", d["total_rto_ms"].get<int64_t>() / 1000.0);
    family("lifeboat_last_drill_passed", "1 when the last drill passed.", "gauge");
    m += fmt::format("lifeboat_last_drill_passed {}\n", d["passed"].get<bool>() ? 1 : 0);
    family("lifeboat_last_drill_source_rto_seconds", "Measured RTO per source in the last drill.", "gauge");
    for (const auto& [src, v] : d["sources"].items())
      m += fmt::format("lifeboat_last_drill_source_rto_seconds{{source=\"{}\"}} {:.3f}\n", label(src), v["rto_ms"].get<int64_t>() / 1000.0);
    family("lifeboat_last_drill_objective_missed_seconds",
           "By how much the last drill missed an objective (source \"\" for the whole drill's RTO; validation: 0, a source with "
           "no check). No sample: every objective met.",
           "gauge");
    for (const auto& x : d.value("missed_objectives", nlohmann::json::array()))
      m += fmt::format("lifeboat_last_drill_objective_missed_seconds{{source=\"{}\",objective=\"{}\"}} {:.3f}\n",
                       label(x["source"]), label(x["objective"]), x["over_ms"].get<int64_t>() / 1000.0);
  }
  family("lifeboat_drill_overdue", "1 when a source's drill cadence says a drill is due and none ran.", "gauge");
  for (const auto& s : r["sources"])
    if (s.contains("drill_schedule"))
      m += fmt::format("lifeboat_drill_overdue{{source=\"{}\"}} {}\n", label(s["source"]), s.value("drill_overdue", false) ? 1 : 0);
  family("lifeboat_repository_newest_point_timestamp_seconds",
         "The newest restorable point of each source in each repository holding it (its own and its copies).", "gauge");
  for (const auto& s : r["sources"]) {
    if (!s.contains("points") || !s["points"].is_object()) continue;
    for (const auto& [repo, v] : s["points"].items())
      if (repo.size() > 3 && repo.compare(repo.size() - 3, 3, "_ns") == 0 && v.is_number())
        m += fmt::format("lifeboat_repository_newest_point_timestamp_seconds{{source=\"{}\",repository=\"{}\"}} {:.3f}\n", label(s["source"]),
                         label(repo.substr(0, repo.size() - 3)), v.get<int64_t>() / 1e9);
  }
  family("lifeboat_key_derivations_total", "Password key derivations (Argon2id) this process has run to open repositories.", "counter");
  m += fmt::format("lifeboat_key_derivations_total {}\n", r.value("key_derivations", uint64_t{0}));
  return m;
}

}  // namespace lifeboat::ops
