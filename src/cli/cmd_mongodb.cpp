// MongoDB commands: `backup mongodb`, `restore mongodb`, `mongodb follow` and `mongodb tidy`.
#include <fmt/format.h>

#include "cli/context.h"
#include "core/platform_user.h"
#include "core/progress.h"
#include "core/time.h"
#include "repo/lock.h"
#include "sources/mongodb/mongo_backup.h"
#include "sources/mongodb/mongo_restore.h"
#include "sources/mongodb/oplog_follow.h"
#include "sources/mongodb/slice_tidy.h"

namespace lifeboat::cli {

namespace mdb = sources::mongodb;

namespace {

struct MongoBackupFlags {
  mdb::MongoBackupOptions o;
};

void register_backup_mongodb(CommandSet c, CLI::App* backup) {
  auto* cmd = backup->add_subcommand("mongodb", "full backup of a MongoDB deployment (documents, options, indexes)");
  auto f = std::make_shared<MongoBackupFlags>();
  cmd->add_option("--uri", f->o.uri, "MongoDB connection string (mongodb://user:pass@host:port/?…)")->required();
  cmd->add_option("--db", f->o.databases, "only this database (repeatable; default: all but admin, config, local)");
  cmd->add_option("--name", f->o.name, "deployment name recorded in the snapshot (default: the URI's hosts)");
  cmd->add_option("--tag", f->o.tags, "tag the snapshot (repeatable)");
  cmd->add_option("--host", f->o.hostname, "host name to record (default: this host)");
  cmd->add_option("--threads", f->o.threads, "collections dumped at once")->capture_default_str();
  cmd->callback([c, f] {
    c.action = [c, f]() -> Status {
      LB_ASSIGN_OR_RETURN(auto repo, open_repository(c.global));
      LB_ASSIGN_OR_RETURN(auto lock, repo::RepoLock::acquire(*repo, repo::LockKind::kShared));
      ProgressCounters counters;
      ProgressDisplay display("backup", counters, progress_enabled(c.global));
      auto r = mdb::backup_mongodb(*repo, f->o, counters);
      display.stop();
      if (!r) return r.status();
      const auto& s = r->snapshot;
      if (c.global.json) {
        nlohmann::json cols = s.metadata["collections"];
        print_json({{"snapshot_id", r->snapshot_id},
                    {"short_id", r->snapshot_id.substr(0, 8)},
                    {"time", format_rfc3339(s.time_ns)},
                    {"name", s.paths[0]},
                    {"collections", cols},
                    {"oplog_start", s.metadata["oplog_start"]},
                    {"oplog_end", s.metadata["oplog_end"]},
                    {"oplog_entries", s.metadata["oplog_entries"]},
                    {"summary", s.summary}});
        return Status::ok();
      }
      if (c.global.quiet) return Status::ok();
      for (const auto& col : r->collections)
        fmt::print("  {}.{}: {} documents, {}, hash {}\n", col.db, col.name, col.count, format_bytes(col.bytes),
                   col.hash.substr(0, 12));
      auto num = [&](const char* k) { return s.summary.value(k, uint64_t{0}); };
      fmt::print("MongoDB {}: {} collections, {} documents, {}\n", s.paths[0], num("collections"), num("documents"),
                 format_bytes(num("total_bytes")));
      fmt::print("Added:      {} ({} stored after compression)\n", format_bytes(num("data_added_bytes")),
                 format_bytes(num("data_stored_bytes")));
      if (s.metadata["oplog_end"].is_object())
        fmt::print("Consistent: at oplog position {}:{} ({} entries written during the dump kept for replay)\n",
                   s.metadata["oplog_end"].value("t", 0u), s.metadata["oplog_end"].value("i", 0u),
                   s.metadata.value("oplog_entries", uint64_t{0}));
      else
        fmt::print("Consistent: no oplog on the server; writes during the dump may be partly included\n");
      fmt::print("snapshot {} saved in {}\n", r->snapshot_id.substr(0, 8),
                 format_duration_ms(s.summary.value("duration_ms", int64_t{0})));
      return Status::ok();
    };
  });
}

struct MongoRestoreFlags {
  mdb::MongoRestoreOptions o;
  std::string name, at;
  std::vector<std::string> to_db, checks;
  bool dry_run = false;
};

nlohmann::json plan_json(const mdb::MongoRestorePlan& p) {
  nlohmann::json slices = nlohmann::json::array();
  for (const auto& s : p.slices) slices.push_back(s.id);
  nlohmann::json j = {{"name", p.name},
                      {"full", p.full.id},
                      {"full_time", format_rfc3339(p.full.snapshot.time_ns)},
                      {"slices", slices},
                      {"point", format_rfc3339(p.point_ns)},
                      {"point_ns", p.point_ns}};
  if (p.at_ns) {
    j["at"] = format_rfc3339(*p.at_ns);
    j["lag_ms"] = (*p.at_ns - p.point_ns + 999999) / 1000000;  // short by 1 ns is short
  }
  j["proved"] = p.proved;
  j["proof"] = p.proof;
  if (!p.limit.empty()) j["limit"] = p.limit;
  return j;
}

void register_restore_mongodb(CommandSet c, CLI::App* restore) {
  auto* cmd = restore->add_subcommand("mongodb", "restore MongoDB as of a time: full backup + oplog replay");
  auto f = std::make_shared<MongoRestoreFlags>();
  cmd->add_option("--at", f->at, "restore the state as of this time (default: the newest restorable point)");
  cmd->add_option("--uri", f->o.uri, "target server to restore into");
  cmd->add_option("--to-dir", f->o.to_dir, "write a mongodump-layout directory instead (for mongorestore)");
  cmd->add_flag("--drop", f->o.drop, "drop each collection before restoring it");
  cmd->add_option("--db", f->o.databases, "only this database (repeatable)");
  cmd->add_option("--to-db", f->to_db, "restore database OLD as NEW (OLD=NEW, repeatable)");
  cmd->add_option("--name", f->name, "deployment to restore (needed when the repository holds several)");
  cmd->add_option("--threads", f->o.threads, "insert batches in flight")->capture_default_str();
  cmd->add_flag("--dry-run", f->dry_run, "print which backup and slices would be used, and the restored point");
  cmd->add_flag("--skip-unknown", f->o.skip_unknown,
                "go on past oplog entries this version does not understand (each is counted and named; without it the "
                "replay stops before the first, exit 3)");
  cmd->add_option("--check", f->checks, "read the restored target back and compare it with the predicted state: counts, "
                                        "hashes (repeatable)")
      ->check(CLI::IsMember({"counts", "hashes"}));
  cmd->callback([c, f] {
    c.action = [c, f]() -> Status {
      for (const auto& r : f->to_db) {
        size_t eq = r.find('=');
        if (eq == std::string::npos || eq == 0 || eq + 1 == r.size())
          return Error(Code::kInvalidArgument, fmt::format("--to-db {}: expected OLD=NEW", r));
        f->o.rename.emplace_back(r.substr(0, eq), r.substr(eq + 1));
      }
      std::optional<int64_t> at;
      if (!f->at.empty()) {
        LB_ASSIGN_OR_RETURN(int64_t t, parse_time(f->at));
        at = t;
      }
      if (!f->dry_run && f->o.uri.empty() == f->o.to_dir.empty())
        return Error(Code::kInvalidArgument, "restore mongodb needs exactly one target: --uri URI or --to-dir DIR");
      LB_ASSIGN_OR_RETURN(auto repo, open_repository(c.global));
      LB_ASSIGN_OR_RETURN(auto lock, repo::RepoLock::acquire(*repo, repo::LockKind::kShared));
      LB_ASSIGN_OR_RETURN(auto snaps, repo->list_snapshots());
      LB_ASSIGN_OR_RETURN(auto plan, mdb::plan_mongodb_restore(snaps, f->name, at));
      bool text = !c.global.json && !c.global.quiet;
      // The point is printed from the plan as restored: the replay may end inside the requested second
      // or stop short of it at an entry it does not understand.
      auto print_point = [&](const mdb::MongoRestorePlan& p) {
        fmt::print("restored point: {}", format_local(p.point_ns));
        if (p.proved)
          fmt::print(" (exactly the requested instant)");
        else if (at && *at > p.point_ns)
          fmt::print(" ({} before the requested {})", format_duration_ms((*at - p.point_ns + 999999) / 1000000),
                     format_local(*at));
        fmt::print("\n  proved by: {}\n", p.proof);
        if (!p.limit.empty()) fmt::print("  limited by: {}\n", p.limit);
      };
      if (text)
        fmt::print("MongoDB {}: full backup {} ({}) + {} oplog slice(s)\n", plan.name, plan.full.short_id(),
                   format_local(plan.full.snapshot.time_ns), plan.slices.size());
      if (f->dry_run) {
        if (text) print_point(plan);
        if (c.global.json) print_json({{"plan", plan_json(plan)}});
        return Status::ok();
      }
      ProgressCounters counters;
      int64_t start = monotonic_ns();
      ProgressDisplay display("restore", counters, progress_enabled(c.global));
      auto r = mdb::restore_mongodb(*repo, plan, f->o, counters);
      display.stop();
      if (!r) return r.status();
      int64_t ms = (monotonic_ns() - start) / 1000000;
      uint64_t dups = 0;
      nlohmann::json cols = nlohmann::json::array();
      for (const auto& col : r->collections) {
        dups += col.duplicates;
        cols.push_back({{"db", col.db}, {"name", col.name}, {"count", col.count}, {"hash_ok", col.hash_ok},
                        {"duplicates", col.duplicates}});
      }
      std::vector<sources::CheckResult> checks;
      if (!f->checks.empty()) checks = mdb::check_restored(f->o.uri, f->o.to_dir, mdb::expected_json(r->expected), f->checks);
      bool checks_ok = std::all_of(checks.begin(), checks.end(), [](const sources::CheckResult& k) { return k.ok; });
      if (c.global.json) {
        nlohmann::json j = {{"plan", plan_json(r->plan)},
                            {"target", f->o.uri.empty() ? f->o.to_dir : sources::mongodb::redact_uri(f->o.uri)},
                            {"collections", cols},
                            {"documents", r->documents},
                            {"oplog_entries_read", r->entries_read},
                            {"oplog_entries_applied", r->ops_applied},
                            {"warnings", r->warnings},
                            {"skip_unknown", f->o.skip_unknown},
                            {"duration_ms", ms}};
        if (!r->skipped.empty()) j["skipped"] = r->skipped;
        if (r->stopped_before) j["stopped_before"] = *r->stopped_before;
        if (!checks.empty()) {
          j["checks"] = nlohmann::json::array();
          for (const auto& k : checks) j["checks"].push_back({{"name", k.name}, {"ok", k.ok}, {"detail", k.detail}});
        }
        print_json(j);
      } else if (!c.global.quiet) {
        print_point(r->plan);
        fmt::print("restored {} collections, {} documents; replayed {} oplog entries as {} changes in {}\n",
                   r->collections.size(), r->documents, r->entries_read, r->ops_applied, format_duration_ms(ms));
        fmt::print("every collection read from the repository matched the count and hash recorded at backup\n");
        if (dups) fmt::print("{} documents already present in the target were left as they were (use --drop)\n", dups);
        if (r->warnings) {
          fmt::print("--skip-unknown: {} oplog entries this version does not understand were skipped:\n", r->warnings);
          for (const auto& w : r->skipped) fmt::print("  {}\n", w);
        }
        if (r->stopped_before)
          fmt::print("stopped: the replay ended before an oplog entry it does not understand: {}\n"
                     "  the target holds the state before it; --skip-unknown goes on past such entries\n",
                     *r->stopped_before);
        for (const auto& k : checks) fmt::print("check {}: {} — {}\n", k.name, k.ok ? "ok" : "FAILED", k.detail);
      }
      if (r->stopped_before)
        return Error(Code::kPartial, fmt::format("restore stopped before an oplog entry it does not understand ({})",
                                                 *r->stopped_before));
      if (!checks_ok) return Error(Code::kFatal, "a check of the restored target failed");
      return Status::ok();
    };
  });
}

struct FollowFlags {
  mdb::FollowOptions o;
  std::string interval = "60s", idle = "", reconnect = "2m";
};

void register_follow(CommandSet c) {
  auto* group = c.app.add_subcommand("mongodb", "MongoDB continuous capture");
  group->require_subcommand(1);
  auto* cmd = group->add_subcommand("follow", "tail the oplog and commit a slice at least every --interval");
  auto f = std::make_shared<FollowFlags>();
  cmd->add_option("--uri", f->o.uri, "MongoDB connection string")->required();
  cmd->add_option("--name", f->o.name, "deployment name (as given to backup mongodb; default: the URI's hosts)");
  cmd->add_option("--host", f->o.hostname, "host name to record (default: this host)");
  cmd->add_option("--interval", f->interval, "commit a slice at least this often when changes arrived")->capture_default_str();
  cmd->add_option("--idle-commit", f->idle, "commit an empty slice after this long without changes (default: 10 intervals)");
  cmd->add_option("--reconnect-for", f->reconnect, "give up when the server stays unreachable this long")->capture_default_str();
  cmd->callback([c, f] {
    c.action = [c, f]() -> Status {
      LB_ASSIGN_OR_RETURN(f->o.interval_ns, parse_duration(f->interval));
      if (!f->idle.empty()) {
        LB_ASSIGN_OR_RETURN(f->o.idle_commit_ns, parse_duration(f->idle));
      }
      LB_ASSIGN_OR_RETURN(f->o.reconnect_for_ns, parse_duration(f->reconnect));
      LB_ASSIGN_OR_RETURN(auto repo, open_repository(c.global));
      bool gap = false;
      mdb::FollowEvents ev;
      ev.on_commit = [&](const mdb::SliceCommitted& s) {
        if (c.global.json) {
          print_json({{"event", "slice"}, {"snapshot_id", s.snapshot_id}, {"from", mdb::oplog_time_json(s.from)},
                      {"to", mdb::oplog_time_json(s.to)}, {"entries", s.entries}, {"gap", s.gap}});
        } else if (!c.global.quiet) {
          fmt::print("{} slice {}: {} entries, {} .. {}\n", format_local(now_unix_ns()), s.snapshot_id.substr(0, 8),
                     s.entries, s.from.to_string(), s.to.to_string());
        }
        std::fflush(stdout);
      };
      if (c.global.json)
        ev.on_held = [&](uint64_t entries, const mdb::OplogTime& through) {
          print_json({{"event", "held"}, {"entries", entries}, {"through", mdb::oplog_time_json(through)}});
          std::fflush(stdout);
        };
      ev.on_warning = [&](const std::string& w) {
        if (w.starts_with("OPLOG GAP")) gap = true;
        fmt::print(stderr, "lifeboat: warning: {}\n", w);
        if (c.global.json) print_json({{"event", "warning"}, {"message", w}});
        std::fflush(stdout);
      };
      Status s = mdb::follow_oplog(*repo, f->o, ev);
      if (!s.is_ok()) return s;
      if (gap) return Error(Code::kPartial, "the oplog had a gap (see above): take a new full backup");
      return Status::ok();
    };
  });
}

struct TidyFlags {
  std::string name, window, compact_after = "24h";
};

void register_tidy(CommandSet c, CLI::App* group) {
  auto* cmd = group->add_subcommand("tidy", "compact oplog slices older than a day into hourly ones and forget those "
                                            "before the point-in-time window");
  auto f = std::make_shared<TidyFlags>();
  cmd->add_option("--name", f->name, "deployment (needed when the repository holds several)");
  cmd->add_option("--pitr-window", f->window, "forget slices no restore inside this window needs (default: keep all)");
  cmd->add_option("--compact-after", f->compact_after, "compact slices older than this (0: never)")->capture_default_str();
  cmd->callback([c, f] {
    c.action = [c, f]() -> Status {
      mdb::TidyOptions o;
      o.now_ns = now_unix_ns();
      if (!f->window.empty()) {
        LB_ASSIGN_OR_RETURN(o.window_ns, parse_duration(f->window));
      }
      if (f->compact_after == "0") o.compact_after_ns = 0;
      else {
        LB_ASSIGN_OR_RETURN(o.compact_after_ns, parse_duration(f->compact_after));
      }
      LB_ASSIGN_OR_RETURN(auto repo, open_repository(c.global));
      LB_ASSIGN_OR_RETURN(auto lock, repo::RepoLock::acquire(*repo, repo::LockKind::kShared));
      LB_ASSIGN_OR_RETURN(auto snaps, repo->list_snapshots());
      // The deployment: as restore picks it.
      LB_ASSIGN_OR_RETURN(auto plan, mdb::plan_mongodb_restore(snaps, f->name, std::nullopt));
      o.name = plan.name;
      LB_ASSIGN_OR_RETURN(o.pinned, repo->pinned());
      LB_ASSIGN_OR_RETURN(auto r, mdb::tidy_slices(*repo, o));
      if (c.global.json) {
        auto j = mdb::tidy_json(r);
        j["name"] = o.name;
        print_json(j);
      } else if (!c.global.quiet) {
        fmt::print("{}: {} slice(s) compacted into {} hourly slice(s); {} slice(s) before the window forgotten{}\n",
                   o.name, r.compacted, r.compacted_into, r.forgotten,
                   r.kept_by_object_lock ? fmt::format("; {} kept by object lock", r.kept_by_object_lock) : "");
      }
      return Status::ok();
    };
  });
}

}  // namespace

void register_mongodb(CommandSet c) {
  register_backup_mongodb(c, c.app.get_subcommand("backup"));
  register_restore_mongodb(c, c.app.get_subcommand("restore"));
  register_follow(c);
  register_tidy(c, c.app.get_subcommand("mongodb"));
}

}  // namespace lifeboat::cli
