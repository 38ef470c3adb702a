// Firestore commands: `backup firestore` and `restore firestore`.
#include <fmt/format.h>

#include "cli/context.h"
#include "cloud/firestore_client.h"
#include "core/progress.h"
#include "core/time.h"
#include "repo/lock.h"
#include "repo/snapshot_select.h"
#include "sources/firestore/firestore.h"

namespace lifeboat::cli {

namespace fs = sources::firestore;

namespace {

struct FirestoreBackupFlags {
  fs::FirestoreBackupOptions o;
  std::string read_window = "1h";
};

void register_backup_firestore(CommandSet c, CLI::App* backup) {
  auto* cmd = backup->add_subcommand("firestore", "back up a Firestore database (or collections) as of one read time");
  auto f = std::make_shared<FirestoreBackupFlags>();
  cmd->add_option("--project", f->o.project, "the Google Cloud project")->required();
  cmd->add_option("--database", f->o.database, "the database")->capture_default_str();
  cmd->add_option("--collection", f->o.collections, "only this top-level collection, with everything below it (repeatable)");
  cmd->add_option("--name", f->o.name, "name recorded in the snapshot (default: projects/P/databases/D)");
  cmd->add_option("--readers", f->o.readers, "ranges of documents read at once")->capture_default_str();
  cmd->add_option("--read-window", f->read_window,
                  "how long the server keeps past versions: 1h, or 7d with point-in-time recovery; a backup that would outlast "
                  "it fails")->capture_default_str();
  cmd->add_option("--tag", f->o.tags, "tag the snapshot (repeatable)");
  cmd->add_option("--host", f->o.hostname, "host name to record (default: this host)");
  cmd->callback([c, f] {
    c.action = [c, f]() -> Status {
      LB_ASSIGN_OR_RETURN(f->o.read_window_ns, parse_duration(f->read_window));
      LB_ASSIGN_OR_RETURN(auto repo, open_repository(c.global));
      LB_ASSIGN_OR_RETURN(auto lock, repo::RepoLock::acquire(*repo, repo::LockKind::kShared));
      ProgressCounters counters;
      ProgressDisplay display("backup", counters, progress_enabled(c.global));
      auto r = fs::backup_firestore(*repo, f->o, counters);
      display.stop();
      if (!r) return r.status();
      const auto& s = r->snapshot;
      if (c.global.json) {
        print_json({{"snapshot_id", r->snapshot_id}, {"short_id", r->snapshot_id.substr(0, 8)}, {"time", format_rfc3339(s.time_ns)},
                    {"database", s.paths[0]}, {"metadata", s.metadata}, {"summary", s.summary}});
      } else if (!c.global.quiet) {
        fmt::print("Database {} read at {} (the server's read time)\n", s.paths[0], s.metadata.value("read_time", ""));
        for (auto it = s.metadata["collections"].begin(); it != s.metadata["collections"].end(); ++it)
          fmt::print("  {:<24} {:>9} documents  hash {}\n", it.key(), it.value().value("documents", uint64_t{0}),
                     it.value().value("hash", "").substr(0, 16));
        fmt::print("Documents:  {} ({}) in {} ranges by {} readers\n", s.metadata.value("documents", uint64_t{0}),
                   format_bytes(s.metadata.value("bytes", uint64_t{0})), s.metadata.value("ranges", uint64_t{0}),
                   s.metadata.value("readers", uint64_t{0}));
        fmt::print("Added:      {} ({} stored after compression)\n", format_bytes(s.summary.value("data_added_bytes", uint64_t{0})),
                   format_bytes(s.summary.value("data_stored_bytes", uint64_t{0})));
        for (const auto& ch : s.summary.value("checks", nlohmann::json::array()))
          fmt::print("Check {}: {} — {}\n", ch.value("check", ""), ch.value("ok", false) ? "ok" : "FAILED", ch.value("detail", ""));
        fmt::print("snapshot {} saved in {}\n", r->snapshot_id.substr(0, 8), format_duration_ms(s.summary.value("duration_ms", int64_t{0})));
      }
      return Status::ok();
    };
  });
}

struct FirestoreRestoreFlags {
  fs::FirestoreRestoreOptions o;
  std::string project, database = "(default)";
  std::string at, date, snapshot, to_dir;
  bool from_backup = false;
  std::vector<std::string> checks = {"counts", "hashes"};
};

void register_restore_firestore(CommandSet c, CLI::App* restore) {
  auto* cmd = restore->add_subcommand("firestore", "restore a Firestore database as of a time into the same or another database");
  auto f = std::make_shared<FirestoreRestoreFlags>();
  cmd->add_option("--project", f->project, "the backed-up project")->required();
  cmd->add_option("--database", f->database, "the backed-up database")->capture_default_str();
  cmd->add_option("--at", f->at,
                  "the state as of this time: read from the live database when the server still keeps it (point-in-time "
                  "recovery: 7 days), else the newest backup before it");
  cmd->add_option("--date", f->date, "the newest backup of this day (YYYY-MM-DD, local time)");
  cmd->add_option("--snapshot", f->snapshot, "this snapshot");
  cmd->add_flag("--from-backup", f->from_backup, "with --at: use the newest backup before it even when the server still keeps it");
  cmd->add_option("--collection", f->o.collections, "only this top-level collection (repeatable)");
  cmd->add_option("--to-project", f->o.to_project, "restore into this project (default: the backed-up one)");
  cmd->add_option("--to-database", f->o.to_database, "restore into this database (default: the backed-up one)");
  cmd->add_option("--to-dir", f->to_dir,
                  "write a managed export into this new directory instead (DIR/NAME.overall_export_metadata, "
                  "all_namespaces/all_kinds/output-N) for `gcloud firestore import`");
  cmd->add_flag("--replace", f->o.replace, "delete documents of the restored collections that the restored state lacks");
  cmd->add_flag("--dry-run", f->o.dry_run, "read and count what would be written and deleted; write nothing");
  cmd->add_flag("--ramp", f->o.ramp, "start at 500 writes/s and add 50% every 5 minutes (for a production database)");
  cmd->add_option("--writers", f->o.writers, "batch writes at once")->capture_default_str();
  cmd->add_option("--check", f->checks, "read the target back afterwards: counts, hashes (default both; none: --check none)")
      ->capture_default_str();
  cmd->callback([c, f] {
    c.action = [c, f]() -> Status {
      auto& o = f->o;
      if (o.to_project.empty()) o.to_project = f->project;
      if (o.to_database.empty()) o.to_database = f->database;
      LB_ASSIGN_OR_RETURN(auto at, requested_instant(f->at, f->date));
      bool text = !c.global.json && !c.global.quiet;
      LB_ASSIGN_OR_RETURN(auto repo, open_repository(c.global));
      LB_ASSIGN_OR_RETURN(auto lock, repo::RepoLock::acquire(*repo, repo::LockKind::kShared));
      fs::FirestoreSourceState from;
      std::string used;
      if (!f->at.empty() && f->snapshot.empty() && !f->from_backup) {
        LB_ASSIGN_OR_RETURN(std::string rt, fs::live_read_time(f->project, f->database, *at));
        if (!rt.empty()) {
          from.project = f->project;
          from.database = f->database;
          from.read_time = rt;
          used = fmt::format("the live database as the server kept it at {} (its own version history; no backup needed)", rt);
        }
      }
      if (from.read_time.empty()) {
        LB_ASSIGN_OR_RETURN(auto all, repo->list_snapshots());
        if (!f->snapshot.empty()) {
          repo::SnapshotFilter filter;
          filter.source = fs::kSource;
          LB_ASSIGN_OR_RETURN(auto ref, repo::select_snapshot(all, f->snapshot, std::nullopt, filter));
          from.snapshot = ref;
        } else {
          LB_ASSIGN_OR_RETURN(auto ref, fs::pick_firestore_snapshot(all, f->project, f->database, {}, at));
          from.snapshot = ref;
        }
        used = fmt::format("backup {} read at {}{}", from.snapshot->short_id(), from.snapshot->snapshot.metadata.value("read_time", ""),
                           f->at.empty() || f->from_backup ? ""
                                           : " (the newest backup at or before the requested time; the server keeps no version of the "
                                             "database that old)");
      }
      if (!f->to_dir.empty()) {
        if (text) fmt::print("exporting {} from {} into {}\n", f->project, used, f->to_dir);
        ProgressCounters counters;
        ProgressDisplay display("export", counters, progress_enabled(c.global));
        auto r = fs::export_firestore(*repo, from, o.collections, f->to_dir, counters);
        display.stop();
        if (!r) return r.status();
        if (c.global.json)
          print_json({{"source", from.snapshot ? "backup" : "live"}, {"directory", r->directory}, {"metadata_file", r->metadata_file},
                      {"files", r->files}, {"documents", r->documents}});
        else if (text)
          fmt::print("wrote {} documents in {} file(s); import with:\n  gcloud firestore import {}\n  (a bucket: copy {} there "
                     "first; the emulator: POST /emulator/v1/projects/P:import with export_directory {})\n",
                     r->documents, r->files.size(), r->directory, r->directory, r->metadata_file);
        return Status::ok();
      }
      std::string target = cloud::firestore_documents_root(o.to_project, o.to_database);
      if (text) fmt::print("restoring {} from {} into {}{}\n", f->project, used, target, o.dry_run ? " (dry run)" : "");
      ProgressCounters counters;
      int64_t start = monotonic_ns();
      ProgressDisplay display("restore", counters, progress_enabled(c.global));
      auto r = fs::restore_firestore(*repo, from, o, counters);
      display.stop();
      if (!r) return r.status();
      int64_t ms = (monotonic_ns() - start) / 1000000;
      std::vector<std::string> checks;
      for (const auto& ch : f->checks)
        if (ch != "none") checks.push_back(ch);
      std::vector<sources::CheckResult> results;
      if (!o.dry_run && !checks.empty()) results = fs::check_firestore_target(o, r->expected, r->names, checks);
      bool ok = true;
      nlohmann::json cj = nlohmann::json::array();
      for (const auto& ch : results) {
        ok = ok && ch.ok;
        cj.push_back({{"check", ch.name}, {"ok", ch.ok}, {"detail", ch.detail}});
      }
      if (c.global.json) {
        print_json({{"source", from.snapshot ? "backup" : "live"}, {"snapshot", from.snapshot ? snapshot_json(*from.snapshot) : nlohmann::json()},
                    {"read_time", r->read_time}, {"target", target}, {"documents", r->names.size()}, {"written", r->written},
                    {"deleted", r->deleted}, {"extra", r->would_delete.size()}, {"dry_run", o.dry_run},
                    {"collections", fs::stats_json(r->expected)}, {"checks", cj}, {"duration_ms", ms}});
      } else if (text) {
        if (o.dry_run) {
          for (size_t i = 0; i < std::min<size_t>(r->would_delete.size(), 50); ++i) fmt::print("would delete {}\n", r->would_delete[i]);
          fmt::print("dry run: {} documents would be written, {} in the target that the restored state lacks{}\n", r->names.size(),
                     r->would_delete.size(), o.replace ? " would be deleted" : " (deleted only with --replace)");
        } else {
          fmt::print("restored {} documents ({}) as of {}, {} deleted, in {}\n", r->written, format_bytes(r->bytes), r->read_time,
                     r->deleted, format_duration_ms(ms));
          if (!o.replace && !r->would_delete.empty())
            fmt::print("{} documents in the restored collections are not in the restored state and were left (use --replace)\n",
                       r->would_delete.size());
        }
        for (const auto& ch : results) fmt::print("check {}: {} — {}\n", ch.name, ch.ok ? "ok" : "FAILED", ch.detail);
      }
      if (!ok) return Error(Code::kCorrupt, "the restored database differs from the restored state (see the checks above)");
      return Status::ok();
    };
  });
}

}  // namespace

void register_firestore(CommandSet c) {
  register_backup_firestore(c, c.app.get_subcommand("backup"));
  register_restore_firestore(c, c.app.get_subcommand("restore"));
}

}  // namespace lifeboat::cli
