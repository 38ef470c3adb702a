// The gcs_bucket source kind: its options (plan keys and the flags of `backup gcs` / `restore gcs`),
// incremental backups, restores as of T into a bucket or a directory, checks that read the target
// back, and its own verb `sync` (one bucket into another, server-side).
#include "sources/gcs_bucket/gcs_bucket_source.h"

#include <fmt/format.h>

#include "core/bytes.h"
#include "core/time.h"
#include "repo/snapshot_select.h"
#include "sources/gcs_bucket/gcs_bucket.h"
#include "sources/settings_reader.h"

namespace lifeboat::sources::gcs_bucket {

namespace {

const std::vector<KindOption>& options() {
  static const std::vector<KindOption> o = {
      {.key = "bucket", .help = "gs://BUCKET or gs://BUCKET/PREFIX", .use = kBackupOption, .flag = "url", .required = true},
      {.key = "bucket", .help = "the backed-up gs://BUCKET[/PREFIX] (needed when the repository holds several)",
       .use = kRestoreOption, .flag = "--from"},
      {.key = "name", .help = "name recorded in the snapshot (default: the URL)", .use = kBackupOption, .command_line = true},
      {.key = "versions", .type = OptionType::kFlag,
       .help = "noncurrent versions too, so a versioned bucket's history survives the bucket", .use = kBackupOption},
      {.key = "critical", .type = OptionType::kStrings,
       .help = "objects matching this pattern are re-hashed from the repository after a backup and by the critical check "
               "(repeatable)"},
      {.key = "threads", .type = OptionType::kCount, .help = "downloads, uploads or file writes at once", .default_text = "8"},
      {.key = "force", .type = OptionType::kFlag, .help = "download every object, ignoring the previous backup",
       .use = kBackupOption, .command_line = true},
      {.key = "snapshot", .help = "this snapshot instead of the newest at --at/--date", .use = kRestoreOption,
       .command_line = true},
      {.key = "to", .help = "restore into gs://BUCKET[/PREFIX] (object names relative to the backed-up prefix)",
       .use = kRestoreOption},
      {.key = "target", .help = "write the objects as files under this directory instead", .use = kRestoreOption,
       .flag = "-t,--target"},
      {.key = "include", .type = OptionType::kStrings,
       .help = "only objects whose name (or last part) matches this pattern (repeatable)", .use = kRestoreOption,
       .flag = "-i,--include"},
      {.key = "delete_extra", .type = OptionType::kFlag,
       .help = "remove objects under the target prefix that did not exist at that time (a plan may say dry-run: list them)",
       .use = kRestoreOption},
      {.key = "dry_run", .type = OptionType::kFlag, .help = "list what would be uploaded and deleted; change nothing",
       .use = kRestoreOption, .command_line = true},
      {.key = "check", .type = OptionType::kStrings,
       .help = "read the target back afterwards: counts, hashes, critical (repeatable)", .use = kRestoreOption,
       .command_line = true},
  };
  return o;
}

struct GcsSettings : SourceSettings {
  std::string bucket;  // gs://BUCKET[/PREFIX], what is backed up
  std::string name;
  bool versions = false, force = false;
  std::vector<std::string> critical;
  int64_t threads = 8;
  // Restores: into a bucket (`to`) or a directory (`target`), optionally only `include`d objects.
  std::string snapshot, to, target;
  std::vector<std::string> include, checks;
  // Objects under the target prefix that did not exist at T: left (false), deleted (true), or listed
  // as what would be deleted ("dry-run", the example plan's choice for production).
  bool delete_extra = false, delete_extra_dry_run = false, dry_run = false;
};

std::shared_ptr<const GcsSettings> parse(const nlohmann::json& section, SettingsFor purpose, std::vector<SettingsProblem>& problems) {
  SettingsReader r(section, problems);
  auto s = std::make_shared<GcsSettings>();
  // A command-line restore may leave the bucket out when the repository holds one.
  s->bucket = r.string("bucket", purpose != SettingsFor::kRestore);
  s->name = r.string("name");
  s->versions = r.boolean("versions", false);
  s->force = r.boolean("force", false);
  s->critical = r.strings("critical");
  s->threads = r.count("threads", 8);
  s->snapshot = r.string("snapshot");
  s->to = r.string("to");
  s->target = r.string("target");
  s->include = r.strings("include");
  s->dry_run = r.boolean("dry_run", false);
  s->checks = r.strings("check");
  if (section.contains("delete_extra") && section["delete_extra"].is_string()) {
    if (section["delete_extra"].get<std::string>() == "dry-run") s->delete_extra_dry_run = true;
    else problems.push_back({"delete_extra", "expected true, false or dry-run"});
  } else {
    s->delete_extra = r.boolean("delete_extra", false);
  }
  r.only(options());
  for (const auto& [key, url] : {std::pair<const char*, std::string>{"bucket", s->bucket}, {"to", s->to}})
    if (!url.empty())
      if (auto loc = parse_location(url); !loc) problems.push_back({key, loc.status().message()});
  if (!s->to.empty() && !s->target.empty()) problems.push_back({"to", "give `to` (a bucket) or `target` (a directory), not both"});
  if (s->threads < 1 || s->threads > 256) problems.push_back({"threads", "expected 1 to 256"});
  for (const auto& c : s->checks)
    if (c != "counts" && c != "hashes" && c != "critical") problems.push_back({"check", fmt::format("{}: expected counts, hashes or critical", c)});
  return r.ok() ? s : nullptr;
}

Result<SourceBackup> backup(SourceContext& ctx, const GcsSettings& s) {
  if (s.bucket.empty()) return Error(Code::kInvalidArgument, "backup gcs needs the bucket: gs://BUCKET[/PREFIX]");
  GcsBackupOptions o;
  o.url = s.bucket;
  o.name = ctx.name.empty() ? s.name : ctx.name;
  o.versions = s.versions;
  o.critical = s.critical;
  o.threads = static_cast<size_t>(s.threads);
  o.hostname = ctx.host;
  o.tags = ctx.tags;
  if (!ctx.name.empty()) o.tags.push_back(source_tag(ctx.name));
  // The parent: the newest backup of this bucket (a plan source's own, by its tag).
  if (!s.force) {
    LB_ASSIGN_OR_RETURN(auto all, ctx.repo.list_snapshots());
    auto parent = ctx.name.empty() ? pick_gcs_snapshot(all, s.bucket, {}, std::nullopt)
                                   : pick_gcs_snapshot(all, s.bucket, {source_tag(ctx.name)}, std::nullopt);
    if (parent) o.parent = *parent;
  }
  LB_ASSIGN_OR_RETURN(auto r, backup_gcs(ctx.repo, o, ctx.progress));
  SourceBackup out{r.snapshot_id, r.snapshot.summary, r.warnings};
  const auto& snap = r.snapshot;
  out.report.json = {{"snapshot_id", r.snapshot_id}, {"short_id", r.snapshot_id.substr(0, 8)}, {"time", format_rfc3339(snap.time_ns)},
                     {"url", snap.paths[0]},        {"metadata", snap.metadata},               {"summary", snap.summary},
                     {"warnings", r.warnings}};
  for (const auto& w : r.warnings) out.report.warnings.push_back("warning: " + w);
  auto num = [&](const char* k) { return snap.summary.value(k, uint64_t{0}); };
  auto& lines = out.report.lines;
  lines.push_back(fmt::format("Bucket {}: {} objects ({}), {} noncurrent versions", snap.paths[0], num("objects"),
                              format_bytes(num("total_bytes")), num("noncurrent")));
  lines.push_back(fmt::format("Objects:    {} downloaded ({}), {} unchanged since the previous backup", num("objects_downloaded"),
                              format_bytes(num("downloaded_bytes")), num("objects_unchanged")));
  lines.push_back(fmt::format("Added:      {} ({} stored after compression)", format_bytes(num("data_added_bytes")),
                              format_bytes(num("data_stored_bytes"))));
  for (const auto& ch : snap.summary.value("checks", nlohmann::json::array()))
    lines.push_back(backup_check_line(ch));
  lines.push_back(fmt::format("snapshot {} saved in {}", r.snapshot_id.substr(0, 8), format_duration_ms(snap.summary.value("duration_ms", int64_t{0}))));
  if (!r.critical_ok)
    out.report.status =
        ctx.name.empty()
            ? Error(Code::kCorrupt, fmt::format("snapshot {} saved, but critical objects read back from the repository "
                                                "do not match the bucket (see above)",
                                                r.snapshot_id.substr(0, 8)))
            : Error(Code::kCorrupt, fmt::format("source {}: snapshot {} saved, but {}", ctx.name, r.snapshot_id.substr(0, 8),
                                                snap.summary["checks"][0].value("detail", "")));
  return out;
}

GcsRestoreOptions where_of(const GcsSettings& s) {
  GcsRestoreOptions o;
  o.to = s.to;
  o.target = s.target;
  o.includes = s.include;
  o.delete_extra = s.delete_extra;
  o.dry_run = s.dry_run;
  o.threads = static_cast<size_t>(s.threads);
  return o;
}

// The snapshot to restore: a named one; a plan source's newest at or before T (its tag); on the
// command line the newest of the bucket named, or of the only bucket the repository holds.
Result<repo::SnapshotRef> snapshot_to_restore(SourceContext& ctx, const GcsSettings& s, std::optional<int64_t> at_ns) {
  LB_ASSIGN_OR_RETURN(auto all, ctx.repo.list_snapshots());
  if (!s.snapshot.empty()) {
    repo::SnapshotFilter filter;
    filter.source = kSource;
    return repo::select_snapshot(all, s.snapshot, std::nullopt, filter);
  }
  if (!ctx.name.empty()) {
    auto snap = newest_snapshot(all, kSource, ctx.name, at_ns);
    if (!snap)
      return no_backup_error(ctx.name, at_ns, all, kSource);
    return *snap;
  }
  if (s.bucket.empty()) {
    std::set<std::string> urls;
    for (const auto& snap : all)
      if (snap.snapshot.source == kSource && !snap.snapshot.paths.empty()) urls.insert(snap.snapshot.paths[0]);
    if (urls.size() > 1)
      return Error(Code::kInvalidArgument,
                   fmt::format("the repository holds backups of several buckets ({}): name one with --from", fmt::join(urls, ", ")));
  }
  return pick_gcs_snapshot(all, s.bucket, {}, at_ns);
}

Result<SourceRestore> restore(SourceContext& ctx, const GcsSettings& s, std::optional<int64_t> at_ns) {
  if (s.to.empty() && s.target.empty())
    return Error(Code::kInvalidArgument,
                 ctx.name.empty() ? std::string("restore gcs needs exactly one target: --to gs://BUCKET[/PREFIX] or --target DIR")
                                  : fmt::format("source {}: the environment needs `to: gs://BUCKET[/PREFIX]` or `target: DIR`", ctx.name));
  LB_ASSIGN_OR_RETURN(auto snap, snapshot_to_restore(ctx, s, at_ns));
  std::string dest = s.to.empty() ? s.target : s.to;
  int64_t start = monotonic_ns();
  LB_ASSIGN_OR_RETURN(auto r, restore_gcs(ctx.repo, snap.snapshot, where_of(s), ctx.progress));
  int64_t ms = (monotonic_ns() - start) / 1000000;
  SourceRestore out;
  out.point_ns = snap.snapshot.time_ns;
  out.snapshot_id = snap.id;
  out.details = {{"target", dest},        {"objects", r.objects}, {"unchanged", r.unchanged},
                 {"bytes", r.bytes},      {"deleted", r.deleted}, {"extra_objects", r.would_delete.size()}};
  if (s.delete_extra_dry_run) {
    std::vector<std::string> first(r.would_delete.begin(), r.would_delete.begin() + std::min<size_t>(100, r.would_delete.size()));
    out.details["would_delete"] = first;  // delete_extra: dry-run — what `true` would remove
  }
  out.dry_run = s.dry_run;
  if (!s.dry_run) out.checks = s.checks;
  out.report.json = {{"snapshot", snap.to_json()},
                     {"target", dest},
                     {"objects", r.objects},
                     {"bytes", r.bytes},
                     {"unchanged", r.unchanged},
                     {"deleted", r.deleted},
                     {"dry_run", s.dry_run},
                     {"would_upload", s.dry_run ? nlohmann::json(r.would_upload) : nlohmann::json::array()},
                     {"extra", r.would_delete},
                     {"duration_ms", ms}};
  auto& lines = out.report.lines;
  lines.push_back(fmt::format("restoring {} as backed up at {} (snapshot {}) to {}{}", snap.snapshot.paths[0],
                              format_local(snap.snapshot.time_ns), snap.short_id(), dest, s.dry_run ? " (dry run)" : ""));
  if (s.dry_run) {
    for (const auto& u : r.would_upload) lines.push_back("would restore " + u);
    for (const auto& d : r.would_delete) lines.push_back("would delete " + d);
    lines.push_back(fmt::format("dry run: {} objects would be restored, {} unchanged, {} extra{}", r.would_upload.size(), r.unchanged,
                                r.would_delete.size(), r.would_delete.empty() ? "" : " (removed only with --delete-extra)"));
  } else {
    lines.push_back(fmt::format("restored {} objects ({}), {} already identical, {} extra deleted, in {}", r.objects, format_bytes(r.bytes),
                                r.unchanged, r.deleted, format_duration_ms(ms)));
    if (!s.delete_extra && !r.would_delete.empty())
      lines.push_back(fmt::format("{} objects in the target did not exist at that time and were left (use --delete-extra)",
                                  r.would_delete.size()));
  }
  return out;
}

std::vector<CheckResult> validate(SourceContext& ctx, const GcsSettings& s, const SourceRestore& restored,
                                  const std::vector<std::string>& checks) {
  auto snap = ctx.repo.load_snapshot(restored.snapshot_id);
  if (!snap) return all_failed(checks, snap.status().message());
  return check_gcs_target(ctx.repo, snap->snapshot, where_of(s), s.critical, checks);
}

const std::vector<KindOption>& sync_options() {
  static const std::vector<KindOption> o = {
      {.key = "from", .help = "gs://SOURCE[/PREFIX]", .flag = "from", .required = true},
      {.key = "to", .help = "gs://DESTINATION[/PREFIX]", .flag = "to", .required = true},
      {.key = "delete", .type = OptionType::kFlag, .help = "remove destination objects the source lacks (guarded by --max-delete)"},
      {.key = "max_delete", .help = "refuse --delete beyond this many objects (N) or share of the destination (P%)",
       .default_text = "10%"},
      {.key = "dry_run", .type = OptionType::kFlag, .help = "list what would be copied and deleted; change nothing"},
      {.key = "threads", .type = OptionType::kCount, .help = "copies at once", .default_text = "8"},
  };
  return o;
}

// `sync FROM TO`: a bucket copied into another, server-side (the plan's replication between regions).
Result<Report> sync(VerbContext& ctx) {
  std::vector<SettingsProblem> problems;
  SettingsReader r(ctx.args, problems);
  GcsSyncOptions o;
  o.from = r.string("from", true);
  o.to = r.string("to", true);
  o.delete_extra = r.boolean("delete", false);
  std::string max_delete = r.string("max_delete");
  if (!max_delete.empty()) o.max_delete = max_delete;
  o.dry_run = r.boolean("dry_run", false);
  o.threads = static_cast<size_t>(r.count("threads", 8));
  r.only(sync_options());
  if (!problems.empty()) return Error(Code::kInvalidArgument, problems_as_flags(sync_options(), problems));
  const std::string& m = o.max_delete;
  if (m.empty() || m.find_first_not_of("0123456789") != (m.back() == '%' ? m.size() - 1 : std::string::npos) || m == "%")
    return Error(Code::kInvalidArgument, fmt::format("--max-delete {}: expected a count (100) or a percentage (10%)", m));
  int64_t start = monotonic_ns();
  LB_ASSIGN_OR_RETURN(auto res, sync_buckets(o, ctx.progress));
  int64_t ms = (monotonic_ns() - start) / 1000000;
  Report out;
  out.json = {{"from", o.from},          {"to", o.to},
              {"copied", res.copied},    {"bytes", res.bytes},
              {"unchanged", res.unchanged}, {"deleted", res.deleted},
              {"dry_run", o.dry_run},    {"to_copy", res.to_copy},
              {"to_delete", res.to_delete}, {"duration_ms", ms}};
  if (o.dry_run) {
    for (const auto& x : res.to_copy) out.lines.push_back("would copy " + x);
    for (const auto& x : res.to_delete) out.lines.push_back(fmt::format("would delete {}{}", x, o.delete_extra ? "" : " (only with --delete)"));
  }
  out.lines.push_back(fmt::format("{}: {} copied ({}), {} unchanged, {} deleted{} in {}", o.dry_run ? "dry run" : "sync", res.copied,
                                  format_bytes(res.bytes), res.unchanged, res.deleted,
                                  !o.delete_extra && !res.to_delete.empty() ? fmt::format(", {} only in the destination", res.to_delete.size())
                                                                             : "",
                                  format_duration_ms(ms)));
  return out;
}

}  // namespace

const SourceKind& gcs_bucket_source_kind() {
  static const SourceKind kind = TypedSourceKind<GcsSettings>{
      .name = "gcs_bucket",
      .summary = "Google Cloud Storage buckets: every object and its metadata, by generation",
      .command = "gcs",
      .validations = {"counts", "hashes", "critical"},
      .snapshot_source = kSource,
      .options = options(),
      .verbs = {{.words = {"sync"},
                 .help = "copy new and changed objects from one bucket to another (server-side, CRC32C checked)",
                 .options = sync_options(),
                 .needs_repository = false,
                 .progress_label = "sync",
                 .run = sync}},
      .standby_settings = {{"delete_extra", true}},
      .parse = parse,
      .backup = backup,
      .restore = restore,
      .validate = validate}.erase();
  return kind;
}

}  // namespace lifeboat::sources::gcs_bucket
