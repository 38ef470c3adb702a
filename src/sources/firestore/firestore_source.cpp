// The firestore source kind: its options (plan keys and the flags of `backup firestore` /
// `restore firestore`), consistent backups, restores from a backup or from the live database's own
// version history, exports for `gcloud firestore import`, and checks that read the target back.
#include "sources/firestore/firestore_source.h"

#include <fmt/format.h>

#include "core/bytes.h"
#include "core/time.h"
#include "repo/snapshot_select.h"
#include "sources/firestore/firestore.h"
#include "sources/firestore/firestore_internal.h"
#include "sources/settings_reader.h"

namespace lifeboat::sources::firestore {

namespace {

const std::vector<KindOption>& options() {
  static const std::vector<KindOption> o = {
      {.key = "project", .help = "the Google Cloud project (restores: the backed-up one)", .required = true},
      {.key = "database", .help = "the database (restores: the backed-up one)", .default_text = "(default)"},
      {.key = "collections", .type = OptionType::kStrings,
       .help = "only this top-level collection, with everything below it (repeatable)", .flag = "--collection"},
      {.key = "name", .help = "name recorded in the snapshot (default: projects/P/databases/D)", .use = kBackupOption,
       .command_line = true},
      {.key = "readers", .type = OptionType::kCount, .help = "ranges of documents read at once", .use = kBackupOption,
       .default_text = "4"},
      {.key = "read_window", .help = "how long the server keeps past versions: 1h, or 7d with point-in-time recovery; a "
                                     "backup that would outlast it fails",
       .use = kBackupOption, .default_text = "1h"},
      {.key = "snapshot", .help = "this snapshot", .use = kRestoreOption, .command_line = true},
      {.key = "from_backup", .type = OptionType::kFlag,
       .help = "with --at: use the newest backup before it even when the server still keeps it", .use = kRestoreOption,
       .command_line = true},
      {.key = "live_history", .type = OptionType::kFlag,
       .help = "a plan restore as of a time reads the live database's own version history when the server still keeps "
               "it (a command-line restore with --at does so unless --from-backup)",
       .use = kRestoreOption},
      {.key = "to_project", .help = "restore into this project (default: the backed-up one)", .use = kRestoreOption},
      {.key = "to_database", .help = "restore into this database (default: the backed-up one)", .use = kRestoreOption},
      {.key = "to_dir", .help = "write a managed export into this new directory instead (DIR/NAME.overall_export_metadata, "
                                "all_namespaces/all_kinds/output-N) for `gcloud firestore import`",
       .use = kRestoreOption},
      {.key = "replace", .type = OptionType::kFlag,
       .help = "delete documents of the restored collections that the restored state lacks", .use = kRestoreOption},
      {.key = "dry_run", .type = OptionType::kFlag, .help = "read and count what would be written and deleted; write nothing",
       .use = kRestoreOption, .command_line = true},
      {.key = "ramp", .type = OptionType::kFlag,
       .help = "start at 500 writes/s and add 50% every 5 minutes (for a production database)", .use = kRestoreOption},
      {.key = "writers", .type = OptionType::kCount, .help = "batch writes at once (default: readers)", .use = kRestoreOption,
       .default_text = "4"},
      {.key = "check", .type = OptionType::kStrings,
       .help = "read the target back afterwards: counts, hashes (default both; none: --check none)", .use = kRestoreOption,
       .default_text = "counts hashes", .command_line = true},
  };
  return o;
}

struct FirestoreSettings : SourceSettings {
  std::string project, database = "(default)";
  std::vector<std::string> collections;
  std::string name;
  int64_t readers = 4, writers = 0;
  int64_t read_window_ns = 3600LL * 1000000000LL;
  // Restores: which state (a snapshot; the live history or a backup), and into what.
  std::string snapshot;
  bool from_backup = false, live_history = false;
  std::string to_project, to_database, to_dir;
  bool replace = false, ramp = false, dry_run = false;
  std::vector<std::string> checks = {"counts", "hashes"};
};

std::shared_ptr<const FirestoreSettings> parse(const nlohmann::json& section, SettingsFor, std::vector<SettingsProblem>& problems) {
  SettingsReader r(section, problems);
  auto s = std::make_shared<FirestoreSettings>();
  s->project = r.string("project", true);
  std::string db = r.string("database");
  if (!db.empty()) s->database = db;
  s->collections = r.strings("collections");
  s->name = r.string("name");
  s->readers = r.count("readers", 4);
  s->writers = r.count("writers", 0);
  std::string window = r.string("read_window");
  if (!window.empty()) {
    if (auto d = parse_duration(window); d) s->read_window_ns = *d;
    else problems.push_back({"read_window", "expected a duration (1h; 7d with point-in-time recovery)"});
  }
  s->snapshot = r.string("snapshot");
  s->from_backup = r.boolean("from_backup", false);
  s->live_history = r.boolean("live_history", false);
  s->to_project = r.string("to_project");
  s->to_database = r.string("to_database");
  s->to_dir = r.string("to_dir");
  s->replace = r.boolean("replace", false);
  s->ramp = r.boolean("ramp", false);
  s->dry_run = r.boolean("dry_run", false);
  if (section.contains("check")) {
    s->checks.clear();
    for (const auto& c : r.strings("check"))
      if (c != "none") s->checks.push_back(c);
  }
  r.only(options());
  for (const auto& c : s->collections)
    if (c.empty() || c.find('/') != std::string::npos) problems.push_back({"collections", fmt::format("{}: expected a top-level collection ID", c)});
  if (s->readers < 1 || s->readers > 64) problems.push_back({"readers", "expected 1 to 64"});
  if (s->writers < 0 || s->writers > 64) problems.push_back({"writers", "expected 1 to 64"});
  for (const auto& c : s->checks)
    if (c != "counts" && c != "hashes") problems.push_back({"check", fmt::format("{}: expected counts, hashes or none", c)});
  return r.ok() ? s : nullptr;
}

Result<SourceBackup> backup(SourceContext& ctx, const FirestoreSettings& s) {
  FirestoreBackupOptions o;
  o.project = s.project;
  o.database = s.database;
  o.collections = s.collections;
  o.name = ctx.name.empty() ? s.name : ctx.name;
  o.tags = ctx.tags;
  if (!ctx.name.empty()) o.tags.push_back(source_tag(ctx.name));
  o.hostname = ctx.host;
  o.readers = static_cast<size_t>(s.readers);
  o.read_window_ns = s.read_window_ns;
  LB_ASSIGN_OR_RETURN(auto r, backup_firestore(ctx.repo, o, ctx.progress));
  SourceBackup out{r.snapshot_id, r.snapshot.summary, {}};
  const auto& snap = r.snapshot;
  out.report.json = {{"snapshot_id", r.snapshot_id}, {"short_id", r.snapshot_id.substr(0, 8)}, {"time", format_rfc3339(snap.time_ns)},
                     {"database", snap.paths[0]},   {"metadata", snap.metadata},               {"summary", snap.summary}};
  auto& lines = out.report.lines;
  lines.push_back(fmt::format("Database {} read at {} (the server's read time)", snap.paths[0], snap.metadata.value("read_time", "")));
  for (auto it = snap.metadata["collections"].begin(); it != snap.metadata["collections"].end(); ++it)
    lines.push_back(fmt::format("  {:<24} {:>9} documents  hash {}", it.key(), it.value().value("documents", uint64_t{0}),
                                it.value().value("hash", "").substr(0, 16)));
  lines.push_back(fmt::format("Documents:  {} ({}) in {} ranges by {} readers", snap.metadata.value("documents", uint64_t{0}),
                              format_bytes(snap.metadata.value("bytes", uint64_t{0})), snap.metadata.value("ranges", uint64_t{0}),
                              snap.metadata.value("readers", uint64_t{0})));
  lines.push_back(fmt::format("Added:      {} ({} stored after compression)",
                              format_bytes(snap.summary.value("data_added_bytes", uint64_t{0})),
                              format_bytes(snap.summary.value("data_stored_bytes", uint64_t{0}))));
  for (const auto& ch : snap.summary.value("checks", nlohmann::json::array()))
    lines.push_back(backup_check_line(ch));
  lines.push_back(fmt::format("snapshot {} saved in {}", r.snapshot_id.substr(0, 8),
                              format_duration_ms(snap.summary.value("duration_ms", int64_t{0}))));
  return out;
}

FirestoreRestoreOptions where_of(const FirestoreSettings& s) {
  FirestoreRestoreOptions o;
  o.to_project = s.to_project.empty() ? s.project : s.to_project;
  o.to_database = s.to_database.empty() ? s.database : s.to_database;
  o.collections = s.collections;
  o.replace = s.replace;
  o.ramp = s.ramp;
  o.dry_run = s.dry_run;
  o.writers = static_cast<size_t>(s.writers ? s.writers : s.readers);
  return o;
}

// What the checks compare the target with: the restored state's counts and hashes, and its names.
struct FirestoreRestored : RestoredState {
  StatsMap expected;
  std::set<std::string> names;
};

// The state to restore, and how to say where it came from. The live database's own version history
// when asked for an instant the server still keeps (a command-line --at unless --from-backup; a plan
// only with live_history); else a named snapshot; else the newest backup at or before the instant:
// a plan source's (its tag), or on the command line the newest of this project's database.
Result<std::pair<FirestoreSourceState, std::string>> state_to_restore(SourceContext& ctx, const FirestoreSettings& s,
                                                                    std::optional<int64_t> at_ns) {
  FirestoreSourceState from;
  bool live = at_ns && s.snapshot.empty() && !s.from_backup && (ctx.name.empty() || s.live_history);
  if (live) {
    LB_ASSIGN_OR_RETURN(std::string rt, live_read_time(s.project, s.database, *at_ns));
    if (!rt.empty()) {
      from.project = s.project;
      from.database = s.database;
      from.read_time = rt;
      return std::pair{from, fmt::format("the live database as the server kept it at {} (its own version history; no backup needed)", rt)};
    }
  }
  LB_ASSIGN_OR_RETURN(auto all, ctx.repo.list_snapshots());
  if (!s.snapshot.empty()) {
    repo::SnapshotFilter filter;
    filter.source = kSource;
    LB_ASSIGN_OR_RETURN(from.snapshot, repo::select_snapshot(all, s.snapshot, std::nullopt, filter));
  } else if (!ctx.name.empty()) {
    auto snap = newest_snapshot(all, kSource, ctx.name, at_ns);
    if (!snap)
      return no_backup_error(ctx.name, at_ns, all, kSource);
    from.snapshot = *snap;
  } else {
    LB_ASSIGN_OR_RETURN(from.snapshot, pick_firestore_snapshot(all, s.project, s.database, {}, at_ns));
  }
  std::string used = fmt::format("backup {} read at {}{}", from.snapshot->short_id(), from.snapshot->snapshot.metadata.value("read_time", ""),
                                 !live ? ""
                                       : " (the newest backup at or before the requested time; the server keeps no version of the "
                                         "database that old)");
  return std::pair{from, used};
}

Result<SourceRestore> restore(SourceContext& ctx, const FirestoreSettings& s, std::optional<int64_t> at_ns) {
  LB_ASSIGN_OR_RETURN(auto chosen, state_to_restore(ctx, s, at_ns));
  auto& [from, used] = chosen;
  SourceRestore out;
  out.point_ns = from.snapshot ? from.snapshot->snapshot.time_ns : *at_ns;
  if (!from.snapshot)
    if (auto rt = parse_time(from.read_time)) out.point_ns = *rt;  // the instant the server read, rounded down
  out.snapshot_id = from.snapshot ? from.snapshot->id : "";
  std::string source = from.snapshot ? "backup" : "live";
  auto& lines = out.report.lines;
  if (!s.to_dir.empty()) {
    LB_ASSIGN_OR_RETURN(auto r, export_firestore(ctx.repo, from, s.collections, s.to_dir, ctx.progress));
    out.details = {{"target", r.directory}, {"documents", r.documents}, {"from", used}};
    out.report.json = {{"source", source}, {"directory", r.directory}, {"metadata_file", r.metadata_file}, {"files", r.files},
                       {"documents", r.documents}};
    lines.push_back(fmt::format("exporting {} from {} into {}", s.project, used, s.to_dir));
    lines.push_back(fmt::format("wrote {} documents in {} file(s); import with:\n  gcloud firestore import {}\n  (a bucket: copy {} there "
                                "first; the emulator: POST /emulator/v1/projects/P:import with export_directory {})",
                                r.documents, r.files.size(), r.directory, r.directory, r.metadata_file));
    return out;
  }
  auto where = where_of(s);
  std::string target = cloud::firestore_documents_root(where.to_project, where.to_database);
  int64_t start = monotonic_ns();
  // A standby that already holds this very backup (its marker names it and the target): read, not
  // rewritten — unless the target holds documents the backup lacks, which a real restore replaces.
  bool resumed = ctx.resume && from.snapshot && !s.dry_run &&
                 (ctx.resume->value("snapshot", "") == from.snapshot->id || ctx.resume->value("origin", "") == origin_id(*from.snapshot)) &&
                 ctx.resume->value("target", "") == target;
  if (resumed) where.dry_run = true;
  LB_ASSIGN_OR_RETURN(auto r, restore_firestore(ctx.repo, from, where, ctx.progress));
  if (resumed && !r.would_delete.empty()) {
    resumed = false;
    where.dry_run = false;
    LB_ASSIGN_OR_RETURN(r, restore_firestore(ctx.repo, from, where, ctx.progress));
  }
  int64_t ms = (monotonic_ns() - start) / 1000000;
  out.details = {{"target", target},        {"read_time", r.read_time}, {"documents", r.written},
                 {"deleted", r.deleted},    {"extra_documents", r.would_delete.size()}, {"from", source},
                 {"target_kind", "database"}};
  out.expected = stats_json(r.expected);
  out.dry_run = s.dry_run;
  if (resumed) out.details["resumed"] = "the standby held this backup already: nothing written";
  if (!s.dry_run && from.snapshot) out.resume = {{"snapshot", from.snapshot->id}, {"origin", origin_id(*from.snapshot)}, {"target", target}};
  if (!s.dry_run) out.checks = s.checks;
  auto state = std::make_shared<FirestoreRestored>();
  state->expected = r.expected;
  state->names = r.names;
  out.state = state;
  out.report.json = {{"source", source},
                     {"snapshot", from.snapshot ? from.snapshot->to_json() : nlohmann::json()},
                     {"read_time", r.read_time},
                     {"target", target},
                     {"documents", r.names.size()},
                     {"written", r.written},
                     {"deleted", r.deleted},
                     {"extra", r.would_delete.size()},
                     {"dry_run", s.dry_run},
                     {"collections", stats_json(r.expected)},
                     {"duration_ms", ms}};
  lines.push_back(fmt::format("restoring {} from {} into {}{}", s.project, used, target, s.dry_run ? " (dry run)" : ""));
  if (s.dry_run) {
    for (size_t i = 0; i < std::min<size_t>(r.would_delete.size(), 50); ++i) lines.push_back("would delete " + r.would_delete[i]);
    lines.push_back(fmt::format("dry run: {} documents would be written, {} in the target that the restored state lacks{}", r.names.size(),
                                r.would_delete.size(), s.replace ? " would be deleted" : " (deleted only with --replace)"));
  } else {
    lines.push_back(fmt::format("restored {} documents ({}) as of {}, {} deleted, in {}", r.written, format_bytes(r.bytes), r.read_time,
                                r.deleted, format_duration_ms(ms)));
    if (!s.replace && !r.would_delete.empty())
      lines.push_back(fmt::format("{} documents in the restored collections are not in the restored state and were left (use --replace)",
                                  r.would_delete.size()));
  }
  return out;
}

std::vector<CheckResult> validate(SourceContext& ctx, const FirestoreSettings& s, const SourceRestore& restored,
                                  const std::vector<std::string>& checks) {
  auto where = where_of(s);
  if (auto state = std::dynamic_pointer_cast<const FirestoreRestored>(restored.state))
    return check_firestore_target(where, state->expected, state->names, checks);
  // Without the restore's own record: what the target must hold comes from the backup's record, the
  // names from its tree.
  auto snap = ctx.repo.load_snapshot(restored.snapshot_id);
  if (!snap) return all_failed(checks, snap.status().message());
  auto nodes = document_nodes(ctx.repo, snap->snapshot.tree);
  if (!nodes) return all_failed(checks, nodes.status().message());
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
      .options = options(),
      .standby_settings = {{"replace", true}},
      .parse = parse,
      .backup = backup,
      .restore = restore,
      .validate = validate}.erase();
  return kind;
}

}  // namespace lifeboat::sources::firestore
