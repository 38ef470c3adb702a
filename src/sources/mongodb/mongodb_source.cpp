// The MongoDB source kind: its options (plan keys and the flags of `backup mongodb` / `restore
// mongodb`: uri, databases, rename, to_dir, …), full backups, the oplog follower (for a plan, and as
// the verb `mongodb follow`), point-in-time restores, slice housekeeping (`mongodb tidy`), and
// counts/hashes read back from the restored server or directory and compared with the state
// predicted from the repository.
#include "sources/mongodb/mongodb_source.h"

#include <fmt/format.h>

#include <algorithm>

#include "core/bytes.h"
#include "core/time.h"
#include "sources/mongodb/mongo_backup.h"
#include "sources/mongodb/mongo_restore.h"
#include "sources/mongodb/slice_tidy.h"
#include "sources/mongodb/oplog_follow.h"
#include "sources/settings_reader.h"

namespace lifeboat::sources::mongodb {

namespace {

const std::vector<KindOption>& options() {
  static const std::vector<KindOption> o = {
      {.key = "uri", .help = "MongoDB connection string (mongodb://user:pass@host:port/?…); restores: the server to restore into"},
      {.key = "databases", .type = OptionType::kStrings,
       .help = "only this database (repeatable; default: all but admin, config, local)", .flag = "--db"},
      {.key = "name", .help = "deployment name recorded in the snapshot (default: the URI's hosts); restores: the deployment "
                              "(needed when the repository holds several)",
       .command_line = true},
      {.key = "threads", .type = OptionType::kCount, .help = "collections dumped, or insert batches in flight, at once",
       .default_text = "4"},
      {.key = "to_dir", .help = "write a mongodump-layout directory instead (for mongorestore)", .use = kRestoreOption},
      {.key = "drop", .type = OptionType::kFlag,
       .help = "drop each collection before restoring it (a plan's restores always do)", .use = kRestoreOption},
      {.key = "rename", .type = OptionType::kStrings, .help = "restore database OLD as NEW (OLD=NEW, repeatable)",
       .use = kRestoreOption, .flag = "--to-db"},
      {.key = "dry_run", .type = OptionType::kFlag, .help = "print which backup and slices would be used, and the restored point",
       .use = kRestoreOption, .command_line = true},
      {.key = "skip_unknown", .type = OptionType::kFlag,
       .help = "go on past oplog entries this version does not understand (each is counted and named; without it the replay "
               "stops before the first, exit 3)",
       .use = kRestoreOption},
      {.key = "check", .type = OptionType::kStrings,
       .help = "read the restored target back and compare it with the predicted state: counts, hashes (repeatable)",
       .use = kRestoreOption, .command_line = true},
      {.key = "pitr_window", .help = "how long oplog slices are kept for point-in-time restores (plan: tidy)", .use = 0},
  };
  return o;
}

struct MongoSettings : SourceSettings {
  std::string uri, to_dir, name;
  std::optional<int64_t> pitr_window_ns;  // unset: as long as the daily backups are kept
  std::vector<std::string> databases, checks;
  std::vector<std::pair<std::string, std::string>> rename;
  int64_t threads = 4;
  bool skip_unknown = false, drop = false, dry_run = false;
};

std::shared_ptr<const MongoSettings> parse(const nlohmann::json& section, SettingsFor purpose, std::vector<SettingsProblem>& problems) {
  SettingsReader r(section, problems);
  auto s = std::make_shared<MongoSettings>();
  // A command-line restore names its target (--uri or --to-dir), or none with --dry-run.
  s->uri = r.string("uri", purpose != SettingsFor::kRestore);
  s->databases = r.strings("databases");
  if (section.is_object() && section.contains("rename") && section["rename"].is_array()) {
    for (const auto& x : r.strings("rename")) {
      size_t eq = x.find('=');
      if (eq == std::string::npos || eq == 0 || eq + 1 == x.size()) problems.push_back({"rename", fmt::format("{}: expected OLD=NEW", x)});
      else s->rename.emplace_back(x.substr(0, eq), x.substr(eq + 1));
    }
  } else {
    s->rename = r.string_map("rename");
  }
  s->to_dir = r.string("to_dir");
  s->name = r.string("name");
  s->threads = r.count("threads", 4);
  s->skip_unknown = r.boolean("skip_unknown", false);
  s->drop = r.boolean("drop", purpose == SettingsFor::kPlan);  // a restore into an environment replaces what is there
  s->dry_run = r.boolean("dry_run", false);
  s->checks = r.strings("check");
  if (std::string w = r.string("pitr_window"); !w.empty()) {
    if (auto d = parse_duration(w); d && *d > 0) s->pitr_window_ns = *d;
    else problems.push_back({"pitr_window", fmt::format("expected a duration such as 30d or 72h, not {}", w)});
  }
  r.only(options());
  for (const auto& c : s->checks)
    if (c != "counts" && c != "hashes") problems.push_back({"check", fmt::format("{}: expected counts or hashes", c)});
  if (s->threads < 1 || s->threads > 64) problems.push_back({"threads", "expected 1 to 64"});
  return r.ok() ? s : nullptr;
}

Result<SourceBackup> backup(SourceContext& ctx, const MongoSettings& s) {
  MongoBackupOptions o;
  o.uri = s.uri;
  o.databases = s.databases;
  o.name = ctx.name.empty() ? s.name : ctx.name;
  o.tags = ctx.tags;
  if (!ctx.name.empty()) o.tags.push_back(source_tag(ctx.name));
  o.hostname = ctx.host;
  o.threads = static_cast<size_t>(s.threads);
  LB_ASSIGN_OR_RETURN(auto r, backup_mongodb(ctx.repo, o, ctx.progress));
  SourceBackup out{r.snapshot_id, r.snapshot.summary, {}};
  const auto& snap = r.snapshot;
  out.report.json = {{"snapshot_id", r.snapshot_id},
                     {"short_id", r.snapshot_id.substr(0, 8)},
                     {"time", format_rfc3339(snap.time_ns)},
                     {"name", snap.paths[0]},
                     {"collections", snap.metadata["collections"]},
                     {"oplog_start", snap.metadata["oplog_start"]},
                     {"oplog_end", snap.metadata["oplog_end"]},
                     {"oplog_entries", snap.metadata["oplog_entries"]},
                     {"summary", snap.summary}};
  auto& lines = out.report.lines;
  for (const auto& col : r.collections)
    lines.push_back(fmt::format("  {}.{}: {} documents, {}, hash {}", col.db, col.name, col.count, format_bytes(col.bytes), col.hash.substr(0, 12)));
  auto num = [&](const char* k) { return snap.summary.value(k, uint64_t{0}); };
  lines.push_back(fmt::format("MongoDB {}: {} collections, {} documents, {}", snap.paths[0], num("collections"), num("documents"),
                              format_bytes(num("total_bytes"))));
  lines.push_back(fmt::format("Added:      {} ({} stored after compression)", format_bytes(num("data_added_bytes")),
                              format_bytes(num("data_stored_bytes"))));
  if (snap.metadata["oplog_end"].is_object())
    lines.push_back(fmt::format("Consistent: at oplog position {}:{} ({} entries written during the dump kept for replay)",
                                snap.metadata["oplog_end"].value("t", 0u), snap.metadata["oplog_end"].value("i", 0u),
                                snap.metadata.value("oplog_entries", uint64_t{0})));
  else
    lines.push_back("Consistent: no oplog on the server; writes during the dump may be partly included");
  lines.push_back(fmt::format("snapshot {} saved in {}", r.snapshot_id.substr(0, 8), format_duration_ms(snap.summary.value("duration_ms", int64_t{0}))));
  return out;
}

nlohmann::json plan_json(const MongoRestorePlan& p) {
  nlohmann::json slices = nlohmann::json::array();
  for (const auto& s : p.slices) slices.push_back(s.id);
  nlohmann::json j = {{"name", p.name},
                      {"full", p.full.id},
                      {"full_time", format_rfc3339(p.full.snapshot.time_ns)},
                      {"slices", slices},
                      {"point", format_rfc3339(p.point_ns)},
                      {"point_ns", p.point_ns}};
  if (p.at_ns) {
    j["at"] = format_rfc3339(*p.at_ns);
    j["lag_ms"] = (*p.at_ns - p.point_ns + 999999) / 1000000;  // short by 1 ns is short
  }
  j["proved"] = p.proved;
  j["proof"] = p.proof;
  if (!p.limit.empty()) j["limit"] = p.limit;
  return j;
}

// The point as restored: the replay may end inside the requested second or stop short of it at an
// entry it does not understand.
void point_lines(const MongoRestorePlan& p, std::optional<int64_t> at, std::vector<std::string>& lines) {
  std::string point = "restored point: " + format_local(p.point_ns);
  if (p.proved) point += " (exactly the requested instant)";
  else if (at && *at > p.point_ns)
    point += fmt::format(" ({} before the requested {})", format_duration_ms((*at - p.point_ns + 999999) / 1000000), format_local(*at));
  lines.push_back(point);
  lines.push_back("  proved by: " + p.proof);
  if (!p.limit.empty()) lines.push_back("  limited by: " + p.limit);
}

// The target as a standby marker names it: a resumed restore must write to the same place, the same way.
std::string target_identity(const MongoSettings& s) {
  nlohmann::json rename = nlohmann::json::array();
  for (const auto& [a, b] : s.rename) rename.push_back({a, b});
  return nlohmann::json{{"uri", redact_uri(s.uri)}, {"databases", s.databases}, {"rename", rename}}.dump();
}

OplogTime oplog_time_of(const nlohmann::json& j) {
  return OplogTime{j.value("t", uint32_t{0}), j.value("i", uint32_t{0})};
}

// A standby restored before (ctx.resume): when the full backup it started from still leads by an
// unbroken chain of slices to the point asked for, only the oplog after what it applied is written.
// Anything else (a newer point is unreachable from it, an earlier instant, another target) restores
// whole. Returns the plan to resume with, or nullopt.
std::optional<MongoRestorePlan> resumable(const SourceContext& ctx, const MongoSettings& s, const std::vector<repo::SnapshotRef>& all,
                                          const MongoRestorePlan& newest, std::optional<int64_t> at_ns) {
  if (!ctx.resume || !ctx.resume->is_object() || !s.to_dir.empty() || !s.drop) return std::nullopt;
  const auto& m = *ctx.resume;
  if (m.value("target", "") != target_identity(s) || !m.contains("applied") || !m.contains("restart")) return std::nullopt;
  // The standby's full backup as this repository holds it (the copy's ID, or the original's).
  std::string full = m.value("full", ""), origin = m.value("full_origin", full);
  auto it = std::find_if(all.begin(), all.end(), [&](const repo::SnapshotRef& r) { return r.id == full || origin_id(r) == origin; });
  if (it == all.end()) return std::nullopt;
  // The same chain without the full backups newer than the standby's.
  std::vector<repo::SnapshotRef> chain;
  for (const auto& r : all)
    if (r.snapshot.source != kFullSource || r.snapshot.time_ns <= it->snapshot.time_ns) chain.push_back(r);
  auto p = plan_mongodb_restore(chain, newest.name, at_ns);
  if (!p || p->full.id != it->id || p->point_ns < newest.point_ns) return std::nullopt;
  // The standby must not hold entries this chain lacks (it was brought further from another
  // repository than this one holds): then only a whole restore reaches this chain's point.
  auto chain_end = oplog_time_from_json(p->slices.empty() ? p->full.snapshot.metadata.value("oplog_end", nlohmann::json())
                                                          : p->slices.back().snapshot.metadata.value("to", nlohmann::json()));
  OplogTime applied = oplog_time_of(m["applied"]);
  if (!chain_end || applied > *chain_end) return std::nullopt;
  // An instant before (or inside the second of) what the standby applied: only a whole restore goes back.
  if (p->replay_until_s && applied.t >= *p->replay_until_s) return std::nullopt;
  return *p;
}

Result<SourceRestore> restore(SourceContext& ctx, const MongoSettings& s, std::optional<int64_t> at_ns) {
  bool command_line = ctx.name.empty();
  if (command_line && !s.dry_run && s.uri.empty() == s.to_dir.empty())
    return Error(Code::kInvalidArgument, "restore mongodb needs exactly one target: --uri URI or --to-dir DIR");
  LB_ASSIGN_OR_RETURN(auto all, ctx.repo.list_snapshots());
  // The deployment: a plan source's name; on the command line --name, or the only one.
  LB_ASSIGN_OR_RETURN(auto plan, plan_mongodb_restore(all, command_line ? s.name : ctx.name, at_ns));
  std::optional<MongoRestorePlan> resume = s.dry_run ? std::nullopt : resumable(ctx, s, all, plan, at_ns);
  if (resume) plan = *resume;
  SourceRestore out;
  out.snapshot_id = plan.full.id;
  auto& lines = out.report.lines;
  lines.push_back(fmt::format("MongoDB {}: full backup {} ({}) + {} oplog slice(s)", plan.name, plan.full.short_id(),
                              format_local(plan.full.snapshot.time_ns), plan.slices.size()));
  if (s.dry_run) {
    out.dry_run = true;
    out.point_ns = plan.point_ns;
    out.limit = plan.limit;
    point_lines(plan, at_ns, lines);
    out.report.json = {{"plan", plan_json(plan)}};
    out.details = {{"plan", plan_json(plan)}};
    return out;
  }
  MongoRestoreOptions o;
  o.uri = s.to_dir.empty() ? s.uri : "";
  o.to_dir = s.to_dir;
  o.drop = s.drop;
  o.databases = s.databases;
  o.rename = s.rename;
  o.skip_unknown = s.skip_unknown;
  o.threads = static_cast<size_t>(s.threads);
  o.predict = ctx.predict;
  if (resume) {
    o.resume_applied = oplog_time_of((*ctx.resume)["applied"]);
    o.resume_restart = oplog_time_of((*ctx.resume)["restart"]);
  }
  int64_t start = monotonic_ns();
  LB_ASSIGN_OR_RETURN(auto r, restore_mongodb(ctx.repo, plan, o, ctx.progress));
  int64_t ms = (monotonic_ns() - start) / 1000000;
  if (r.stopped_before && !command_line) return Error(Code::kPartial, fmt::format("MongoDB {}: {}", plan.name, r.plan.limit));
  out.point_ns = r.plan.point_ns;
  out.limit = r.plan.limit;
  std::string target = o.to_dir.empty() ? redact_uri(o.uri) : o.to_dir;
  out.details = {{"target", target}, {"collections", r.collections.size()}, {"documents", r.documents},
                 {"oplog_entries_applied", r.ops_applied}, {"slices", plan.slices.size()}, {"proof", r.plan.proof},
                 {"target_kind", "target"}};
  if (s.skip_unknown) {
    // Named in the drill record: what this restore went past.
    out.details["skip_unknown"] = true;
    out.details["unknown_entries_skipped"] = r.warnings;
    if (!r.skipped.empty()) out.details["skipped"] = r.skipped;
  }
  out.expected = expected_json(r.expected);
  out.checks = s.checks;
  if (o.to_dir.empty())
    out.resume = {{"full", plan.full.id}, {"full_origin", origin_id(plan.full)}, {"target", target_identity(s)}, {"point_ns", out.point_ns},
                  {"applied", {{"t", r.applied.t}, {"i", r.applied.i}}}, {"restart", {{"t", r.restart.t}, {"i", r.restart.i}}}};
  if (r.resumed) out.details["resumed_after"] = (*ctx.resume)["applied"];
  uint64_t dups = 0;
  nlohmann::json cols = nlohmann::json::array();
  for (const auto& col : r.collections) {
    dups += col.duplicates;
    cols.push_back({{"db", col.db}, {"name", col.name}, {"count", col.count}, {"hash_ok", col.hash_ok}, {"duplicates", col.duplicates}});
  }
  out.report.json = {{"plan", plan_json(r.plan)},
                     {"target", target},
                     {"collections", cols},
                     {"documents", r.documents},
                     {"oplog_entries_read", r.entries_read},
                     {"oplog_entries_applied", r.ops_applied},
                     {"warnings", r.warnings},
                     {"skip_unknown", s.skip_unknown},
                     {"duration_ms", ms}};
  if (!r.skipped.empty()) out.report.json["skipped"] = r.skipped;
  if (r.stopped_before) out.report.json["stopped_before"] = *r.stopped_before;
  point_lines(r.plan, at_ns, lines);
  if (r.resumed)
    lines.push_back(fmt::format("resumed the standby: applied {} new oplog entries as {} changes in {} (its documents were in place)",
                                r.entries_read, r.ops_applied, format_duration_ms(ms)));
  else
    lines.push_back(fmt::format("restored {} collections, {} documents; replayed {} oplog entries as {} changes in {}", r.collections.size(),
                                r.documents, r.entries_read, r.ops_applied, format_duration_ms(ms)));
  lines.push_back("every collection read from the repository matched the count and hash recorded at backup");
  if (dups) lines.push_back(fmt::format("{} documents already present in the target were left as they were (use --drop)", dups));
  if (r.warnings) {
    lines.push_back(fmt::format("--skip-unknown: {} oplog entries this version does not understand were skipped:", r.warnings));
    for (const auto& w : r.skipped) lines.push_back("  " + w);
  }
  if (r.stopped_before) {
    lines.push_back(fmt::format("stopped: the replay ended before an oplog entry it does not understand: {}\n"
                                "  the target holds the state before it; --skip-unknown goes on past such entries",
                                *r.stopped_before));
    out.report.status =
        Error(Code::kPartial, fmt::format("restore stopped before an oplog entry it does not understand ({})", *r.stopped_before));
  }
  return out;
}

// Reads every collection the restore wrote back from the target, once for all checks, and compares
// it with the prediction.
std::vector<CheckResult> validate(SourceContext&, const MongoSettings& s, const SourceRestore& restored,
                                  const std::vector<std::string>& checks) {
  return check_restored(s.to_dir.empty() ? s.uri : "", s.to_dir, restored.expected, checks, s.drop);
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

namespace {

const std::vector<KindOption>& follow_options() {
  static const std::vector<KindOption> o = {
      {.key = "uri", .help = "MongoDB connection string", .required = true},
      {.key = "name", .help = "deployment name (as given to backup mongodb; default: the URI's hosts)"},
      {.key = "host", .help = "host name to record (default: this host)"},
      {.key = "interval", .help = "commit a slice at least this often when changes arrived", .default_text = "60s"},
      {.key = "idle_commit", .help = "commit an empty slice after this long without changes (default: 10 intervals)"},
      {.key = "reconnect_for", .help = "give up when the server stays unreachable this long", .default_text = "2m"},
  };
  return o;
}

// `mongodb follow`: the oplog tailed into slices until SIGINT/SIGTERM, each slice said as it is committed.
Result<Report> follow_verb(VerbContext& ctx) {
  std::vector<SettingsProblem> problems;
  SettingsReader r(ctx.args, problems);
  FollowOptions o;
  o.uri = r.string("uri", true);
  o.name = r.string("name");
  o.hostname = r.string("host");
  auto duration = [&](const char* key, const std::string& fallback, int64_t& into) {
    std::string text = r.string(key);
    if (text.empty()) text = fallback;
    if (text.empty()) return;
    if (auto d = parse_duration(text); d && *d > 0) into = *d;
    else problems.push_back({key, fmt::format("expected a duration such as 60s or 5m, not {}", text)});
  };
  duration("interval", "60s", o.interval_ns);
  duration("idle_commit", "", o.idle_commit_ns);
  duration("reconnect_for", "2m", o.reconnect_for_ns);
  r.only(follow_options());
  if (!problems.empty()) return Error(Code::kInvalidArgument, problems_as_flags(follow_options(), problems));
  bool gap = false;
  FollowEvents ev;
  ev.on_commit = [&](const SliceCommitted& sc) {
    ctx.emit(fmt::format("{} slice {}: {} entries, {} .. {}", format_local(now_unix_ns()), sc.snapshot_id.substr(0, 8), sc.entries,
                         sc.from.to_string(), sc.to.to_string()),
             {{"event", "slice"}, {"snapshot_id", sc.snapshot_id}, {"from", oplog_time_json(sc.from)}, {"to", oplog_time_json(sc.to)},
              {"entries", sc.entries}, {"gap", sc.gap}},
             false);
  };
  ev.on_held = [&](uint64_t entries, const OplogTime& through) {
    ctx.emit("", {{"event", "held"}, {"entries", entries}, {"through", oplog_time_json(through)}}, false);
  };
  ev.on_warning = [&](const std::string& w) {
    if (w.starts_with("OPLOG GAP")) gap = true;
    ctx.emit("lifeboat: warning: " + w, {{"event", "warning"}, {"message", w}}, true);
  };
  LB_RETURN_IF_ERROR(follow_oplog(*ctx.repo, o, ev));
  Report out;
  out.json = nullptr;  // the events said it all
  if (gap) out.status = Error(Code::kPartial, "the oplog had a gap (see above): take a new full backup");
  return out;
}

const std::vector<KindOption>& tidy_options() {
  static const std::vector<KindOption> o = {
      {.key = "name", .help = "deployment (needed when the repository holds several)"},
      {.key = "pitr_window", .help = "forget slices no restore inside this window needs (default: keep all)"},
      {.key = "compact_after", .help = "compact slices older than this (0: never)", .default_text = "24h"},
  };
  return o;
}

// `mongodb tidy`: what a plan's retention does to slices, for a repository without a plan.
Result<Report> tidy_verb(VerbContext& ctx) {
  std::vector<SettingsProblem> problems;
  SettingsReader r(ctx.args, problems);
  std::string name = r.string("name");
  TidyOptions o;
  o.now_ns = now_unix_ns();
  if (std::string w = r.string("pitr_window"); !w.empty()) {
    if (auto d = parse_duration(w)) o.window_ns = *d;
    else problems.push_back({"pitr_window", fmt::format("expected a duration such as 30d, not {}", w)});
  }
  std::string after = r.string("compact_after");
  if (after.empty()) after = "24h";
  if (after == "0") o.compact_after_ns = 0;
  else if (auto d = parse_duration(after)) o.compact_after_ns = *d;
  else problems.push_back({"compact_after", fmt::format("expected a duration such as 24h, or 0, not {}", after)});
  r.only(tidy_options());
  if (!problems.empty()) return Error(Code::kInvalidArgument, problems_as_flags(tidy_options(), problems));
  LB_ASSIGN_OR_RETURN(auto snaps, ctx.repo->list_snapshots());
  // The deployment: as restore picks it.
  LB_ASSIGN_OR_RETURN(auto plan, plan_mongodb_restore(snaps, name, std::nullopt));
  o.name = plan.name;
  LB_ASSIGN_OR_RETURN(o.pinned, ctx.repo->pinned());
  LB_ASSIGN_OR_RETURN(auto t, tidy_slices(*ctx.repo, o));
  Report out;
  out.json = tidy_json(t);
  out.json["name"] = o.name;
  out.lines.push_back(fmt::format("{}: {} slice(s) compacted into {} hourly slice(s); {} slice(s) before the window forgotten{}", o.name,
                                  t.compacted, t.compacted_into, t.forgotten,
                                  t.kept_by_object_lock ? fmt::format("; {} kept by object lock", t.kept_by_object_lock) : ""));
  return out;
}

}  // namespace

const SourceKind& mongodb_source_kind() {
  static const SourceKind kind = TypedSourceKind<MongoSettings>{
      .name = "mongodb",
      .summary = "MongoDB: full backups, continuous oplog capture, point-in-time restore",
      .validations = {"counts", "hashes"},
      .options = options(),
      .verbs = {{.words = {"mongodb", "follow"},
                 .help = "tail the oplog and commit a slice at least every --interval",
                 .options = follow_options(),
                 .shared_lock = false,
                 .run = follow_verb},
                {.words = {"mongodb", "tidy"},
                 .help = "compact oplog slices older than a day into hourly ones and forget those before the point-in-time window",
                 .options = tidy_options(),
                 .run = tidy_verb}},
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
