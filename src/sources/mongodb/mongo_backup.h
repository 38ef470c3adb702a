// The MongoDB source, backup side: a consistent full dump (documents, options, indexes, and the oplog
// written while it ran) stored as a snapshot whose tree is the mongodump layout.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "core/progress.h"
#include "repo/repository.h"
#include "repo/snapshot.h"
#include "repo/write_session.h"
#include "sources/mongodb/bson_stream.h"
#include "sources/mongodb/mongo_client.h"

namespace lifeboat::sources::mongodb {

// Snapshot `source` values and tree names shared by backup, follow and restore.
inline constexpr const char* kFullSource = "mongodb";
inline constexpr const char* kSliceSource = "mongodb-oplog";
inline constexpr const char* kOplogFile = "oplog.bson";

nlohmann::json oplog_time_json(const OplogTime& ts);
std::optional<OplogTime> oplog_time_from_json(const nlohmann::json& j);

struct MongoBackupOptions {
  std::string uri;
  std::vector<std::string> databases;  // empty: every database but admin, config and local
  std::string name;                    // deployment name recorded as the snapshot path; default: redacted URI
  std::vector<std::string> tags;
  std::string hostname;
  size_t threads = 4;  // collections dumped at once
};

struct CollectionRecord {
  std::string db, name;
  uint64_t count = 0, bytes = 0;
  std::string hash;
};

struct MongoBackupResult {
  std::string snapshot_id;
  repo::Snapshot snapshot;
  std::vector<CollectionRecord> collections;
};

// Dumps every selected collection in parallel. The oplog position is read before and after; the
// entries between them are stored with the dump, so restoring it and replaying them gives the state
// at the end position. Any read error (server gone mid-stream) commits nothing.
Result<MongoBackupResult> backup_mongodb(repo::Repository& repo, const MongoBackupOptions& options,
                                         ProgressCounters& progress);

// Each collection of database `db` (views, timeseries buckets and system.* left out, as a backup
// leaves them) with its metadata.json as mongodump writes it (options, index specs): what a backup
// records and a check reads back from a restored target.
Result<std::map<std::string, std::string>> read_collections_metadata(MongoConnection& conn, const std::string& db);

// Reads documents from a cursor as one byte stream, counting and hashing them on the way.
class CursorSource final : public repo::ByteSource {
 public:
  CursorSource(mongoc_cursor_t* cursor, std::string what, CollectionDigest* digest);
  Result<size_t> read(uint8_t* buf, size_t n) override;

 private:
  mongoc_cursor_t* cursor_;
  std::string what_;
  CollectionDigest* digest_;
  const uint8_t* cur_ = nullptr;
  size_t cur_len_ = 0, cur_pos_ = 0;
  bool done_ = false;  // libmongoc errors when a finished cursor is advanced again
};

}  // namespace lifeboat::sources::mongodb
