// The config source kind: plan settings (paths, exclude, git, secrets, checks; for restores target,
// git_dir, push, secrets as the project to restore into, only), backups with the previous one as
// parent, restores as of T, and checks that read every restored part back.
#include "sources/config/config_source.h"

#include <fmt/format.h>

#include "core/time.h"
#include "sources/config/config.h"
#include "repo/archiver/archiver.h"
#include "sources/settings_reader.h"

namespace lifeboat::sources::config {

namespace {

struct ConfigSettings : SourceSettings {
  std::vector<std::string> paths, exclude;
  std::vector<GitSource> git;
  std::string secrets;
  std::vector<CheckCommand> checks;
  std::string target, git_dir;
  std::map<std::string, std::string> push;
  std::set<std::string> only;
};

std::shared_ptr<const ConfigSettings> parse(const nlohmann::json& section, SettingsFor, std::vector<SettingsProblem>& problems) {
  SettingsReader r(section, problems);
  auto s = std::make_shared<ConfigSettings>();
  s->paths = r.strings("paths");
  s->exclude = r.strings("exclude");
  for (const auto& g : r.strings("git")) s->git.push_back(parse_git_source(g));
  s->secrets = r.string("secrets");
  s->target = r.string("target");
  s->git_dir = r.string("git_dir");
  for (const auto& [k, v] : r.string_map("push")) s->push[k] = v;
  for (const auto& o : r.strings("only")) {
    if (o != "files" && o != "git" && o != "secrets") problems.push_back({"only", "expected files, git or secrets, not " + o});
    s->only.insert(o);
  }
  if (section.is_object() && section.contains("checks")) {
    const auto& c = section["checks"];
    if (!c.is_array()) problems.push_back({"checks", "expected a list of {match: PATTERN, run: COMMAND}"});
    else
      for (size_t i = 0; i < c.size(); ++i) {
        const auto& e = c[i];
        if (!e.is_object() || !e.contains("match") || !e.contains("run") || !e["match"].is_string() || !e["run"].is_string()) {
          problems.push_back({fmt::format("checks[{}]", i), "expected {match: PATTERN, run: COMMAND} (optional timeout: seconds)"});
          continue;
        }
        CheckCommand cc{e["match"], e["run"], 60};
        if (e.contains("timeout")) {
          if (!e["timeout"].is_number_integer() || e["timeout"].get<int64_t>() <= 0)
            problems.push_back({fmt::format("checks[{}].timeout", i), "expected a number of seconds"});
          else cc.timeout_s = e["timeout"];
        }
        s->checks.push_back(cc);
      }
  }
  r.only({"paths", "exclude", "git", "secrets", "checks", "target", "git_dir", "push", "only"});
  if (s->paths.empty() && s->git.empty() && s->secrets.empty())
    problems.push_back({"paths", "give paths, git repositories or secrets (projects/P) to back up"});
  if (!s->secrets.empty() && s->secrets.rfind("projects/", 0) != 0) problems.push_back({"secrets", "expected projects/PROJECT"});
  return r.ok() ? s : nullptr;  // every problem above went into the same list r counts
}

ConfigRestoreOptions where_of(const ConfigSettings& s) {
  ConfigRestoreOptions o;
  o.target = s.target;
  o.git_dir = s.git_dir;
  o.push = s.push;
  o.secrets_project = s.secrets;
  o.only = s.only;
  return o;
}

Result<SourceBackup> backup(SourceContext& ctx, const ConfigSettings& s) {
  ConfigBackupOptions o;
  for (const auto& p : s.paths) o.paths.push_back(repo::absolute_path(p));
  o.excludes = s.exclude;
  o.git = s.git;
  o.secrets_project = s.secrets;
  o.checks = s.checks;
  o.tags = {source_tag(ctx.name)};
  LB_ASSIGN_OR_RETURN(auto all, ctx.repo.list_snapshots());
  o.parent = newest_snapshot(all, kSource, ctx.name, std::nullopt);
  LB_ASSIGN_OR_RETURN(auto r, backup_config(ctx.repo, o, ctx.progress));
  if (!r.problems.empty())
    return Error(Code::kPartial, fmt::format("source {}: snapshot {} saved, but {} config file problem(s); first: {}", ctx.name,
                                             r.snapshot_id.substr(0, 8), r.problems.size(), r.problems[0].to_string()));
  return SourceBackup{r.snapshot_id, r.snapshot.summary, r.warnings};
}

Result<SourceRestore> restore(SourceContext& ctx, const ConfigSettings& s, std::optional<int64_t> at_ns) {
  LB_ASSIGN_OR_RETURN(auto all, ctx.repo.list_snapshots());
  auto snap = newest_snapshot(all, kSource, ctx.name, at_ns);
  if (!snap)
    return Error(Code::kNotFound, fmt::format("source {}: no backup{}", ctx.name, at_ns ? " at or before " + format_rfc3339(*at_ns) : ""));
  LB_ASSIGN_OR_RETURN(auto r, restore_config(ctx.repo, *snap, where_of(s), ctx.progress));
  SourceRestore out;
  out.point_ns = snap->snapshot.time_ns;
  out.snapshot_id = snap->id;
  out.details = r.to_json();
  return out;
}

ConfigRestoreResult restored_from(const nlohmann::json& d) {
  ConfigRestoreResult r;
  for (const auto& s : d.value("secrets", nlohmann::json::array())) {
    SecretRestored x;
    x.secret = s.value("secret", "");
    for (const auto& v : s.value("versions", nlohmann::json::array())) x.versions.emplace_back(v.value("from", int64_t{0}), v.value("to", int64_t{0}));
    r.secrets.push_back(std::move(x));
  }
  return r;
}

std::vector<CheckResult> validate(SourceContext& ctx, const ConfigSettings& s, const SourceRestore& restored,
                                  const std::vector<std::string>& checks) {
  auto snap = ctx.repo.load_snapshot(restored.snapshot_id);
  if (!snap) return all_failed(checks, snap.status().message());
  return check_config_target(ctx.repo, *snap, where_of(s), restored_from(restored.details), checks);
}

}  // namespace

ConfigRestoreOptions restore_options_of(const SourceSettings& settings) {
  return where_of(static_cast<const ConfigSettings&>(settings));
}

const SourceKind& config_source_kind() {
  static const SourceKind kind = TypedSourceKind<ConfigSettings>{
      .name = "config",
      .summary = "configuration files (syntax-checked), git repositories as mirrors, Secret Manager secrets",
      .validations = {"files", "syntax", "git", "secrets"},
      .snapshot_source = kSource,
      .parse = parse,
      .backup = backup,
      .restore = restore,
      .validate = validate}.erase();
  return kind;
}

}  // namespace lifeboat::sources::config
