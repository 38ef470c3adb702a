// MongoDB full backup through libmongoc.
#include "sources/mongodb/mongo_backup.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <mutex>

#include "core/interrupt.h"
#include "core/time.h"
#include "core/worker_pool.h"
#include "repo/node_io.h"
#include "repo/write_session.h"

namespace lifeboat::sources::mongodb {

nlohmann::json oplog_time_json(const OplogTime& ts) { return {{"t", ts.t}, {"i", ts.i}}; }

std::optional<OplogTime> oplog_time_from_json(const nlohmann::json& j) {
  if (!j.is_object() || !j.contains("t")) return std::nullopt;
  return OplogTime{j.value("t", 0u), j.value("i", 0u)};
}

CursorSource::CursorSource(mongoc_cursor_t* cursor, std::string what, CollectionDigest* digest)
    : cursor_(cursor), what_(std::move(what)), digest_(digest) {}

Result<size_t> CursorSource::read(uint8_t* buf, size_t n) {
  size_t done = 0;
  while (done < n) {
    if (cur_pos_ == cur_len_) {
      if (done_) break;
      if (interrupted()) return Error(Code::kInterrupted, "interrupted");
      const bson_t* doc;
      if (!MONGOC(mongoc_cursor_next)(cursor_, &doc)) {
        bson_error_t error;
        if (MONGOC(mongoc_cursor_error)(cursor_, &error)) return mongo_error(error, what_);
        done_ = true;
        break;
      }
      cur_ = bson_get_data(doc);
      cur_len_ = doc->len;
      cur_pos_ = 0;
      if (digest_) digest_->add(ByteView(cur_, cur_len_));
    }
    size_t take = std::min(n - done, cur_len_ - cur_pos_);
    std::memcpy(buf + done, cur_ + cur_pos_, take);
    done += take;
    cur_pos_ += take;
  }
  return done;
}

namespace {

struct CollectionJob {
  std::string db, name;
  BsonDoc options;  // from listCollections
  repo::StoredStream data, metadata;
  CollectionDigest digest;
};

repo::Node file_node(std::string name, const repo::StoredStream& s, int64_t mtime_ns) {
  repo::Node n;
  n.kind = repo::NodeKind::kFile;
  n.name = std::move(name);
  n.mode = 0644;
  n.size = s.size_bytes;
  n.content = s.content;
  n.mtime_ns = mtime_ns;
  return n;
}

Result<std::vector<std::unique_ptr<CollectionJob>>> list_collections(MongoConnection& conn, const std::string& db_name) {
  auto lease = conn.lease();
  mongoc_database_t* db = MONGOC(mongoc_client_get_database)(lease.get(), db_name.c_str());
  mongoc_cursor_t* cursor = MONGOC(mongoc_database_find_collections_with_opts)(db, nullptr);
  std::vector<std::unique_ptr<CollectionJob>> out;
  std::string malformed;  // a collection whose options could not be read
  const bson_t* doc;
  while (MONGOC(mongoc_cursor_next)(cursor, &doc)) {
    std::string name = bson_string(doc, "name");
    std::string type = bson_string(doc, "type");
    if (name.empty() || name.starts_with("system.")) continue;
    if (!type.empty() && type != "collection") continue;  // views and timeseries buckets: not data
    auto job = std::make_unique<CollectionJob>();
    job->db = db_name;
    job->name = name;
    bson_iter_t it;
    if (bson_iter_init_find(&it, doc, "options") && BSON_ITER_HOLDS_DOCUMENT(&it)) {
      uint32_t len;
      const uint8_t* data;
      bson_iter_document(&it, &len, &data);
      bson_t* options = bson_new_from_data(data, len);  // null when the embedded document is not well framed
      if (!options) {
        malformed = name;
        break;
      }
      job->options = BsonDoc(options);
    }
    out.push_back(std::move(job));
  }
  bson_error_t error;
  bool failed = malformed.empty() && MONGOC(mongoc_cursor_error)(cursor, &error);
  MONGOC(mongoc_cursor_destroy)(cursor);
  MONGOC(mongoc_database_destroy)(db);
  if (!malformed.empty())
    return Error(Code::kIo, fmt::format("listing collections of {}: the server sent malformed options for {}; nothing "
                                        "was stored", db_name, malformed));
  if (failed) return mongo_error(error, fmt::format("listing collections of {}", db_name));
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a->name < b->name; });
  return out;
}

// mongodump's <coll>.metadata.json: options, index specs, name and type, in canonical extended JSON.
Result<std::string> collection_metadata_json(mongoc_client_t* client, const CollectionJob& job) {
  mongoc_collection_t* coll = MONGOC(mongoc_client_get_collection)(client, job.db.c_str(), job.name.c_str());
  mongoc_cursor_t* cursor = MONGOC(mongoc_collection_find_indexes_with_opts)(coll, nullptr);
  bson_t meta = BSON_INITIALIZER, indexes;
  bson_append_document(&meta, "options", -1, job.options.get());
  bson_append_array_begin(&meta, "indexes", -1, &indexes);
  const bson_t* doc;
  uint32_t n = 0;
  while (MONGOC(mongoc_cursor_next)(cursor, &doc)) {
    char key[16];
    const char* k;
    bson_uint32_to_string(n++, &k, key, sizeof key);
    bson_append_document(&indexes, k, -1, doc);
  }
  bson_append_array_end(&meta, &indexes);
  bson_append_utf8(&meta, "collectionName", -1, job.name.c_str(), -1);
  bson_append_utf8(&meta, "type", -1, "collection", -1);
  bson_error_t error;
  bool failed = MONGOC(mongoc_cursor_error)(cursor, &error);
  MONGOC(mongoc_cursor_destroy)(cursor);
  MONGOC(mongoc_collection_destroy)(coll);
  if (failed) {
    bson_destroy(&meta);
    return mongo_error(error, fmt::format("listing indexes of {}.{}", job.db, job.name));
  }
  size_t len;
  char* s = bson_as_canonical_extended_json(&meta, &len);
  std::string out(s, len);
  bson_free(s);
  bson_destroy(&meta);
  return out;
}

}  // namespace

Result<std::map<std::string, std::string>> read_collections_metadata(MongoConnection& conn, const std::string& db) {
  LB_ASSIGN_OR_RETURN(auto jobs, list_collections(conn, db));
  std::map<std::string, std::string> out;
  auto lease = conn.lease();
  for (const auto& job : jobs) {
    LB_ASSIGN_OR_RETURN(out[job->name], collection_metadata_json(lease.get(), *job));
  }
  return out;
}

namespace {

Status dump_collection(MongoConnection& conn, repo::WriteSession& session, CollectionJob& job,
                       ProgressCounters& progress) {
  auto lease = conn.lease();
  std::string what = fmt::format("reading {}.{}", job.db, job.name);
  LB_ASSIGN_OR_RETURN(std::string meta, collection_metadata_json(lease.get(), job));
  repo::MemorySource meta_src(as_bytes(meta));
  LB_ASSIGN_OR_RETURN(job.metadata, session.store_stream(meta_src));
  mongoc_collection_t* coll = MONGOC(mongoc_client_get_collection)(lease.get(), job.db.c_str(), job.name.c_str());
  bson_t filter = BSON_INITIALIZER;
  mongoc_cursor_t* cursor = MONGOC(mongoc_collection_find_with_opts)(coll, &filter, nullptr, nullptr);
  CursorSource src(cursor, what, &job.digest);
  auto stored = session.store_stream(src, &progress);
  MONGOC(mongoc_cursor_destroy)(cursor);
  MONGOC(mongoc_collection_destroy)(coll);
  if (!stored) return stored.status();
  job.data = std::move(*stored);
  progress.files_done += 1;
  return Status::ok();
}

// Oplog entries in (from, to], as stored in the snapshot's oplog.bson.
Result<std::pair<repo::StoredStream, uint64_t>> store_oplog_range(MongoConnection& conn, repo::WriteSession& session,
                                                                   OplogTime from, OplogTime to) {
  auto lease = conn.lease();
  mongoc_collection_t* coll = MONGOC(mongoc_client_get_collection)(lease.get(), "local", "oplog.rs");
  bson_t* filter = BCON_NEW("ts", "{", "$gt", BCON_TIMESTAMP(from.t, from.i), "$lte", BCON_TIMESTAMP(to.t, to.i), "}");
  mongoc_cursor_t* cursor = MONGOC(mongoc_collection_find_with_opts)(coll, filter, nullptr, nullptr);
  CollectionDigest digest;
  CursorSource src(cursor, "reading local.oplog.rs", &digest);
  auto stored = session.store_stream(src);
  MONGOC(mongoc_cursor_destroy)(cursor);
  bson_destroy(filter);
  MONGOC(mongoc_collection_destroy)(coll);
  if (!stored) return stored.status();
  return std::make_pair(std::move(*stored), digest.count());
}

}  // namespace

Result<MongoBackupResult> backup_mongodb(repo::Repository& repo, const MongoBackupOptions& options,
                                         ProgressCounters& progress) {
  int64_t start_mono = monotonic_ns();
  size_t threads = std::max<size_t>(1, options.threads);
  LB_ASSIGN_OR_RETURN(auto conn, MongoConnection::connect(options.uri, static_cast<int>(threads) + 2));
  LB_RETURN_IF_ERROR(repo.reconcile_packs().status());
  LB_ASSIGN_OR_RETURN(bool has_oplog, conn->has_oplog());
  LB_ASSIGN_OR_RETURN(auto oplog_start, conn->oplog_edge(true));
  // An oplog with no entry yet still orders what comes: the chain starts at position zero.
  if (has_oplog && !oplog_start) oplog_start = OplogTime{};
  int64_t start_ns = now_unix_ns();

  LB_ASSIGN_OR_RETURN(auto all_dbs, conn->database_names());
  std::vector<std::string> dbs;
  if (options.databases.empty()) {
    for (const auto& d : all_dbs)
      if (d != "admin" && d != "config" && d != "local") dbs.push_back(d);
  } else {
    for (const auto& d : options.databases) {
      if (std::find(all_dbs.begin(), all_dbs.end(), d) == all_dbs.end())
        return Error(Code::kNotFound, fmt::format("database {} not found on {} (it has: {})", d, conn->display_name(),
                                                  fmt::join(all_dbs, ", ")));
      dbs.push_back(d);
    }
  }
  std::sort(dbs.begin(), dbs.end());

  std::vector<std::unique_ptr<CollectionJob>> jobs;
  for (const auto& d : dbs) {
    LB_ASSIGN_OR_RETURN(auto cols, list_collections(*conn, d));
    for (auto& c : cols) jobs.push_back(std::move(c));
  }
  progress.files_total = jobs.size();

  repo::WriteSession session(repo);
  std::mutex err_mu;
  Status first_error;
  {
    WorkerPool pool(std::min(threads, std::max<size_t>(1, jobs.size())), jobs.size() + 1);
    for (auto& job : jobs) {
      pool.submit([&, j = job.get()] {
        {
          std::lock_guard lk(err_mu);
          if (!first_error.is_ok()) return;
        }
        Status s = dump_collection(*conn, session, *j, progress);
        if (!s.is_ok()) {
          std::lock_guard lk(err_mu);
          if (first_error.is_ok()) first_error = s;
        }
      });
    }
    pool.wait_idle();
  }
  if (!first_error.is_ok()) {
    (void)session.flush();  // keep finished packs for the next attempt's dedup; no snapshot
    return first_error;
  }

  int64_t now = now_unix_ns();
  LB_ASSIGN_OR_RETURN(auto oplog_end, conn->oplog_edge(true));
  if (has_oplog && !oplog_end) oplog_end = OplogTime{};
  // How far the server proves the dump + its oplog complete (docs/format.md): at least the seconds
  // before the end position, and up to the server's own time when nothing was logged after it.
  std::optional<OplogProof> proof;
  if (oplog_end) {
    LB_ASSIGN_OR_RETURN(auto p, conn->prove_read_through(*oplog_end));
    proof = std::move(p);
  }
  repo::Tree root;
  uint64_t oplog_entries = 0;
  if (oplog_start || oplog_end) {
    OplogTime from = oplog_start.value_or(OplogTime{}), to = oplog_end.value_or(OplogTime{});
    LB_ASSIGN_OR_RETURN(auto oplog, store_oplog_range(*conn, session, from, to));
    oplog_entries = oplog.second;
    root.nodes.push_back(file_node(kOplogFile, oplog.first, now));
  }

  MongoBackupResult result;
  uint64_t documents = 0, total_bytes = 0;
  nlohmann::json collections = nlohmann::json::array();
  for (size_t i = 0; i < jobs.size();) {
    const std::string db = jobs[i]->db;
    repo::Tree dir;
    for (; i < jobs.size() && jobs[i]->db == db; ++i) {
      auto& j = *jobs[i];
      dir.nodes.push_back(file_node(j.name + ".bson", j.data, now));
      dir.nodes.push_back(file_node(j.name + ".metadata.json", j.metadata, now));
      CollectionRecord rec{j.db, j.name, j.digest.count(), j.digest.bytes(), j.digest.hash_hex()};
      collections.push_back({{"db", rec.db}, {"name", rec.name}, {"count", rec.count}, {"bytes", rec.bytes},
                             {"hash", rec.hash}});
      documents += rec.count;
      total_bytes += rec.bytes;
      result.collections.push_back(std::move(rec));
    }
    dir.sort();
    LB_ASSIGN_OR_RETURN(auto subtree, session.store_tree(dir));
    root.nodes.push_back(repo::dir_node(db, subtree, 0755, now));
  }
  // Databases without collections still appear, so a restore recreates the name.
  root.sort();
  for (const auto& d : dbs)
    if (!root.find(d)) {
      LB_ASSIGN_OR_RETURN(auto empty, session.store_tree(repo::Tree{}));
      root.nodes.push_back(repo::dir_node(d, empty, 0755, now));
    }
  root.sort();
  LB_ASSIGN_OR_RETURN(auto root_id, session.store_tree(root));

  repo::Snapshot snap;
  snap.time_ns = start_ns;
  snap.hostname = options.hostname;
  snap.source = kFullSource;
  snap.paths = {options.name.empty() ? conn->display_name() : options.name};
  snap.tags = options.tags;
  snap.tree = root_id;
  snap.metadata = {{"kind", "full"},
                   {"server", conn->display_name()},
                   {"databases", dbs},
                   {"collections", collections},
                   {"oplog_entries", oplog_entries},
                   {"finished_ns", now}};
  snap.metadata["oplog_start"] = oplog_start ? oplog_time_json(*oplog_start) : nlohmann::json();
  snap.metadata["oplog_end"] = oplog_end ? oplog_time_json(*oplog_end) : nlohmann::json();
  if (proof) {
    snap.metadata["proved_through_s"] = proof->through_s;
    snap.metadata["proof"] = proof->how;
  }
  snap.summary = repo::session_summary(session, start_mono);
  snap.summary["collections"] = jobs.size();
  snap.summary["documents"] = documents;
  snap.summary["total_bytes"] = total_bytes;
  LB_ASSIGN_OR_RETURN(result.snapshot_id, session.commit(snap));
  result.snapshot = std::move(snap);
  return result;
}

}  // namespace lifeboat::sources::mongodb
