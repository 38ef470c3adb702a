// The config source kind: plan settings (paths, exclude, git, secrets, checks; for restores target,
// git_dir, push, secrets as the project to restore into, only), backups with the previous one as
// parent, restores as of T, and checks that read every restored part back.
#include "sources/config/config_source.h"

#include <fmt/format.h>

#include "core/subprocess.h"
#include "core/time.h"
#include "sources/config/config.h"
#include "repo/archiver/archiver.h"
#include "sources/settings_reader.h"

namespace lifeboat::sources::config {

namespace {

const std::vector<KindOption>& options() {
  static const std::vector<KindOption> o = {
      {.key = "paths", .type = OptionType::kStrings, .help = "config files and directories", .use = kBackupOption, .flag = "paths"},
      {.key = "git", .type = OptionType::kStrings,
       .help = "a git repository (path or URL), as NAME=REPO to name it; every ref, tag, note and LFS object (repeatable)",
       .use = kBackupOption},
      {.key = "secrets",
       .help = "Secret Manager: backups take every secret of this project (projects/P) with all its versions; restores put "
               "them into this project (projects/Q)"},
      {.key = "read_disabled", .type = OptionType::kFlag,
       .help = "also store the payloads of DISABLED secret versions: each is enabled for the moment of reading it (recorded "
               "first, so an interrupted backup's next run disables it again); without it their metadata only",
       .use = kBackupOption},
      {.key = "name", .help = "the source name: tags the snapshot source:NAME, as plan backups are (restores: which one; plan "
                              "mode: which config source)",
       .command_line = true},
      {.key = "exclude", .type = OptionType::kStrings, .help = "skip names or paths matching this pattern (repeatable)",
       .use = kBackupOption},
      {.key = "checks", .type = OptionType::kStrings,
       .help = "PATTERN=COMMAND: run COMMAND ({file} replaced) on files matching PATTERN (repeatable; a plan writes "
               "{match, run, timeout})",
       .use = kBackupOption, .flag = "--check"},
      {.key = "force", .type = OptionType::kFlag, .help = "read every file, ignoring the previous backup", .use = kBackupOption,
       .command_line = true},
      {.key = "snapshot", .help = "this snapshot instead of the newest at --at/--date", .use = kRestoreOption, .command_line = true},
      {.key = "only", .type = OptionType::kStrings,
       .help = "restore only these parts: files, git, secrets (repeatable or comma-separated)", .use = kRestoreOption},
      {.key = "dry_run", .type = OptionType::kFlag, .help = "list what would change; write nothing", .use = kRestoreOption,
       .command_line = true},
      {.key = "target", .help = "files go under this directory (by their absolute paths); mirrors to DIR/git/NAME.git",
       .use = kRestoreOption, .flag = "-t,--target"},
      {.key = "git_dir", .help = "bare mirrors go to this directory instead (NAME.git)", .use = kRestoreOption},
      {.key = "push", .type = OptionType::kStrings,
       .help = "NAME=REMOTE: push that mirror's refs to REMOTE (a URL or path) instead (repeatable)", .use = kRestoreOption},
      {.key = "check", .type = OptionType::kStrings,
       .help = "read the restored parts back: files, syntax, git, secrets (repeatable)", .use = kRestoreOption,
       .command_line = true},
  };
  return o;
}

struct ConfigSettings : SourceSettings {
  std::vector<std::string> paths, exclude;
  std::vector<GitSource> git;
  std::string secrets, name, snapshot;
  std::vector<CheckCommand> checks;
  std::string target, git_dir;
  std::map<std::string, std::string> push;
  std::set<std::string> only;
  std::vector<std::string> read_back;  // command line: the checks to run after a restore
  bool force = false, dry_run = false, read_disabled = false;
};

// `checks`: the plan's {match, run, timeout} or the command line's PATTERN=COMMAND.
void parse_checks(const nlohmann::json& c, ConfigSettings& s, std::vector<SettingsProblem>& problems) {
  if (!c.is_array()) {
    problems.push_back({"checks", "expected a list of {match: PATTERN, run: COMMAND}"});
    return;
  }
  for (size_t i = 0; i < c.size(); ++i) {
    const auto& e = c[i];
    if (e.is_string()) {
      std::string ch = e.get<std::string>();
      size_t eq = ch.find('=');
      if (eq == std::string::npos || eq == 0) problems.push_back({"checks", fmt::format("{}: expected PATTERN=COMMAND", ch)});
      else s.checks.push_back({ch.substr(0, eq), ch.substr(eq + 1), 60});
      continue;
    }
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
    s.checks.push_back(cc);
  }
  // A placeholder the shell would parse again is refused now, not when the first file meets it.
  for (const auto& cc : s.checks) {
    if (auto filled = fill_command(cc.run, {{"{file}", "x"}}); !filled) problems.push_back({"checks", filled.status().message()});
  }
}

std::shared_ptr<const ConfigSettings> parse(const nlohmann::json& section, SettingsFor purpose, std::vector<SettingsProblem>& problems) {
  SettingsReader r(section, problems);
  auto s = std::make_shared<ConfigSettings>();
  s->paths = r.strings("paths");
  s->exclude = r.strings("exclude");
  for (const auto& g : r.strings("git")) s->git.push_back(parse_git_source(g));
  s->secrets = r.string("secrets");
  s->name = r.string("name");
  s->snapshot = r.string("snapshot");
  s->target = r.string("target");
  s->git_dir = r.string("git_dir");
  s->force = r.boolean("force", false);
  s->read_disabled = r.boolean("read_disabled", false);
  s->dry_run = r.boolean("dry_run", false);
  s->read_back = r.strings("check");
  if (section.is_object() && section.contains("push") && section["push"].is_array()) {
    for (const auto& p : r.strings("push")) {
      size_t eq = p.find('=');
      if (eq == std::string::npos || eq == 0) problems.push_back({"push", fmt::format("{}: expected NAME=REMOTE", p)});
      else s->push[p.substr(0, eq)] = p.substr(eq + 1);
    }
  } else {
    for (const auto& [k, v] : r.string_map("push")) s->push[k] = v;
  }
  for (const auto& list : r.strings("only"))
    for (size_t from = 0; from <= list.size();) {  // repeatable or comma-separated
      size_t comma = list.find(',', from);
      std::string o = list.substr(from, comma == std::string::npos ? std::string::npos : comma - from);
      from = comma == std::string::npos ? list.size() + 1 : comma + 1;
      if (o != "files" && o != "git" && o != "secrets") problems.push_back({"only", "expected files, git or secrets, not " + o});
      s->only.insert(o);
    }
  if (section.is_object() && section.contains("checks")) parse_checks(section["checks"], *s, problems);
  r.only(options());
  if (purpose != SettingsFor::kRestore && s->paths.empty() && s->git.empty() && s->secrets.empty())
    problems.push_back({"paths", "give paths, git repositories or secrets (projects/P) to back up"});
  if (!s->secrets.empty() && s->secrets.rfind("projects/", 0) != 0) problems.push_back({"secrets", "expected projects/PROJECT"});
  for (const auto& c : s->read_back)
    if (c != "files" && c != "syntax" && c != "git" && c != "secrets")
      problems.push_back({"check", fmt::format("{}: expected files, syntax, git or secrets", c)});
  return r.ok() ? s : nullptr;  // every problem above went into the same list r counts
}

ConfigRestoreOptions where_of(const ConfigSettings& s) {
  ConfigRestoreOptions o;
  o.target = s.target;
  o.git_dir = s.git_dir;
  o.push = s.push;
  o.secrets_project = s.secrets;
  o.only = s.only;
  o.dry_run = s.dry_run;
  return o;
}

// A plan source's snapshots carry its tag; a command-line backup given --name carries the same.
std::vector<std::string> source_tags(const SourceContext& ctx, const ConfigSettings& s) {
  std::string name = ctx.name.empty() ? s.name : ctx.name;
  return name.empty() ? std::vector<std::string>{} : std::vector<std::string>{source_tag(name)};
}

Report backup_report(const SourceContext& ctx, const ConfigBackupResult& r) {
  Report out;
  const auto& snap = r.snapshot;
  nlohmann::json problems = nlohmann::json::array();
  for (const auto& p : r.problems) problems.push_back({{"file", p.file}, {"line", p.line}, {"problem", p.problem}});
  out.json = {{"snapshot_id", r.snapshot_id}, {"short_id", r.snapshot_id.substr(0, 8)}, {"time", format_rfc3339(snap.time_ns)},
              {"paths", snap.paths},          {"summary", snap.summary},                  {"validation", snap.metadata["validation"]},
              {"problems", problems},         {"git", snap.metadata["git"]},              {"warnings", r.warnings}};
  for (const auto& p : r.problems) out.warnings.push_back(p.to_string());
  for (const auto& w : r.warnings) out.warnings.push_back("warning: " + w);
  const auto& v = snap.metadata["validation"];
  auto& lines = out.lines;
  if (snap.summary.contains("files")) {
    const auto& f = snap.summary["files"];
    lines.push_back(fmt::format("Files:      {} new, {} changed, {} unmodified; {} config file(s) checked, {} problem(s)",
                                f.value("files_new", 0), f.value("files_changed", 0), f.value("files_unmodified", 0),
                                v.value("files_checked", 0), r.problems.size()));
  }
  for (const auto& m : snap.metadata["git"])
    lines.push_back(fmt::format("Git:        {} ({} refs, HEAD {}, {} LFS object(s))", m.value("name", ""), m["refs"].size(),
                                m.value("head", "detached"), m["lfs"].size()));
  if (snap.metadata.contains("secrets")) {
    const auto& x = snap.metadata["secrets"];
    uint64_t unread = x.value("disabled_unread", uint64_t{0});
    lines.push_back(fmt::format("Secrets:    {}: {} secret(s), {} version(s) ({} disabled, {} destroyed){}", x.value("project", ""),
                                x.value("secrets", 0), x.value("versions", 0), x.value("disabled", 0), x.value("destroyed", 0),
                                unread ? fmt::format("; {} disabled version(s) stored without the payload (read_disabled keeps it)", unread)
                                       : ""));
  }
  lines.push_back(fmt::format("Added:      {} ({} stored after compression)", format_bytes(snap.summary.value("data_added_bytes", uint64_t{0})),
                              format_bytes(snap.summary.value("data_stored_bytes", uint64_t{0}))));
  lines.push_back(fmt::format("snapshot {} saved{}", r.snapshot_id.substr(0, 8), r.problems.empty() ? "" : " (with the config problems above)"));
  std::string id = r.snapshot_id.substr(0, 8);
  if (!r.problems.empty())
    out.status = ctx.name.empty()
                     ? Error(Code::kPartial, fmt::format("snapshot {} saved, but {} config file problem(s) (listed above): fix them "
                                                         "before deploying",
                                                         id, r.problems.size()))
                     : Error(Code::kPartial, fmt::format("source {}: snapshot {} saved, but {} config file problem(s); first: {}",
                                                         ctx.name, id, r.problems.size(), r.problems[0].to_string()));
  else if (!r.warnings.empty() && ctx.name.empty())  // a plan records them with the backup
    out.status = Error(Code::kPartial, fmt::format("snapshot {} saved, but {} part(s) could not be stored (listed above)", id,
                                                   r.warnings.size()));
  return out;
}

Result<SourceBackup> backup(SourceContext& ctx, const ConfigSettings& s) {
  ConfigBackupOptions o;
  for (const auto& p : s.paths) o.paths.push_back(repo::absolute_path(p));
  o.excludes = s.exclude;
  o.git = s.git;
  o.secrets_project = s.secrets;
  o.read_disabled = s.read_disabled;
  o.checks = s.checks;
  o.tags = ctx.tags;
  for (const auto& t : source_tags(ctx, s)) o.tags.push_back(t);
  o.hostname = ctx.host;
  // The parent: the newest config backup with the same tags (a plan source's: its tag).
  if (!s.force) {
    LB_ASSIGN_OR_RETURN(auto all, ctx.repo.list_snapshots());
    repo::SnapshotFilter filter;
    filter.source = kSource;
    filter.tags = o.tags;
    auto parent = repo::select_snapshot(all, "latest", std::nullopt, filter);
    if (parent) o.parent = *parent;
  }
  LB_ASSIGN_OR_RETURN(auto r, backup_config(ctx.repo, o, ctx.progress));
  SourceBackup out{r.snapshot_id, r.snapshot.summary, r.warnings};
  out.report = backup_report(ctx, r);
  return out;
}

Result<SourceRestore> restore(SourceContext& ctx, const ConfigSettings& s, std::optional<int64_t> at_ns) {
  LB_ASSIGN_OR_RETURN(auto all, ctx.repo.list_snapshots());
  repo::SnapshotFilter filter;
  filter.source = kSource;
  filter.tags = source_tags(ctx, s);
  auto snap = repo::select_snapshot(all, s.snapshot.empty() ? "latest" : s.snapshot, s.snapshot.empty() ? at_ns : std::nullopt, filter);
  if (!snap && !ctx.name.empty() && snap.status().code() == Code::kNotFound)
    return no_backup_error(ctx.name, at_ns, all, kSource);
  if (!snap) return snap.status();
  auto where = where_of(s);
  where.converge = ctx.resume != nullptr;
  int64_t start = monotonic_ns();
  LB_ASSIGN_OR_RETURN(auto r, restore_config(ctx.repo, *snap, where, ctx.progress));
  int64_t ms = (monotonic_ns() - start) / 1000000;
  SourceRestore out;
  out.point_ns = snap->snapshot.time_ns;
  out.snapshot_id = snap->id;
  out.details = r.to_json();
  out.details["target_kind"] = "configuration";
  if (!s.dry_run) out.resume = {{"snapshot", snap->id}};
  out.dry_run = s.dry_run;
  if (!s.dry_run) out.checks = s.read_back;
  std::string name = ctx.name.empty() ? s.name : ctx.name;
  out.report.json = {{"source", name}, {"snapshot", snap->to_json()}, {"dry_run", s.dry_run}, {"restored", r.to_json()},
                     {"duration_ms", ms}};
  auto& lines = out.report.lines;
  lines.push_back(fmt::format("restoring {}configuration backed up at {} (snapshot {}){}", name.empty() ? "" : name + ": ",
                              format_local(snap->snapshot.time_ns), snap->short_id(), s.dry_run ? " (dry run)" : ""));
  if (s.dry_run) {
    for (const auto& line : r.plan) lines.push_back("would " + line);
    lines.push_back(fmt::format("dry run: {} change(s); nothing written", r.plan.size()));
    return out;
  }
  if (r.files) lines.push_back(fmt::format("files: {} restored under {} ({})", r.files, where.target, format_bytes(r.bytes)));
  for (const auto& [n, w] : r.mirrors) lines.push_back(fmt::format("git {}: mirror restored to {}", n, w));
  for (const auto& x : r.secrets) {
    std::vector<std::string> map;
    for (const auto& [a, b] : x.versions) map.push_back(fmt::format("{}→{}", a, b));
    lines.push_back(fmt::format("secret {}{}: versions {}{}", x.secret, x.created ? " (created)" : "", fmt::join(map, " "),
                                x.without_payload.empty()
                                    ? ""
                                    : fmt::format("; disabled version(s) {} restored disabled and empty (backed up without read_disabled)",
                                                  fmt::join(x.without_payload, ", "))));
  }
  lines.push_back(fmt::format("restored snapshot {} ({}) in {}", snap->short_id(), format_local(snap->snapshot.time_ns), format_duration_ms(ms)));
  return out;
}

ConfigRestoreResult restored_from(const nlohmann::json& d) {
  ConfigRestoreResult r;
  for (const auto& s : d.value("secrets", nlohmann::json::array())) {
    SecretRestored x;
    x.secret = s.value("secret", "");
    x.created = s.value("created", false);
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

const SourceKind& config_source_kind() {
  static const SourceKind kind = TypedSourceKind<ConfigSettings>{
      .name = "config",
      .summary = "configuration files (syntax-checked), git repositories as mirrors, Secret Manager secrets",
      .validations = {"files", "syntax", "git", "secrets"},
      .snapshot_source = kSource,
      .options = options(),
      .parse = parse,
      .backup = backup,
      .restore = restore,
      .validate = validate}.erase();
  return kind;
}

}  // namespace lifeboat::sources::config
