// GCS bucket commands: `backup gcs`, `restore gcs` and `sync`.
#include <fmt/format.h>

#include "cli/context.h"
#include "core/progress.h"
#include "core/time.h"
#include "repo/lock.h"
#include "sources/gcs_bucket/gcs_bucket.h"

namespace lifeboat::cli {

namespace gcs = sources::gcs_bucket;

namespace {

struct GcsBackupFlags {
  gcs::GcsBackupOptions o;
  bool force = false;
};

void register_backup_gcs(CommandSet c, CLI::App* backup) {
  auto* cmd = backup->add_subcommand("gcs", "back up a Google Cloud Storage bucket (or a prefix): objects and their metadata");
  auto f = std::make_shared<GcsBackupFlags>();
  cmd->add_option("url", f->o.url, "gs://BUCKET or gs://BUCKET/PREFIX")->required();
  cmd->add_option("--name", f->o.name, "name recorded in the snapshot (default: the URL)");
  cmd->add_flag("--versions", f->o.versions, "noncurrent versions too, so a versioned bucket's history survives the bucket");
  cmd->add_option("--critical", f->o.critical, "re-hash objects matching this pattern from the repository after the backup (repeatable)");
  cmd->add_option("--tag", f->o.tags, "tag the snapshot (repeatable)");
  cmd->add_option("--host", f->o.hostname, "host name to record (default: this host)");
  cmd->add_option("--threads", f->o.threads, "downloads at once")->capture_default_str();
  cmd->add_flag("--force", f->force, "download every object, ignoring the previous backup");
  cmd->callback([c, f] {
    c.action = [c, f]() -> Status {
      LB_ASSIGN_OR_RETURN(auto repo, open_repository(c.global));
      LB_ASSIGN_OR_RETURN(auto lock, repo::RepoLock::acquire(*repo, repo::LockKind::kShared));
      if (!f->force) {
        LB_ASSIGN_OR_RETURN(auto all, repo->list_snapshots());
        auto parent = gcs::pick_gcs_snapshot(all, f->o.url, {}, std::nullopt);
        if (parent) f->o.parent = *parent;
      }
      ProgressCounters counters;
      ProgressDisplay display("backup", counters, progress_enabled(c.global));
      auto r = gcs::backup_gcs(*repo, f->o, counters);
      display.stop();
      if (!r) return r.status();
      const auto& s = r->snapshot;
      if (c.global.json) {
        print_json({{"snapshot_id", r->snapshot_id}, {"short_id", r->snapshot_id.substr(0, 8)}, {"time", format_rfc3339(s.time_ns)},
                    {"url", s.paths[0]}, {"metadata", s.metadata}, {"summary", s.summary}, {"warnings", r->warnings}});
      } else {
        for (const auto& w : r->warnings) fmt::print(stderr, "warning: {}\n", w);
        if (!c.global.quiet) {
          auto num = [&](const char* k) { return s.summary.value(k, uint64_t{0}); };
          fmt::print("Bucket {}: {} objects ({}), {} noncurrent versions\n", s.paths[0], num("objects"),
                     format_bytes(num("total_bytes")), num("noncurrent"));
          fmt::print("Objects:    {} downloaded ({}), {} unchanged since the previous backup\n", num("objects_downloaded"),
                     format_bytes(num("downloaded_bytes")), num("objects_unchanged"));
          fmt::print("Added:      {} ({} stored after compression)\n", format_bytes(num("data_added_bytes")),
                     format_bytes(num("data_stored_bytes")));
          for (const auto& ch : s.summary.value("checks", nlohmann::json::array()))
            fmt::print("Check {}: {} — {}\n", ch.value("check", ""), ch.value("ok", false) ? "ok" : "FAILED", ch.value("detail", ""));
          fmt::print("snapshot {} saved in {}\n", r->snapshot_id.substr(0, 8),
                     format_duration_ms(s.summary.value("duration_ms", int64_t{0})));
        }
      }
      if (!r->critical_ok)
        return Error(Code::kCorrupt, fmt::format("snapshot {} saved, but critical objects read back from the repository "
                                                 "do not match the bucket (see above)", r->snapshot_id.substr(0, 8)));
      return Status::ok();
    };
  });
}

struct GcsRestoreFlags {
  gcs::GcsRestoreOptions o;
  std::string at, date, from;
  std::string snapshot;
  std::vector<std::string> checks;
  std::vector<std::string> critical;
};

void register_restore_gcs(CommandSet c, CLI::App* restore) {
  auto* cmd = restore->add_subcommand("gcs", "restore a bucket as of a time into a bucket (with metadata) or a directory");
  auto f = std::make_shared<GcsRestoreFlags>();
  cmd->add_option("--from", f->from, "the backed-up gs://BUCKET[/PREFIX] (needed when the repository holds several)");
  cmd->add_option("--snapshot", f->snapshot, "this snapshot instead of the newest at --at/--date");
  cmd->add_option("--at", f->at, "the state as of this time (default: the newest backup)");
  cmd->add_option("--date", f->date, "the state at the end of this day (YYYY-MM-DD, local time)");
  cmd->add_option("--to", f->o.to, "restore into gs://BUCKET[/PREFIX] (object names relative to the backed-up prefix)");
  cmd->add_option("-t,--target", f->o.target, "write the objects as files under this directory instead");
  cmd->add_option("-i,--include", f->o.includes, "only objects whose name (or last part) matches this pattern (repeatable)");
  cmd->add_flag("--delete-extra", f->o.delete_extra, "remove objects under the target prefix that did not exist at that time");
  cmd->add_flag("--dry-run", f->o.dry_run, "list what would be uploaded and deleted; change nothing");
  cmd->add_option("--check", f->checks, "read the target back afterwards: counts, hashes, critical (repeatable)");
  cmd->add_option("--critical", f->critical, "patterns the critical check downloads and re-hashes (repeatable)");
  cmd->add_option("--threads", f->o.threads, "uploads or file writes at once")->capture_default_str();
  cmd->callback([c, f] {
    c.action = [c, f]() -> Status {
      if (f->o.to.empty() == f->o.target.empty())
        return Error(Code::kInvalidArgument, "restore gcs needs exactly one target: --to gs://BUCKET[/PREFIX] or --target DIR");
      LB_ASSIGN_OR_RETURN(auto at, requested_instant(f->at, f->date));
      LB_ASSIGN_OR_RETURN(auto repo, open_repository(c.global));
      LB_ASSIGN_OR_RETURN(auto lock, repo::RepoLock::acquire(*repo, repo::LockKind::kShared));
      LB_ASSIGN_OR_RETURN(auto all, repo->list_snapshots());
      repo::SnapshotRef ref;
      if (!f->snapshot.empty()) {
        repo::SnapshotFilter filter;
        filter.source = gcs::kSource;
        LB_ASSIGN_OR_RETURN(ref, repo::select_snapshot(all, f->snapshot, std::nullopt, filter));
      } else {
        if (f->from.empty()) {
          std::set<std::string> urls;
          for (const auto& s : all)
            if (s.snapshot.source == gcs::kSource && !s.snapshot.paths.empty()) urls.insert(s.snapshot.paths[0]);
          if (urls.size() > 1)
            return Error(Code::kInvalidArgument, fmt::format("the repository holds backups of several buckets ({}): name one with --from",
                                                             fmt::join(urls, ", ")));
        }
        LB_ASSIGN_OR_RETURN(ref, gcs::pick_gcs_snapshot(all, f->from, {}, at));
      }
      bool text = !c.global.json && !c.global.quiet;
      std::string dest = f->o.to.empty() ? f->o.target : f->o.to;
      if (text)
        fmt::print("restoring {} as backed up at {} (snapshot {}) to {}{}\n", ref.snapshot.paths[0], format_local(ref.snapshot.time_ns),
                   ref.short_id(), dest, f->o.dry_run ? " (dry run)" : "");
      ProgressCounters counters;
      int64_t start = monotonic_ns();
      ProgressDisplay display("restore", counters, progress_enabled(c.global));
      auto r = gcs::restore_gcs(*repo, ref.snapshot, f->o, counters);
      display.stop();
      if (!r) return r.status();
      int64_t ms = (monotonic_ns() - start) / 1000000;
      std::vector<sources::CheckResult> checks;
      if (!f->checks.empty() && !f->o.dry_run) checks = gcs::check_gcs_target(*repo, ref.snapshot, f->o, f->critical, f->checks);
      bool checks_ok = true;
      nlohmann::json cj = nlohmann::json::array();
      for (const auto& ch : checks) {
        checks_ok = checks_ok && ch.ok;
        cj.push_back({{"check", ch.name}, {"ok", ch.ok}, {"detail", ch.detail}});
      }
      if (c.global.json) {
        print_json({{"snapshot", snapshot_json(ref)}, {"target", dest}, {"objects", r->objects}, {"bytes", r->bytes},
                    {"unchanged", r->unchanged}, {"deleted", r->deleted}, {"dry_run", f->o.dry_run},
                    {"would_upload", f->o.dry_run ? nlohmann::json(r->would_upload) : nlohmann::json::array()},
                    {"extra", r->would_delete}, {"checks", cj}, {"duration_ms", ms}});
      } else if (!c.global.quiet) {
        if (f->o.dry_run) {
          for (const auto& u : r->would_upload) fmt::print("would restore {}\n", u);
          for (const auto& d : r->would_delete) fmt::print("would delete {}\n", d);
          fmt::print("dry run: {} objects would be restored, {} unchanged, {} extra{}\n", r->would_upload.size(), r->unchanged,
                     r->would_delete.size(), r->would_delete.empty() ? "" : " (removed only with --delete-extra)");
        } else {
          fmt::print("restored {} objects ({}), {} already identical, {} extra deleted, in {}\n", r->objects, format_bytes(r->bytes),
                     r->unchanged, r->deleted, format_duration_ms(ms));
          if (!f->o.delete_extra && !r->would_delete.empty())
            fmt::print("{} objects in the target did not exist at that time and were left (use --delete-extra)\n",
                       r->would_delete.size());
        }
        for (const auto& ch : checks)
          fmt::print("check {}: {} — {}\n", ch.name, ch.ok ? "ok" : "FAILED", ch.detail);
      }
      if (!checks_ok) return Error(Code::kCorrupt, "the restored target differs from the backup (see the checks above)");
      return Status::ok();
    };
  });
}

void register_sync(CommandSet c) {
  auto* cmd = c.app.add_subcommand("sync", "copy new and changed objects from one bucket to another (server-side, CRC32C checked)");
  auto o = std::make_shared<gcs::GcsSyncOptions>();
  cmd->add_option("from", o->from, "gs://SOURCE[/PREFIX]")->required();
  cmd->add_option("to", o->to, "gs://DESTINATION[/PREFIX]")->required();
  cmd->add_flag("--delete", o->delete_extra, "remove destination objects the source lacks (guarded by --max-delete)");
  cmd->add_option("--max-delete", o->max_delete, "refuse --delete beyond this many objects (N) or share of the destination (P%)")
      ->capture_default_str();
  cmd->add_flag("--dry-run", o->dry_run, "list what would be copied and deleted; change nothing");
  cmd->add_option("--threads", o->threads, "copies at once")->capture_default_str();
  cmd->callback([c, o] {
    c.action = [c, o]() -> Status {
      const std::string& m = o->max_delete;
      if (m.empty() || m.find_first_not_of("0123456789") != (m.back() == '%' ? m.size() - 1 : std::string::npos) || m == "%")
        return Error(Code::kInvalidArgument, fmt::format("--max-delete {}: expected a count (100) or a percentage (10%)", m));
      ProgressCounters counters;
      int64_t start = monotonic_ns();
      ProgressDisplay display("sync", counters, progress_enabled(c.global));
      auto r = gcs::sync_buckets(*o, counters);
      display.stop();
      if (!r) return r.status();
      int64_t ms = (monotonic_ns() - start) / 1000000;
      if (c.global.json) {
        print_json({{"from", o->from}, {"to", o->to}, {"copied", r->copied}, {"bytes", r->bytes}, {"unchanged", r->unchanged},
                    {"deleted", r->deleted}, {"dry_run", o->dry_run}, {"to_copy", r->to_copy}, {"to_delete", r->to_delete},
                    {"duration_ms", ms}});
      } else if (!c.global.quiet) {
        if (o->dry_run) {
          for (const auto& x : r->to_copy) fmt::print("would copy {}\n", x);
          for (const auto& x : r->to_delete) fmt::print("would delete {}{}\n", x, o->delete_extra ? "" : " (only with --delete)");
        }
        fmt::print("{}: {} copied ({}), {} unchanged, {} deleted{} in {}\n", o->dry_run ? "dry run" : "sync", r->copied,
                   format_bytes(r->bytes), r->unchanged, r->deleted,
                   !o->delete_extra && !r->to_delete.empty() ? fmt::format(", {} only in the destination", r->to_delete.size()) : "",
                   format_duration_ms(ms));
      }
      return Status::ok();
    };
  });
}

}  // namespace

void register_gcs(CommandSet c) {
  register_backup_gcs(c, c.app.get_subcommand("backup"));
  register_restore_gcs(c, c.app.get_subcommand("restore"));
  register_sync(c);
}

}  // namespace lifeboat::cli
