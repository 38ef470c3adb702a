// lifeboat plan check: parse and check lifeboat.yaml, then show what it will do.
#include <fmt/format.h>

#include <cstdlib>

#include "cli/context.h"
#include "core/cron.h"
#include "core/time.h"
#include "plan/plan.h"
#include "sources/registry.h"

namespace lifeboat::cli {

void register_plan(CommandSet c) {
  auto* group = c.app.add_subcommand("plan", "the declarative plan (lifeboat.yaml)");
  group->require_subcommand(1);
  auto* cmd = group->add_subcommand("check", "check a plan: syntax, references, schedules, source settings");
  auto file = std::make_shared<std::string>();
  cmd->add_option("--plan", *file, "plan file (default: LIFEBOAT_PLAN or ./lifeboat.yaml)");
  cmd->callback([c, file] {
    c.action = [c, file]() -> Status {
      LB_ASSIGN_OR_RETURN(auto p, plan::load_plan(file->empty() ? plan_mode(c.global).value_or("lifeboat.yaml") : *file));
      int64_t now_s = now_unix_ns() / 1000000000LL;
      auto next = [&](const std::string& cron) -> std::string {
        if (cron.empty()) return "";
        auto s = CronSchedule::parse(cron);
        return s ? format_rfc3339(s->next_after(now_s) * 1000000000LL) : "";
      };
      if (c.global.json) {
        nlohmann::json sources = nlohmann::json::array();
        for (const auto& s : p.sources)
          sources.push_back({{"name", s.name}, {"kind", s.kind}, {"repository", s.repository},
                             {"full", s.schedule.full}, {"next_full", next(s.schedule.full)},
                             {"incremental", s.schedule.incremental}, {"continuous", s.schedule.continuous},
                             {"validation", s.validation}});
        nlohmann::json repos = nlohmann::json::array();
        for (const auto& r : p.repositories) repos.push_back({{"name", r.name}, {"url", r.url}, {"copy_of", r.copy_of}});
        print_json({{"plan", p.file}, {"ok", true}, {"rpo_ms", p.rpo_ns / 1000000}, {"rto_ms", p.rto_ns / 1000000},
                    {"repositories", repos}, {"sources", sources}});
        return Status::ok();
      }
      fmt::print("{}: ok — objectives RPO {}, RTO {}\n", p.file, format_duration_ms(p.rpo_ns / 1000000),
                 format_duration_ms(p.rto_ns / 1000000));
      for (const auto& r : p.repositories)
        fmt::print("  repository {}: {}{}\n", r.name, r.url, r.copy_of.empty() ? "" : " (copy of " + r.copy_of + ")");
      for (const auto& s : p.sources) {
        fmt::print("  source {} ({}) -> {}\n", s.name, s.kind, s.repository);
        if (!s.schedule.full.empty()) fmt::print("    full: {} (next {})\n", s.schedule.full, next(s.schedule.full));
        if (!s.schedule.incremental.empty())
          fmt::print("    incremental: {} (next {})\n", s.schedule.incremental, next(s.schedule.incremental));
        if (s.schedule.continuous) fmt::print("    continuous: oplog slices every {}\n", s.schedule.interval);
        if (!s.validation.empty()) fmt::print("    validation: {}\n", fmt::join(s.validation, ", "));
      }
      return Status::ok();
    };
  });
}

}  // namespace lifeboat::cli
