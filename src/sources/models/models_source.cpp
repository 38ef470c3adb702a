// The models source kind: its options (plan keys and the flags of `backup models` / `restore models`:
// mlflow or path, models, version, production_alias, validate; for restores mlflow as the target
// registry or to_dir), backups of every version with pins for the production alias, retention per
// version, restores of the versions as of T, and checks that read the restored versions back.
#include "sources/models/models_source.h"

#include <fmt/format.h>

#include "core/bytes.h"
#include "core/time.h"
#include "core/names.h"
#include "core/subprocess.h"
#include "sources/models/models.h"
#include "sources/settings_reader.h"

namespace lifeboat::sources::models {

namespace {

const std::vector<KindOption>& options() {
  static const std::vector<KindOption> o = {
      {.key = "mlflow", .help = "the MLflow tracking server (http://HOST:PORT): backups read its registry, restores write into it"},
      {.key = "path", .help = "instead: a directory or gs://BUCKET/PREFIX holding one version (with --model and --version)",
       .use = kBackupOption},
      {.key = "models", .type = OptionType::kStrings, .help = "only this registered model (repeatable; default: every one)",
       .flag = "--model"},
      {.key = "version", .help = "only this version (a deploy step)"},
      {.key = "validate",
       .help = "a command run on each new version read back from the repository ({model_dir}, {version}); failing fails the backup",
       .use = kBackupOption},
      {.key = "validate_timeout", .type = OptionType::kCount, .help = "seconds the validation may run before it is killed",
       .use = kBackupOption, .default_text = "300"},
      {.key = "production_alias", .help = "versions holding this alias are pinned (kept forever)", .use = kBackupOption,
       .default_text = "production"},
      {.key = "name", .help = "the source name: tags the snapshots source:NAME, as plan backups are (restores: the name they were made with)",
       .command_line = true},
      {.key = "to_dir", .help = "into DIR/NAME/VERSION instead", .use = kRestoreOption},
      {.key = "dry_run", .type = OptionType::kFlag, .help = "list what would be restored; write nothing", .use = kRestoreOption,
       .command_line = true},
  };
  return o;
}

struct ModelsSettings : SourceSettings {
  std::string mlflow, path, version, to_dir, name;
  std::vector<std::string> models;
  std::string production_alias = "production";
  std::optional<ValidateCommand> validate;
  bool dry_run = false;
};

std::shared_ptr<const ModelsSettings> parse(const nlohmann::json& section, SettingsFor purpose, std::vector<SettingsProblem>& problems) {
  SettingsReader r(section, problems);
  auto s = std::make_shared<ModelsSettings>();
  s->mlflow = r.string("mlflow");
  s->path = r.string("path");
  s->models = r.strings("models");
  s->version = r.string("version");
  s->to_dir = r.string("to_dir");
  s->name = r.string("name");
  s->dry_run = r.boolean("dry_run", false);
  std::string alias = r.string("production_alias");
  if (!alias.empty()) s->production_alias = alias;
  if (section.is_object() && section.contains("validate")) {
    const auto& v = section["validate"];
    if (v.is_string()) s->validate = ValidateCommand{v.get<std::string>(), 300};
    else if (v.is_object() && v.contains("run") && v["run"].is_string()) {
      s->validate = ValidateCommand{v["run"].get<std::string>(), 300};
      if (v.contains("timeout")) {
        if (v["timeout"].is_number_integer() && v["timeout"].get<int64_t>() > 0) s->validate->timeout_s = v["timeout"];
        else problems.push_back({"validate.timeout", "expected a number of seconds"});
      }
    } else {
      problems.push_back({"validate", "expected a command, or {run: COMMAND, timeout: SECONDS}"});
    }
  }
  int64_t timeout = r.count("validate_timeout", 0);
  if (timeout < 0) problems.push_back({"validate_timeout", "expected a number of seconds"});
  if (timeout > 0 && s->validate) s->validate->timeout_s = timeout;
  if (s->validate)
    if (auto filled = fill_command(s->validate->run, {{"{model_dir}", "x"}, {"{version}", "1"}}); !filled)
      problems.push_back({"validate", filled.status().message()});
  r.only(options());
  // A command-line restore names where to (mlflow or to_dir) and which versions, never a source.
  if (purpose != SettingsFor::kRestore) {
    if (s->mlflow.empty() == s->path.empty()) problems.push_back({"mlflow", "give mlflow: URL (a registry) or path: DIR|gs://BUCKET/PREFIX"});
    if (!s->path.empty() && (s->models.size() != 1 || s->version.empty()))
      problems.push_back({"path", "a path holds one version: name it with models: [NAME] and version: V"});
  }
  return r.ok() ? s : nullptr;  // every problem above went into the same list r counts
}

std::vector<repo::SnapshotRef> versions_at(const std::vector<repo::SnapshotRef>& all, const std::string& name, std::optional<int64_t> at_ns) {
  return pick_model_versions(all, {source_tag(name)}, at_ns, "", "");
}

// A plan source's snapshots carry its tag; a command-line backup given --name carries the same.
std::vector<std::string> source_tags(const SourceContext& ctx, const ModelsSettings& s) {
  std::string name = ctx.name.empty() ? s.name : ctx.name;
  return name.empty() ? std::vector<std::string>{} : std::vector<std::string>{source_tag(name)};
}

Result<SourceBackup> backup(SourceContext& ctx, const ModelsSettings& s) {
  ModelsBackupOptions o;
  o.mlflow = s.mlflow;
  o.path = s.path;
  o.models = s.models;
  o.version = s.version;
  o.production_alias = s.production_alias;
  o.validate = s.validate;
  o.tags = ctx.tags;
  for (const auto& t : source_tags(ctx, s)) o.tags.push_back(t);
  o.hostname = ctx.host;
  int64_t start = monotonic_ns();
  LB_ASSIGN_OR_RETURN(auto r, backup_models(ctx.repo, o, ctx.progress));
  SourceBackup out;
  uint64_t made = 0, unchanged = 0, pinned = 0;
  std::vector<std::string> failed;
  nlohmann::json versions = nlohmann::json::array();
  for (const auto& v : r.versions) {
    if (v.unchanged) ++unchanged;
    else {
      ++made;
      if (!out.snapshot_id.empty()) out.more_snapshots.push_back(out.snapshot_id);
      out.snapshot_id = v.snapshot_id;
    }
    pinned += v.pinned;
    if (v.validated && !*v.validated) failed.push_back(fmt::format("{} v{}: {}", v.model, v.version, v.validation_detail));
    nlohmann::json j = {{"model", v.model},   {"version", v.version}, {"snapshot_id", v.snapshot_id}, {"unchanged", v.unchanged},
                        {"pinned", v.pinned}, {"aliases", v.aliases}, {"files", v.files},             {"bytes", v.bytes},
                        {"downloaded_bytes", v.downloaded_bytes}};
    if (v.validated) j["validation"] = {{"ok", *v.validated}, {"detail", v.validation_detail}};
    versions.push_back(j);
    out.report.lines.push_back(fmt::format(
        "{} v{}{}: {}{}{}", v.model, v.version, v.aliases.empty() ? "" : fmt::format(" ({})", fmt::join(v.aliases, ", ")),
        v.unchanged ? "unchanged since snapshot " + v.snapshot_id.substr(0, 8)
                    : fmt::format("snapshot {} saved, {} file(s), {} ({} downloaded)", v.snapshot_id.substr(0, 8), v.files,
                                  format_bytes(v.bytes), format_bytes(v.downloaded_bytes)),
        v.pinned ? ", pinned" : "",
        v.validated ? fmt::format("; validation {}: {}", *v.validated ? "ok" : "FAILED", v.validation_detail) : ""));
  }
  out.report.json = {{"versions", versions}, {"duration_ms", (monotonic_ns() - start) / 1000000}};
  out.summary = {{"versions", r.versions.size()}, {"new_snapshots", made}, {"unchanged", unchanged}, {"pinned", pinned}};
  if (s.validate) {
    nlohmann::json checks = nlohmann::json::array();
    checks.push_back({{"check", "validate"},
                      {"ok", failed.empty()},
                      {"detail", failed.empty() ? fmt::format("{} version(s) validated", r.versions.size())
                                                : fmt::format("{} version(s) failed: {}", failed.size(), failed[0])}});
    out.summary["checks"] = checks;
  }
  if (!failed.empty())
    out.report.status =
        ctx.name.empty()
            ? Error(Code::kFatal, "a model version failed its validation (above); its backup is stored and marked not validated")
            : Error(Code::kFatal, fmt::format("source {}: {} model version(s) failed validation (stored, marked not validated); first: {}",
                                              ctx.name, failed.size(), failed[0]));
  return out;
}

ModelsRestoreOptions where_of(const ModelsSettings& s) {
  ModelsRestoreOptions o;
  o.mlflow = s.to_dir.empty() ? s.mlflow : "";
  o.to_dir = s.to_dir;
  o.dry_run = s.dry_run;
  return o;
}

// The versions to restore as of T: a plan source's (its tag); on the command line those of --name's
// backups, or of every backup, narrowed to --model and --version.
std::vector<repo::SnapshotRef> versions_to_restore(const std::vector<repo::SnapshotRef>& all, const SourceContext& ctx,
                                                   const ModelsSettings& s, std::optional<int64_t> at_ns) {
  if (!ctx.name.empty()) return versions_at(all, ctx.name, at_ns);
  return pick_model_versions(all, source_tags(ctx, s), at_ns, s.models.size() == 1 ? s.models[0] : "", s.version);
}

Result<SourceRestore> restore(SourceContext& ctx, const ModelsSettings& s, std::optional<int64_t> at_ns) {
  LB_ASSIGN_OR_RETURN(auto all, ctx.repo.list_snapshots());
  auto picked = versions_to_restore(all, ctx, s, at_ns);
  auto where = where_of(s);
  where.converge = ctx.resume != nullptr;
  if (where.mlflow.empty() && where.to_dir.empty())
    return Error(Code::kInvalidArgument, ctx.name.empty() ? std::string("restore models needs --mlflow URL or --to-dir DIR")
                                                          : fmt::format("source {}: the environment needs mlflow: URL or to_dir: DIR", ctx.name));
  if (picked.empty() && !ctx.name.empty())
    return no_backup_error(ctx.name, at_ns, all, kSource);
  int64_t start = monotonic_ns();
  LB_ASSIGN_OR_RETURN(auto r, restore_models(ctx.repo, picked, where, ctx.progress));
  SourceRestore out;
  if (!picked.empty()) {
    const repo::SnapshotRef* newest = &picked[0];
    for (const auto& p : picked)
      if (p.snapshot.time_ns > newest->snapshot.time_ns) newest = &p;
    out.point_ns = newest->snapshot.time_ns;
    out.snapshot_id = newest->id;
  }
  nlohmann::json versions = nlohmann::json::array(), listed = nlohmann::json::array();
  for (const auto& v : r) {
    versions.push_back({{"model", v.model}, {"from", v.old_version}, {"to", v.new_version}, {"files", v.files}, {"bytes", v.bytes}});
    listed.push_back({{"model", v.model}, {"from_version", v.old_version}, {"to_version", v.new_version}, {"to", v.where},
                      {"files", v.files}, {"bytes", v.bytes}, {"reused", v.reused}});
    out.report.lines.push_back(
        v.reused ? fmt::format("{} v{} → {} v{} (restored from this snapshot before: kept, nothing uploaded)", v.model, v.old_version,
                               v.where, v.new_version)
                 : fmt::format("{}{} v{} → {} v{} ({} file(s), {})", s.dry_run ? "would restore " : "", v.model, v.old_version,
                               v.where, v.new_version, v.files, format_bytes(v.bytes)));
  }
  out.details = {{"target", where.to_dir.empty() ? redact_url(where.mlflow) : where.to_dir}, {"versions", versions}};
  out.dry_run = s.dry_run;
  if (!s.dry_run) out.resume = {{"snapshot", out.snapshot_id}};
  out.report.json = {{"versions", listed}, {"dry_run", s.dry_run}, {"duration_ms", (monotonic_ns() - start) / 1000000}};
  return out;
}

std::vector<CheckResult> validate(SourceContext& ctx, const ModelsSettings& s, const SourceRestore& restored,
                                  const std::vector<std::string>& checks) {
  auto all = ctx.repo.list_snapshots();
  if (!all) return all_failed(checks, all.status().message());
  auto picked = versions_to_restore(*all, ctx, s, restored.point_ns);
  std::vector<VersionRestored> done;
  for (const auto& v : restored.details.value("versions", nlohmann::json::array()))
    done.push_back({v.value("model", ""), v.value("from", ""), v.value("to", ""), "", 0, 0});
  return check_models_target(ctx.repo, picked, where_of(s), done, s.validate, checks);
}

std::optional<int64_t> newest_point(const std::vector<repo::SnapshotRef>& all, const std::string& name) {
  std::optional<int64_t> newest;
  for (const auto& s : versions_at(all, name, std::nullopt))
    if (!newest || s.snapshot.time_ns > *newest) newest = s.snapshot.time_ns;
  return newest;
}

}  // namespace

const SourceKind& models_source_kind() {
  static const SourceKind kind = TypedSourceKind<ModelsSettings>{
      .name = "models",
      .summary = "ML model versions: an MLflow registry (metadata, aliases, artifacts) or model directories",
      .validations = {"manifest", "validate"},
      .options = options(),
      .parse = parse,
      .backup = backup,
      .restore = restore,
      .validate = validate,
      .newest_point = newest_point,
      .retention_group = [](const repo::Snapshot& s) {
        return s.metadata.value("model", "") + "/" + s.metadata.value("version", "");
      }}.erase();
  return kind;
}

}  // namespace lifeboat::sources::models
