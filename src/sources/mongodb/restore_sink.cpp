// Restore sinks: a live server through libmongoc, or a mongodump-layout directory.
#include "sources/mongodb/restore_sink.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <tuple>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "core/atomic_file.h"
#include "core/worker_pool.h"
#include "sources/mongodb/oplog_delta.h"
#include "sources/mongodb/oplog_replay.h"

// bson_t is declared aligned(128); GCC warns that containers of it drop the attribute, which is
// harmless for the stack-free views built here.
#pragma GCC diagnostic ignored "-Wignored-attributes"

namespace lifeboat::sources::mongodb {

bool NsFilter::selected(const std::string& db) const {
  if (db.empty() || db == "admin" || db == "local" || db == "config") return false;
  return databases.empty() || std::find(databases.begin(), databases.end(), db) != databases.end();
}

std::string NsFilter::target(const std::string& db) const {
  for (const auto& [from, to] : rename)
    if (from == db) return to;
  return db;
}

namespace {

// A non-owning view of BSON bytes as a bson_t.
struct BsonView {
  bson_t b;
  explicit BsonView(ByteView bytes) { bson_init_static(&b, bytes.data(), bytes.size()); }
  const bson_t* get() const { return &b; }
};

// {_id: <value>} taken from `doc`; its bytes also serve as the document's key in directory replay.
std::optional<BsonDoc> id_selector(const bson_t* doc) {
  bson_iter_t it;
  if (!bson_iter_init_find(&it, doc, "_id")) return std::nullopt;
  BsonDoc sel;
  bson_append_iter(sel.get(), "_id", 3, &it);
  return sel;
}

std::string id_key(const bson_t* doc) {
  auto sel = id_selector(doc);
  return sel ? to_string(sel->bytes()) : std::string();
}

bool first_key_is_operator(const bson_t* doc) {
  bson_iter_t it;
  return bson_iter_init(&it, doc) && bson_iter_next(&it) && bson_iter_key(&it)[0] == '$';
}

// FerretDB logs updates as {$v:1, $set:<whole new document>}; MongoDB never puts _id in a $set
// (it is immutable), so a $set holding _id is a full replacement.
std::optional<BsonDoc> whole_document_set(const bson_t* o) {
  auto set = bson_sub_document(o, "$set");
  if (!set) return std::nullopt;
  bson_iter_t it;
  if (!bson_iter_init_find(&it, set->get(), "_id")) return std::nullopt;
  bson_iter_t all;
  bson_iter_init(&all, o);
  while (bson_iter_next(&all)) {
    std::string k = bson_iter_key(&all);
    if (k != "$set" && k != "$v") return std::nullopt;
  }
  return set;
}

struct ParsedOp {
  std::string op, db, coll;
  std::optional<BsonDoc> o, o2;
};

ParsedOp parse_op(const bson_t* op) {
  ParsedOp p;
  p.op = bson_string(op, "op");
  std::tie(p.db, p.coll) = split_namespace(bson_string(op, "ns"));
  p.o = bson_sub_document(op, "o");
  p.o2 = bson_sub_document(op, "o2");
  return p;
}

// What createIndexes accepts from a dumped index spec: mongodump keeps `v` and `ns`, which FerretDB
// (and new MongoDB versions, for `ns`) reject.
BsonDoc clean_index_spec(const bson_t* spec) {
  BsonDoc out;
  bson_iter_t it;
  bson_iter_init(&it, spec);
  while (bson_iter_next(&it)) {
    std::string k = bson_iter_key(&it);
    if (k == "v" || k == "ns" || k == "background") continue;
    bson_append_iter(out.get(), k.c_str(), static_cast<int>(k.size()), &it);
  }
  return out;
}

BsonDoc without_fields(const bson_t* doc, std::initializer_list<const char*> drop) {
  BsonDoc out;
  bson_iter_t it;
  bson_iter_init(&it, doc);
  while (bson_iter_next(&it)) {
    const char* k = bson_iter_key(&it);
    if (std::none_of(drop.begin(), drop.end(), [&](const char* d) { return std::strcmp(d, k) == 0; }))
      bson_append_iter(out.get(), k, -1, &it);
  }
  return out;
}

// The index specifications of a startIndexBuild/commitIndexBuild entry (o.indexes), cleaned.
std::vector<BsonDoc> index_specs(const bson_t* o) {
  std::vector<BsonDoc> specs;
  bson_iter_t it, arr;
  if (!bson_iter_init_find(&it, o, "indexes") || !BSON_ITER_HOLDS_ARRAY(&it) || !bson_iter_recurse(&it, &arr)) return specs;
  while (bson_iter_next(&arr)) {
    if (!BSON_ITER_HOLDS_DOCUMENT(&arr)) continue;
    uint32_t len;
    const uint8_t* data;
    bson_iter_document(&arr, &len, &data);
    bson_t view;
    if (bson_init_static(&view, data, len)) specs.push_back(clean_index_spec(&view));
  }
  return specs;
}

struct ParsedMetadata {
  BsonDoc options;
  std::vector<BsonDoc> indexes;
};

Result<ParsedMetadata> parse_metadata(const CollectionSpec& spec) {
  ParsedMetadata m;
  if (spec.metadata_json.empty()) return m;
  auto doc = BsonDoc::from_json(spec.metadata_json);
  if (!doc) return doc.status().with_context(fmt::format("{}.{}.metadata.json", spec.db, spec.name));
  if (auto o = bson_sub_document(doc->get(), "options")) m.options = std::move(*o);
  bson_iter_t it, arr;
  if (bson_iter_init_find(&it, doc->get(), "indexes") && BSON_ITER_HOLDS_ARRAY(&it) && bson_iter_recurse(&it, &arr)) {
    while (bson_iter_next(&arr)) {
      if (!BSON_ITER_HOLDS_DOCUMENT(&arr)) continue;
      uint32_t len;
      const uint8_t* data;
      bson_iter_document(&arr, &len, &data);
      if (bson_t* spec_doc = bson_new_from_data(data, len)) m.indexes.emplace_back(spec_doc);
    }
  }
  return m;
}

// Server errors that mean "already as wanted" during restore.
constexpr uint32_t kNamespaceNotFound = 26, kIndexNotFound = 27, kNamespaceExists = 48, kIndexExists = 68,
                   kDuplicateKey = 11000;

class ServerSink final : public RestoreSink {
 public:
  ServerSink(std::unique_ptr<MongoConnection> conn, const ServerSinkOptions& o)
      : conn_(std::move(conn)), o_(o), pool_(std::max<size_t>(1, o.threads), 2 * std::max<size_t>(1, o.threads)) {
    // FerretDB on SQLite holds a pooled connection per statement of an update command until the
    // command ends, and its pool has 100: an update of 100 statements waits for itself forever.
    if (conn_->is_ferretdb()) max_bulk_ops_ = 50;
  }

  ~ServerSink() override {
    pool_.wait_idle();
    reset_bulk();
  }

  Status begin_collection(const CollectionSpec& spec) override {
    spec_ = spec;
    LB_ASSIGN_OR_RETURN(meta_, parse_metadata(spec));
    auto lease = conn_->lease();
    bson_error_t error;
    if (o_.drop) {
      mongoc_collection_t* c = MONGOC(mongoc_client_get_collection)(lease.get(), spec.db.c_str(), spec.name.c_str());
      bool ok = MONGOC(mongoc_collection_drop_with_opts)(c, nullptr, &error);
      MONGOC(mongoc_collection_destroy)(c);
      if (!ok && error.code != kNamespaceNotFound && std::string(error.message).find("not found") == std::string::npos)
        return mongo_error(error, fmt::format("dropping {}.{}", spec.db, spec.name));
    }
    mongoc_database_t* db = MONGOC(mongoc_client_get_database)(lease.get(), spec.db.c_str());
    mongoc_collection_t* c = MONGOC(mongoc_database_create_collection)(db, spec.name.c_str(), meta_.options.get(), &error);
    if (c) MONGOC(mongoc_collection_destroy)(c);
    MONGOC(mongoc_database_destroy)(db);
    if (!c && error.code != kNamespaceExists && std::string(error.message).find("already exists") == std::string::npos)
      return mongo_error(error, fmt::format("creating {}.{}", spec.db, spec.name));
    duplicates_ = 0;
    return Status::ok();
  }

  Status insert_batch(std::vector<Bytes> docs) override {
    LB_RETURN_IF_ERROR(error());
    auto batch = std::make_shared<std::vector<Bytes>>(std::move(docs));
    pool_.submit([this, batch, db = spec_.db, name = spec_.name] {
      auto lease = conn_->lease();
      mongoc_collection_t* c = MONGOC(mongoc_client_get_collection)(lease.get(), db.c_str(), name.c_str());
      std::vector<bson_t> views(batch->size());
      std::vector<const bson_t*> ptrs;
      for (size_t i = 0; i < batch->size(); ++i) {
        bson_init_static(&views[i], (*batch)[i].data(), (*batch)[i].size());
        ptrs.push_back(&views[i]);
      }
      bson_t* opts = BCON_NEW("ordered", BCON_BOOL(false));
      bson_t reply;
      bson_error_t err;
      bool ok = MONGOC(mongoc_collection_insert_many)(c, ptrs.data(), ptrs.size(), opts, &reply, &err);
      Status s;
      if (!ok) s = classify_insert_failure(&reply, err, db + "." + name);
      bson_destroy(&reply);
      bson_destroy(opts);
      MONGOC(mongoc_collection_destroy)(c);
      if (!s.is_ok()) {
        std::lock_guard lk(mu_);
        if (error_.is_ok()) error_ = s;
      }
    });
    return Status::ok();
  }

  Result<uint64_t> end_collection() override {
    pool_.wait_idle();
    LB_RETURN_IF_ERROR(error());
    std::vector<BsonDoc> specs;
    for (const auto& ix : meta_.indexes)
      if (bson_string(ix.get(), "name") != "_id_") specs.push_back(clean_index_spec(ix.get()));
    if (!specs.empty()) {
      bson_t cmd = BSON_INITIALIZER, arr;
      bson_append_utf8(&cmd, "createIndexes", -1, spec_.name.c_str(), -1);
      bson_append_array_begin(&cmd, "indexes", -1, &arr);
      for (size_t i = 0; i < specs.size(); ++i)
        bson_append_document(&arr, std::to_string(i).c_str(), -1, specs[i].get());
      bson_append_array_end(&cmd, &arr);
      auto lease = conn_->lease();
      bson_error_t err;
      bool ok = MONGOC(mongoc_client_command_simple)(lease.get(), spec_.db.c_str(), &cmd, nullptr, nullptr, &err);
      bson_destroy(&cmd);
      if (!ok) return mongo_error(err, fmt::format("creating indexes on {}.{}", spec_.db, spec_.name));
    }
    return duplicates_.load();
  }

  Status apply_op(const bson_t* raw) override {
    ParsedOp op = parse_op(raw);
    if (op.op == "n" || op.op.empty()) return Status::ok();
    if (op.op == "c") {
      LB_RETURN_IF_ERROR(flush_pending());
      LB_RETURN_IF_ERROR(flush_bulk());
      return apply_command(op);
    }
    if (!op.o) return Error(Code::kCorrupt, "oplog entry without o");
    std::string ns = op.db + "." + op.coll;
    if (auto id = coalescible(op)) {
      LB_RETURN_IF_ERROR(flush_bulk());
      return pend(op, ns, std::move(*id));
    }
    if (op.op == "u" && op.o2 && bson_has_field(op.o->get(), "diff")) {
      // MongoDB 5+ delta format, applied by our own code to the document as the target holds it,
      // which is then written whole: any server takes that, FerretDB included.
      LB_RETURN_IF_ERROR(flush_bulk());
      return pend_delta(op, ns);
    }
    LB_RETURN_IF_ERROR(flush_pending());
    if (ns != bulk_ns_ || bulk_ops_ >= max_bulk_ops_) LB_RETURN_IF_ERROR(flush_bulk());
    if (!bulk_) start_bulk(op.db, op.coll);
    bson_error_t err{};
    bool ok = true;
    if (op.op == "i") {
      auto sel = id_selector(op.o->get());
      if (!sel) return Error(Code::kCorrupt, "insert entry without _id");
      bson_t* upsert = BCON_NEW("upsert", BCON_BOOL(true));
      ok = MONGOC(mongoc_bulk_operation_replace_one_with_opts)(bulk_, sel->get(), op.o->get(), upsert, &err);
      bson_destroy(upsert);
    } else if (op.op == "u") {
      if (!op.o2) return Error(Code::kCorrupt, "update entry without o2");
      auto sel = id_selector(op.o2->get());
      if (!sel) return Error(Code::kCorrupt, "update entry without o2._id");
      bson_t* upsert = BCON_NEW("upsert", BCON_BOOL(true));
      if (auto whole = whole_document_set(op.o->get())) {
        ok = MONGOC(mongoc_bulk_operation_replace_one_with_opts)(bulk_, sel->get(), whole->get(), upsert, &err);
      } else if (first_key_is_operator(op.o->get())) {
        BsonDoc update;
        bson_iter_t it;
        bson_iter_init(&it, op.o->get());
        while (bson_iter_next(&it))
          if (std::string(bson_iter_key(&it)) != "$v") bson_append_iter(update.get(), nullptr, 0, &it);
        ok = MONGOC(mongoc_bulk_operation_update_one_with_opts)(bulk_, sel->get(), update.get(), nullptr, &err);
      } else {
        ok = MONGOC(mongoc_bulk_operation_replace_one_with_opts)(bulk_, sel->get(), op.o->get(), upsert, &err);
      }
      bson_destroy(upsert);
    } else if (op.op == "d") {
      auto sel = id_selector(op.o->get());
      if (!sel) return Error(Code::kCorrupt, "delete entry without _id");
      ok = MONGOC(mongoc_bulk_operation_remove_one_with_opts)(bulk_, sel->get(), nullptr, &err);
    } else {
      return Error(Code::kInvalidArgument, fmt::format("oplog entry of type '{}' reached the restore unchecked", op.op));
    }
    if (!ok) return mongo_error(err, fmt::format("replaying oplog on {}", ns));
    ++bulk_ops_;
    return Status::ok();
  }

  Status finish() override {
    LB_RETURN_IF_ERROR(flush_pending());
    return flush_bulk();
  }

 private:
  Status error() {
    std::lock_guard lk(mu_);
    return error_;
  }

  // An unordered insert fails as a whole when any document does; duplicates of documents already in
  // the target (restore without --drop) are counted, anything else is an error.
  Status classify_insert_failure(const bson_t* reply, const bson_error_t& err, const std::string& ns) {
    bson_iter_t it, arr;
    uint64_t dups = 0, others = 0;
    std::string other_msg;
    if (bson_iter_init_find(&it, reply, "writeErrors") && bson_iter_recurse(&it, &arr)) {
      while (bson_iter_next(&arr)) {
        bson_iter_t e;
        if (bson_iter_recurse(&arr, &e) && bson_iter_find(&e, "code") && bson_iter_as_int64(&e) == kDuplicateKey) ++dups;
        else ++others;
      }
    }
    if (dups > 0 && others == 0 && !bson_has_field(reply, "writeConcernErrors")) {
      duplicates_ += dups;
      return Status::ok();
    }
    return mongo_error(err, fmt::format("inserting into {}", ns));
  }

  void start_bulk(const std::string& db, const std::string& coll) {
    op_lease_ = std::make_unique<ClientLease>(conn_->lease());
    bulk_coll_ = MONGOC(mongoc_client_get_collection)(op_lease_->get(), db.c_str(), coll.c_str());
    bson_t* opts = BCON_NEW("ordered", BCON_BOOL(true));
    bulk_ = MONGOC(mongoc_collection_create_bulk_operation_with_opts)(bulk_coll_, opts);
    bson_destroy(opts);
    bulk_ns_ = db + "." + coll;
    bulk_ops_ = 0;
  }

  void reset_bulk() {
    if (bulk_) MONGOC(mongoc_bulk_operation_destroy)(bulk_);
    if (bulk_coll_) MONGOC(mongoc_collection_destroy)(bulk_coll_);
    bulk_ = nullptr;
    bulk_coll_ = nullptr;
    op_lease_.reset();
    bulk_ns_.clear();
    bulk_ops_ = 0;
  }

  // Entries that set a whole document (inserts, FerretDB's updates, replacements) or delete one
  // only decide the document's final state: a run of them on one collection is applied as one
  // delete of every touched _id and one insert of the documents that remain, instead of one
  // statement each. Returns the _id selector when `op` is such an entry.
  std::optional<BsonDoc> coalescible(const ParsedOp& op) {
    if (op.op == "i" || op.op == "d") return id_selector(op.o->get());
    if (op.op != "u" || !op.o2) return std::nullopt;
    if (whole_document_set(op.o->get())) return id_selector(op.o2->get());
    if (!first_key_is_operator(op.o->get()) && bson_has_field(op.o->get(), "_id")) return id_selector(op.o2->get());
    return std::nullopt;
  }

  Status pend_for(const ParsedOp& op, const std::string& ns) {
    if (ns != pending_ns_ || pending_order_.size() >= kMaxPending || pending_bytes_ >= kMaxPendingBytes) {
      LB_RETURN_IF_ERROR(flush_pending());
      pending_ns_ = ns;
      pending_db_ = op.db;
      pending_coll_ = op.coll;
    }
    return Status::ok();
  }

  // A delta update: applied at once to the pending document when there is one; else held, and applied
  // at the flush to the document the target holds (an update of a document that is not there changes
  // nothing: a later delete already ran in the dump).
  Status pend_delta(const ParsedOp& op, const std::string& ns) {
    auto id = id_selector(op.o2->get());
    auto diff = bson_sub_document(op.o->get(), "diff");
    if (!id || !diff) return Error(Code::kCorrupt, "delta update without o2._id or o.diff");
    LB_RETURN_IF_ERROR(pend_for(op, ns));
    std::string key = to_string(id->bytes());
    auto [it, fresh] = pending_.try_emplace(key);
    if (fresh) {
      pending_order_.push_back(key);
      it->second.id = std::move(*id);
      it->second.resolved = false;
    }
    Pending& p = it->second;
    pending_bytes_ += diff->get()->len;
    if (!p.resolved) {
      p.diffs.push_back(std::move(*diff));
      return Status::ok();
    }
    if (!p.doc) return Status::ok();
    LB_ASSIGN_OR_RETURN(p.doc, apply_delta(p.doc->get(), diff->get()));
    return Status::ok();
  }

  // Reads the target's documents that held delta updates wait for, in one query, and applies them.
  Status resolve_pending(mongoc_collection_t* c) {
    bson_t filter = BSON_INITIALIZER, id_doc, in;
    bson_append_document_begin(&filter, "_id", 3, &id_doc);
    bson_append_array_begin(&id_doc, "$in", 3, &in);
    size_t n = 0;
    for (const auto& key : pending_order_) {
      const auto& p = pending_[key];
      bson_iter_t it;
      if (!p.resolved && bson_iter_init_find(&it, p.id->get(), "_id")) bson_append_iter(&in, std::to_string(n++).c_str(), -1, &it);
    }
    bson_append_array_end(&id_doc, &in);
    bson_append_document_end(&filter, &id_doc);
    Status s;
    if (n > 0) {
      mongoc_cursor_t* cur = MONGOC(mongoc_collection_find_with_opts)(c, &filter, nullptr, nullptr);
      const bson_t* doc;
      while (s.is_ok() && MONGOC(mongoc_cursor_next)(cur, &doc)) {
        auto p = pending_.find(id_key(doc));
        if (p == pending_.end() || p->second.resolved) continue;
        BsonDoc current(bson_copy(doc));
        for (const auto& diff : p->second.diffs) {
          auto next = apply_delta(current.get(), diff.get());
          if (!next) {
            s = next.status();
            break;
          }
          current = std::move(*next);
        }
        p->second.doc = std::move(current);
        p->second.resolved = true;
        p->second.diffs.clear();
      }
      bson_error_t err;
      if (s.is_ok() && MONGOC(mongoc_cursor_error)(cur, &err))
        s = mongo_error(err, fmt::format("reading {} to apply delta updates", pending_ns_));
      MONGOC(mongoc_cursor_destroy)(cur);
    }
    bson_destroy(&filter);
    return s;
  }

  Status pend(const ParsedOp& op, const std::string& ns, BsonDoc id) {
    LB_RETURN_IF_ERROR(pend_for(op, ns));
    std::string key = to_string(id.bytes());
    auto [it, fresh] = pending_.try_emplace(key);
    if (fresh) pending_order_.push_back(key);
    it->second.id = std::move(id);
    it->second.resolved = true;  // the whole document from here on: held delta updates are overtaken
    it->second.diffs.clear();
    pending_bytes_ += op.o ? op.o->get()->len : 0;
    if (op.op == "d") {
      it->second.doc.reset();
    } else if (op.op == "i") {
      it->second.doc = BsonDoc(bson_copy(op.o->get()));
    } else if (auto whole = whole_document_set(op.o->get())) {
      it->second.doc = std::move(*whole);
    } else {
      it->second.doc = BsonDoc(bson_copy(op.o->get()));
    }
    return Status::ok();
  }

  Status flush_pending() {
    if (pending_order_.empty()) return Status::ok();
    auto lease = conn_->lease();
    mongoc_collection_t* c = MONGOC(mongoc_client_get_collection)(lease.get(), pending_db_.c_str(), pending_coll_.c_str());
    if (Status r = resolve_pending(c); !r) {
      MONGOC(mongoc_collection_destroy)(c);
      return r;
    }
    bson_t filter = BSON_INITIALIZER, id_doc, in;
    bson_append_document_begin(&filter, "_id", 3, &id_doc);
    bson_append_array_begin(&id_doc, "$in", 3, &in);
    std::vector<const bson_t*> docs;
    size_t n = 0;
    for (const auto& key : pending_order_) {
      const auto& p = pending_[key];
      bson_iter_t it;
      if (bson_iter_init_find(&it, p.id->get(), "_id"))
        bson_append_iter(&in, std::to_string(n++).c_str(), -1, &it);
      if (p.doc) docs.push_back(p.doc->get());
    }
    bson_append_array_end(&id_doc, &in);
    bson_append_document_end(&filter, &id_doc);
    bson_error_t err;
    Status s;
    if (!MONGOC(mongoc_collection_delete_many)(c, &filter, nullptr, nullptr, &err))
      s = mongo_error(err, fmt::format("replaying oplog on {}", pending_ns_));
    if (s.is_ok() && !docs.empty()) {
      bson_t* opts = BCON_NEW("ordered", BCON_BOOL(false));
      if (!MONGOC(mongoc_collection_insert_many)(c, docs.data(), docs.size(), opts, nullptr, &err))
        s = mongo_error(err, fmt::format("replaying oplog on {}", pending_ns_));
      bson_destroy(opts);
    }
    bson_destroy(&filter);
    MONGOC(mongoc_collection_destroy)(c);
    pending_.clear();
    pending_order_.clear();
    pending_ns_.clear();
    pending_bytes_ = 0;
    return s;
  }

  Status flush_bulk() {
    if (!bulk_) return Status::ok();
    Status s;
    if (bulk_ops_ > 0) {
      bson_t reply;
      bson_error_t err;
      if (!MONGOC(mongoc_bulk_operation_execute)(bulk_, &reply, &err)) s = mongo_error(err, fmt::format("replaying oplog on {}", bulk_ns_));
      bson_destroy(&reply);
    }
    reset_bulk();
    return s;
  }

  // Runs `cmd` on database `db`; errors whose codes are in `done` mean "already as wanted" (replay is
  // idempotent: the full backup may already hold the command's effect).
  Status run_command(const std::string& db, const bson_t* cmd, const std::string& what, std::initializer_list<uint32_t> done) {
    auto lease = conn_->lease();
    bson_error_t err;
    if (MONGOC(mongoc_client_command_simple)(lease.get(), db.c_str(), cmd, nullptr, nullptr, &err)) return Status::ok();
    for (uint32_t code : done)
      if (err.code == code) return Status::ok();
    return mongo_error(err, what);
  }

  Status create_indexes(const std::string& db, const std::string& coll, const std::vector<BsonDoc>& specs) {
    if (specs.empty()) return Status::ok();
    bson_t cmd = BSON_INITIALIZER, arr;
    bson_append_utf8(&cmd, "createIndexes", -1, coll.c_str(), -1);
    bson_append_array_begin(&cmd, "indexes", -1, &arr);
    for (size_t i = 0; i < specs.size(); ++i) bson_append_document(&arr, std::to_string(i).c_str(), -1, specs[i].get());
    bson_append_array_end(&cmd, &arr);
    Status s = run_command(db, &cmd, fmt::format("replaying an index build on {}.{}", db, coll), {kIndexExists});
    bson_destroy(&cmd);
    return s;
  }

  // The commands the unpacker passes on (oplog_replay.h), as the target server runs them.
  Status apply_command(const ParsedOp& op) {
    if (!op.o) return Error(Code::kCorrupt, "command entry without o");
    std::string cmd = bson_first_key(op.o->get());
    std::string arg = bson_string(op.o->get(), cmd.c_str());
    std::string what = fmt::format("replaying {} of {}.{}", cmd, op.db, arg);
    if (cmd == "create") {
      BsonDoc c = without_fields(op.o->get(), {"idIndex"});
      return run_command(op.db, c.get(), what, {kNamespaceExists});
    }
    if (cmd == "drop") {
      bson_t* c = BCON_NEW("drop", BCON_UTF8(arg.c_str()));
      Status s = run_command(op.db, c, what, {kNamespaceNotFound});
      bson_destroy(c);
      return s;
    }
    if (cmd == "dropDatabase") {
      bson_t* c = BCON_NEW("dropDatabase", BCON_INT32(1));
      Status s = run_command(op.db, c, fmt::format("replaying dropDatabase of {}", op.db), {});
      bson_destroy(c);
      return s;
    }
    if (cmd == "renameCollection") {
      std::string to = bson_string(op.o->get(), "to");
      bson_iter_t it;
      bool drop_target = bson_iter_init_find(&it, op.o->get(), "dropTarget") &&
                         (BSON_ITER_HOLDS_BINARY(&it) || bson_iter_as_bool(&it));  // 4.4+: the dropped UUID
      bson_t* c = BCON_NEW("renameCollection", BCON_UTF8(arg.c_str()), "to", BCON_UTF8(to.c_str()), "dropTarget",
                           BCON_BOOL(drop_target));
      Status s = run_command("admin", c, fmt::format("replaying renameCollection of {} to {}", arg, to), {kNamespaceNotFound});
      bson_destroy(c);
      return s;
    }
    if (cmd == "createIndexes") {
      BsonDoc spec = without_fields(op.o->get(), {"createIndexes"});
      std::vector<BsonDoc> specs;
      specs.push_back(clean_index_spec(spec.get()));
      return create_indexes(op.db, arg, specs);
    }
    if (cmd == "commitIndexBuild") return create_indexes(op.db, arg, index_specs(op.o->get()));
    if (cmd == "startIndexBuild" || cmd == "abortIndexBuild") return Status::ok();  // the commit builds it
    if (cmd == "dropIndexes" || cmd == "deleteIndexes") {
      std::string index = bson_string(op.o->get(), "index");
      bson_t* c = BCON_NEW("dropIndexes", BCON_UTF8(arg.c_str()), "index", BCON_UTF8(index.c_str()));
      Status s = run_command(op.db, c, what, {kNamespaceNotFound, kIndexNotFound});
      bson_destroy(c);
      return s;
    }
    if (cmd == "emptycapped") {
      // Removed from the server in 7.0; its effect is every document gone.
      auto lease = conn_->lease();
      mongoc_collection_t* c = MONGOC(mongoc_client_get_collection)(lease.get(), op.db.c_str(), arg.c_str());
      BsonDoc all;
      bson_error_t err;
      bool ok = MONGOC(mongoc_collection_delete_many)(c, all.get(), nullptr, nullptr, &err);
      MONGOC(mongoc_collection_destroy)(c);
      return ok ? Status::ok() : mongo_error(err, what);
    }
    if (cmd == "collMod" || cmd == "convertToCapped") return run_command(op.db, op.o->get(), what, {});
    return Error(Code::kInvalidArgument, fmt::format("{}: not a command the restore replays", what));
  }

  std::unique_ptr<MongoConnection> conn_;
  ServerSinkOptions o_;
  CollectionSpec spec_;
  ParsedMetadata meta_;
  std::atomic<uint64_t> duplicates_{0};
  std::mutex mu_;
  Status error_;
  std::unique_ptr<ClientLease> op_lease_;
  mongoc_collection_t* bulk_coll_ = nullptr;
  mongoc_bulk_operation_t* bulk_ = nullptr;
  std::string bulk_ns_;
  size_t max_bulk_ops_ = 1000;
  struct Pending {
    std::optional<BsonDoc> id, doc;  // doc unset: deleted
    // Delta updates of a document not read yet: applied to the target's document at the flush,
    // which reads every such document of the run in one query.
    bool resolved = true;
    std::vector<BsonDoc> diffs;
  };
  // A run is flushed with one read (held delta updates), one delete and one insert. Each of them
  // scans the whole collection on FerretDB (no index use for $in), so long runs cost fewer scans:
  // 10,000 documents, or 64 MiB of documents and held diffs, whichever comes first.
  static constexpr size_t kMaxPending = 10000, kMaxPendingBytes = 64 << 20;
  size_t pending_bytes_ = 0;
  std::string pending_ns_, pending_db_, pending_coll_;
  std::unordered_map<std::string, Pending> pending_;
  std::vector<std::string> pending_order_;
  size_t bulk_ops_ = 0;
  WorkerPool pool_;  // last: its threads stop before the members they use go
};

Status write_all(int fd, ByteView data, const std::string& path) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Error(Code::kIo, fmt::format("writing {}: {}", path, strerror(errno)));
    }
    off += static_cast<size_t>(n);
  }
  return Status::ok();
}

Status write_file_atomic(const std::string& path, ByteView data) {
  return lifeboat::write_file_atomic(path, std::string_view(reinterpret_cast<const char*>(data.data()), data.size()));
}

Status make_dir(const std::string& path) {
  if (::mkdir(path.c_str(), 0755) != 0 && errno != EEXIST)
    return Error(Code::kIo, fmt::format("creating {}: {}", path, strerror(errno)));
  return Status::ok();
}

Result<Bytes> read_whole(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Error(Code::kNotFound, path);
  Bytes out;
  char buf[1 << 16];
  while (in.read(buf, sizeof buf) || in.gcount() > 0)
    out.insert(out.end(), reinterpret_cast<uint8_t*>(buf), reinterpret_cast<uint8_t*>(buf) + in.gcount());
  return out;
}

// Applies one data entry to documents held by their _id key, as a server would.
Status apply_to_docs(std::map<std::string, Bytes>& docs, const bson_t* raw) {
  ParsedOp op = parse_op(raw);
  if (!op.o) return Status::ok();
  auto put = [&](const bson_t* d) { docs[id_key(d)] = Bytes(bson_get_data(d), bson_get_data(d) + d->len); };
  if (op.op == "i") {
    put(op.o->get());
  } else if (op.op == "d") {
    docs.erase(id_key(op.o->get()));
  } else if (op.op == "u") {
    if (!op.o2) return Status::ok();
    std::string key = id_key(op.o2->get());
    if (auto diff = bson_sub_document(op.o->get(), "diff")) {
      auto it = docs.find(key);
      if (it == docs.end()) return Status::ok();
      BsonView cur(it->second);
      LB_ASSIGN_OR_RETURN(auto next, apply_delta(cur.get(), diff->get()));
      it->second = Bytes(next.bytes().begin(), next.bytes().end());
    } else if (auto whole = whole_document_set(op.o->get())) {
      put(whole->get());
    } else if (first_key_is_operator(op.o->get())) {
      auto it = docs.find(key);
      if (it == docs.end()) return Status::ok();
      BsonView cur(it->second);
      LB_ASSIGN_OR_RETURN(auto next, apply_modifiers(cur.get(), op.o->get()));
      it->second = Bytes(next.bytes().begin(), next.bytes().end());
    } else {
      put(op.o->get());
    }
  }
  return Status::ok();
}

// A document as mongodump's metadata.json holds it (canonical extended JSON); libbson refuses
// strings that are not UTF-8, which no server writes.
Result<nlohmann::json> json_of(const bson_t* doc) {
  char* text = bson_as_canonical_extended_json(doc, nullptr);
  if (!text) return Error(Code::kCorrupt, "an oplog command holds a string that is not UTF-8");
  nlohmann::json out = nlohmann::json::parse(text, nullptr, false);
  bson_free(text);
  if (out.is_discarded()) return Error(Code::kCorrupt, "an oplog command could not be read as JSON");
  return out;
}

// A collection's <coll>.metadata.json as mongodump writes it, for a collection the oplog created.
nlohmann::json default_metadata(const std::string& coll) {
  return {{"options", nlohmann::json::object()},
          {"indexes", {{{"v", {{"$numberInt", "2"}}}, {"key", {{"_id", {{"$numberInt", "1"}}}}}, {"name", "_id_"}}}},
          {"collectionName", coll},
          {"type", "collection"}};
}

// Adds an index specification to a metadata document, replacing one of the same name.
void put_index(nlohmann::json& metadata, nlohmann::json spec) {
  auto& indexes = metadata["indexes"];
  if (!indexes.is_array()) indexes = nlohmann::json::array();
  for (auto& ix : indexes)
    if (ix.value("name", "") == spec.value("name", "")) {
      ix = std::move(spec);
      return;
    }
  indexes.push_back(std::move(spec));
}

// The mongodump-layout directory: collections stream to files; the collections the oplog touches
// are then held in memory, changed entry by entry (documents, options, indexes) and written back.
class DirSink final : public RestoreSink {
 public:
  explicit DirSink(std::string dir) : dir_(std::move(dir)) {}

  Status begin_collection(const CollectionSpec& spec) override {
    spec_ = spec;
    LB_RETURN_IF_ERROR(make_dir(dir_ + "/" + spec.db));
    std::string base = dir_ + "/" + spec.db + "/" + spec.name;
    LB_RETURN_IF_ERROR(write_file_atomic(base + ".metadata.json", as_bytes(spec.metadata_json)));
    tmp_path_ = base + ".bson.tmp";
    fd_ = ::open(tmp_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd_ < 0) return Error(Code::kIo, fmt::format("creating {}: {}", tmp_path_, strerror(errno)));
    return Status::ok();
  }

  Status insert_batch(std::vector<Bytes> docs) override {
    for (const auto& d : docs) LB_RETURN_IF_ERROR(write_all(fd_, d, tmp_path_));
    return Status::ok();
  }

  Result<uint64_t> end_collection() override {
    ::close(fd_);
    fd_ = -1;
    std::string final_path = tmp_path_.substr(0, tmp_path_.size() - 4);
    if (::rename(tmp_path_.c_str(), final_path.c_str()) != 0)
      return Error(Code::kIo, fmt::format("renaming {}: {}", tmp_path_, strerror(errno)));
    return uint64_t{0};
  }

  Status apply_op(const bson_t* raw) override {
    ParsedOp op = parse_op(raw);
    if (op.op == "n" || op.op.empty()) return Status::ok();
    if (op.op == "c") return apply_command(op);
    if (op.coll.empty()) return Status::ok();
    LB_ASSIGN_OR_RETURN(Coll * c, load(op.db, op.coll));
    c->exists = true;  // an insert creates the collection
    return apply_to_docs(c->docs, raw);
  }

  Status finish() override {
    for (auto& [key, c] : colls_) {
      std::string base = dir_ + "/" + c.db + "/" + c.name;
      if (!c.exists) {
        for (const char* ext : {".bson", ".metadata.json"})
          if (::unlink((base + ext).c_str()) != 0 && errno != ENOENT)
            return Error(Code::kIo, fmt::format("removing {}{}: {}", base, ext, strerror(errno)));
        continue;
      }
      LB_RETURN_IF_ERROR(make_dir(dir_ + "/" + c.db));
      // Names come from the oplog: one that is not UTF-8 is written with replacement characters.
      LB_RETURN_IF_ERROR(write_file_atomic(
          base + ".metadata.json", as_bytes(c.metadata.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace))));
      Bytes out;
      for (const auto& [k, d] : c.docs) out.insert(out.end(), d.begin(), d.end());
      LB_RETURN_IF_ERROR(write_file_atomic(base + ".bson", out));
    }
    return Status::ok();
  }

 private:
  struct Coll {
    std::string db, name;
    std::map<std::string, Bytes> docs;  // by _id key
    nlohmann::json metadata;
    bool exists = false;
  };

  // The collection as the directory holds it now (read once, then kept in memory).
  Result<Coll*> load(const std::string& db, const std::string& coll) {
    auto [it, fresh] = colls_.try_emplace(db + "\n" + coll);
    Coll& c = it->second;
    if (!fresh) return &c;
    c.db = db;
    c.name = coll;
    std::string base = dir_ + "/" + db + "/" + coll;
    if (auto meta = read_whole(base + ".metadata.json")) {
      c.metadata = nlohmann::json::parse(to_string(*meta), nullptr, false);
      if (!c.metadata.is_object()) return Error(Code::kCorrupt, fmt::format("{}.metadata.json is not a JSON object", base));
      c.exists = true;
    } else {
      c.metadata = default_metadata(coll);
    }
    if (auto existing = read_whole(base + ".bson")) {
      c.exists = true;
      size_t off = 0;
      while (off < existing->size()) {
        ByteView rest(existing->data() + off, existing->size() - off);
        LB_ASSIGN_OR_RETURN(size_t len, bson_frame_length(rest, base + ".bson"));
        if (len > rest.size() || !bson_framed(rest.first(len)))
          return Error(Code::kCorrupt, fmt::format("{}.bson: damaged document at offset {}", base, off));
        BsonView v(rest.first(len));
        c.docs[id_key(v.get())] = Bytes(rest.begin(), rest.begin() + static_cast<ptrdiff_t>(len));
        off += len;
      }
    }
    return &c;
  }

  void drop(Coll& c) {
    c.exists = false;
    c.docs.clear();
    c.metadata = default_metadata(c.name);
  }

  Status apply_command(const ParsedOp& op) {
    if (!op.o) return Error(Code::kCorrupt, "command entry without o");
    std::string cmd = bson_first_key(op.o->get());
    std::string arg = bson_string(op.o->get(), cmd.c_str());
    if (cmd == "dropDatabase") {
      std::error_code ec;
      for (const auto& entry : std::filesystem::directory_iterator(dir_ + "/" + op.db, ec)) {
        std::string file = entry.path().filename();
        for (const char* ext : {".metadata.json", ".bson"})
          if (file.ends_with(ext)) LB_RETURN_IF_ERROR(load(op.db, file.substr(0, file.size() - strlen(ext))).status());
      }
      for (auto& [key, c] : colls_)
        if (c.db == op.db) drop(c);
      return Status::ok();
    }
    if (cmd == "renameCollection") {
      auto [from_db, from_coll] = split_namespace(arg);
      auto [to_db, to_coll] = split_namespace(bson_string(op.o->get(), "to"));
      LB_ASSIGN_OR_RETURN(Coll * from, load(from_db, from_coll));
      if (!from->exists) return Status::ok();  // already renamed when the dump read it
      LB_ASSIGN_OR_RETURN(Coll * to, load(to_db, to_coll));
      to->docs = std::move(from->docs);
      to->metadata = std::move(from->metadata);
      to->metadata["collectionName"] = to_coll;
      to->exists = true;
      drop(*from);
      return Status::ok();
    }
    LB_ASSIGN_OR_RETURN(Coll * c, load(op.db, arg));
    if (cmd == "create") {
      if (c->exists) return Status::ok();
      c->exists = true;
      c->docs.clear();
      c->metadata = default_metadata(arg);
      LB_ASSIGN_OR_RETURN(c->metadata["options"], json_of(without_fields(op.o->get(), {"create", "idIndex"}).get()));
      if (auto id_index = bson_sub_document(op.o->get(), "idIndex")) {
        LB_ASSIGN_OR_RETURN(auto spec, json_of(id_index->get()));
        c->metadata["indexes"] = nlohmann::json::array({std::move(spec)});
      }
    } else if (cmd == "drop") {
      drop(*c);
    } else if (cmd == "createIndexes") {
      LB_ASSIGN_OR_RETURN(auto spec, json_of(clean_index_spec(without_fields(op.o->get(), {"createIndexes"}).get()).get()));
      put_index(c->metadata, std::move(spec));
    } else if (cmd == "commitIndexBuild") {
      for (const auto& spec : index_specs(op.o->get())) {
        LB_ASSIGN_OR_RETURN(auto j, json_of(spec.get()));
        put_index(c->metadata, std::move(j));
      }
    } else if (cmd == "dropIndexes" || cmd == "deleteIndexes") {
      std::string name = bson_string(op.o->get(), "index");
      auto& indexes = c->metadata["indexes"];
      if (indexes.is_array())
        indexes.erase(std::remove_if(indexes.begin(), indexes.end(),
                                     [&](const nlohmann::json& ix) { return ix.value("name", "") == name; }),
                      indexes.end());
    } else if (cmd == "collMod") {
      LB_ASSIGN_OR_RETURN(nlohmann::json change, json_of(op.o->get()));
      for (auto& [k, v] : change.items()) {
        if (k == "collMod") continue;
        if (k != "index") {
          c->metadata["options"][k] = v;
          continue;
        }
        // An index's TTL or visibility, named by its name or its key pattern.
        for (auto& ix : c->metadata["indexes"]) {
          if ((v.contains("name") && ix.value("name", "") == v["name"]) ||
              (v.contains("keyPattern") && ix.value("key", nlohmann::json()) == v["keyPattern"]))
            for (auto& [field, value] : v.items())
              if (field != "name" && field != "keyPattern") ix[field] = value;
        }
      }
    } else if (cmd == "convertToCapped") {
      // The server rebuilds the collection capped with these options and only its _id index.
      LB_ASSIGN_OR_RETURN(auto change, json_of(op.o->get()));
      c->metadata["options"] = {{"capped", true}, {"size", change.value("size", nlohmann::json())}};
      auto& indexes = c->metadata["indexes"];
      if (indexes.is_array())
        indexes.erase(std::remove_if(indexes.begin(), indexes.end(),
                                     [](const nlohmann::json& ix) { return !ix.is_object() || ix.value("name", nlohmann::json()) != "_id_"; }),
                      indexes.end());
    } else if (cmd == "emptycapped") {
      c->docs.clear();
    } else if (cmd != "startIndexBuild" && cmd != "abortIndexBuild") {
      return Error(Code::kInvalidArgument, fmt::format("replaying {} into a directory: not a command the restore replays", cmd));
    }
    return Status::ok();
  }

  std::string dir_;
  CollectionSpec spec_;
  std::string tmp_path_;
  int fd_ = -1;
  std::map<std::string, Coll> colls_;  // "db\ncoll" -> the collections the oplog touched
};


// A document as relaxed extended JSON with its keys in order (an index's key pattern is ordered).
Result<nlohmann::ordered_json> ordered_relaxed(const bson_t* doc) {
  char* text = bson_as_relaxed_extended_json(doc, nullptr);
  if (!text) return Error(Code::kCorrupt, "a collection's metadata holds a string that is not UTF-8");
  auto out = nlohmann::ordered_json::parse(text, nullptr, false);
  bson_free(text);
  if (out.is_discarded()) return Error(Code::kCorrupt, "a collection's metadata could not be read as JSON");
  return out;
}

// A string member, or "" (a field of another type, as a server or an oplog entry may hold, is not one).
template <typename Json>
std::string string_member(const Json& j, const char* key) {
  if (!j.is_object()) return "";
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->template get<std::string>() : "";
}

// Flags that are false say what their absence says.
nlohmann::json without_false_flags(nlohmann::json j) {
  for (auto it = j.begin(); it != j.end();) {
    if (it->is_boolean() && !it->get<bool>()) it = j.erase(it);
    else ++it;
  }
  return j;
}

// An index spec as the checks compare it: the key pattern as [[field, direction], ...] (its order
// matters), without `v`, `ns` and `background`.
nlohmann::json comparable_index(const nlohmann::ordered_json& spec) {
  nlohmann::json out = nlohmann::json::object();
  for (const auto& [k, v] : spec.items()) {
    if (k == "v" || k == "ns" || k == "background") continue;
    if (k == "key" && v.is_object()) {
      nlohmann::json pairs = nlohmann::json::array();
      for (const auto& [field, dir] : v.items()) pairs.push_back({field, nlohmann::json::parse(dir.dump())});
      out["key"] = std::move(pairs);
    } else {
      out[k] = nlohmann::json::parse(v.dump());
    }
  }
  return without_false_flags(std::move(out));
}

nlohmann::json comparable_options(const nlohmann::ordered_json& options) {
  nlohmann::json out = options.is_object() ? nlohmann::json::parse(options.dump()) : nlohmann::json::object();
  out = without_false_flags(std::move(out));
  if (out.contains("capped") && out["capped"] == true && out.contains("size") && out["size"].is_number()) {
    auto size = static_cast<int64_t>(out["size"].get<double>());
    out["size"] = (size + 255) / 256 * 256;
  }
  return out;
}

nlohmann::json comparable_from(const nlohmann::ordered_json& meta) {
  nlohmann::json out = {{"options", comparable_options(meta.value("options", nlohmann::ordered_json::object()))},
                        {"indexes", nlohmann::json::object()}};
  for (const auto& ix : meta.value("indexes", nlohmann::ordered_json::array()))
    if (ix.is_object()) out["indexes"][string_member(ix, "name")] = comparable_index(ix);
  return out;
}

// A collection the oplog made: no options, the _id index.
nlohmann::json default_comparable_metadata() {
  return {{"options", nlohmann::json::object()},
          {"indexes", {{"_id_", {{"key", nlohmann::json::array({nlohmann::json::array({"_id", 1})})}, {"name", "_id_"}}}}}};
}

}  // namespace

Result<nlohmann::json> comparable_metadata(const std::string& metadata_json) {
  if (metadata_json.empty()) return default_comparable_metadata();
  LB_ASSIGN_OR_RETURN(auto doc, BsonDoc::from_json(metadata_json));
  LB_ASSIGN_OR_RETURN(auto meta, ordered_relaxed(doc.get()));
  if (!meta.is_object()) return Error(Code::kCorrupt, "a collection's metadata is not a document");
  return comparable_from(meta);
}

std::vector<std::string> metadata_differences(const nlohmann::json& want, const nlohmann::json& got) {
  std::vector<std::string> out;
  auto options = [](const nlohmann::json& m) { return m.value("options", nlohmann::json::object()); };
  if (options(want) != options(got))
    out.push_back(fmt::format("options {} where {} was expected", options(got).dump(), options(want).dump()));
  auto want_ix = want.value("indexes", nlohmann::json::object()), got_ix = got.value("indexes", nlohmann::json::object());
  for (const auto& [name, spec] : want_ix.items()) {
    if (!got_ix.contains(name)) out.push_back(fmt::format("index {} missing", name));
    else if (got_ix[name] != spec) out.push_back(fmt::format("index {} is {} where {} was expected", name, got_ix[name].dump(), spec.dump()));
  }
  for (const auto& [name, spec] : got_ix.items())
    if (!want_ix.contains(name)) out.push_back(fmt::format("index {} ({}) is not in the backup", name, spec.dump()));
  return out;
}

namespace {
}  // namespace

std::string ExpectedState::origin(const std::string& ns) {
  if (auto it = origin_.find(ns); it != origin_.end()) return it->second;
  if (dropped_dbs_.count(ns.substr(0, ns.find('.')))) return origin_[ns] = fresh_origin();
  return ns;
}

std::string ExpectedState::fresh_origin() { return fmt::format("\x01new {}", ++fresh_); }

void ExpectedState::note_op(const bson_t* op) {
  ParsedOp p = parse_op(op);
  if (p.op == "n" || !p.o) return;
  if (p.op == "c") {
    // Which backed-up collection each name holds from here on: a rename carries it along; a drop
    // leaves the name with a new, empty collection whose documents come from the oplog alone.
    std::string cmd = bson_first_key(p.o->get());
    std::string arg = bson_string(p.o->get(), cmd.c_str());
    if (cmd == "renameCollection") {
      std::string to = bson_string(p.o->get(), "to");
      origin_[to] = origin(arg);
      origin_[arg] = fresh_origin();
    } else if (cmd == "drop" || cmd == "emptycapped") {
      origin_[p.db + "." + arg] = fresh_origin();
    } else if (cmd == "dropDatabase") {
      for (auto& [ns, from] : origin_)
        if (ns.starts_with(p.db + ".")) from = fresh_origin();
      dropped_dbs_.insert(p.db);
    }
    return;
  }
  if (p.coll.empty()) return;
  const auto& id_doc = p.op == "u" ? p.o2 : p.o;
  if (id_doc) colls_[origin(p.db + "." + p.coll)].touched.insert(id_key(id_doc->get()));
}

void ExpectedState::add_document(const std::string& ns, ByteView doc) {
  auto& c = colls_[ns];
  c.all.add(doc);
  if (c.touched.empty()) return;
  BsonView v(doc);
  std::string key = id_key(v.get());
  if (!c.touched.count(key)) return;
  c.before.add(doc);
  c.docs[key] = Bytes(doc.begin(), doc.end());
}

void ExpectedState::add_collection(const std::string& ns, const std::string& metadata_json) {
  auto& c = colls_[ns];
  c.exists = true;
  auto meta = comparable_metadata(metadata_json);
  c.metadata = meta ? *meta : nlohmann::json();
}

void ExpectedState::apply_metadata_command(const std::string& db, const std::string& cmd, const bson_t* raw) {
  auto parsed = ordered_relaxed(raw);
  if (!parsed) return;
  const nlohmann::ordered_json& o = *parsed;
  std::string arg = string_member(o, cmd.c_str());
  if (cmd == "renameCollection") {
    State moved = std::move(colls_[arg]);
    colls_[arg] = State{};
    colls_[string_member(o, "to")] = std::move(moved);
    return;
  }
  if (cmd == "dropDatabase") {
    for (auto& [ns, c] : colls_)
      if (ns.starts_with(db + ".")) c = State{};
    return;
  }
  static const std::set<std::string> kChanging = {"create", "drop", "emptycapped", "convertToCapped", "createIndexes",
                                                    "commitIndexBuild", "dropIndexes", "deleteIndexes", "collMod"};
  if (arg.empty() || !kChanging.count(cmd)) return;  // startIndexBuild, abortIndexBuild, …: nothing changes yet
  auto& c = colls_[db + "." + arg];
  auto ensure = [&] {  // a server creates a collection that an index build or a write names
    if (c.exists) return;
    c.exists = true;
    c.metadata = default_comparable_metadata();
  };
  auto indexes = [&]() -> nlohmann::json& { return c.metadata["indexes"]; };
  bool changes_metadata = cmd != "create" && cmd != "drop" && cmd != "emptycapped";
  if (changes_metadata && c.exists && !c.metadata.is_object()) return;  // not known: stays not known
  if (cmd == "create") {
    if (c.exists || o.contains("viewOn")) return;  // already dumped; a view is not data
    c.exists = true;
    nlohmann::ordered_json options = o;
    options.erase("create");
    options.erase("idIndex");
    c.metadata = {{"options", comparable_options(options)}, {"indexes", nlohmann::json::object()}};
    auto id_index = o.value("idIndex", nlohmann::ordered_json());
    if (id_index.is_object()) indexes()["_id_"] = comparable_index(id_index);
    else c.metadata["indexes"] = default_comparable_metadata()["indexes"];
  } else if (cmd == "drop") {
    c = State{};
  } else if (cmd == "emptycapped") {
    State emptied;
    emptied.exists = c.exists;
    emptied.metadata = std::move(c.metadata);
    c = std::move(emptied);
  } else if (cmd == "convertToCapped") {
    // The server rebuilds the collection capped: only the _id index survives, and the oldest
    // documents may not.
    c.predictable = false;
    c.why = "convertToCapped may have removed the oldest documents";
    ensure();
    c.metadata["options"] = comparable_options({{"capped", true}, {"size", o.value("size", nlohmann::ordered_json(0))}});
    auto id = indexes().is_object() ? indexes().value("_id_", nlohmann::json()) : nlohmann::json();
    indexes() = nlohmann::json::object();
    if (!id.is_null()) indexes()["_id_"] = id;
  } else if (cmd == "createIndexes") {
    ensure();
    nlohmann::ordered_json spec = o;
    spec.erase("createIndexes");
    indexes()[string_member(spec, "name")] = comparable_index(spec);
  } else if (cmd == "commitIndexBuild") {
    ensure();
    for (const auto& spec : o.value("indexes", nlohmann::ordered_json::array()))
      if (spec.is_object()) indexes()[string_member(spec, "name")] = comparable_index(spec);
  } else if ((cmd == "dropIndexes" || cmd == "deleteIndexes") && c.exists) {
    auto which = o.value("index", nlohmann::ordered_json());
    std::vector<std::string> names;
    if (which.is_string() && which.get<std::string>() == "*") {
      for (const auto& [name, spec] : indexes().items())
        if (name != "_id_") names.push_back(name);
    } else if (which.is_string()) {
      names.push_back(which.get<std::string>());
    } else if (which.is_array()) {
      for (const auto& n : which)
        if (n.is_string()) names.push_back(n.get<std::string>());
    } else if (which.is_object()) {  // named by its key pattern
      auto key = comparable_index({{"key", which}})["key"];
      for (const auto& [name, spec] : indexes().items())
        if (spec.value("key", nlohmann::json()) == key) names.push_back(name);
    }
    for (const auto& n : names) indexes().erase(n);
  } else if (cmd == "collMod" && c.exists) {
    for (const auto& [k, v] : o.items()) {
      if (k == "collMod") continue;
      if (k == "index" && v.is_object()) {  // an index's TTL, visibility or uniqueness, by name or key pattern
        auto key = v.contains("keyPattern") ? comparable_index({{"key", v["keyPattern"]}})["key"] : nlohmann::json();
        for (auto& [name, spec] : indexes().items()) {
          if (!(v.contains("name") && v["name"] == name) && !(!key.is_null() && spec.value("key", nlohmann::json()) == key)) continue;
          for (const auto& [field, value] : v.items())
            if (field != "name" && field != "keyPattern") spec[field] = nlohmann::json::parse(value.dump());
          spec = without_false_flags(std::move(spec));
        }
        continue;
      }
      std::string key = k == "cappedSize" ? "size" : k == "cappedMax" ? "max" : k;
      c.metadata["options"][key] = nlohmann::json::parse(v.dump());
    }
    c.metadata["options"] = comparable_options(nlohmann::ordered_json::parse(c.metadata["options"].dump()));
  }
}

void ExpectedState::apply_op(const bson_t* op) {
  ParsedOp p = parse_op(op);
  if (p.op == "n" || !p.o) return;
  if (p.op == "c") {
    apply_metadata_command(p.db, bson_first_key(p.o->get()), p.o->get());
    return;
  }
  if (p.coll.empty()) return;
  auto& c = colls_[p.db + "." + p.coll];
  if (!c.exists && (p.op == "i" || p.op == "u")) {  // a write creates the collection it names
    c.exists = true;
    c.metadata = default_comparable_metadata();
  }
  if (!c.predictable) return;
  Status s = apply_to_docs(c.docs, op);
  if (!s) {
    c.predictable = false;
    c.why = s.message();
  }
}

std::map<std::string, ExpectedState::Collection> ExpectedState::finish() const {
  std::map<std::string, Collection> out;
  for (const auto& [ns, c] : colls_) {
    if (ns.starts_with('\x01')) continue;  // a state no name holds any more
    CollectionDigest d = c.all;
    d.subtract(c.before);
    for (const auto& [k, doc] : c.docs) d.add(doc);
    out[ns] = Collection{d.count(), d.hash_hex(), c.predictable, c.why, c.exists, c.metadata};
  }
  return out;
}

Result<CollectionDigest> digest_server_collection(MongoConnection& conn, const std::string& db, const std::string& coll) {
  auto lease = conn.lease();
  mongoc_collection_t* c = MONGOC(mongoc_client_get_collection)(lease.get(), db.c_str(), coll.c_str());
  BsonDoc filter;
  mongoc_cursor_t* cur = MONGOC(mongoc_collection_find_with_opts)(c, filter.get(), nullptr, nullptr);
  CollectionDigest d;
  const bson_t* doc;
  while (MONGOC(mongoc_cursor_next)(cur, &doc)) d.add(ByteView(bson_get_data(doc), doc->len));
  bson_error_t err;
  Status s = MONGOC(mongoc_cursor_error)(cur, &err) ? mongo_error(err, "reading " + db + "." + coll + " back") : Status::ok();
  MONGOC(mongoc_cursor_destroy)(cur);
  MONGOC(mongoc_collection_destroy)(c);
  if (!s) return s;
  return d;
}

Result<CollectionDigest> digest_dir_collection(const std::string& dir, const std::string& db, const std::string& coll) {
  std::string path = dir + "/" + db + "/" + coll + ".bson";
  CollectionDigest d;
  std::ifstream in(path, std::ios::binary);
  if (!in) return d;  // absent: an empty collection
  Bytes doc;
  while (true) {
    uint8_t len_bytes[4];
    if (!in.read(reinterpret_cast<char*>(len_bytes), 4)) {
      if (in.gcount() == 0) break;
      return Error(Code::kCorrupt, fmt::format("{}: truncated document", path));
    }
    LB_ASSIGN_OR_RETURN(size_t len, bson_frame_length(ByteView(len_bytes, 4), path));
    doc.resize(len);
    std::memcpy(doc.data(), len_bytes, 4);
    if (!in.read(reinterpret_cast<char*>(doc.data()) + 4, static_cast<std::streamsize>(len - 4)))
      return Error(Code::kCorrupt, fmt::format("{}: truncated document", path));
    if (!bson_framed(doc)) return Error(Code::kCorrupt, fmt::format("{}: damaged document", path));
    d.add(doc);
  }
  return d;
}

Result<std::unique_ptr<RestoreSink>> make_server_sink(const std::string& uri, const ServerSinkOptions& options) {
  LB_ASSIGN_OR_RETURN(auto conn, MongoConnection::connect(uri, static_cast<int>(options.threads) + 2));
  return std::unique_ptr<RestoreSink>(new ServerSink(std::move(conn), options));
}

Result<std::unique_ptr<RestoreSink>> make_dir_sink(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Error(Code::kIo, fmt::format("creating {}: {}", dir, ec.message()));
  return std::unique_ptr<RestoreSink>(new DirSink(dir));
}

}  // namespace lifeboat::sources::mongodb
