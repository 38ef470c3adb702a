// The gcs_bucket source kind: plan settings (bucket, versions, critical, and for restores to / target /
// include / delete_extra), incremental backups, restores as of T, and checks that read the target back.
#include "sources/gcs_bucket/gcs_bucket_source.h"

#include <fmt/format.h>

#include "core/time.h"
#include "sources/gcs_bucket/gcs_bucket.h"
#include "sources/settings_reader.h"

namespace lifeboat::sources::gcs_bucket {

namespace {

struct GcsSettings : SourceSettings {
  std::string bucket;  // gs://BUCKET[/PREFIX], what is backed up
  bool versions = false;
  std::vector<std::string> critical;
  // Restores: into a bucket (`to`) or a directory (`target`), optionally only `include`d objects.
  std::string to, target;
  std::vector<std::string> include;
  // Objects under the target prefix that did not exist at T: left (false), deleted (true), or listed
  // as what would be deleted ("dry-run", the example plan's choice for production).
  bool delete_extra = false, delete_extra_dry_run = false;
};

std::shared_ptr<const GcsSettings> parse(const nlohmann::json& section, std::vector<SettingsProblem>& problems) {
  SettingsReader r(section, problems);
  auto s = std::make_shared<GcsSettings>();
  s->bucket = r.string("bucket", true);
  s->versions = r.boolean("versions", false);
  s->critical = r.strings("critical");
  s->to = r.string("to");
  s->target = r.string("target");
  s->include = r.strings("include");
  if (section.contains("delete_extra") && section["delete_extra"].is_string()) {
    if (section["delete_extra"].get<std::string>() == "dry-run") s->delete_extra_dry_run = true;
    else problems.push_back({"delete_extra", "expected true, false or dry-run"});
  } else {
    s->delete_extra = r.boolean("delete_extra", false);
  }
  r.only({"bucket", "versions", "critical", "to", "target", "include", "delete_extra"});
  for (const auto& [key, url] : {std::pair<const char*, std::string>{"bucket", s->bucket}, {"to", s->to}})
    if (!url.empty())
      if (auto loc = parse_location(url); !loc) problems.push_back({key, loc.status().message()});
  if (!s->to.empty() && !s->target.empty()) problems.push_back({"to", "give `to` (a bucket) or `target` (a directory), not both"});
  return r.ok() ? s : nullptr;
}

Result<SourceBackup> backup(SourceContext& ctx, const GcsSettings& s) {
  GcsBackupOptions o;
  o.url = s.bucket;
  o.name = ctx.name;
  o.versions = s.versions;
  o.critical = s.critical;
  o.tags = {source_tag(ctx.name)};
  LB_ASSIGN_OR_RETURN(auto all, ctx.repo.list_snapshots());
  auto parent = pick_gcs_snapshot(all, s.bucket, o.tags, std::nullopt);
  if (parent) o.parent = *parent;
  LB_ASSIGN_OR_RETURN(auto r, backup_gcs(ctx.repo, o, ctx.progress));
  if (!r.critical_ok)
    return Error(Code::kCorrupt, fmt::format("source {}: snapshot {} saved, but {}", ctx.name, r.snapshot_id.substr(0, 8),
                                             r.snapshot.summary["checks"][0].value("detail", "")));
  return SourceBackup{r.snapshot_id, r.snapshot.summary, r.warnings};
}

GcsRestoreOptions where_of(const GcsSettings& s) {
  GcsRestoreOptions o;
  o.to = s.to;
  o.target = s.target;
  o.includes = s.include;
  o.delete_extra = s.delete_extra;
  return o;
}

Result<SourceRestore> restore(SourceContext& ctx, const GcsSettings& s, std::optional<int64_t> at_ns) {
  if (s.to.empty() && s.target.empty())
    return Error(Code::kInvalidArgument,
                 fmt::format("source {}: the environment needs `to: gs://BUCKET[/PREFIX]` or `target: DIR`", ctx.name));
  LB_ASSIGN_OR_RETURN(auto all, ctx.repo.list_snapshots());
  auto snap = newest_snapshot(all, kSource, ctx.name, at_ns);
  if (!snap)
    return Error(Code::kNotFound, fmt::format("source {}: no backup{}", ctx.name, at_ns ? " at or before " + format_rfc3339(*at_ns) : ""));
  LB_ASSIGN_OR_RETURN(auto r, restore_gcs(ctx.repo, snap->snapshot, where_of(s), ctx.progress));
  SourceRestore out;
  out.point_ns = snap->snapshot.time_ns;
  out.snapshot_id = snap->id;
  out.details = {{"target", s.to.empty() ? s.target : s.to}, {"objects", r.objects}, {"unchanged", r.unchanged},
                 {"bytes", r.bytes}, {"deleted", r.deleted}, {"extra_objects", r.would_delete.size()}};
  if (s.delete_extra_dry_run) {
    std::vector<std::string> first(r.would_delete.begin(), r.would_delete.begin() + std::min<size_t>(100, r.would_delete.size()));
    out.details["would_delete"] = first;  // delete_extra: dry-run — what `true` would remove
  }
  return out;
}

std::vector<CheckResult> validate(SourceContext& ctx, const GcsSettings& s, const SourceRestore& restored,
                                  const std::vector<std::string>& checks) {
  auto snap = ctx.repo.load_snapshot(restored.snapshot_id);
  if (!snap) return all_failed(checks, snap.status().message());
  return check_gcs_target(ctx.repo, snap->snapshot, where_of(s), s.critical, checks);
}

}  // namespace

const SourceKind& gcs_bucket_source_kind() {
  static const SourceKind kind = TypedSourceKind<GcsSettings>{
      .name = "gcs_bucket",
      .summary = "Google Cloud Storage buckets: every object and its metadata, by generation",
      .validations = {"counts", "hashes", "critical"},
      .snapshot_source = kSource,
      .parse = parse,
      .backup = backup,
      .restore = restore,
      .validate = validate}.erase();
  return kind;
}

}  // namespace lifeboat::sources::gcs_bucket
