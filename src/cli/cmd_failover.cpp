// `lifeboat failover`: promote the DR environment (plan §7.3) — catch every source up from the
// surviving repository, check it, run the plan's failover.steps, record it (ops/failover.h).
#include <fmt/format.h>
#include <unistd.h>

#include <array>
#include <iostream>

#include "cli/context.h"
#include "core/atomic_file.h"
#include "core/names.h"
#include "core/time.h"
#include "ops/drill.h"
#include "ops/failover.h"
#include "plan/plan.h"

namespace lifeboat::cli {


void register_failover(CommandSet c) {
  auto* cmd = c.app.add_subcommand(
      "failover", "promote the DR environment: catch every source up to the newest point the surviving repository holds, check "
                  "it, run the plan's failover steps, record it");
  auto env = std::make_shared<std::string>();
  auto at = std::make_shared<std::string>();
  auto state_dir = std::make_shared<std::string>("/var/lib/lifeboat/state");
  auto record = std::make_shared<std::string>();
  auto flags = std::make_shared<std::array<bool, 3>>();  // confirm, dry run, resume
  cmd->add_option("--environment", *env, "the environment to promote (default: the plan's failover.environment)");
  cmd->add_option("--at", *at, "one instant across every system instead of each one's newest point (skew per source reported)")
      ->check(time_value());
  cmd->add_option("--state-dir", *state_dir, "the daemon's state directory: what the standby holds, how far a failover got")
      ->capture_default_str();
  cmd->add_option("--record", *record, "also write the failover record (Markdown) to this file");
  cmd->add_flag("--confirm", (*flags)[0], "promote without asking (a terminal is asked to type the environment's name)");
  cmd->add_flag("--dry-run", (*flags)[1], "print every action the failover would take; change nothing");
  cmd->add_flag("--resume", (*flags)[2], "continue a failover that stopped (a step failed): what it finished is not redone");
  cmd->callback([c, env, at, state_dir, record, flags] {
    c.action = [c, env, at, state_dir, record, flags]() -> Status {
      LB_ASSIGN_OR_RETURN(auto p, plan::load_plan(plan_mode(c.global).value_or("lifeboat.yaml")));
      ops::RepositorySet repos(p);
      repos.notice = [q = c.global.quiet](const std::string& m) {
        if (!q) fmt::print(stderr, "lifeboat: {}\n", m);
      };
      ops::FailoverOptions o;
      o.environment = env->empty() ? p.failover.environment : *env;
      o.state_dir = *state_dir;
      o.dry_run = (*flags)[1];
      o.resume = (*flags)[2];
      if (!at->empty()) {
        LB_ASSIGN_OR_RETURN(int64_t t, parse_instant(*at));
        o.at_ns = t;
      }
      if (o.dry_run) {
        LB_ASSIGN_OR_RETURN(auto actions, ops::failover_actions(repos, o));
        if (c.global.json) print_json({{"dry_run", true}, {"environment", o.environment}, {"actions", actions}});
        else
          for (size_t i = 0; i < actions.size(); ++i) fmt::print("{:>2}. {}\n", i + 1, actions[i]);
        return Status::ok();
      }
      if (!(*flags)[0]) {
        if (!isatty(STDIN_FILENO))
          return Error(Code::kInvalidArgument, fmt::format("a failover promotes {} to serve production: pass --confirm (see what it would "
                                                           "do with --dry-run)", o.environment.empty() ? "the DR environment" : o.environment));
        fmt::print(stderr, "This promotes environment {} to serve production; its standby is never refreshed again.\n"
                           "Type the environment's name to go on: ", o.environment);
        std::string typed;
        std::getline(std::cin, typed);
        if (typed != o.environment) return Error(Code::kInvalidArgument, "not confirmed: nothing was changed");
      }
      if (!c.global.quiet) o.say = [](const std::string& m) { fmt::print(stderr, "{}\n", m); };
      LB_ASSIGN_OR_RETURN(auto d, ops::run_failover(repos, o));
      std::string md = redact_urls_in(ops::drill_markdown(d));
      if (!record->empty()) LB_RETURN_IF_ERROR(write_file_atomic(*record, md));
      if (c.global.json) print_json(d.to_json());
      else if (!c.global.quiet) fmt::print("{}", md);
      if (!d.passed) return Error(Code::kFatal, d.promoted);
      if (!c.global.json && !c.global.quiet)
        fmt::print("\nfailover into {}: RTO {} (critical path {}), worst RPO {}\n", d.environment, format_duration_ms(d.total_rto_ms),
                   format_duration_ms(d.critical_path_ms), format_duration_ms(d.worst_rpo_ms));
      return Status::ok();
    };
  });
}

}  // namespace lifeboat::cli
