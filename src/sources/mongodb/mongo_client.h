// libmongoc made safe to hold: a client pool with RAII leases, Status errors, oplog timestamps.
#pragma once

#include <bson/bson.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/bytes.h"
#include "core/status.h"
#include "sources/mongodb/mongoc_loader.h"

namespace lifeboat::sources::mongodb {

// A BSON Timestamp (oplog `ts`): seconds since the epoch and an ordinal within the second.
struct OplogTime {
  uint32_t t = 0, i = 0;
  auto operator<=>(const OplogTime&) const = default;
  bool is_zero() const { return t == 0 && i == 0; }
  std::string to_string() const;  // "1732540000:3"
};

// Owns a bson_t; moves, never copies.
class BsonDoc {
 public:
  BsonDoc() : doc_(bson_new()) {}
  explicit BsonDoc(bson_t* adopt) : doc_(adopt) {}
  static Result<BsonDoc> from_json(std::string_view json);
  static Result<BsonDoc> from_bytes(ByteView bytes);
  BsonDoc(BsonDoc&& o) noexcept : doc_(o.doc_) { o.doc_ = nullptr; }
  BsonDoc& operator=(BsonDoc&& o) noexcept {
    std::swap(doc_, o.doc_);
    return *this;
  }
  BsonDoc(const BsonDoc&) = delete;
  ~BsonDoc() {
    if (doc_) bson_destroy(doc_);
  }
  bson_t* get() { return doc_; }
  const bson_t* get() const { return doc_; }
  ByteView bytes() const { return {bson_get_data(doc_), doc_->len}; }
  std::string to_json() const;  // canonical extended JSON

 private:
  bson_t* doc_;
};

Status mongo_error(const bson_error_t& error, const std::string& context);

// How far the oplog is proved complete: every entry with ts.t <= through_s has been read. Only the
// server's own evidence counts (positions it handed over, its operationTime or clock), never the
// reader's clock; the rule is in docs/format.md ("What a slice proves").
struct OplogProof {
  uint32_t through_s = 0;  // 0: nothing proved
  std::string how;         // the evidence, for restores that explain their point
  bool unread = false;     // the server holds entries after the read position not handed over yet
};

// What having read every entry up to position `read` proves by itself: the seconds before read.t.
OplogProof position_proof(OplogTime read);
// Replaces `into` with `other` when `other` proves more.
void keep_stronger(OplogProof& into, OplogProof other);

class MongoConnection;

// A client borrowed from the pool, returned when it goes out of scope.
class ClientLease {
 public:
  ClientLease(mongoc_client_pool_t* pool) : pool_(pool), client_(MONGOC(mongoc_client_pool_pop)(pool)) {}
  ClientLease(ClientLease&& o) noexcept : pool_(o.pool_), client_(o.client_) { o.client_ = nullptr; }
  ~ClientLease() {
    if (client_) MONGOC(mongoc_client_pool_push)(pool_, client_);
  }
  ClientLease(const ClientLease&) = delete;
  ClientLease& operator=(const ClientLease&) = delete;
  mongoc_client_t* get() const { return client_; }

 private:
  mongoc_client_pool_t* pool_;
  mongoc_client_t* client_;
};

class MongoConnection {
 public:
  // Parses the URI (clear error when malformed), sets a short server-selection timeout unless the
  // URI sets one, and pings the server so "unreachable" and "auth failed" surface here.
  static Result<std::unique_ptr<MongoConnection>> connect(const std::string& uri, int max_clients = 8);
  ~MongoConnection();
  ClientLease lease() { return ClientLease(pool_); }
  // The URI without credentials or options, for logs and snapshot paths: "mongodb://h1:27017,h2:27017".
  const std::string& display_name() const { return display_; }

  Result<std::vector<std::string>> database_names();
  // The newest (or oldest) oplog entry's ts; nullopt when there is no oplog or it is empty.
  Result<std::optional<OplogTime>> oplog_edge(bool newest);
  Result<bool> has_oplog();
  // Asks the server for its time (operationTime, else hello's localTime), then for the oplog's
  // newest entry. With everything up to `read` already read and nothing newer logged, every entry
  // the server stamped before its time has been read; else only `read` itself proves anything.
  Result<OplogProof> prove_read_through(OplogTime read);
  // buildInfo names FerretDB (whose limits some callers work around).
  bool is_ferretdb();

 private:
  MongoConnection() = default;
  mongoc_uri_t* uri_ = nullptr;
  mongoc_client_pool_t* pool_ = nullptr;
  std::string display_;
};

// Strips "user:password@" and "?options" from a MongoDB URI.
std::string redact_uri(const std::string& uri);

// Reads field `name` of a document as a timestamp, if present.
std::optional<OplogTime> bson_timestamp(const bson_t* doc, const char* name);
std::string bson_string(const bson_t* doc, const char* name);
// The name of a document's first field ("" when empty): an oplog command's name.
std::string bson_first_key(const bson_t* doc);
// A namespace "db.coll" split at its first dot; coll is empty when there is none ("db.$cmd" -> "$cmd").
std::pair<std::string, std::string> split_namespace(const std::string& ns);
// A copy of embedded document `name`; nullopt when absent, not a document, or not well framed.
std::optional<BsonDoc> bson_sub_document(const bson_t* doc, const char* name);

}  // namespace lifeboat::sources::mongodb
