// lifeboat backup: files and directories, or a command's output.
#include <fmt/format.h>

#include "cli/context.h"
#include "core/platform_user.h"
#include "core/progress.h"
#include "core/time.h"
#include "repo/lock.h"
#include "repo/archiver/archiver.h"
#include "sources/files/files_backup.h"

namespace lifeboat::cli {

namespace {

struct BackupFlags {
  std::vector<std::string> args;
  std::vector<std::string> tags, excludes;
  std::string host, parent, stdin_filename = "stdin";
  bool force = false, stdin_from_command = false;
};

void print_result(const GlobalOptions& g, const sources::files::FilesBackupResult& r, double seconds) {
  const auto& s = r.snapshot.summary;
  if (g.json) {
    print_json({{"snapshot_id", r.snapshot_id},
                {"short_id", r.snapshot_id.substr(0, 8)},
                {"time", format_rfc3339(r.snapshot.time_ns)},
                {"summary", s},
                {"unreadable", r.unreadable}});
    return;
  }
  for (const auto& u : r.unreadable) fmt::print(stderr, "unreadable: {}\n", u);
  if (g.quiet) return;
  auto num = [&](const char* k) { return s.value(k, uint64_t{0}); };
  fmt::print("Files:      {} new, {} changed, {} unmodified\n", num("files_new"), num("files_changed"),
             num("files_unmodified"));
  fmt::print("Dirs:       {}\n", num("dirs"));
  fmt::print("Added:      {} ({} stored after compression)\n", format_bytes(num("data_added_bytes")),
             format_bytes(num("data_stored_bytes")));
  fmt::print("Processed:  {} in {}\n", format_bytes(num("total_bytes")),
             format_duration_ms(static_cast<int64_t>(seconds * 1000)));
  fmt::print("snapshot {} saved\n", r.snapshot_id.substr(0, 8));
}

}  // namespace

void register_backup(CommandSet c) {
  auto* cmd = c.app.add_subcommand("backup", "back up files and directories (or a command's output)");
  auto f = std::make_shared<BackupFlags>();
  cmd->add_option("paths", f->args, "files and directories to back up (or, with --stdin-from-command, the command)");
  cmd->add_option("--tag", f->tags, "tag the snapshot (repeatable)");
  cmd->add_option("--host", f->host, "host name to record (default: this host)");
  cmd->add_option("--exclude", f->excludes, "skip names or paths matching this pattern (repeatable)");
  cmd->add_option("--parent", f->parent, "compare with this snapshot to skip unchanged files (default: latest of the same paths and host)");
  cmd->add_flag("--force", f->force, "read every file, ignoring the parent snapshot");
  cmd->add_flag("--stdin-from-command", f->stdin_from_command,
                "run the command given after -- and store its output as one file; fails if the command fails");
  cmd->add_option("--stdin-filename", f->stdin_filename, "file name for --stdin-from-command output")->capture_default_str();
  cmd->callback([c, cmd, f] {
    if (!cmd->get_subcommands().empty()) return;  // `backup mongodb …` set its own action
    c.action = [c, f]() -> Status {
      if (auto plan = plan_mode(c.global)) return plan_backup(c.global, *plan, f->args);
      LB_ASSIGN_OR_RETURN(auto repo, open_repository(c.global));
      LB_ASSIGN_OR_RETURN(auto lock, repo::RepoLock::acquire(*repo, repo::LockKind::kShared));
      ProgressCounters counters;
      int64_t start = monotonic_ns();
      if (f->stdin_from_command) {
        sources::files::CommandBackupOptions o;
        o.argv = f->args;
        o.filename = f->stdin_filename;
        o.tags = f->tags;
        o.hostname = f->host;
        ProgressDisplay display("backup", counters, progress_enabled(c.global));
        auto r = sources::files::backup_command_output(*repo, o, counters);
        display.stop();
        if (!r) return r.status();
        print_result(c.global, *r, static_cast<double>(monotonic_ns() - start) / 1e9);
        return Status::ok();
      }
      sources::files::FilesBackupOptions o;
      for (const auto& p : f->args) o.paths.push_back(repo::absolute_path(p));
      o.tags = f->tags;
      o.excludes = f->excludes;
      o.hostname = f->host.empty() ? platform::hostname() : f->host;
      o.count_totals = progress_enabled(c.global);
      if (!f->force) {
        LB_ASSIGN_OR_RETURN(auto all, repo->list_readable_snapshots());
        repo::SnapshotFilter parent_filter;
        parent_filter.source = "files";
        if (f->parent.empty()) {
          parent_filter.host = o.hostname;
          parent_filter.paths = o.paths;
        }
        auto parent = repo::select_snapshot(all, f->parent, std::nullopt, parent_filter);
        if (parent) o.parent = *parent;
        else if (!f->parent.empty()) return parent.status();
      }
      ProgressDisplay display("backup", counters, progress_enabled(c.global));
      auto r = sources::files::backup_files(*repo, o, counters);
      display.stop();
      if (!r) return r.status();
      print_result(c.global, *r, static_cast<double>(monotonic_ns() - start) / 1e9);
      if (!r->unreadable.empty())
        return Error(Code::kPartial, fmt::format("snapshot {} saved, but {} file(s) could not be read (listed above)",
                                                 r->snapshot_id.substr(0, 8), r->unreadable.size()));
      return Status::ok();
    };
  });
}

}  // namespace lifeboat::cli
