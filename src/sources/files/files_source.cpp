// The files source kind: plan settings (paths, exclude, target), backup with the previous backup as
// parent, restore of the newest snapshot at or before T, and checks that read the restored tree.
#include "sources/files/files_source.h"

#include <fmt/format.h>

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

struct FilesSettings : SourceSettings {
  std::vector<std::string> paths, exclude;
  std::string target;  // restores: the directory the tree is recreated under
};

std::shared_ptr<const FilesSettings> parse(const nlohmann::json& section, SettingsFor, std::vector<SettingsProblem>& problems) {
  SettingsReader r(section, problems);
  auto s = std::make_shared<FilesSettings>();
  s->paths = r.strings("paths", true);
  s->exclude = r.strings("exclude");
  s->target = r.string("target");
  r.only({"paths", "exclude", "target"});
  return r.ok() ? s : nullptr;
}

Result<SourceBackup> backup(SourceContext& ctx, const FilesSettings& s) {
  FilesBackupOptions o;
  for (const auto& p : s.paths) o.paths.push_back(repo::absolute_path(p));
  o.excludes = s.exclude;
  o.tags = {source_tag(ctx.name)};
  LB_ASSIGN_OR_RETURN(auto all, ctx.repo.list_readable_snapshots());
  o.parent = newest_snapshot(all, kSource, ctx.name, std::nullopt);
  LB_ASSIGN_OR_RETURN(auto r, backup_files(ctx.repo, o, ctx.progress));
  SourceBackup out{r.snapshot_id, r.snapshot.summary, {}};
  for (const auto& u : r.unreadable) out.warnings.push_back("unreadable: " + u);
  return out;
}

Result<SourceRestore> restore(SourceContext& ctx, const FilesSettings& s, std::optional<int64_t> at_ns) {
  if (s.target.empty())
    return Error(Code::kInvalidArgument, fmt::format("source {}: the environment needs a target directory (target:)", ctx.name));
  LB_ASSIGN_OR_RETURN(auto all, ctx.repo.list_snapshots());
  auto snap = newest_snapshot(all, kSource, ctx.name, at_ns);
  if (!snap)
    return Error(Code::kNotFound, fmt::format("source {}: no backup{}", ctx.name, at_ns ? " at or before " + format_rfc3339(*at_ns) : ""));
  repo::TreeRestoreOptions o;
  o.target = s.target;
  LB_ASSIGN_OR_RETURN(auto r, repo::restore_tree(ctx.repo, snap->snapshot.tree, o, ctx.progress));
  if (!r.errors.empty())
    return Error(Code::kFatal, fmt::format("source {}: {} file(s) failed: {}", ctx.name, r.errors.size(), r.errors[0]));
  SourceRestore out;
  out.point_ns = snap->snapshot.time_ns;
  out.snapshot_id = snap->id;
  out.details = {{"target", o.target}, {"files", r.files}, {"bytes", r.bytes}};
  return out;
}

std::vector<CheckResult> validate(SourceContext& ctx, const FilesSettings& s, const SourceRestore& restored,
                                  const std::vector<std::string>& checks) {
  auto snap = ctx.repo.load_snapshot(restored.snapshot_id);
  if (!snap) return all_failed(checks, snap.status().message());
  auto v = repo::verify_restored_tree(ctx.repo, snap->snapshot.tree, s.target);
  if (!v) return all_failed(checks, v.status().message());
  std::vector<CheckResult> out;
  std::string first = v->problems.empty() ? "" : "; first problem: " + v->problems[0];
  std::string first_missing = v->missing.empty() ? "" : "; first missing: " + v->missing[0];
  bool all_present = v->files_found == v->files_expected && v->dirs_found == v->dirs_expected && v->others_found == v->others_expected;
  for (const auto& check : checks) {
    if (check == "hashes")
      out.push_back({check, v->files_verified == v->files_expected,
                     fmt::format("{} of {} files read back from {} equal the backup{}", v->files_verified, v->files_expected,
                                 s.target, first)});
    else
      out.push_back({check, all_present,
                     fmt::format("{} of {} files, {} of {} directories, {} of {} links and special files present in {}{}",
                                 v->files_found, v->files_expected, v->dirs_found, v->dirs_expected, v->others_found,
                                 v->others_expected, s.target, first_missing)});
  }
  return out;
}

}  // namespace

const SourceKind& files_source_kind() {
  static const SourceKind kind = TypedSourceKind<FilesSettings>{
      .name = "files",
      .summary = "files and directories",
      .validations = {"hashes", "counts"},
      .snapshot_source = kSource,
      .parse = parse,
      .backup = backup,
      .restore = restore,
      .validate = validate}.erase();
  return kind;
}

}  // namespace lifeboat::sources::files
