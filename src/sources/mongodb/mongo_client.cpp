// libmongoc wrapper: pooled clients, error translation, oplog edges (the library loads on first connect).
#include "sources/mongodb/mongo_client.h"

#include <fmt/format.h>

#include "core/time.h"

namespace lifeboat::sources::mongodb {

std::string OplogTime::to_string() const { return fmt::format("{}:{}", t, i); }

Result<BsonDoc> BsonDoc::from_json(std::string_view json) {
  bson_error_t error;
  bson_t* doc = bson_new_from_json(reinterpret_cast<const uint8_t*>(json.data()), static_cast<ssize_t>(json.size()), &error);
  if (!doc) return Error(Code::kInvalidArgument, fmt::format("invalid extended JSON: {}", error.message));
  return BsonDoc(doc);
}

Result<BsonDoc> BsonDoc::from_bytes(ByteView bytes) {
  bson_t* doc = bson_new_from_data(bytes.data(), bytes.size());
  if (!doc || !bson_validate(doc, BSON_VALIDATE_NONE, nullptr)) {
    if (doc) bson_destroy(doc);
    return Error(Code::kCorrupt, "invalid BSON document");
  }
  return BsonDoc(doc);
}

std::string BsonDoc::to_json() const {
  size_t len = 0;
  char* s = bson_as_canonical_extended_json(doc_, &len);
  std::string out(s ? s : "{}", s ? len : 2);
  bson_free(s);
  return out;
}

Status mongo_error(const bson_error_t& error, const std::string& context) {
  std::string msg = error.message;
  // Server selection failures mean nothing answered at the address: say what to check.
  if (error.domain == MONGOC_ERROR_SERVER_SELECTION)
    return Error(Code::kIo, fmt::format("{}: MongoDB server unreachable ({}); check the URI's host and port and that the "
                                        "server is running", context, msg));
  if (error.domain == MONGOC_ERROR_CLIENT && error.code == MONGOC_ERROR_CLIENT_AUTHENTICATE)
    return Error(Code::kIo, fmt::format("{}: MongoDB authentication failed ({}); check the user, password and "
                                        "authSource in the URI", context, msg));
  if (error.domain == MONGOC_ERROR_STREAM)
    return Error(Code::kIo, fmt::format("{}: connection to MongoDB lost ({}); nothing was committed, run it again",
                                        context, msg));
  return Error(Code::kIo, fmt::format("{}: {} (MongoDB error {})", context, msg, error.code));
}

std::string redact_uri(const std::string& uri) {
  std::string s = uri;
  size_t scheme = s.find("://");
  size_t start = scheme == std::string::npos ? 0 : scheme + 3;
  size_t at = s.find('@', start);
  size_t slash = s.find('/', start);
  if (at != std::string::npos && (slash == std::string::npos || at < slash)) s.erase(start, at + 1 - start);
  size_t end = s.find_first_of("/?", start);
  if (end != std::string::npos) s.erase(end);
  return s;
}

Result<std::unique_ptr<MongoConnection>> MongoConnection::connect(const std::string& uri, int max_clients) {
  LB_RETURN_IF_ERROR(load_mongoc());
  std::unique_ptr<MongoConnection> c(new MongoConnection());
  bson_error_t error;
  c->uri_ = MONGOC(mongoc_uri_new_with_error)(uri.c_str(), &error);
  if (!c->uri_) return Error(Code::kInvalidArgument, fmt::format("invalid MongoDB URI: {}", error.message));
  if (!MONGOC(mongoc_uri_has_option)(c->uri_, MONGOC_URI_SERVERSELECTIONTIMEOUTMS))
    MONGOC(mongoc_uri_set_option_as_int32)(c->uri_, MONGOC_URI_SERVERSELECTIONTIMEOUTMS, 5000);
  if (!MONGOC(mongoc_uri_has_option)(c->uri_, MONGOC_URI_CONNECTTIMEOUTMS))
    MONGOC(mongoc_uri_set_option_as_int32)(c->uri_, MONGOC_URI_CONNECTTIMEOUTMS, 5000);
  // A dropped connection must fail the read instead of waiting forever; tailing cursors use their
  // own await time well below this.
  if (!MONGOC(mongoc_uri_has_option)(c->uri_, MONGOC_URI_SOCKETTIMEOUTMS))
    MONGOC(mongoc_uri_set_option_as_int32)(c->uri_, MONGOC_URI_SOCKETTIMEOUTMS, 120000);
  c->pool_ = MONGOC(mongoc_client_pool_new)(c->uri_);
  if (!c->pool_) return Error(Code::kInvalidArgument, "MongoDB URI not usable (TLS options without TLS support?)");
  MONGOC(mongoc_client_pool_set_error_api)(c->pool_, MONGOC_ERROR_API_VERSION_2);
  MONGOC(mongoc_client_pool_max_size)(c->pool_, static_cast<uint32_t>(max_clients));
  MONGOC(mongoc_client_pool_set_appname)(c->pool_, "lifeboat");
  c->display_ = redact_uri(uri);
  auto lease = c->lease();
  bson_t* ping = BCON_NEW("ping", BCON_INT32(1));
  bool ok = MONGOC(mongoc_client_command_simple)(lease.get(), "admin", ping, nullptr, nullptr, &error);
  bson_destroy(ping);
  if (!ok) return mongo_error(error, fmt::format("connecting to {}", c->display_));
  return c;
}

MongoConnection::~MongoConnection() {
  if (pool_) MONGOC(mongoc_client_pool_destroy)(pool_);
  if (uri_) MONGOC(mongoc_uri_destroy)(uri_);
}

Result<std::vector<std::string>> MongoConnection::database_names() {
  auto lease = this->lease();
  bson_error_t error;
  char** names = MONGOC(mongoc_client_get_database_names_with_opts)(lease.get(), nullptr, &error);
  if (!names) return mongo_error(error, "listing databases");
  std::vector<std::string> out;
  for (char** p = names; *p; ++p) out.emplace_back(*p);
  bson_strfreev(names);
  return out;
}

Result<bool> MongoConnection::has_oplog() {
  auto lease = this->lease();
  mongoc_database_t* db = MONGOC(mongoc_client_get_database)(lease.get(), "local");
  bson_error_t error;
  bool found = MONGOC(mongoc_database_has_collection)(db, "oplog.rs", &error);
  MONGOC(mongoc_database_destroy)(db);
  if (!found && error.code != 0) return mongo_error(error, "looking for local.oplog.rs");
  return found;
}

Result<std::optional<OplogTime>> MongoConnection::oplog_edge(bool newest) {
  LB_ASSIGN_OR_RETURN(bool exists, has_oplog());
  if (!exists) return std::optional<OplogTime>();
  auto lease = this->lease();
  mongoc_collection_t* coll = MONGOC(mongoc_client_get_collection)(lease.get(), "local", "oplog.rs");
  bson_t filter = BSON_INITIALIZER;
  bson_t* opts = BCON_NEW("sort", "{", "$natural", BCON_INT32(newest ? -1 : 1), "}", "limit", BCON_INT64(1),
                          "projection", "{", "ts", BCON_INT32(1), "}");
  mongoc_cursor_t* cursor = MONGOC(mongoc_collection_find_with_opts)(coll, &filter, opts, nullptr);
  const bson_t* doc;
  std::optional<OplogTime> ts;
  if (MONGOC(mongoc_cursor_next)(cursor, &doc)) ts = bson_timestamp(doc, "ts");
  bson_error_t error;
  bool failed = MONGOC(mongoc_cursor_error)(cursor, &error);
  MONGOC(mongoc_cursor_destroy)(cursor);
  bson_destroy(opts);
  MONGOC(mongoc_collection_destroy)(coll);
  if (failed) return mongo_error(error, "reading local.oplog.rs");
  return ts;
}

bool MongoConnection::is_ferretdb() {
  auto lease = this->lease();
  bson_t* cmd = BCON_NEW("buildInfo", BCON_INT32(1));
  bson_t reply;
  bson_error_t error;
  bool ok = MONGOC(mongoc_client_command_simple)(lease.get(), "admin", cmd, nullptr, &reply, &error);
  bool ferret = ok && bson_has_field(&reply, "ferretdbVersion");
  bson_destroy(&reply);
  bson_destroy(cmd);
  return ferret;
}

namespace {

// An entry is stamped before it is written (FerretDB stamps after the data write, then inserts
// into local.oplog.rs); the second before the server's current one may still be filling.
constexpr uint32_t kStampToVisibleS = 1;

}  // namespace

OplogProof position_proof(OplogTime read) {
  // Entries up to `read` arrive in order, so the seconds before its own are whole.
  return OplogProof{read.t > 0 ? read.t - 1 : 0, fmt::format("oplog read through position {}", read.to_string())};
}

void keep_stronger(OplogProof& into, OplogProof other) {
  if (other.through_s > into.through_s) into = std::move(other);
}

Result<OplogProof> MongoConnection::prove_read_through(OplogTime read) {
  OplogProof proof = position_proof(read);
  std::optional<OplogTime> op_time;
  int64_t local_ms = 0;
  {
    auto lease = this->lease();
    bson_t* cmd = BCON_NEW("hello", BCON_INT32(1));
    bson_t reply;
    bson_error_t error;
    bool ok = MONGOC(mongoc_client_command_simple)(lease.get(), "admin", cmd, nullptr, &reply, &error);
    bson_destroy(cmd);
    if (!ok) {
      bson_destroy(&reply);
      return mongo_error(error, "asking the server for its time (hello)");
    }
    op_time = bson_timestamp(&reply, "operationTime");
    bson_iter_t it;
    if (bson_iter_init_find(&it, &reply, "localTime") && BSON_ITER_HOLDS_DATE_TIME(&it))
      local_ms = bson_iter_date_time(&it);
    bson_destroy(&reply);
  }
  LB_ASSIGN_OR_RETURN(auto newest, oplog_edge(true));
  if (newest && *newest > read) {
    proof.unread = true;
    return proof;
  }
  if (op_time && op_time->t > kStampToVisibleS)
    keep_stronger(proof, {op_time->t - 1,
                          fmt::format("server operationTime {} with no newer oplog entry", op_time->to_string())});
  else if (local_ms > 0 && local_ms / 1000 > kStampToVisibleS + 1)
    keep_stronger(proof, {static_cast<uint32_t>(local_ms / 1000) - 1 - kStampToVisibleS,
                          fmt::format("server clock (hello.localTime) {} with no newer oplog entry",
                                      format_rfc3339(local_ms * 1000000))});
  return proof;
}

std::optional<OplogTime> bson_timestamp(const bson_t* doc, const char* name) {
  bson_iter_t it;
  if (!bson_iter_init_find(&it, doc, name) || !BSON_ITER_HOLDS_TIMESTAMP(&it)) return std::nullopt;
  OplogTime ts;
  bson_iter_timestamp(&it, &ts.t, &ts.i);
  return ts;
}

std::string bson_string(const bson_t* doc, const char* name) {
  bson_iter_t it;
  if (!bson_iter_init_find(&it, doc, name) || !BSON_ITER_HOLDS_UTF8(&it)) return {};
  uint32_t len = 0;
  const char* s = bson_iter_utf8(&it, &len);
  return std::string(s, len);
}

std::string bson_first_key(const bson_t* doc) {
  bson_iter_t it;
  if (doc && bson_iter_init(&it, doc) && bson_iter_next(&it)) return bson_iter_key(&it);
  return "";
}

std::pair<std::string, std::string> split_namespace(const std::string& ns) {
  size_t dot = ns.find('.');
  if (dot == std::string::npos) return {ns, ""};
  return {ns.substr(0, dot), ns.substr(dot + 1)};
}

std::optional<BsonDoc> bson_sub_document(const bson_t* doc, const char* name) {
  bson_iter_t it;
  if (!bson_iter_init_find(&it, doc, name) || !BSON_ITER_HOLDS_DOCUMENT(&it)) return std::nullopt;
  uint32_t len;
  const uint8_t* data;
  bson_iter_document(&it, &len, &data);
  bson_t* sub = bson_new_from_data(data, len);  // null when the embedded document is not well framed
  if (!sub) return std::nullopt;
  return BsonDoc(sub);
}

}  // namespace lifeboat::sources::mongodb
