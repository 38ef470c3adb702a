// Config commands: `backup config` (files with syntax checks, git mirrors, Secret Manager) and
// `restore config` (from the repository, or in plan mode into an environment).
#include <fmt/format.h>

#include "cli/context.h"
#include "core/platform_user.h"
#include "core/progress.h"
#include "core/time.h"
#include "ops/plan_ops.h"
#include "plan/plan.h"
#include "repo/lock.h"
#include "sources/config/config.h"
#include "sources/config/config_source.h"
#include "repo/archiver/archiver.h"
#include "sources/source_kind.h"

namespace lifeboat::cli {

namespace cfg = sources::config;

namespace {

struct ConfigBackupFlags {
  std::vector<std::string> paths, git, checks;
  cfg::ConfigBackupOptions o;
  std::string name;
  bool force = false;
};

void print_backup(const GlobalOptions& g, const cfg::ConfigBackupResult& r) {
  const auto& s = r.snapshot;
  if (g.json) {
    nlohmann::json problems = nlohmann::json::array();
    for (const auto& p : r.problems) problems.push_back({{"file", p.file}, {"line", p.line}, {"problem", p.problem}});
    print_json({{"snapshot_id", r.snapshot_id}, {"short_id", r.snapshot_id.substr(0, 8)}, {"time", format_rfc3339(s.time_ns)},
                {"paths", s.paths}, {"summary", s.summary}, {"validation", s.metadata["validation"]}, {"problems", problems},
                {"git", s.metadata["git"]}, {"warnings", r.warnings}});
    return;
  }
  for (const auto& p : r.problems) fmt::print(stderr, "{}\n", p.to_string());
  for (const auto& w : r.warnings) fmt::print(stderr, "warning: {}\n", w);
  if (g.quiet) return;
  const auto& v = s.metadata["validation"];
  if (s.summary.contains("files")) {
    const auto& f = s.summary["files"];
    fmt::print("Files:      {} new, {} changed, {} unmodified; {} config file(s) checked, {} problem(s)\n", f.value("files_new", 0),
               f.value("files_changed", 0), f.value("files_unmodified", 0), v.value("files_checked", 0), r.problems.size());
  }
  for (const auto& m : s.metadata["git"])
    fmt::print("Git:        {} ({} refs, HEAD {}, {} LFS object(s))\n", m.value("name", ""), m["refs"].size(),
               m.value("head", "detached"), m["lfs"].size());
  if (s.metadata.contains("secrets")) {
    const auto& x = s.metadata["secrets"];
    fmt::print("Secrets:    {}: {} secret(s), {} version(s) ({} disabled, {} destroyed)\n", x.value("project", ""),
               x.value("secrets", 0), x.value("versions", 0), x.value("disabled", 0), x.value("destroyed", 0));
  }
  fmt::print("Added:      {} ({} stored after compression)\n", format_bytes(s.summary.value("data_added_bytes", uint64_t{0})),
             format_bytes(s.summary.value("data_stored_bytes", uint64_t{0})));
  fmt::print("snapshot {} saved{}\n", r.snapshot_id.substr(0, 8), r.problems.empty() ? "" : " (with the config problems above)");
}

void register_backup_config(CommandSet c, CLI::App* backup) {
  auto* cmd = backup->add_subcommand("config", "back up configuration: files (syntax-checked), git repositories, Secret Manager secrets");
  auto f = std::make_shared<ConfigBackupFlags>();
  cmd->add_option("paths", f->paths, "config files and directories");
  cmd->add_option("--git", f->git, "a git repository (path or URL), as NAME=REPO to name it; every ref, tag, note and LFS object (repeatable)");
  cmd->add_option("--secrets", f->o.secrets_project, "every secret of this project (projects/P) with all its versions");
  cmd->add_option("--name", f->name, "the source name: tags the snapshot source:NAME, as plan backups are");
  cmd->add_option("--exclude", f->o.excludes, "skip names or paths matching this pattern (repeatable)");
  cmd->add_option("--check", f->checks, "PATTERN=COMMAND: run COMMAND ({file} replaced) on files matching PATTERN (repeatable)");
  cmd->add_option("--tag", f->o.tags, "tag the snapshot (repeatable)");
  cmd->add_option("--host", f->o.hostname, "host name to record (default: this host)");
  cmd->add_flag("--force", f->force, "read every file, ignoring the previous backup");
  cmd->callback([c, f] {
    c.action = [c, f]() -> Status {
      for (const auto& p : f->paths) f->o.paths.push_back(repo::absolute_path(p));
      for (const auto& g : f->git) f->o.git.push_back(cfg::parse_git_source(g));
      for (const auto& ch : f->checks) {
        size_t eq = ch.find('=');
        if (eq == std::string::npos || eq == 0) return Error(Code::kInvalidArgument, fmt::format("--check {}: expected PATTERN=COMMAND", ch));
        f->o.checks.push_back({ch.substr(0, eq), ch.substr(eq + 1), 60});
      }
      if (!f->name.empty()) f->o.tags.push_back(sources::source_tag(f->name));
      LB_ASSIGN_OR_RETURN(auto repo, open_repository(c.global));
      LB_ASSIGN_OR_RETURN(auto lock, repo::RepoLock::acquire(*repo, repo::LockKind::kShared));
      if (!f->force) {
        LB_ASSIGN_OR_RETURN(auto all, repo->list_snapshots());
        repo::SnapshotFilter filter;
        filter.source = cfg::kSource;
        filter.tags = f->o.tags;
        auto parent = repo::select_snapshot(all, "latest", std::nullopt, filter);
        if (parent) f->o.parent = *parent;
      }
      ProgressCounters counters;
      ProgressDisplay display("backup", counters, progress_enabled(c.global));
      auto r = cfg::backup_config(*repo, f->o, counters);
      display.stop();
      if (!r) return r.status();
      print_backup(c.global, *r);
      if (!r->problems.empty())
        return Error(Code::kPartial, fmt::format("snapshot {} saved, but {} config file problem(s) (listed above): fix them before deploying",
                                                 r->snapshot_id.substr(0, 8), r->problems.size()));
      if (!r->warnings.empty())
        return Error(Code::kPartial, fmt::format("snapshot {} saved, but {} part(s) could not be stored (listed above)",
                                                 r->snapshot_id.substr(0, 8), r->warnings.size()));
      return Status::ok();
    };
  });
}

struct ConfigRestoreFlags {
  cfg::ConfigRestoreOptions o;
  std::vector<std::string> only, push, checks;
  std::string at, date, snapshot, name, environment;
};

Status print_restore(const GlobalOptions& g, const repo::SnapshotRef& ref, const std::string& source, const cfg::ConfigRestoreOptions& o,
                     const cfg::ConfigRestoreResult& r, const std::vector<sources::CheckResult>& checks, int64_t ms) {
  bool ok = true;
  nlohmann::json cj = nlohmann::json::array();
  for (const auto& ch : checks) {
    ok = ok && ch.ok;
    cj.push_back({{"check", ch.name}, {"ok", ch.ok}, {"detail", ch.detail}});
  }
  if (g.json) {
    print_json({{"source", source}, {"snapshot", snapshot_json(ref)}, {"dry_run", o.dry_run}, {"restored", r.to_json()}, {"checks", cj},
                {"duration_ms", ms}});
  } else if (!g.quiet) {
    if (o.dry_run) {
      for (const auto& line : r.plan) fmt::print("would {}\n", line);
      fmt::print("dry run: {} change(s); nothing written\n", r.plan.size());
    } else {
      if (r.files) fmt::print("files: {} restored under {} ({})\n", r.files, o.target, format_bytes(r.bytes));
      for (const auto& [name, where] : r.mirrors) fmt::print("git {}: mirror restored to {}\n", name, where);
      for (const auto& s : r.secrets) {
        std::vector<std::string> map;
        for (const auto& [a, b] : s.versions) map.push_back(fmt::format("{}→{}", a, b));
        fmt::print("secret {}{}: versions {}\n", s.secret, s.created ? " (created)" : "", fmt::join(map, " "));
      }
      for (const auto& ch : checks) fmt::print("check {}: {} — {}\n", ch.name, ch.ok ? "ok" : "FAILED", ch.detail);
      fmt::print("restored snapshot {} ({}) in {}\n", ref.short_id(), format_local(ref.snapshot.time_ns), format_duration_ms(ms));
    }
  }
  if (!ok) return Error(Code::kCorrupt, "the restored configuration differs from the backup (see the checks above)");
  return Status::ok();
}

Status restore_one(const GlobalOptions& g, repo::Repository& repo, const std::vector<std::string>& tags, const std::string& source,
                   const ConfigRestoreFlags& f, cfg::ConfigRestoreOptions o, const std::vector<std::string>& checks) {
  LB_ASSIGN_OR_RETURN(auto at, requested_instant(f.at, f.date));
  LB_ASSIGN_OR_RETURN(auto lock, repo::RepoLock::acquire(repo, repo::LockKind::kShared));
  LB_ASSIGN_OR_RETURN(auto all, repo.list_snapshots());
  repo::SnapshotRef ref;
  repo::SnapshotFilter filter;
  filter.source = cfg::kSource;
  filter.tags = tags;
  LB_ASSIGN_OR_RETURN(ref, repo::select_snapshot(all, f.snapshot.empty() ? "latest" : f.snapshot, f.snapshot.empty() ? at : std::nullopt, filter));
  if (!g.json && !g.quiet)
    fmt::print("restoring {}configuration backed up at {} (snapshot {}){}\n", source.empty() ? "" : source + ": ",
               format_local(ref.snapshot.time_ns), ref.short_id(), o.dry_run ? " (dry run)" : "");
  ProgressCounters counters;
  int64_t start = monotonic_ns();
  ProgressDisplay display("restore", counters, progress_enabled(g));
  auto r = cfg::restore_config(repo, ref, o, counters);
  display.stop();
  if (!r) return r.status();
  std::vector<sources::CheckResult> results;
  if (!o.dry_run && !checks.empty()) results = cfg::check_config_target(repo, ref, o, *r, checks);
  return print_restore(g, ref, source, o, *r, results, (monotonic_ns() - start) / 1000000);
}

void register_restore_config(CommandSet c, CLI::App* restore) {
  auto* cmd = restore->add_subcommand("config", "restore configuration: files to a directory, git mirrors, secrets into a project");
  auto f = std::make_shared<ConfigRestoreFlags>();
  cmd->add_option("--at", f->at, "the configuration as of this time (default: the newest backup)");
  cmd->add_option("--date", f->date, "the configuration at the end of this day (YYYY-MM-DD, local time)");
  cmd->add_option("--snapshot", f->snapshot, "this snapshot instead of the newest at --at/--date");
  cmd->add_option("--environment", f->environment, "plan mode: restore every config source into this environment's targets");
  cmd->add_option("--name", f->name, "the source (plan mode: which config source; else the --name it was backed up with)");
  cmd->add_option("--only", f->only, "restore only these parts: files, git, secrets (repeatable or comma-separated)")->delimiter(',');
  cmd->add_flag("--dry-run", f->o.dry_run, "list what would change; write nothing");
  cmd->add_option("-t,--target", f->o.target, "files go under this directory (by their absolute paths); mirrors to DIR/git/NAME.git");
  cmd->add_option("--git-dir", f->o.git_dir, "bare mirrors go to this directory instead (NAME.git)");
  cmd->add_option("--push", f->push, "NAME=REMOTE: push that mirror's refs to REMOTE (a URL or path) instead (repeatable)");
  cmd->add_option("--secrets", f->o.secrets_project, "restore the secrets into this project (projects/Q)");
  cmd->add_option("--check", f->checks, "read the restored parts back: files, syntax, git, secrets (repeatable)");
  cmd->callback([c, f] {
    c.action = [c, f]() -> Status {
      for (const auto& o : f->only) f->o.only.insert(o);
      for (const auto& p : f->push) {
        size_t eq = p.find('=');
        if (eq == std::string::npos || eq == 0) return Error(Code::kInvalidArgument, fmt::format("--push {}: expected NAME=REMOTE", p));
        f->o.push[p.substr(0, eq)] = p.substr(eq + 1);
      }
      if (auto file = plan_mode(c.global)) {
        if (f->environment.empty()) return Error(Code::kInvalidArgument, "plan mode: --environment ENV is required");
        LB_ASSIGN_OR_RETURN(auto p, plan::load_plan(*file));
        ops::RepositorySet repos(p);
        int restored = 0;
        for (const auto& s : p.sources) {
          if (s.kind != cfg::kSource || (!f->name.empty() && s.name != f->name)) continue;
          LB_ASSIGN_OR_RETURN(auto settings, ops::environment_settings(s, f->environment));
          auto o = cfg::restore_options_of(*settings);
          o.dry_run = f->o.dry_run;
          if (!f->o.only.empty()) o.only = f->o.only;
          LB_ASSIGN_OR_RETURN(auto repo, repos.acquire(s.repository));
          LB_RETURN_IF_ERROR(restore_one(c.global, *repo, {sources::source_tag(s.name)}, s.name, *f, o, s.validation)
                                 .with_context("source " + s.name));
          ++restored;
        }
        if (!restored)
          return Error(Code::kNotFound, f->name.empty() ? "the plan has no config source" : "the plan has no config source " + f->name);
        return Status::ok();
      }
      LB_ASSIGN_OR_RETURN(auto repo, open_repository(c.global));
      std::vector<std::string> tags;
      if (!f->name.empty()) tags.push_back(sources::source_tag(f->name));
      return restore_one(c.global, *repo, tags, f->name, *f, f->o, f->checks);
    };
  });
}

}  // namespace

void register_config(CommandSet c) {
  register_backup_config(c, c.app.get_subcommand("backup"));
  register_restore_config(c, c.app.get_subcommand("restore"));
}

}  // namespace lifeboat::cli
