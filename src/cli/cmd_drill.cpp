// Plan-driven commands: `backup SOURCE…` / `restore SOURCE|--all` in plan mode, `drill`, `status`.
#include <fmt/format.h>

#include <cstdlib>
#include <fstream>

#include "cli/context.h"
#include "core/atomic_file.h"
#include "core/names.h"
#include "core/time.h"
#include "ops/daemon.h"
#include "ops/drill.h"
#include "ops/failover.h"
#include "ops/maintenance.h"
#include "ops/plan_ops.h"
#include "plan/plan.h"

namespace lifeboat::cli {

std::optional<std::string> plan_mode(const GlobalOptions& g) {
  if (!g.plan.empty()) return g.plan;
  if (const char* p = std::getenv("LIFEBOAT_PLAN"); p && *p) return std::string(p);
  return std::nullopt;
}

Status report_outcomes(const GlobalOptions& g, const char* verb, const std::vector<ops::SourceOutcome>& outcomes,
                       std::optional<int64_t> at_ns) {
  nlohmann::json arr = nlohmann::json::array();
  size_t failed = 0;
  for (const auto& o : outcomes) {
    arr.push_back(o.to_json());
    if (!o.ok) ++failed;
  }
  if (g.json) {
    nlohmann::json j = {{verb, arr}, {"failed", failed}};
    if (at_ns) j["at"] = format_rfc3339(*at_ns);
    print_json(j);
  } else if (!g.quiet) {
    for (const auto& o : outcomes) {
      if (!o.ok) {
        fmt::print(stderr, "{:<20} {:<10} FAILED after {}: {}\n", o.source, o.kind, format_duration_ms(o.duration_ms), o.error);
        continue;
      }
      std::string extra;
      if (o.result.contains("point")) {
        extra = "state as of " + o.result["point"].get<std::string>();
        if (o.result.contains("behind_ms") && o.result["behind_ms"].get<int64_t>() > 0)
          extra += fmt::format(" ({} before {})", format_duration_ms(o.result["behind_ms"]), format_rfc3339(*at_ns));
        else if (at_ns)
          extra += " (exactly the requested instant)";
        if (o.result.contains("limit")) extra += "; " + o.result["limit"].get<std::string>();
        for (const auto& c : o.result["checks"])
          extra += fmt::format("; {} {}", c["check"].get<std::string>(), c["ok"].get<bool>() ? "ok" : "FAILED");
      } else if (o.result.contains("snapshot")) {
        extra = "snapshot " + o.result["snapshot"].get<std::string>().substr(0, 8);
        if (o.result["retention"].contains("forgotten"))
          extra += fmt::format(", {} old snapshot(s) forgotten", o.result["retention"]["forgotten"].get<uint64_t>());
        for (const auto& cp : o.result.value("copies", nlohmann::json::array()))
          extra += fmt::format(", copied to {} ({} snapshot(s), {}, {})", cp["repository"].get<std::string>(),
                               cp["snapshots_copied"].get<uint64_t>(), format_bytes(cp["bytes_sent"].get<uint64_t>()),
                               cp["mode"].get<std::string>());
      }
      fmt::print("{:<20} {:<10} ok in {}: {}\n", o.source, o.kind, format_duration_ms(o.duration_ms), extra);
    }
  }
  if (failed) return Error(Code::kFatal, fmt::format("{} of {} source(s) failed", failed, outcomes.size()));
  return Status::ok();
}

// A read that falls back to a copy (the source's repository is lost) says so on one line.
void say_fallbacks(ops::RepositorySet& repos, const GlobalOptions& g) {
  repos.notice = [quiet = g.quiet](const std::string& m) {
    if (!quiet) fmt::print(stderr, "lifeboat: {}\n", m);
  };
}

Status plan_backup(const GlobalOptions& g, const std::string& file, const std::vector<std::string>& names) {
  LB_ASSIGN_OR_RETURN(auto p, plan::load_plan(file));
  LB_ASSIGN_OR_RETURN(auto list, ops::select_sources(p, names));
  ops::RepositorySet repos(p);
  return report_outcomes(g, "backups", ops::run_backups(repos, list), std::nullopt);
}

Status plan_restore(const GlobalOptions& g, const std::string& file, const std::vector<std::string>& names,
                    const std::string& environment, std::optional<int64_t> at_ns) {
  LB_ASSIGN_OR_RETURN(auto p, plan::load_plan(file));
  LB_ASSIGN_OR_RETURN(auto list, ops::select_sources(p, names));
  ops::RepositorySet repos(p);
  say_fallbacks(repos, g);
  return report_outcomes(g, "restores", ops::run_restores(repos, list, environment, at_ns), at_ns);
}

void register_drill(CommandSet c) {
  auto* cmd = c.app.add_subcommand("drill", "restore every source into a test environment, validate, measure RTO and RPO");
  auto env = std::make_shared<std::string>("test");
  auto names = std::make_shared<std::vector<std::string>>();
  auto record = std::make_shared<std::string>();
  auto allow_prod = std::make_shared<bool>(false);
  auto failover = std::make_shared<bool>(false);
  auto drill_state = std::make_shared<std::string>("/var/lib/lifeboat/state");
  cmd->add_option("sources", *names, "sources to drill (default: all in the plan)");
  cmd->add_option("--environment", *env, "environment to restore into")->capture_default_str();
  cmd->add_option("--record", *record, "also write the drill record (Markdown) to this file");
  cmd->add_flag("--allow-production", *allow_prod, "allow a drill into the production environment");
  auto* fo = cmd->add_flag("--failover", *failover,
                           "rehearse the whole failover into the DR environment (failover.environment unless --environment): catch "
                           "up, check, run the steps marked rehearse: true; the RTO measured includes the catch-up");
  cmd->add_option("--state-dir", *drill_state, "with --failover: the daemon's state directory (what the standby holds)")
      ->capture_default_str()
      ->needs(fo);
  cmd->callback([c, env, names, record, allow_prod, failover, drill_state, cmd] {
    c.action = [c, env, names, record, allow_prod, failover, drill_state, cmd]() -> Status {
      auto file = plan_mode(c.global);
      LB_ASSIGN_OR_RETURN(auto p, plan::load_plan(file.value_or("lifeboat.yaml")));
      LB_ASSIGN_OR_RETURN(auto list, ops::select_sources(p, *names));
      ops::RepositorySet repos(p);
      say_fallbacks(repos, c.global);
      ops::DrillRecord drill;
      if (*failover) {
        if (!names->empty()) return Error(Code::kInvalidArgument, "drill --failover rehearses the whole failover: name no sources");
        ops::FailoverOptions o;
        o.environment = cmd->count("--environment") || p.failover.environment.empty() ? *env : p.failover.environment;
        o.state_dir = *drill_state;
        o.rehearsal = true;
        if (!c.global.quiet) o.say = [](const std::string& m) { fmt::print(stderr, "{}\n", m); };
        LB_ASSIGN_OR_RETURN(drill, ops::run_failover(repos, o));
      } else {
        LB_ASSIGN_OR_RETURN(drill, ops::run_drill(repos, list, *env, *allow_prod));
      }
      std::string md = redact_urls_in(ops::drill_markdown(drill));
      if (!record->empty()) LB_RETURN_IF_ERROR(write_file_atomic(*record, md));
      if (c.global.json) print_json(drill.to_json());
      else if (!c.global.quiet) fmt::print("{}", md);
      if (!drill.checks_passed) return Error(Code::kFatal, "the drill failed (see Failures)");
      if (!drill.passed)
        return Error(Code::kObjectiveMissed, fmt::format("the drill restored and checked every source but missed {} objective(s): {}",
                                                         drill.missed.size(), drill.missed.empty() ? "" : drill.missed[0].to_string()));
      return Status::ok();
    };
  });

  auto* st = c.app.add_subcommand("status", "every source of the plan: last backup, newest restorable point, RPO, last drill");
  auto state_dir = std::make_shared<std::string>("/var/lib/lifeboat/state");
  st->add_option("--state-dir", *state_dir, "the daemon's run history: a failed last scheduled backup counts too")
      ->capture_default_str();
  st->callback([c, state_dir] {
    c.action = [c, state_dir]() -> Status {
      auto file = plan_mode(c.global);
      LB_ASSIGN_OR_RETURN(auto p, plan::load_plan(file.value_or("lifeboat.yaml")));
      ops::RepositorySet repos(p);
      say_fallbacks(repos, c.global);
      ops::SnapshotListings listings;
      LB_ASSIGN_OR_RETURN(auto status, ops::plan_status(repos, &listings));
      ops::add_run_history(status, *state_dir);
      auto standby = ops::standby_status(p, *state_dir, now_unix_ns());
      auto maintenance = ops::maintenance_status(p, listings);
      // A health check: the most severe state of any source decides the exit code (docs/cli.md).
      Code worst = Code::kOk;
      std::vector<std::string> reasons;
      // A repository whose last check found damage (or whose prune failed) counts as one that cannot
      // be read: what it holds is in doubt.
      for (const auto& m : maintenance)
        for (const auto& why : m["problems"]) {
          worst = Code::kUnreachable;
          reasons.push_back(why.get<std::string>());
        }
      for (const auto& sb : standby) {
        if (!sb.value("behind", false) || sb.contains("failover")) continue;
        if (worst == Code::kOk) worst = Code::kStale;
        reasons.push_back(fmt::format("standby {} of {}: {}", sb.value("environment", ""), sb.value("source", ""),
                                      sb.contains("error") ? sb.value("error", "")
                                                           : fmt::format("{} behind, over its bound of {}", format_duration_ms(sb.value("lag_ms", int64_t{0})),
                                                                         format_duration_ms(sb.value("max_lag_ms", int64_t{0})))));
      }
      for (const auto& s : status) {
        std::string health = s.value("health", "ok");
        Code code = health == "unreachable" ? Code::kUnreachable : health == "drill_failed" ? Code::kDrillFailed
                    : health == "stale" ? Code::kStale : Code::kOk;
        auto rank = [](Code x) { return x == Code::kUnreachable ? 3 : x == Code::kDrillFailed ? 2 : x == Code::kStale ? 1 : 0; };
        if (rank(code) > rank(worst)) worst = code;
        for (const auto& p : s.value("problems", nlohmann::json::array())) reasons.push_back(s.value("source", "") + ": " + p.get<std::string>());
      }
      if (c.global.json) {
        print_json({{"plan", p.file}, {"healthy", worst == Code::kOk}, {"sources", status}, {"repositories", maintenance},
                    {"standby", standby}});
      } else {
        auto cell = [](std::string v, size_t width) { return v.size() <= width ? v : v.substr(0, width - 1) + "…"; };
        fmt::print("{:<20} {:<10} {:<12} {:<22} {:<22} {:<10} {}\n", "SOURCE", "KIND", "HEALTH", "LAST BACKUP", "NEWEST POINT",
                   "RPO", "LAST DRILL");
        for (const auto& s : status) {
          std::string rpo = s.contains("rpo_ms") ? format_duration_ms(s["rpo_ms"]) + (s.value("rpo_met", false) ? "" : " !") : "—";
          std::string drill = s.contains("last_drill") ? s["last_drill"].get<std::string>() + (s.value("last_drill_passed", false) ? " ok" : " FAILED") : "—";
          fmt::print("{:<20} {:<10} {:<12} {:<22} {:<22} {:<10} {}\n", cell(s.value("source", ""), 20), s.value("kind", ""),
                     s.value("health", "ok"), s.contains("error") ? "—" : s.value("last_backup", "—"), s.value("newest_point", "—"), rpo,
                     drill);
        }
        for (const auto& m : maintenance) fmt::print("repository {}: {}\n", m.value("repository", ""), ops::maintenance_summary(m));
        for (const auto& s : status) {
          const nlohmann::json points = s.value("points", nlohmann::json::object());
          for (const auto& [repo, point] : points.items())
            if ((point.is_string() || point.is_null()) && (repo.size() < 3 || repo.compare(repo.size() - 3, 3, "_ns") != 0))
              fmt::print("{}: newest point in {}: {}\n", s.value("source", ""), repo, point.is_string() ? point.get<std::string>() : "none");
        }
        for (const auto& sb : standby)
          fmt::print("standby {}: {} {}\n", sb.value("environment", ""), sb.value("source", ""),
                     sb.contains("failover") ? "failover " + sb.value("failover", "")
                     : sb.contains("point")  ? fmt::format("at {} (lag {}{})", sb.value("point", ""), format_duration_ms(sb.value("lag_ms", int64_t{0})),
                                                          sb.value("behind", false) ? ", BEHIND" : "")
                                             : sb.value("error", ""));
        // Reasons below the table, whole: a long error does not break its columns.
        for (const auto& r : reasons) fmt::print("! {}\n", r);
      }
      if (worst == Code::kOk) return Status::ok();
      return Error(worst, fmt::format("{} problem(s): {}", reasons.size(), reasons.empty() ? "" : reasons[0]));
    };
  });
}

}  // namespace lifeboat::cli

namespace lifeboat::cli {

void register_daemon(CommandSet c) {
  auto* cmd = c.app.add_subcommand("daemon", "run the plan's schedules, followers, notifications, /metrics and status page");
  auto o = std::make_shared<ops::DaemonOptions>();
  auto retry = std::make_shared<std::string>("30s");
  o->state_dir = "/var/lib/lifeboat/state";
  cmd->add_option("--state-dir", o->state_dir, "where the daemon keeps its run history (catch-up after downtime)")
      ->capture_default_str();
  cmd->add_option("--listen", o->listen, "serve /metrics, /healthz and the status page here (e.g. 127.0.0.1:9464)");
  cmd->add_option("--retries", o->max_retries, "retries of a failed run before waiting for the next schedule")->capture_default_str();
  cmd->add_option("--retry-base", *retry, "first retry delay, doubled each time")->capture_default_str();
  auto* only = cmd->add_option("--standby", o->standby_only,
                               "the DR region's daemon: keep only this standby environment current (repeatable; no backups, "
                               "followers or copies)");
  cmd->add_flag("--no-standby", o->no_standby,
                "the production region's daemon when the DR region runs `daemon --standby ENV`: keep no standby here")
      ->excludes(only);
  cmd->callback([c, o, retry] {
    c.action = [c, o, retry]() -> Status {
      LB_ASSIGN_OR_RETURN(auto p, plan::load_plan(plan_mode(c.global).value_or("lifeboat.yaml")));
      LB_ASSIGN_OR_RETURN(o->retry_base_ns, parse_duration(*retry));
      o->log = [](const std::string& m) {
        fmt::print("{} {}\n", format_rfc3339(now_unix_ns()), m);
        std::fflush(stdout);
      };
      return ops::run_daemon(p, *o);
    };
  });
}

}  // namespace lifeboat::cli
