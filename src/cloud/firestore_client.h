// Firestore's REST API (v1) as the Firestore source uses it: queries over every collection at one
// read time (page by page), counts, partitions (where the server has them), batch writes with a
// status per write, and collection listings. The emulator (FIRESTORE_EMULATOR_HOST) is reached
// without credentials, as its admin ("Bearer owner").
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <functional>
#include <string>
#include <vector>

#include "cloud/gcs_client.h"

namespace lifeboat::cloud {

// "projects/P/databases/D/documents", the parent of every top-level collection.
std::string firestore_documents_root(const std::string& project, const std::string& database);

struct FirestoreRange {
  std::string start;  // full document name; "" from the first document (inclusive)
  std::string end;    // full document name; "" to the last document (exclusive)
};

struct FirestorePage {
  std::vector<nlohmann::json> documents;  // as the API gives them: name, fields, createTime, updateTime
  std::string read_time;                  // the server's read time of the answer
};

class FirestoreClient : public GoogleApiClient {
 public:
  // FIRESTORE_EMULATOR_HOST (host:port, plain HTTP, no credentials), else LIFEBOAT_FIRESTORE_ENDPOINT or
  // Google's, with credentials from the environment (cloud/gcp_auth).
  static Result<std::shared_ptr<FirestoreClient>> from_environment();
  FirestoreClient(std::string endpoint, std::shared_ptr<GcpAuth> auth, bool emulator);
  bool emulator() const { return emulator_; }

  // Every document of the database below `root` (a documents root), in name order, within `range`,
  // at `read_time` ("" for now): at most `limit` of them after `after` (a full name, exclusive; "" for
  // the range's start). `keys_only`: names and times without fields.
  Result<FirestorePage> query(const std::string& root, const FirestoreRange& range, const std::string& after, size_t limit,
                              const std::string& read_time, bool keys_only = false) const;
  // As query (all fields), handing each document to fn while the answer is parsed, so a page is never
  // held whole; fn's first error ends the page and is returned.
  struct PageEnd {
    size_t documents = 0;
    std::string last_name;  // the last document's full name
    std::string read_time;
  };
  Result<PageEnd> query_each(const std::string& root, const FirestoreRange& range, const std::string& after, size_t limit,
                             const std::string& read_time, const std::function<Status(nlohmann::json&& document)>& fn) const;
  // How many documents lie in `range` at `read_time`.
  Result<int64_t> count(const std::string& root, const FirestoreRange& range, const std::string& read_time) const;
  // The name of the document `offset` places into `range` (nullopt past its end), at `read_time`.
  Result<std::optional<std::string>> name_at(const std::string& root, const FirestoreRange& range, int64_t offset,
                                             const std::string& read_time) const;
  // Split points (full document names) for `parts` ranges over the whole database, from the server's
  // partitionQuery; nullopt when the server does not have it (the emulator).
  Result<std::optional<std::vector<std::string>>> partition(const std::string& root, size_t parts,
                                                           const std::string& read_time) const;
  // Top-level collection IDs (`parent` = a documents root) or a document's subcollections.
  Result<std::vector<std::string>> collection_ids(const std::string& parent, const std::string& read_time) const;
  // One batchWrite of `writes` (at most 500): the per-write status objects, in order (an empty
  // object or code 0 is success).
  Result<std::vector<nlohmann::json>> batch_write(const std::string& database, const nlohmann::json& writes) const;

 private:
  // POST `body` to /v1/`path`, retried on 429/5xx; a non-2xx answer becomes an error naming `what`
  // and the server's message.
  Result<nlohmann::json> post(const std::string& path, const nlohmann::json& body, const std::string& what) const;
  // The reply's body of a successful POST (errors as post gives them).
  Result<Bytes> post_body(const std::string& path, const nlohmann::json& body, const std::string& what) const;
  nlohmann::json structured_query(const FirestoreRange& range, const std::string& after) const;
  bool emulator_ = false;
};

// A runQuery answer (a list of {document, readTime} or {error}), each document handed to fn as it is
// parsed: how many, the last one's name, the read time. An error element, a cut answer or one that is
// not a list is kUnavailable; fn's first error stops and is returned.
Result<FirestoreClient::PageEnd> each_query_document(ByteView reply, const std::string& what,
                                                     const std::function<Status(nlohmann::json&& document)>& fn);

// Is this error the server refusing a read time outside what it keeps (no PITR: an hour)?
bool firestore_read_time_too_old(const Status& s);

}  // namespace lifeboat::cloud
