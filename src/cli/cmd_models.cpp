// Model commands: `backup models` (an MLflow registry, or a directory / GCS prefix holding one
// version) and `restore models` (into a registry or a directory).
#include <fmt/format.h>

#include "cli/context.h"
#include "core/progress.h"
#include "core/time.h"
#include "plan/plan.h"
#include "repo/lock.h"
#include "sources/models/models.h"
#include "sources/source_kind.h"

namespace lifeboat::cli {

namespace mdl = sources::models;

namespace {

struct ModelsBackupFlags {
  mdl::ModelsBackupOptions o;
  std::string validate, name;
  int64_t validate_timeout = 300;
};

void register_backup_models(CommandSet c, CLI::App* backup) {
  auto* cmd = backup->add_subcommand("models", "back up model versions: an MLflow registry (metadata, aliases, artifacts), or a directory");
  auto f = std::make_shared<ModelsBackupFlags>();
  cmd->add_option("--mlflow", f->o.mlflow, "the MLflow tracking server (http://HOST:PORT)");
  cmd->add_option("--path", f->o.path, "instead: a directory or gs://BUCKET/PREFIX holding one version (with --model and --version)");
  cmd->add_option("--model", f->o.models, "only this registered model (repeatable; default: every one)");
  cmd->add_option("--version", f->o.version, "only this version (a deploy step)");
  cmd->add_option("--validate", f->validate,
                  "a command run on each new version read back from the repository ({model_dir}, {version}); failing fails the backup");
  cmd->add_option("--validate-timeout", f->validate_timeout, "seconds the validation may run before it is killed")->capture_default_str();
  cmd->add_option("--production-alias", f->o.production_alias, "versions holding this alias are pinned (kept forever)")->capture_default_str();
  cmd->add_option("--name", f->name, "the source name: tags the snapshots source:NAME, as plan backups are");
  cmd->add_option("--tag", f->o.tags, "tag the snapshots (repeatable)");
  cmd->callback([c, f] {
    c.action = [c, f]() -> Status {
      if (!f->validate.empty()) f->o.validate = mdl::ValidateCommand{f->validate, f->validate_timeout};
      if (!f->name.empty()) f->o.tags.push_back(sources::source_tag(f->name));
      LB_ASSIGN_OR_RETURN(auto repo, open_repository(c.global));
      LB_ASSIGN_OR_RETURN(auto lock, repo::RepoLock::acquire(*repo, repo::LockKind::kShared));
      ProgressCounters counters;
      int64_t start = monotonic_ns();
      ProgressDisplay display("backup", counters, progress_enabled(c.global));
      auto r = mdl::backup_models(*repo, f->o, counters);
      display.stop();
      if (!r) return r.status();
      nlohmann::json versions = nlohmann::json::array();
      for (const auto& v : r->versions) {
        nlohmann::json j = {{"model", v.model},   {"version", v.version}, {"snapshot_id", v.snapshot_id}, {"unchanged", v.unchanged},
                            {"pinned", v.pinned}, {"aliases", v.aliases}, {"files", v.files},             {"bytes", v.bytes},
                            {"downloaded_bytes", v.downloaded_bytes}};
        if (v.validated) j["validation"] = {{"ok", *v.validated}, {"detail", v.validation_detail}};
        versions.push_back(j);
      }
      if (c.global.json) {
        print_json({{"versions", versions}, {"duration_ms", (monotonic_ns() - start) / 1000000}});
      } else if (!c.global.quiet) {
        for (const auto& v : r->versions) {
          fmt::print("{} v{}{}: {}{}{}\n", v.model, v.version,
                     v.aliases.empty() ? "" : fmt::format(" ({})", fmt::join(v.aliases, ", ")),
                     v.unchanged ? "unchanged since snapshot " + v.snapshot_id.substr(0, 8)
                                 : fmt::format("snapshot {} saved, {} file(s), {} ({} downloaded)", v.snapshot_id.substr(0, 8), v.files,
                                               format_bytes(v.bytes), format_bytes(v.downloaded_bytes)),
                     v.pinned ? ", pinned" : "",
                     v.validated ? fmt::format("; validation {}: {}", *v.validated ? "ok" : "FAILED", v.validation_detail) : "");
        }
      }
      if (!r->all_validated())
        return Error(Code::kFatal, "a model version failed its validation (above); its backup is stored and marked not validated");
      return Status::ok();
    };
  });
}

struct ModelsRestoreFlags {
  mdl::ModelsRestoreOptions o;
  std::string at, date, model, version, name, environment;
};

void register_restore_models(CommandSet c, CLI::App* restore) {
  auto* cmd = restore->add_subcommand("models", "restore model versions into an MLflow registry or a directory");
  auto f = std::make_shared<ModelsRestoreFlags>();
  cmd->add_option("--at", f->at, "the versions as backed up at this time (default: the newest backups)");
  cmd->add_option("--date", f->date, "as at the end of this day (YYYY-MM-DD, local time)");
  cmd->add_option("--mlflow", f->o.mlflow, "into this tracking server's registry");
  cmd->add_option("--to-dir", f->o.to_dir, "into DIR/NAME/VERSION instead");
  cmd->add_option("--model", f->model, "only this registered model");
  cmd->add_option("--version", f->version, "only this version");
  cmd->add_option("--name", f->name, "the source name the backups were made with");
  cmd->add_flag("--dry-run", f->o.dry_run, "list what would be restored; write nothing");
  cmd->add_option("--environment", f->environment, "plan mode: restore every models source (or --name's) into this environment");
  cmd->callback([c, f] {
    c.action = [c, f]() -> Status {
      LB_ASSIGN_OR_RETURN(auto at, requested_instant(f->at, f->date));
      if (auto file = plan_mode(c.global)) {
        if (f->environment.empty()) return Error(Code::kInvalidArgument, "plan mode: --environment ENV is required");
        LB_ASSIGN_OR_RETURN(auto p, plan::load_plan(*file));
        std::vector<std::string> names;
        for (const auto& s : p.sources)
          if (s.kind == mdl::kSource && (f->name.empty() || s.name == f->name)) names.push_back(s.name);
        if (names.empty()) return Error(Code::kNotFound, "the plan has no models source" + (f->name.empty() ? "" : " " + f->name));
        return plan_restore(c.global, *file, names, f->environment, at);
      }
      LB_ASSIGN_OR_RETURN(auto repo, open_repository(c.global));
      LB_ASSIGN_OR_RETURN(auto lock, repo::RepoLock::acquire(*repo, repo::LockKind::kShared));
      LB_ASSIGN_OR_RETURN(auto all, repo->list_snapshots());
      std::vector<std::string> tags;
      if (!f->name.empty()) tags.push_back(sources::source_tag(f->name));
      auto picked = mdl::pick_model_versions(all, tags, at, f->model, f->version);
      ProgressCounters counters;
      int64_t start = monotonic_ns();
      ProgressDisplay display("restore", counters, progress_enabled(c.global));
      auto r = mdl::restore_models(*repo, picked, f->o, counters);
      display.stop();
      if (!r) return r.status();
      nlohmann::json out = nlohmann::json::array();
      for (const auto& v : *r)
        out.push_back({{"model", v.model}, {"from_version", v.old_version}, {"to_version", v.new_version}, {"to", v.where},
                       {"files", v.files}, {"bytes", v.bytes}});
      if (c.global.json) {
        print_json({{"versions", out}, {"dry_run", f->o.dry_run}, {"duration_ms", (monotonic_ns() - start) / 1000000}});
      } else if (!c.global.quiet) {
        for (const auto& v : *r)
          fmt::print("{}{} v{} → {} v{} ({} file(s), {})\n", f->o.dry_run ? "would restore " : "", v.model, v.old_version, v.where,
                     v.new_version, v.files, format_bytes(v.bytes));
      }
      return Status::ok();
    };
  });
}

}  // namespace

void register_models(CommandSet c) {
  register_backup_models(c, c.app.get_subcommand("backup"));
  register_restore_models(c, c.app.get_subcommand("restore"));
}

}  // namespace lifeboat::cli
