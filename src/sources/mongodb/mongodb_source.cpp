// The MongoDB source kind: plan settings (uri, databases, rename, to_dir), full backups, the oplog
// follower, point-in-time restores, and counts/hashes read back from the restored server or directory
// and compared with the state predicted from the repository.
#include "sources/mongodb/mongodb_source.h"

#include <fmt/format.h>

#include "core/time.h"
#include "sources/mongodb/mongo_backup.h"
#include "sources/mongodb/mongo_restore.h"
#include "sources/mongodb/slice_tidy.h"
#include "sources/mongodb/oplog_follow.h"
#include "sources/settings_reader.h"

namespace lifeboat::sources::mongodb {

namespace {

struct MongoSettings : SourceSettings {
  std::string uri, to_dir;
  std::optional<int64_t> pitr_window_ns;  // unset: as long as the daily backups are kept
  std::vector<std::string> databases;
  std::vector<std::pair<std::string, std::string>> rename;
  bool skip_unknown = false;
};

std::shared_ptr<const MongoSettings> parse(const nlohmann::json& section, SettingsFor, std::vector<SettingsProblem>& problems) {
  SettingsReader r(section, problems);
  auto s = std::make_shared<MongoSettings>();
  s->uri = r.string("uri", true);
  s->databases = r.strings("databases");
  s->rename = r.string_map("rename");
  s->to_dir = r.string("to_dir");
  s->skip_unknown = r.boolean("skip_unknown", false);
  if (std::string w = r.string("pitr_window"); !w.empty()) {
    if (auto d = parse_duration(w); d && *d > 0) s->pitr_window_ns = *d;
    else problems.push_back({"pitr_window", fmt::format("expected a duration such as 30d or 72h, not {}", w)});
  }
  r.only({"uri", "databases", "rename", "to_dir", "pitr_window", "skip_unknown"});
  return r.ok() ? s : nullptr;
}

Result<SourceBackup> backup(SourceContext& ctx, const MongoSettings& s) {
  MongoBackupOptions o;
  o.uri = s.uri;
  o.databases = s.databases;
  o.name = ctx.name;
  o.tags = {source_tag(ctx.name)};
  LB_ASSIGN_OR_RETURN(auto r, backup_mongodb(ctx.repo, o, ctx.progress));
  return SourceBackup{r.snapshot_id, r.snapshot.summary, {}};
}

Result<SourceRestore> restore(SourceContext& ctx, const MongoSettings& s, std::optional<int64_t> at_ns) {
  LB_ASSIGN_OR_RETURN(auto all, ctx.repo.list_snapshots());
  LB_ASSIGN_OR_RETURN(auto plan, plan_mongodb_restore(all, ctx.name, at_ns));
  MongoRestoreOptions o;
  o.uri = s.to_dir.empty() ? s.uri : "";
  o.to_dir = s.to_dir;
  o.drop = true;  // a restore into an environment replaces what is there
  o.databases = s.databases;
  o.rename = s.rename;
  o.skip_unknown = s.skip_unknown;
  LB_ASSIGN_OR_RETURN(auto r, restore_mongodb(ctx.repo, plan, o, ctx.progress));
  if (r.stopped_before)
    return Error(Code::kPartial, fmt::format("MongoDB {}: {}", plan.name, r.plan.limit));
  SourceRestore out;
  out.point_ns = r.plan.point_ns;
  out.snapshot_id = plan.full.id;
  out.limit = r.plan.limit;
  out.details = {{"target", o.to_dir.empty() ? redact_uri(o.uri) : o.to_dir}, {"collections", r.collections.size()},
                 {"documents", r.documents}, {"oplog_entries_applied", r.ops_applied}, {"slices", plan.slices.size()},
                 {"proof", r.plan.proof}};
  if (s.skip_unknown) {
    // Named in the drill record: what this restore went past.
    out.details["skip_unknown"] = true;
    out.details["unknown_entries_skipped"] = r.warnings;
    if (!r.skipped.empty()) out.details["skipped"] = r.skipped;
  }
  out.expected = expected_json(r.expected);
  return out;
}

// Reads every collection the restore wrote back from the target, once for all checks, and compares
// it with the prediction.
std::vector<CheckResult> validate(SourceContext&, const MongoSettings& s, const SourceRestore& restored,
                                  const std::vector<std::string>& checks) {
  return check_restored(s.to_dir.empty() ? s.uri : "", s.to_dir, restored.expected, checks);
}

std::optional<int64_t> newest_point(const std::vector<repo::SnapshotRef>& all, const std::string& name) {
  auto plan = plan_mongodb_restore(all, name, std::nullopt);
  if (!plan) return std::nullopt;
  return plan->point_ns;
}

// The full backup a slice extends: the newest whose consistent end precedes the slice's last entry.
std::optional<std::string> base_of(const repo::SnapshotRef& slice, const std::vector<repo::SnapshotRef>& fulls) {
  auto to = oplog_time_from_json(slice.snapshot.metadata.value("to", nlohmann::json()));
  if (!to) return std::nullopt;
  std::optional<std::string> best;
  for (const auto& f : fulls) {
    auto end = oplog_time_from_json(f.snapshot.metadata.value("oplog_end", nlohmann::json()));
    if (end && *end < *to) best = f.id;
  }
  return best;
}

Status follow(repo::Repository& repo, const std::string& name, const MongoSettings& s, int64_t interval_ns,
              const FollowHooks& hooks) {
  FollowOptions fo;
  fo.uri = s.uri;
  fo.name = name;
  fo.interval_ns = interval_ns;
  fo.should_stop = hooks.should_stop;
  FollowEvents ev;
  ev.on_warning = hooks.on_warning;
  ev.on_commit = [&](const SliceCommitted&) {
    if (hooks.on_commit) hooks.on_commit();
  };
  return follow_oplog(repo, fo, ev);
}

}  // namespace

Result<nlohmann::json> tidy(repo::Repository& repo, const std::string& name, const MongoSettings& s,
                            int64_t default_window_ns, const std::set<std::string>& pinned) {
  TidyOptions o;
  o.name = name;
  o.now_ns = now_unix_ns();
  o.window_ns = s.pitr_window_ns.value_or(default_window_ns);
  o.pinned = pinned;
  LB_ASSIGN_OR_RETURN(auto r, tidy_slices(repo, o));
  auto out = tidy_json(r);
  out["pitr_window"] = o.window_ns ? format_duration_ms(o.window_ns / 1000000) : "as long as the full backups";
  return out;
}

const SourceKind& mongodb_source_kind() {
  static const SourceKind kind = TypedSourceKind<MongoSettings>{
      .name = "mongodb",
      .summary = "MongoDB: full backups, continuous oplog capture, point-in-time restore",
      .validations = {"counts", "hashes"},
      .parse = parse,
      .backup = backup,
      .restore = restore,
      .validate = validate,
      .newest_point = newest_point,
      .follow = follow,
      .follow_args =
          [](const std::string& name, const std::string& interval) {
            return std::vector<std::string>{"mongodb", "follow", "--uri", "$MONGO_URI", "--name", name, "--interval", interval};
          },
      .is_dependent = [](const repo::Snapshot& s) { return s.source == kSliceSource; },
      .base_of = base_of,
      .tidy = tidy}.erase();
  return kind;
}

}  // namespace lifeboat::sources::mongodb
