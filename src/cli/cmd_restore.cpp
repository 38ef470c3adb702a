// lifeboat restore: write a snapshot's files under a target directory.
#include <fmt/format.h>

#include "cli/context.h"
#include "core/progress.h"
#include "core/time.h"
#include "repo/lock.h"
#include "repo/restorer/restorer.h"

namespace lifeboat::cli {

namespace {

// The restorer's refusals, worded with the flags that answer them.
std::string flag_advice(repo::RestoreRefusal why, const std::string& target) {
  switch (why) {
    case repo::RestoreRefusal::kNoTarget: return "restore needs --target DIR";
    case repo::RestoreRefusal::kNoIncludeMatch: return "no path in the snapshot matches the --include patterns";
    case repo::RestoreRefusal::kDeleteWithIncludes:
      return "--delete restores whole directories: it cannot be combined with --include";
    case repo::RestoreRefusal::kTargetNotEmpty:
      return fmt::format("target {} is not empty: choose what happens to what it holds with --overwrite "
                         "always|if-changed|if-newer|never (and --delete to remove what the snapshot lacks); "
                         "--dry-run lists the changes first",
                         target);
  }
  return repo::default_refusal_message(why, target);
}

}  // namespace

void register_restore(CommandSet c) {
  auto* cmd = c.app.add_subcommand("restore", "restore a snapshot into a directory");
  auto spec = std::make_shared<std::string>("latest");
  auto pick = std::make_shared<SnapshotPick>();
  auto opts = std::make_shared<repo::TreeRestoreOptions>();
  cmd->add_option("snapshot", *spec, "snapshot ID or 'latest' (with --at: the newest at or before that time)")
      ->capture_default_str();
  cmd->add_option("-t,--target", opts->target, "directory to restore into (required)");
  cmd->add_option("-i,--include", opts->includes, "restore only paths (or names) matching this pattern (repeatable)");
  cmd->add_flag("--verify", opts->verify, "re-read each restored file and compare it with the backup");
  auto overwrite = std::make_shared<std::string>();
  cmd->add_option("--overwrite", *overwrite,
                  "what to do with what a non-empty target holds: always | if-changed (size or mtime differ) | "
                  "if-newer | never (without it, a non-empty target is refused)");
  cmd->add_flag("--delete", opts->delete_extra, "remove what the snapshot's directories do not hold");
  cmd->add_flag("--dry-run", opts->dry_run, "list what would be created (+), replaced (M), kept (=), deleted (-); write nothing");
  cmd->add_option("--threads", opts->threads, "packs read at once (default: two per core; at least 8 on object storage)");
  pick->add_flags(cmd);
  auto environment = std::make_shared<std::string>();
  auto date = std::make_shared<std::string>();
  auto all = std::make_shared<bool>(false);
  cmd->add_option("--environment", *environment, "plan mode: the environment to restore into (its settings: uri, target)");
  cmd->add_option("--date", *date, "plan mode: the state at the end of this day (YYYY-MM-DD, local time)")->check(time_value());
  cmd->add_flag("--all", *all, "plan mode: every source, all as of the same instant (--at)");
  cmd->callback([c, cmd, spec, pick, opts, environment, date, all, overwrite] {
    if (!cmd->get_subcommands().empty()) return;  // `restore mongodb …` set its own action
    c.action = [c, spec, pick, opts, environment, date, all, overwrite]() -> Status {
      // With a plan: a source's name, --all or --environment restore plan sources; `latest` or a
      // snapshot ID with --target restore a tree from the plan's repository, as without a plan.
      auto plan = plan_mode(c.global);
      if (plan && !*all && environment->empty() && date->empty()) {
        LB_ASSIGN_OR_RETURN(auto p, plan::load_plan(*plan));
        if (!p.source(*spec)) plan.reset();
      }
      if (plan) {
        LB_ASSIGN_OR_RETURN(auto at, requested_instant(pick->at, *date));
        std::vector<std::string> names;
        if (!*all) {
          if (*spec == "latest") return Error(Code::kInvalidArgument, "plan mode: name a source to restore, or --all");
          names.push_back(*spec);
        }
        if (environment->empty()) return Error(Code::kInvalidArgument, "plan mode: --environment ENV is required");
        return plan_restore(c.global, *plan, names, *environment, at);
      }
      if (opts->target.empty()) return Error(Code::kInvalidArgument, "restore needs --target DIR");
      opts->explain = flag_advice;
      if (overwrite->empty()) {
        opts->refuse_non_empty = true;
      } else {
        auto mode = repo::parse_overwrite(*overwrite);
        if (!mode) return Error(Code::kInvalidArgument, "--overwrite takes always, if-changed, if-newer or never");
        opts->overwrite = *mode;
      }
      LB_ASSIGN_OR_RETURN(auto repo, open_repository(c.global));
      LB_RETURN_IF_ERROR(repo->require_reader("restore"));
      // Shared: a prune running meanwhile keeps every pack this restore may still read.
      LB_ASSIGN_OR_RETURN(auto lock, repo::RepoLock::acquire(*repo, repo::LockKind::kShared));
      LB_ASSIGN_OR_RETURN(auto ref, pick_snapshot(*repo, *spec, *pick));
      if (!c.global.json && !c.global.quiet)
        fmt::print("restoring snapshot {} of {} ({}) to {}\n", ref.short_id(), fmt::join(ref.snapshot.paths, " "),
                   format_local(ref.snapshot.time_ns), opts->target);
      ProgressCounters counters;
      int64_t start = monotonic_ns();
      ProgressDisplay display("restore", counters, progress_enabled(c.global));
      auto r = repo::restore_tree(*repo, ref.snapshot.tree, *opts, counters);
      display.stop();
      for (const auto& w : repo->index_warnings()) fmt::print(stderr, "warning: {}\n", w);
      if (!r) return r.status();
      int64_t ms = (monotonic_ns() - start) / 1000000;
      if (c.global.json) {
        print_json({{"snapshot", snapshot_json(ref)},
                    {"target", opts->target},
                    {"files", r->files},
                    {"dirs", r->dirs},
                    {"other", r->others},
                    {"bytes", r->bytes},
                    {"files_verified", r->files_verified},
                    {"skipped", r->skipped},
                    {"deleted", r->deleted},
                    {"dry_run", opts->dry_run},
                    {"changes", [&] {
                       nlohmann::json list = nlohmann::json::array();
                       for (const auto& [what, path] : r->changes) list.push_back({{"change", what}, {"path", path}});
                       return list;
                     }()},
                    {"changes_omitted", r->changes_omitted},
                    {"duration_ms", ms},
                    {"errors", r->errors}});
      } else if (opts->dry_run) {
        for (const auto& [what, path] : r->changes) fmt::print("{} {}\n", what, path);
        fmt::print("dry run: nothing was written\n");
      } else {
        for (const auto& e : r->errors) fmt::print(stderr, "error: {}\n", e);
        if (!c.global.quiet) {
          if (r->skipped || r->deleted)
            fmt::print("kept {} entries the target already had, deleted {}\n", r->skipped, r->deleted);
          // Counts of what was written, worded as a success only when nothing failed.
          fmt::print("{} {} files, {} dirs, {} in {}\n", r->errors.empty() ? "restored" : "wrote only", r->files, r->dirs,
                     format_bytes(r->bytes), format_duration_ms(ms));
          if (opts->verify && r->files_verified)
            fmt::print("verified {} files: contents match the backup\n", r->files_verified);
        }
      }
      if (!r->errors.empty())
        return Error(Code::kFatal, fmt::format("restore incomplete: {} error(s), the first: {} (a file that failed is "
                                               "not left in the target, whole or partial)",
                                               r->errors.size(), r->errors.front()));
      return Status::ok();
    };
  });
}

}  // namespace lifeboat::cli
