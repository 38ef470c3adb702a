// lifeboat maintenance prune|check [REPOSITORY...]: the plan's scheduled maintenance run now, as the
// daemon and the emitted units run it, each run recorded in its repository (status shows the last).
#include <fmt/format.h>

#include "cli/context.h"
#include "core/time.h"
#include "ops/maintenance.h"

namespace lifeboat::cli {

void register_maintenance(CommandSet c) {
  auto* cmd = c.app.add_subcommand("maintenance", "plan mode: run a repository's scheduled prune or check now, and record it");
  auto kind = std::make_shared<std::string>();
  auto names = std::make_shared<std::vector<std::string>>();
  cmd->add_option("kind", *kind, "prune or check")->required()->check(CLI::IsMember({"prune", "check"}));
  cmd->add_option("repositories", *names, "the plan's repositories (default: each whose maintenance schedules this kind)");
  cmd->callback([c, kind, names] {
    c.action = [c, kind, names]() -> Status {
      auto file = plan_mode(c.global);
      if (!file) return Error(Code::kInvalidArgument, "maintenance runs a plan's: give the plan (--plan or LIFEBOAT_PLAN)");
      LB_ASSIGN_OR_RETURN(auto p, plan::load_plan(*file));
      std::vector<std::string> chosen = *names;
      if (chosen.empty())
        for (const auto& r : p.repositories)
          if (!(*kind == "prune" ? r.prune_schedule : r.check_schedule).empty()) chosen.push_back(r.name);
      if (chosen.empty())
        return Error(Code::kInvalidArgument, fmt::format("no repository of the plan schedules a {} (repositories.NAME.maintenance.{}); "
                                                         "name one to run it anyway", *kind, *kind));
      ops::RepositorySet repos(p);
      nlohmann::json runs = nlohmann::json::array();
      Status first_failure;
      for (const auto& name : chosen) {
        auto r = ops::run_maintenance(repos, name, *kind, now_unix_ns());
        if (!r && first_failure.is_ok()) first_failure = r.status();
        runs.push_back(r ? *r : nlohmann::json{{"repository", name}, {"kind", *kind}, {"ok", false}, {"error", r.status().message()}});
        if (!c.global.json && !c.global.quiet)
          fmt::print("{} of {}: {}\n", *kind, name, r ? fmt::format("ok in {}", format_duration_ms(r->value("duration_ms", int64_t{0})))
                                                      : "FAILED: " + r.status().message());
      }
      if (c.global.json) print_json({{"runs", runs}});
      return first_failure;
    };
  });
}

}  // namespace lifeboat::cli
