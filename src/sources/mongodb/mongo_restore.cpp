// MongoDB point-in-time restore: full backup + oplog replay.
#include "sources/mongodb/mongo_restore.h"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>

#include "core/interrupt.h"
#include "core/time.h"
#include "sources/mongodb/bson_stream.h"
#include "sources/mongodb/mongo_backup.h"
#include "sources/mongodb/oplog_replay.h"
#include "sources/mongodb/restore_sink.h"

// bson_t is declared aligned(128); GCC warns that a std::function over it drops the attribute, which is
// harmless for the views passed here.
#pragma GCC diagnostic ignored "-Wignored-attributes"

namespace lifeboat::sources::mongodb {

namespace {


std::optional<OplogTime> meta_time(const repo::Snapshot& s, const char* key) {
  return oplog_time_from_json(s.metadata.value(key, nlohmann::json()));
}

// The last instant of a whole second: a state proved through second s holds at every instant in it.
int64_t end_of_second(uint32_t s) { return (static_cast<int64_t>(s) + 1) * kNsPerSecond - 1; }

// What a full backup or slice proves (docs/format.md): its recorded server evidence, at least the
// seconds before its end position. Slices written before the evidence was recorded carried a claim
// from the follower's own clock (`observed_until_ns`); it is ignored.
OplogProof recorded_proof(const repo::Snapshot& s, const char* end_key) {
  OplogProof p;
  if (auto end = meta_time(s, end_key); end && end->t > 0) p = position_proof(*end);
  keep_stronger(p, {s.metadata.value("proved_through_s", uint32_t{0}),
                    s.metadata.value("proof", std::string("recorded server evidence"))});
  return p;
}

// When a full backup's state holds. With an oplog, its state is the one at its end position, so
// it serves any instant in or after that position's second. Without an oplog no server evidence
// exists: the time the dump finished is all there is.
int64_t full_first_usable_ns(const repo::Snapshot& s) {
  if (auto end = meta_time(s, "oplog_end")) return static_cast<int64_t>(end->t) * kNsPerSecond;
  return s.metadata.value("finished_ns", s.time_ns);
}

}  // namespace

Result<MongoRestorePlan> plan_mongodb_restore(const std::vector<repo::SnapshotRef>& snapshots, const std::string& name,
                                              std::optional<int64_t> at_ns) {
  MongoRestorePlan plan;
  plan.at_ns = at_ns;
  std::set<std::string> names;
  for (const auto& s : snapshots)
    if ((s.snapshot.source == kFullSource || s.snapshot.source == kSliceSource) && !s.snapshot.paths.empty())
      names.insert(s.snapshot.paths[0]);
  if (name.empty()) {
    if (names.empty()) return Error(Code::kNotFound, "the repository holds no MongoDB backups");
    if (names.size() > 1)
      return Error(Code::kInvalidArgument, fmt::format("the repository holds several MongoDB deployments ({}); pick "
                                                       "one with --name", fmt::join(names, ", ")));
    plan.name = *names.begin();
  } else {
    if (!names.count(name))
      return Error(Code::kNotFound, fmt::format("no MongoDB backups named {} (the repository has: {})", name,
                                                names.empty() ? "none" : fmt::format("{}", fmt::join(names, ", "))));
    plan.name = name;
  }
  int64_t at = at_ns.value_or(INT64_MAX);
  const repo::SnapshotRef* best = nullptr;
  const repo::SnapshotRef* oldest = nullptr;
  std::vector<const repo::SnapshotRef*> slices;
  for (const auto& s : snapshots) {
    if (s.snapshot.paths.empty() || s.snapshot.paths[0] != plan.name) continue;
    if (s.snapshot.source == kFullSource) {
      int64_t p = full_first_usable_ns(s.snapshot);
      if (!oldest || p < full_first_usable_ns(oldest->snapshot)) oldest = &s;
      if (p <= at && (!best || p > full_first_usable_ns(best->snapshot) ||
                      (p == full_first_usable_ns(best->snapshot) && s.snapshot.time_ns > best->snapshot.time_ns)))
        best = &s;
    } else if (s.snapshot.source == kSliceSource) {
      if (meta_time(s.snapshot, "from") && meta_time(s.snapshot, "to")) slices.push_back(&s);
    }
  }
  if (!best) {
    if (!oldest) return Error(Code::kNotFound, fmt::format("no full backup of {}: run `lifeboat backup mongodb`", plan.name));
    return Error(Code::kNotFound, fmt::format("no full backup of {} at or before {}; the oldest is consistent at {}",
                                              plan.name, format_rfc3339(at), format_rfc3339(full_first_usable_ns(oldest->snapshot))));
  }
  plan.full = *best;
  auto start = meta_time(best->snapshot, "oplog_start");
  auto end = meta_time(best->snapshot, "oplog_end");
  plan.replay_from = start.value_or(OplogTime{});
  if (!end) {
    // No oplog: the dump is all there is, and nothing proves its state at any instant.
    plan.point_ns = std::min(at, full_first_usable_ns(best->snapshot));
    plan.proof = "none: the server had no oplog";
    if (at_ns && plan.point_ns < at) plan.limit = "the server had no oplog: only full backups are restorable";
    if (at_ns) plan.replay_until_s = static_cast<uint32_t>(*at_ns / kNsPerSecond);
    return plan;
  }
  // Every slice that can hold entries at or before `at` is replayed: one starting after `at`'s
  // second holds none. How far the result is proved is the best evidence along the unbroken chain.
  uint32_t at_s = at_ns ? static_cast<uint32_t>(std::min<int64_t>(*at_ns / kNsPerSecond, UINT32_MAX)) : UINT32_MAX;
  std::sort(slices.begin(), slices.end(), [](const auto* a, const auto* b) {
    auto fa = *meta_time(a->snapshot, "from"), fb = *meta_time(b->snapshot, "from");
    if (fa != fb) return fa < fb;
    return *meta_time(a->snapshot, "to") < *meta_time(b->snapshot, "to");
  });
  OplogProof proved = recorded_proof(best->snapshot, "oplog_end");
  OplogTime cursor = *end;
  for (const auto* s : slices) {
    auto from = *meta_time(s->snapshot, "from"), to = *meta_time(s->snapshot, "to");
    if (to <= cursor) {
      // Nothing new to replay (an empty slice, or one already covered), but its evidence holds
      // when it starts inside the chain.
      if (from <= cursor) {
        keep_stronger(proved, recorded_proof(s->snapshot, "to"));
      }
      continue;
    }
    if (from > cursor) {
      if (proved.through_s < at_s)
        plan.limit = fmt::format("oplog slices are missing after position {} (the follower was not running)",
                                 cursor.to_string());
      break;
    }
    auto gap_until = meta_time(s->snapshot, "gap_until");
    if (s->snapshot.metadata.value("gap", false) && (!gap_until || *gap_until > cursor)) {
      if (proved.through_s < at_s)
        plan.limit = fmt::format("the oplog rolled over before the follower read it (gap after position {})",
                                 cursor.to_string());
      break;
    }
    if (from.t > at_s) break;  // starts after `at`: the chain already proves `at` by position
    plan.slices.push_back(*s);
    cursor = to;
    keep_stronger(proved, recorded_proof(s->snapshot, "to"));
  }
  keep_stronger(proved, position_proof(cursor));
  // Replaying stops at what is proved, so a restore short of `at` is exactly the state at its point.
  const uint32_t proved_s = std::min(at_s, proved.through_s);
  uint32_t until_s = proved_s;
  std::string inside_full;
  if (until_s < end->t) {
    // The full backup's own oplog is always replayed to its end: its dump may hold those changes.
    until_s = end->t;
    inside_full = fmt::format("the full backup's state is at position {}, inside a second nothing proves complete",
                              end->to_string());
  }
  plan.replay_until_s = until_s;
  plan.point_ns = std::min(at, end_of_second(proved_s));
  plan.proof = proved.how;
  plan.proved = at_ns && proved.through_s >= at_s;
  if (!inside_full.empty()) plan.limit = plan.limit.empty() ? inside_full : plan.limit + "; " + inside_full;
  if (at_ns && !plan.proved && plan.limit.empty())
    plan.limit = fmt::format("the oplog is proved complete only through {} ({}); is `lifeboat mongodb follow` "
                             "running?", format_rfc3339(end_of_second(proved.through_s)), proved.how);
  return plan;
}

namespace {


// Calls `each` with every stored entry of the snapshot's oplog that the plan replays, in order, up to
// (not including) `stop_before`; `each` returns false to stop.
using EachEntry = std::function<Result<bool>(const bson_t* entry, OplogTime ts)>;

Result<bool> replay_stream(repo::Repository& repo, const repo::SnapshotRef& snap, const MongoRestorePlan& plan,
                           std::optional<OplogTime> stop_before, OplogTime& applied, const EachEntry& each) {
  // A slice ending at or before what is applied holds nothing to replay: not read at all (a standby
  // resumed after hundreds of slices reads the new ones only).
  if (auto to = meta_time(snap.snapshot, "to"); to && *to <= applied) return true;
  LB_ASSIGN_OR_RETURN(auto tree, repo.load_tree(snap.snapshot.tree));
  const repo::Node* n = tree.find(kOplogFile);
  if (!n) return true;
  StoredDocReader reader(repo, n->content, fmt::format("oplog of snapshot {}", snap.short_id()));
  ByteView doc;
  while (true) {
    LB_ASSIGN_OR_RETURN(bool more, reader.next(doc));
    if (!more) break;
    if (interrupted()) return Error(Code::kInterrupted, "interrupted");
    bson_t view;
    bson_init_static(&view, doc.data(), doc.size());
    auto ts = bson_timestamp(&view, "ts");
    if (!ts || *ts <= applied) continue;
    if (plan.replay_until_s && ts->t > *plan.replay_until_s) return false;
    if (stop_before && *ts >= *stop_before) return false;
    applied = *ts;
    LB_ASSIGN_OR_RETURN(bool go_on, each(&view, *ts));
    if (!go_on) return false;
  }
  return true;
}

// Every entry the plan replays, in order: the full backup's own oplog, then the slices.
Status replay_all(repo::Repository& repo, const MongoRestorePlan& plan, std::optional<OplogTime> stop_before,
                  const EachEntry& each) {
  OplogTime applied = plan.replay_from;
  LB_ASSIGN_OR_RETURN(bool go_on, replay_stream(repo, plan.full, plan, stop_before, applied, each));
  for (const auto& s : plan.slices) {
    if (!go_on) break;
    LB_ASSIGN_OR_RETURN(go_on, replay_stream(repo, s, plan, stop_before, applied, each));
  }
  return Status::ok();
}

// Where inside the requested second the replay ends. The oplog's ts has whole seconds; MongoDB 4.2+
// (and FerretDB) also write each entry's wall time in milliseconds. When every entry of that second
// carries one, the replay stops at the first entry whose millisecond does not end by `at`; when one
// lacks it, the second cannot be split and the replay ends with the second before.
struct SecondCut {
  uint32_t second = 0;
  int64_t at_ns = 0;
  bool active = false, all_walled = true;
  std::optional<OplogTime> first, cut;
  int64_t cut_wall_ms = 0;

  void observe(const bson_t* entry, OplogTime ts) {
    if (!active || ts.t != second) return;
    if (!first) first = ts;
    bson_iter_t it;
    if (!bson_iter_init_find(&it, entry, "wall") || !BSON_ITER_HOLDS_DATE_TIME(&it)) {
      all_walled = false;
      return;
    }
    int64_t wall_ms = bson_iter_date_time(&it);
    if (!cut && wall_ms * kNsPerMs + (kNsPerMs - 1) > at_ns) {
      cut = ts;
      cut_wall_ms = wall_ms;
    }
  }
};

}  // namespace

Result<MongoRestoreResult> restore_mongodb(repo::Repository& repo, const MongoRestorePlan& plan,
                                           const MongoRestoreOptions& options, ProgressCounters& progress) {
  if (options.uri.empty() == options.to_dir.empty())
    return Error(Code::kInvalidArgument, "restore mongodb needs exactly one target: --uri URI or --to-dir DIR");
  LB_RETURN_IF_ERROR(repo.load_index());
  NsFilter filter{options.databases, options.rename};
  const auto& meta = plan.full.snapshot.metadata;
  for (const auto& d : options.databases) {
    auto dbs = meta.value("databases", std::vector<std::string>{});
    if (std::find(dbs.begin(), dbs.end(), d) == dbs.end())
      return Error(Code::kNotFound, fmt::format("database {} is not in backup {} (it has: {})", d, plan.full.short_id(),
                                                fmt::join(dbs, ", ")));
  }
  std::unique_ptr<RestoreSink> sink;
  if (!options.uri.empty()) {
    LB_ASSIGN_OR_RETURN(sink, make_server_sink(options.uri, ServerSinkOptions{options.drop, options.threads}));
  } else {
    LB_ASSIGN_OR_RETURN(sink, make_dir_sink(options.to_dir));
  }

  MongoRestoreResult result;
  result.plan = plan;
  result.resumed = options.resume_applied.has_value();
  // A resumed restore that predicts nothing reads the oplog from its restart point only.
  MongoRestorePlan replay = plan;
  if (result.resumed && !options.predict && options.resume_restart && *options.resume_restart > replay.replay_from)
    replay.replay_from = *options.resume_restart;
  // The entries to replay are read once first: to learn which documents they touch (the state the
  // target must end in is predicted for the validations), whether an entry we do not know stops the
  // replay, and where inside the requested second it ends.
  ExpectedState expected;
  std::optional<UnknownEntry> unknown;
  SecondCut second;
  if (plan.at_ns && plan.replay_until_s && plan.proved) {
    second.second = static_cast<uint32_t>(*plan.at_ns / kNsPerSecond);
    second.at_ns = *plan.at_ns;
    auto full_end = meta_time(plan.full.snapshot, "oplog_end");
    // A time given to the second (no fraction) names that whole second, as it always has.
    int64_t fraction = *plan.at_ns % kNsPerSecond;
    second.active = fraction != 0 && fraction != kNsPerSecond - 1 && second.second == *plan.replay_until_s &&
                    (!full_end || full_end->t < second.second);
  }
  {
    OplogUnpacker scan(filter, options.skip_unknown);
    LB_RETURN_IF_ERROR(replay_all(repo, replay, std::nullopt, [&](const bson_t* entry, OplogTime ts) -> Result<bool> {
      second.observe(entry, ts);
      LB_RETURN_IF_ERROR(scan.feed(entry, [&](const BsonDoc& change) {
        expected.note_op(change.get());
        return Status::ok();
      }, unknown));
      return !unknown;
    }));
  }
  std::optional<OplogTime> stop_before;
  MongoRestorePlan& p = result.plan;
  if (second.active && second.first) {
    if (!second.all_walled) {
      stop_before = second.first;
      p.point_ns = end_of_second(second.second - 1);
      p.proved = false;
      p.limit = fmt::format("entries of second {} carry no wall time, so that second cannot be split: restored to the "
                            "end of the second before", format_rfc3339(int64_t{second.second} * kNsPerSecond));
    } else if (second.cut) {
      stop_before = second.cut;
      p.proof += fmt::format("; cut inside the second at oplog position {} by the entries' wall times",
                             second.cut->to_string());
      if (second.cut_wall_ms * kNsPerMs <= *plan.at_ns) {
        // An entry in the very millisecond of `at`: it may be before or after it.
        p.point_ns = second.cut_wall_ms * kNsPerMs - 1;
        p.proved = false;
        p.limit = fmt::format("an entry was written in the millisecond of the requested instant ({}): restored to the "
                              "millisecond before", format_rfc3339(second.cut_wall_ms * kNsPerMs));
      }
    }
  }
  if (unknown) {
    if (!stop_before || unknown->ts < *stop_before) {
      stop_before = unknown->ts;
      result.stopped_before = unknown->describe();
      p.point_ns = std::min(p.point_ns, end_of_second(unknown->ts.t - 1));
      p.proved = false;
      std::string why = fmt::format("replay stopped before an oplog entry it does not understand ({}); entries of "
                                    "that second before it were applied; --skip-unknown goes on past it",
                                    *result.stopped_before);
      p.limit = p.limit.empty() ? why : p.limit + "; " + why;
    }
  }
  LB_ASSIGN_OR_RETURN(auto root, repo.load_tree(plan.full.snapshot.tree));
  // Resumed: the documents are already in the target; they are read (not written) only to predict.
  bool read_documents = !result.resumed || options.predict;
  for (const auto& rec : meta.value("collections", nlohmann::json::array())) {
    std::string db = rec.value("db", ""), name = rec.value("name", "");
    if (!filter.selected(db) || !read_documents) continue;
    progress.files_total += 1;
    progress.bytes_total += rec.value("bytes", uint64_t{0});
  }
  progress.totals_final = true;
  for (const auto& rec : meta.value("collections", nlohmann::json::array())) {
    std::string db = rec.value("db", ""), name = rec.value("name", "");
    if (!filter.selected(db) || !read_documents) continue;
    const repo::Node* dir = root.find(db);
    if (!dir || !dir->subtree) return Error(Code::kCorrupt, fmt::format("backup {} lacks database {}", plan.full.short_id(), db));
    LB_ASSIGN_OR_RETURN(auto dtree, repo.load_tree(*dir->subtree));
    const repo::Node* data = dtree.find(name + ".bson");
    const repo::Node* mfile = dtree.find(name + ".metadata.json");
    if (!data || !mfile) return Error(Code::kCorrupt, fmt::format("backup {} lacks {}.{}", plan.full.short_id(), db, name));
    LB_ASSIGN_OR_RETURN(auto meta_bytes, read_stored(repo, mfile->content));
    CollectionSpec spec{filter.target(db), name, to_string(meta_bytes)};
    expected.add_collection(spec.db + "." + name, spec.metadata_json);
    if (!result.resumed) LB_RETURN_IF_ERROR(sink->begin_collection(spec));
    StoredDocReader reader(repo, data->content, fmt::format("{}.{} in snapshot {}", db, name, plan.full.short_id()));
    CollectionDigest digest;
    std::vector<Bytes> batch;
    size_t batch_bytes = 0;
    ByteView doc;
    while (true) {
      LB_ASSIGN_OR_RETURN(bool more, reader.next(doc));
      if (!more) break;
      if (interrupted()) return Error(Code::kInterrupted, "interrupted");
      digest.add(doc);
      expected.add_document(spec.db + "." + name, doc);
      progress.bytes_done += doc.size();
      if (result.resumed) continue;
      batch.emplace_back(doc.begin(), doc.end());
      batch_bytes += doc.size();
      if (batch.size() >= 1000 || batch_bytes >= 8 * 1024 * 1024) {
        LB_RETURN_IF_ERROR(sink->insert_batch(std::move(batch)));
        batch.clear();
        batch_bytes = 0;
      }
    }
    if (!batch.empty()) LB_RETURN_IF_ERROR(sink->insert_batch(std::move(batch)));
    uint64_t dups = 0;
    if (!result.resumed) {
      LB_ASSIGN_OR_RETURN(dups, sink->end_collection());
    }
    CollectionCheck check{db, name, digest.count(), dups, digest.hash_hex() == rec.value("hash", "")};
    if (digest.count() != rec.value("count", uint64_t{0}) || !check.hash_ok)
      return Error(Code::kCorrupt, fmt::format("{}.{}: restored {} documents with hash {}, but the backup recorded {} "
                                               "with hash {}; the repository data does not match what was dumped",
                                               db, name, digest.count(), digest.hash_hex(), rec.value("count", uint64_t{0}),
                                               rec.value("hash", "")));
    result.documents += digest.count();
    result.collections.push_back(check);
    progress.files_done += 1;
  }

  OplogUnpacker unpacker(filter, options.skip_unknown);
  std::optional<UnknownEntry> unexpected;
  result.applied = options.resume_applied.value_or(replay.replay_from);
  LB_RETURN_IF_ERROR(replay_all(repo, replay, stop_before, [&](const bson_t* entry, OplogTime ts) -> Result<bool> {
    // Resumed: entries through resume_applied are in the target already (they still feed the
    // prediction and any transaction they open).
    bool write = !options.resume_applied || ts > *options.resume_applied;
    if (write) ++result.entries_read;
    LB_RETURN_IF_ERROR(unpacker.feed(entry, [&](const BsonDoc& change) {
      expected.apply_op(change.get());
      if (!write) return Status::ok();
      ++result.ops_applied;
      return sink->apply_op(change.get());
    }, unexpected));
    if (ts > result.applied) result.applied = ts;
    return true;
  }));
  result.restart = result.applied;
  if (auto open = unpacker.oldest_open()) {
    // Resume reads entries after `restart`: one before the open transaction's first entry.
    result.restart = open->i > 0 ? OplogTime{open->t, open->i - 1} : OplogTime{open->t - 1, UINT32_MAX};
  }
  if (unexpected) return Error(Code::kFatal, "internal error: the replay met an entry its first pass let through: " + unexpected->describe());
  LB_RETURN_IF_ERROR(sink->finish());
  result.skipped = unpacker.skipped();
  result.warnings = unpacker.skipped_count();
  result.expected = expected.finish();
  return result;
}

nlohmann::json expected_json(const std::map<std::string, ExpectedState::Collection>& expected) {
  nlohmann::json out = nlohmann::json::object();
  for (const auto& [ns, c] : expected)
    out[ns] = {{"count", c.count}, {"hash", c.hash}, {"predictable", c.predictable}, {"why", c.why},
               {"exists", c.exists}, {"metadata", c.metadata}};
  return out;
}

namespace {

// The collections a target database holds, each with its metadata.json: read from the server, or
// from the mongodump layout (a .bson without a .metadata.json has the default metadata).
Result<std::map<std::string, std::string>> target_collections(MongoConnection* conn, const std::string& to_dir,
                                                              const std::string& db) {
  if (conn) return read_collections_metadata(*conn, db);
  std::map<std::string, std::string> out;
  std::filesystem::path dir = std::filesystem::path(to_dir) / db;
  std::error_code ec;
  if (!std::filesystem::exists(dir, ec)) return out;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    std::string file = entry.path().filename();
    if (file.ends_with(".bson")) {
      out.try_emplace(file.substr(0, file.size() - 5));
    } else if (file.ends_with(".metadata.json")) {
      std::ifstream in(entry.path(), std::ios::binary);
      if (!in) return Error(Code::kIo, fmt::format("reading {}", entry.path().string()));
      out[file.substr(0, file.size() - 14)] = std::string(std::istreambuf_iterator<char>(in), {});
    }
  }
  if (ec) return Error(Code::kIo, fmt::format("listing {}: {}", dir.string(), ec.message()));
  return out;
}

}  // namespace

std::vector<CheckResult> check_restored(const std::string& uri, const std::string& to_dir, const nlohmann::json& expected,
                                        const std::vector<std::string>& checks, bool replaced) {
  std::vector<CheckResult> out;
  auto fail_all = [&](const std::string& why) { return all_failed(checks, why); };
  std::unique_ptr<MongoConnection> conn;
  if (!uri.empty()) {
    auto c = MongoConnection::connect(uri, 2);
    if (!c) return fail_all("cannot read the target back: " + c.status().message());
    conn = std::move(*c);
  }
  // Every database the restore wrote is listed whole: its collections with their options and indexes.
  std::map<std::string, std::map<std::string, std::string>> listed;
  for (const auto& [ns, want] : expected.items()) listed[ns.substr(0, ns.find('.'))];
  for (auto& [db, colls] : listed) {
    auto l = target_collections(conn.get(), to_dir, db);
    if (!l) return fail_all("cannot read the target back: " + l.status().message());
    colls = std::move(*l);
  }
  uint64_t collections = 0, documents = 0;
  std::vector<std::string> wrong_counts, wrong_hashes, extra;
  for (const auto& [ns, want] : expected.items()) {
    size_t dot = ns.find('.');
    std::string db = ns.substr(0, dot), coll = ns.substr(dot + 1);
    auto found = listed[db].find(coll);
    if (!want.value("exists", true)) {
      if (found != listed[db].end()) extra.push_back(fmt::format("{} (dropped by the replayed oplog)", ns));
      continue;
    }
    ++collections;
    if (found == listed[db].end()) {
      wrong_counts.push_back(fmt::format("{} is missing ({} documents expected)", ns, want.value("count", uint64_t{0})));
      wrong_hashes.push_back(fmt::format("{} is missing", ns));
      continue;
    }
    auto got = conn ? digest_server_collection(*conn, db, coll) : digest_dir_collection(to_dir, db, coll);
    if (!got) return fail_all(got.status().message());
    documents += got->count();
    uint64_t want_count = want.value("count", uint64_t{0});
    if (got->count() != want_count)
      wrong_counts.push_back(fmt::format("{} holds {} documents, {} expected", ns, got->count(), want_count));
    if (!want.value("predictable", true))
      wrong_hashes.push_back(fmt::format("{}: content cannot be predicted ({})", ns, want.value("why", "")));
    else if (got->hash_hex() != want.value("hash", ""))
      wrong_hashes.push_back(fmt::format("{}: content hash {} differs from the expected {}", ns, got->hash_hex(), want.value("hash", "")));
    const auto& want_meta = want.contains("metadata") ? want["metadata"] : nlohmann::json();
    if (want_meta.is_null()) {
      wrong_hashes.push_back(fmt::format("{}: its options and indexes cannot be predicted", ns));
      continue;
    }
    auto got_meta = comparable_metadata(found->second);
    if (!got_meta) {
      wrong_hashes.push_back(fmt::format("{}: its metadata cannot be read back: {}", ns, got_meta.status().message()));
      continue;
    }
    auto diffs = metadata_differences(want_meta, *got_meta);
    if (!diffs.empty()) wrong_hashes.push_back(fmt::format("{}: {}", ns, fmt::join(diffs, ", ")));
  }
  for (const auto& [db, colls] : listed)
    for (const auto& [coll, meta] : colls)
      if (!expected.contains(db + "." + coll)) extra.push_back(db + "." + coll);
  std::string where = conn ? conn->display_name() : to_dir;
  auto differ = [&](const std::vector<std::string>& wrong) {
    return fmt::format("{} of {} collections read back from {} differ: {}", wrong.size(), collections, where, fmt::join(wrong, "; "));
  };
  // Extra collections fail `counts` where the restore replaced what it restored (drop); otherwise
  // they are named: a restore into a database that held more leaves the rest.
  bool extra_fails = replaced && !extra.empty();
  std::string extra_note = extra.empty() ? ""
                           : fmt::format("; {} collection(s) in the restored database(s) the backup does not have{}: {}",
                                         extra.size(), replaced ? ", although the restore dropped what it restored"
                                                                : " (kept: the restore does not drop)",
                                         fmt::join(extra, ", "));
  for (const auto& check : checks) {
    if (check == "counts") {
      if (!wrong_counts.empty() || extra_fails)
        out.push_back({check, false, (wrong_counts.empty() ? fmt::format("{} collections read back from {} hold the expected "
                                                                         "documents", collections, where)
                                                           : differ(wrong_counts)) + extra_note});
      else
        out.push_back({check, true, fmt::format("{} documents in {} collections read back from {}, as expected{}", documents,
                                                collections, where, extra_note)});
    } else {
      out.push_back(wrong_hashes.empty()
                        ? CheckResult{check, true, fmt::format("every collection read back from {} has the expected content "
                                                               "hash, options and indexes ({} collections)", where, collections)}
                        : CheckResult{check, false, differ(wrong_hashes)});
    }
  }
  return out;
}

}  // namespace lifeboat::sources::mongodb
