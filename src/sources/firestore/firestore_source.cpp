// The firestore source kind: plan settings (project, database, collections, readers, read_window; for
// restores to_project / to_database / replace / ramp), consistent backups, restores of the newest
// backup at or before T, and checks that read the target database back.
#include "sources/firestore/firestore_source.h"

#include <fmt/format.h>

#include "core/time.h"
#include "sources/firestore/firestore.h"
#include "sources/firestore/firestore_internal.h"
#include "sources/settings_reader.h"

namespace lifeboat::sources::firestore {

namespace {

struct FirestoreSettings : SourceSettings {
  std::string project, database = "(default)";
  std::vector<std::string> collections;
  int64_t readers = 4;
  int64_t read_window_ns = 3600LL * 1000000000LL;
  // Restores: into this project/database (default: the backed-up one), deleting what the backup lacks.
  std::string to_project, to_database;
  bool replace = false, ramp = false;
};

std::shared_ptr<const FirestoreSettings> parse(const nlohmann::json& section, std::vector<SettingsProblem>& problems) {
  SettingsReader r(section, problems);
  auto s = std::make_shared<FirestoreSettings>();
  s->project = r.string("project", true);
  std::string db = r.string("database");
  if (!db.empty()) s->database = db;
  s->collections = r.strings("collections");
  s->readers = r.count("readers", 4);
  std::string window = r.string("read_window");
  if (!window.empty()) {
    if (auto d = parse_duration(window); d) s->read_window_ns = *d;
    else problems.push_back({"read_window", "expected a duration (1h; 7d with point-in-time recovery)"});
  }
  s->to_project = r.string("to_project");
  s->to_database = r.string("to_database");
  s->replace = r.boolean("replace", false);
  s->ramp = r.boolean("ramp", false);
  r.only({"project", "database", "collections", "readers", "read_window", "to_project", "to_database", "replace", "ramp"});
  for (const auto& c : s->collections)
    if (c.empty() || c.find('/') != std::string::npos) problems.push_back({"collections", fmt::format("{}: expected a top-level collection ID", c)});
  if (s->readers < 1 || s->readers > 64) problems.push_back({"readers", "expected 1 to 64"});
  return r.ok() ? s : nullptr;
}

Result<SourceBackup> backup(SourceContext& ctx, const FirestoreSettings& s) {
  FirestoreBackupOptions o;
  o.project = s.project;
  o.database = s.database;
  o.collections = s.collections;
  o.name = ctx.name;
  o.tags = {source_tag(ctx.name)};
  o.readers = static_cast<size_t>(s.readers);
  o.read_window_ns = s.read_window_ns;
  LB_ASSIGN_OR_RETURN(auto r, backup_firestore(ctx.repo, o, ctx.progress));
  return SourceBackup{r.snapshot_id, r.snapshot.summary, {}};
}

FirestoreRestoreOptions where_of(const FirestoreSettings& s) {
  FirestoreRestoreOptions o;
  o.to_project = s.to_project.empty() ? s.project : s.to_project;
  o.to_database = s.to_database.empty() ? s.database : s.to_database;
  o.collections = s.collections;
  o.replace = s.replace;
  o.ramp = s.ramp;
  o.writers = static_cast<size_t>(s.readers);
  return o;
}

Result<SourceRestore> restore(SourceContext& ctx, const FirestoreSettings& s, std::optional<int64_t> at_ns) {
  LB_ASSIGN_OR_RETURN(auto all, ctx.repo.list_snapshots());
  auto snap = newest_snapshot(all, kSource, ctx.name, at_ns);
  if (!snap)
    return Error(Code::kNotFound, fmt::format("source {}: no backup{}", ctx.name, at_ns ? " at or before " + format_rfc3339(*at_ns) : ""));
  auto where = where_of(s);
  FirestoreSourceState from;
  from.snapshot = *snap;
  LB_ASSIGN_OR_RETURN(auto r, restore_firestore(ctx.repo, from, where, ctx.progress));
  SourceRestore out;
  out.point_ns = snap->snapshot.time_ns;
  out.snapshot_id = snap->id;
  out.details = {{"target", cloud::firestore_documents_root(where.to_project, where.to_database)},
                 {"read_time", r.read_time},
                 {"documents", r.written},
                 {"deleted", r.deleted},
                 {"extra_documents", r.would_delete.size()}};
  out.expected = stats_json(r.expected);
  return out;
}

std::vector<CheckResult> validate(SourceContext& ctx, const FirestoreSettings& s, const SourceRestore& restored,
                                  const std::vector<std::string>& checks) {
  auto snap = ctx.repo.load_snapshot(restored.snapshot_id);
  if (!snap) return all_failed(checks, snap.status().message());
  // What the target must hold comes from the backup's record, the names from its tree.
  auto nodes = document_nodes(ctx.repo, snap->snapshot.tree);
  if (!nodes) return all_failed(checks, nodes.status().message());
  auto where = where_of(s);
  std::set<std::string> names;
  for (const auto& [rel, node] : *nodes)
    if (in_collections(where.collections, rel)) names.insert(rel);
  StatsMap expected;
  for (auto& [c, st] : stats_from_json(snap->snapshot.metadata.value("collections", nlohmann::json::object())))
    if (in_collections(where.collections, c)) expected[c] = st;
  return check_firestore_target(where, expected, names, checks);
}

}  // namespace

const SourceKind& firestore_source_kind() {
  static const SourceKind kind = TypedSourceKind<FirestoreSettings>{
      .name = "firestore",
      .summary = "Firestore databases: every document at one read time, restorable to any database",
      .validations = {"counts", "hashes"},
      .snapshot_source = kSource,
      .parse = parse,
      .backup = backup,
      .restore = restore,
      .validate = validate}.erase();
  return kind;
}

}  // namespace lifeboat::sources::firestore
