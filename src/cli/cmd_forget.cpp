// lifeboat forget / prune / pin / unpin: retention and reclaiming space.
#include <fmt/format.h>

#include "cli/context.h"
#include "core/time.h"
#include "repo/lock.h"
#include "repo/prune.h"
#include "repo/retention.h"

namespace lifeboat::cli {

namespace {

struct ForgetFlags {
  std::vector<std::string> ids;
  repo::RetentionPolicy policy;
  std::string within, within_hourly, within_daily, within_weekly, within_monthly, within_yearly;
  std::string group_by = "source,host,paths";
  bool dry_run = false, explain = false, prune = false;
  std::string max_unused = "10%";
};

Result<double> parse_share(const std::string& s) {
  try {
    size_t used = 0;
    double v = std::stod(s, &used);
    if (used < s.size() && s.substr(used) == "%") v /= 100;
    else if (used != s.size()) throw std::invalid_argument(s);
    if (v < 0 || v > 1) throw std::out_of_range(s);
    return v;
  } catch (const std::exception&) {
    return Error(Code::kInvalidArgument, fmt::format("--max-unused wants a share like 10% or 0.1, not '{}'", s));
  }
}

// Prints the text report; returns the JSON one for the caller to print (once, with --json).
Result<nlohmann::json> run_prune(const CommandSet& c, repo::Repository& r, double max_unused, bool dry_run) {
  LB_ASSIGN_OR_RETURN(auto lock, repo::RepoLock::acquire(r, repo::LockKind::kMaintenance));
  repo::PruneOptions o;
  o.max_unused = max_unused;
  o.dry_run = dry_run;
  LB_ASSIGN_OR_RETURN(auto rep, repo::prune_repository(r, o, *lock));
  nlohmann::json j = {{"dry_run", dry_run},
                {"snapshots", rep.snapshots},
                {"packs", rep.packs},
                {"blobs_used", rep.blobs_used},
                {"blobs_unused", rep.blobs_unused},
                {"packs_tombstoned", rep.packs_tombstoned},
                {"packs_repacked", rep.packs_repacked},
                {"packs_resurrected", rep.packs_resurrected},
                {"packs_deleted", rep.packs_deleted},
                {"orphan_packs", rep.orphans},
                {"bytes_before", rep.bytes_before},
                {"bytes_deleted", rep.bytes_deleted},
                {"bytes_repacked", rep.bytes_repacked},
                {"tombstones_waiting", rep.tombstones_waiting},
                {"locks_removed", rep.locks_removed}};
  if (!c.global.json && !c.global.quiet) {
    fmt::print("{}{} packs, {} blobs used, {} unused\n", dry_run ? "would prune: " : "", rep.packs, rep.blobs_used,
               rep.blobs_unused);
    fmt::print("{} packs taken out of service ({} repacked, {} left by interrupted writers), {} brought back\n",
               rep.packs_tombstoned, rep.packs_repacked, rep.orphans, rep.packs_resurrected);
    fmt::print("{} {} packs ({})\n", dry_run ? "would delete" : "deleted", rep.packs_deleted, format_bytes(rep.bytes_deleted));
    if (rep.tombstones_waiting)
      fmt::print("{} packs wait for backups that started before this prune; {}\n", rep.tombstones_waiting,
                 dry_run ? "they would be kept" : "the next prune deletes them");
  }
  return j;
}

}  // namespace

void register_forget(CommandSet c) {
  auto* cmd = c.app.add_subcommand("forget", "remove snapshots by ID or by a retention policy (then --prune)");
  auto f = std::make_shared<ForgetFlags>();
  auto pick = std::make_shared<SnapshotPick>();
  cmd->add_option("snapshots", f->ids, "snapshot IDs to forget (instead of a policy)");
  cmd->add_option("--keep-last", f->policy.keep_last, "keep the N newest snapshots");
  cmd->add_option("--keep-hourly", f->policy.keep_hourly, "keep the newest snapshot of each of N hours");
  cmd->add_option("--keep-daily", f->policy.keep_daily, "keep the newest snapshot of each of N days");
  cmd->add_option("--keep-weekly", f->policy.keep_weekly, "keep the newest snapshot of each of N ISO weeks");
  cmd->add_option("--keep-monthly", f->policy.keep_monthly, "keep the newest snapshot of each of N months");
  cmd->add_option("--keep-yearly", f->policy.keep_yearly, "keep the newest snapshot of each of N years");
  cmd->add_option("--keep-within", f->within, "keep every snapshot within DURATION of the newest (e.g. 90d)");
  cmd->add_option("--keep-within-hourly", f->within_hourly, "keep one a hour within DURATION");
  cmd->add_option("--keep-within-daily", f->within_daily, "keep one a day within DURATION");
  cmd->add_option("--keep-within-weekly", f->within_weekly, "keep one a week within DURATION");
  cmd->add_option("--keep-within-monthly", f->within_monthly, "keep one a month within DURATION");
  cmd->add_option("--keep-within-yearly", f->within_yearly, "keep one a year within DURATION");
  cmd->add_option("--keep-tag", f->policy.keep_tags, "keep snapshots with this tag (repeatable)");
  cmd->add_option("--group-by", f->group_by, "apply the policy per group of: source,host,paths,tags")
      ->capture_default_str();
  cmd->add_flag("--dry-run", f->dry_run, "show what would be removed; change nothing");
  cmd->add_flag("--explain", f->explain, "print the rule that keeps each snapshot, or why it goes");
  cmd->add_flag("--prune", f->prune, "prune afterwards, reclaiming the space");
  cmd->add_option("--max-unused", f->max_unused, "with --prune: repack packs with more unused data than this")
      ->capture_default_str();
  pick->add_flags(cmd, false);
  cmd->callback([c, f, pick] {
    c.action = [c, f, pick]() -> Status {
      struct {
        const std::string* text;
        int64_t* out;
      } durations[] = {{&f->within, &f->policy.keep_within_ns},
                       {&f->within_hourly, &f->policy.keep_within_hourly_ns},
                       {&f->within_daily, &f->policy.keep_within_daily_ns},
                       {&f->within_weekly, &f->policy.keep_within_weekly_ns},
                       {&f->within_monthly, &f->policy.keep_within_monthly_ns},
                       {&f->within_yearly, &f->policy.keep_within_yearly_ns}};
      for (auto& d : durations)
        if (!d.text->empty()) {
          LB_ASSIGN_OR_RETURN(*d.out, parse_duration(*d.text));
        }
      LB_ASSIGN_OR_RETURN(double max_unused, parse_share(f->max_unused));
      if (f->ids.empty() && f->policy.empty())
        return Error(Code::kInvalidArgument,
                     "forget needs snapshot IDs or a policy (e.g. --keep-daily 30 --keep-weekly 12 --keep-monthly 12); "
                     "refusing to forget everything");
      LB_ASSIGN_OR_RETURN(auto r, open_repository(c.global));
      LB_RETURN_IF_ERROR(r->require_admin("forget"));
      LB_ASSIGN_OR_RETURN(auto lock, repo::RepoLock::acquire(*r, repo::LockKind::kShared));
      // By ID, an untrusted snapshot can be forgotten too; a policy never sees one.
      LB_ASSIGN_OR_RETURN(auto all, r->list_snapshots(/*include_untrusted=*/!f->ids.empty()));
      LB_ASSIGN_OR_RETURN(auto pins, r->pinned());
      std::vector<repo::RetentionDecision> decisions;
      if (!f->ids.empty()) {
        for (const auto& id : f->ids) {
          LB_ASSIGN_OR_RETURN(auto ref, repo::select_snapshot(all, id, std::nullopt, {}));
          repo::RetentionDecision d{ref, pins.count(ref.id) > 0, {}};
          d.reasons.push_back(d.keep ? "pinned (unpin it first)" : "named on the command line");
          decisions.push_back(std::move(d));
        }
      } else {
        std::vector<std::string> fields;
        for (size_t pos = 0; pos <= f->group_by.size();) {
          size_t next = f->group_by.find(',', pos);
          if (next == std::string::npos) next = f->group_by.size();
          std::string field = f->group_by.substr(pos, next - pos);
          if (!field.empty()) {
            if (field != "source" && field != "host" && field != "paths" && field != "tags")
              return Error(Code::kInvalidArgument, "--group-by fields are source, host, paths, tags; not " + field);
            fields.push_back(field);
          }
          pos = next + 1;
        }
        for (const auto& [key, group] : repo::group_snapshots(repo::filter_snapshots(all, pick->filter), fields)) {
          auto ds = repo::apply_retention(group, f->policy, pins);
          if (!c.global.json && !c.global.quiet)
            fmt::print("{} ({} snapshots): keep {}\n", key, group.size(),
                       std::count_if(ds.begin(), ds.end(), [](const auto& d) { return d.keep; }));
          decisions.insert(decisions.end(), ds.begin(), ds.end());
        }
      }
      nlohmann::json out = nlohmann::json::array();
      size_t removed = 0;
      for (const auto& d : decisions) {
        if (c.global.json) {
          out.push_back({{"id", d.ref.id}, {"time", format_rfc3339(d.ref.snapshot.time_ns)}, {"keep", d.keep},
                         {"reasons", d.reasons}});
        } else if (f->explain || (!d.keep && !c.global.quiet)) {
          fmt::print("  {} {}  {}  {}\n", d.keep ? "keep  " : "remove", d.ref.short_id(),
                     format_local(d.ref.snapshot.time_ns), fmt::join(d.reasons, "; "));
        }
        if (d.keep) continue;
        ++removed;
        if (!f->dry_run) {
          LB_ASSIGN_OR_RETURN(int64_t locked, r->forget_snapshot(d.ref.id));
          if (locked) {
            fmt::print(stderr, "kept {}: under object lock until {}\n", d.ref.short_id(), format_rfc3339(locked));
            --removed;
            continue;
          }
        }
      }
      nlohmann::json result = {{"dry_run", f->dry_run}, {"removed", removed}, {"snapshots", out}};
      if (!c.global.json && !c.global.quiet)
        fmt::print("{} {} snapshot(s)\n", f->dry_run ? "would remove" : "removed", removed);
      lock.reset();
      if (f->prune) {
        LB_ASSIGN_OR_RETURN(result["prune"], run_prune(c, *r, max_unused, f->dry_run));
      }
      if (c.global.json) print_json(result);
      return Status::ok();
    };
  });

  auto* prune = c.app.add_subcommand("prune", "delete data no snapshot needs; backups may keep running");
  auto max_unused = std::make_shared<std::string>("10%");
  auto dry_run = std::make_shared<bool>(false);
  prune->add_option("--max-unused", *max_unused, "repack packs with more unused data than this share")
      ->capture_default_str();
  prune->add_flag("--dry-run", *dry_run, "show what would happen; change nothing");
  prune->callback([c, max_unused, dry_run] {
    c.action = [c, max_unused, dry_run]() -> Status {
      LB_ASSIGN_OR_RETURN(double share, parse_share(*max_unused));
      LB_ASSIGN_OR_RETURN(auto r, open_repository(c.global));
      LB_RETURN_IF_ERROR(r->require_admin("prune"));
      LB_ASSIGN_OR_RETURN(auto j, run_prune(c, *r, share, *dry_run));
      if (c.global.json) print_json(j);
      return Status::ok();
    };
  });

  for (bool pin : {true, false}) {
    auto* cmd2 = c.app.add_subcommand(pin ? "pin" : "unpin",
                                      pin ? "keep a snapshot forever, whatever a policy says" : "remove a pin");
    auto id = std::make_shared<std::string>();
    auto note = std::make_shared<std::string>();
    cmd2->add_option("snapshot", *id, "snapshot ID")->required();
    if (pin) cmd2->add_option("--note", *note, "why it is pinned (e.g. 'production model v3')");
    cmd2->callback([c, id, note, pin] {
      c.action = [c, id, note, pin]() -> Status {
        LB_ASSIGN_OR_RETURN(auto r, open_repository(c.global));
        LB_ASSIGN_OR_RETURN(auto all, r->list_snapshots());
        LB_ASSIGN_OR_RETURN(auto ref, repo::select_snapshot(all, *id, std::nullopt, {}));
        LB_RETURN_IF_ERROR(pin ? r->pin(ref.id, *note) : r->unpin(ref.id));
        if (c.global.json) print_json({{"snapshot", ref.id}, {"pinned", pin}});
        else if (!c.global.quiet) fmt::print("snapshot {} {}\n", ref.short_id(), pin ? "pinned" : "unpinned");
        return Status::ok();
      };
    });
  }
}

}  // namespace lifeboat::cli
