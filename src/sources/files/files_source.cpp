// The files source kind: its options (plan keys, and the flags of the top-level `backup PATH...`:
// paths, exclude, target, parent, force, a command's output), backup with the previous backup as
// parent, restore of the newest snapshot at or before T, and checks that read the restored tree.
#include "sources/files/files_source.h"

#include <fmt/format.h>
#include <unistd.h>

#include "core/bytes.h"
#include "core/platform_user.h"
#include "core/time.h"
#include "repo/snapshot_select.h"
#include "repo/archiver/archiver.h"
#include "repo/restorer/restorer.h"
#include "repo/restorer/verify.h"
#include "sources/files/files_backup.h"
#include "sources/settings_reader.h"

namespace lifeboat::sources::files {

namespace {

constexpr const char* kSource = "files";

const std::vector<KindOption>& options() {
  static const std::vector<KindOption> o = {
      {.key = "paths", .type = OptionType::kStrings,
       .help = "files and directories to back up (or, with --stdin-from-command, the command)", .use = kBackupOption,
       .flag = "paths"},
      {.key = "exclude", .type = OptionType::kStrings, .help = "skip names or paths matching this pattern (repeatable)",
       .use = kBackupOption},
      {.key = "parent", .help = "compare with this snapshot to skip unchanged files (default: latest of the same paths and host)",
       .use = kBackupOption, .command_line = true},
      {.key = "force", .type = OptionType::kFlag, .help = "read every file, ignoring the parent snapshot", .use = kBackupOption,
       .command_line = true},
      {.key = "stdin_from_command", .type = OptionType::kFlag,
       .help = "run the command given after -- and store its output as one file; fails if the command fails",
       .use = kBackupOption, .command_line = true},
      {.key = "stdin_filename", .help = "file name for --stdin-from-command output", .use = kBackupOption, .default_text = "stdin",
       .command_line = true},
      {.key = "target", .help = "the directory the tree is recreated under", .use = kRestoreOption},
      {.key = "delete_extra", .type = OptionType::kFlag,
       .help = "remove what the snapshot's directories do not hold, so the target equals the backup (checks then fail on "
               "extra entries)",
       .use = kRestoreOption},
  };
  return o;
}

struct FilesSettings : SourceSettings {
  std::vector<std::string> paths, exclude;
  std::string target;  // restores: the directory the tree is recreated under
  // Command line: the parent to compare with (default: the latest of the same paths and host), or
  // none; a command's output instead of paths.
  std::string parent, stdin_filename = "stdin";
  bool force = false, from_command = false;
  bool delete_extra = false;  // restores: the target is made equal to the backup
};

std::shared_ptr<const FilesSettings> parse(const nlohmann::json& section, SettingsFor purpose, std::vector<SettingsProblem>& problems) {
  SettingsReader r(section, problems);
  auto s = std::make_shared<FilesSettings>();
  s->paths = r.strings("paths", purpose != SettingsFor::kRestore);
  s->exclude = r.strings("exclude");
  s->target = r.string("target");
  s->parent = r.string("parent");
  s->force = r.boolean("force", false);
  s->from_command = r.boolean("stdin_from_command", false);
  s->delete_extra = r.boolean("delete_extra", false);
  if (std::string f = r.string("stdin_filename"); !f.empty()) s->stdin_filename = f;
  r.only(options());
  if (s->from_command && s->paths.empty()) problems.push_back({"paths", "--stdin-from-command needs a command after --"});
  return r.ok() ? s : nullptr;
}

Report backup_report(const FilesBackupResult& r, int64_t ms, const SourceContext& ctx) {
  Report out;
  const auto& s = r.snapshot.summary;
  out.json = {{"snapshot_id", r.snapshot_id},
              {"short_id", r.snapshot_id.substr(0, 8)},
              {"time", format_rfc3339(r.snapshot.time_ns)},
              {"summary", s},
              {"unreadable", r.unreadable}};
  for (const auto& u : r.unreadable) out.warnings.push_back("unreadable: " + u);
  auto num = [&](const char* k) { return s.value(k, uint64_t{0}); };
  out.lines.push_back(fmt::format("Files:      {} new, {} changed, {} unmodified", num("files_new"), num("files_changed"),
                                  num("files_unmodified")));
  out.lines.push_back(fmt::format("Dirs:       {}", num("dirs")));
  out.lines.push_back(fmt::format("Added:      {} ({} stored after compression)", format_bytes(num("data_added_bytes")),
                                  format_bytes(num("data_stored_bytes"))));
  out.lines.push_back(fmt::format("Processed:  {} in {}", format_bytes(num("total_bytes")), format_duration_ms(ms)));
  out.lines.push_back(fmt::format("snapshot {} saved", r.snapshot_id.substr(0, 8)));
  if (!r.unreadable.empty() && ctx.name.empty())  // a plan records them with the backup
    out.status = Error(Code::kPartial, fmt::format("snapshot {} saved, but {} file(s) could not be read (listed above)",
                                                   r.snapshot_id.substr(0, 8), r.unreadable.size()));
  return out;
}

// The parent a backup compares with: a plan source's newest; on the command line the one --parent
// names, or the latest of the same paths and host.
Result<std::optional<repo::SnapshotRef>> parent_of(SourceContext& ctx, const FilesSettings& s, const FilesBackupOptions& o) {
  if (s.force) return std::optional<repo::SnapshotRef>{};
  LB_ASSIGN_OR_RETURN(auto all, ctx.repo.list_readable_snapshots());
  if (!ctx.name.empty()) return newest_snapshot(all, kSource, ctx.name, std::nullopt);
  repo::SnapshotFilter filter;
  filter.source = kSource;
  if (s.parent.empty()) {
    filter.host = o.hostname;
    filter.paths = o.paths;
  }
  auto parent = repo::select_snapshot(all, s.parent, std::nullopt, filter);
  if (parent) return std::optional<repo::SnapshotRef>{*parent};
  if (!s.parent.empty()) return parent.status();
  return std::optional<repo::SnapshotRef>{};
}

Result<SourceBackup> backup(SourceContext& ctx, const FilesSettings& s) {
  int64_t start = monotonic_ns();
  if (s.from_command) {
    CommandBackupOptions c;
    c.argv = s.paths;
    c.filename = s.stdin_filename;
    c.tags = ctx.tags;
    c.hostname = ctx.host;
    LB_ASSIGN_OR_RETURN(auto r, backup_command_output(ctx.repo, c, ctx.progress));
    SourceBackup out{r.snapshot_id, r.snapshot.summary, {}};
    out.report = backup_report(r, (monotonic_ns() - start) / 1000000, ctx);
    return out;
  }
  FilesBackupOptions o;
  for (const auto& p : s.paths) o.paths.push_back(repo::absolute_path(p));
  o.excludes = s.exclude;
  o.tags = ctx.tags;
  if (!ctx.name.empty()) o.tags.push_back(source_tag(ctx.name));
  o.hostname = ctx.host.empty() ? platform::hostname() : ctx.host;
  o.count_totals = ctx.progress_shown;
  LB_ASSIGN_OR_RETURN(o.parent, parent_of(ctx, s, o));
  LB_ASSIGN_OR_RETURN(auto r, backup_files(ctx.repo, o, ctx.progress));
  SourceBackup out{r.snapshot_id, r.snapshot.summary, {}};
  for (const auto& u : r.unreadable) out.warnings.push_back("unreadable: " + u);
  out.report = backup_report(r, (monotonic_ns() - start) / 1000000, ctx);
  return out;
}

Result<SourceRestore> restore(SourceContext& ctx, const FilesSettings& s, std::optional<int64_t> at_ns) {
  if (s.target.empty())
    return Error(Code::kInvalidArgument, fmt::format("source {}: the environment needs a target directory (target:)", ctx.name));
  LB_ASSIGN_OR_RETURN(auto all, ctx.repo.list_snapshots());
  auto snap = newest_snapshot(all, kSource, ctx.name, at_ns);
  if (!snap)
    return no_backup_error(ctx.name, at_ns, all, kSource);
  repo::TreeRestoreOptions o;
  o.target = s.target;
  o.delete_extra = s.delete_extra;
  // A standby this kind restored before: only files that differ in size or modification time are
  // written again (restic's if-changed); the checks of a failover read every byte.
  if (ctx.resume && ctx.resume->contains("snapshot")) o.overwrite = repo::Overwrite::kIfChanged;
  LB_ASSIGN_OR_RETURN(auto r, repo::restore_tree(ctx.repo, snap->snapshot.tree, o, ctx.progress));
  if (!r.errors.empty())
    return Error(Code::kFatal, fmt::format("source {}: {} file(s) failed: {}", ctx.name, r.errors.size(), r.errors[0]));
  SourceRestore out;
  out.point_ns = snap->snapshot.time_ns;
  out.snapshot_id = snap->id;
  out.details = {{"target", o.target}, {"files", r.files}, {"bytes", r.bytes}};
  if (s.delete_extra) out.details["deleted"] = r.deleted;
  if (o.overwrite == repo::Overwrite::kIfChanged) out.details["unchanged"] = r.skipped;
  out.resume = {{"snapshot", snap->id}};
  return out;
}

std::vector<CheckResult> validate(SourceContext& ctx, const FilesSettings& s, const SourceRestore& restored,
                                  const std::vector<std::string>& checks) {
  auto snap = ctx.repo.load_snapshot(restored.snapshot_id);
  if (!snap) return all_failed(checks, snap.status().message());
  auto v = repo::verify_restored_tree(ctx.repo, snap->snapshot.tree, s.target, snap->snapshot.paths);
  if (!v) return all_failed(checks, v.status().message());
  std::vector<CheckResult> out;
  std::string first = v->problems.empty() ? "" : "; first problem: " + v->problems[0];
  std::string first_missing = v->missing.empty() ? "" : "; first missing: " + v->missing[0];
  bool all_present = v->files_found == v->files_expected && v->dirs_found == v->dirs_expected && v->others_found == v->others_expected;
  // Extra entries are named; they fail `counts` where the restore made the target equal the backup
  // (delete_extra). Without it a restore overwrites what is there and removes nothing.
  bool extra_fails = s.delete_extra && v->extra_count > 0;
  std::string extra = v->extra_count == 0 ? ""
                      : fmt::format("; {} entr(ies) in the target the backup does not have ({}), first: {}", v->extra_count,
                                    s.delete_extra ? "although the restore deletes extras" : "kept: not delete_extra", v->extra[0]);
  for (const auto& check : checks) {
    if (check == "hashes")
      out.push_back({check, v->files_verified == v->files_expected && v->metadata_count == 0,
                     v->metadata_count == 0
                         ? fmt::format("{} of {} files read back from {} equal the backup, and every entry's mode, times, "
                                       "xattrs{} too{}",
                                       v->files_verified, v->files_expected, s.target, geteuid() == 0 ? " and owner" : "", first)
                         : fmt::format("{} of {} files read back from {} equal the backup; {} entr(ies) with other metadata, first: {}{}",
                                       v->files_verified, v->files_expected, s.target, v->metadata_count, v->metadata[0], first)});
    else
      out.push_back({check, all_present && !extra_fails,
                     fmt::format("{} of {} files, {} of {} directories, {} of {} links and special files present in {}{}{}",
                                 v->files_found, v->files_expected, v->dirs_found, v->dirs_expected, v->others_found,
                                 v->others_expected, s.target, first_missing, extra)});
  }
  return out;
}

}  // namespace

const SourceKind& files_source_kind() {
  static const SourceKind kind = TypedSourceKind<FilesSettings>{
      .name = "files",
      .summary = "files and directories",
      .generated_commands = false,  // its command is `backup PATH...`
      .validations = {"hashes", "counts"},
      .snapshot_source = kSource,
      .options = options(),
      .standby_settings = {{"delete_extra", true}},
      .parse = parse,
      .backup = backup,
      .restore = restore,
      .validate = validate}.erase();
  return kind;
}

}  // namespace lifeboat::sources::files
