// Where a MongoDB restore writes: a live server (libmongoc) or a mongodump-layout directory. Both take
// collections with their documents, then oplog entries applied idempotently in order.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "sources/mongodb/bson_stream.h"
#include "sources/mongodb/mongo_client.h"

namespace lifeboat::sources::mongodb {

struct CollectionSpec {
  std::string db, name;
  std::string metadata_json;  // mongodump <coll>.metadata.json (options, indexes)
};

class RestoreSink {
 public:
  virtual ~RestoreSink() = default;
  // Collections arrive one at a time: begin, documents in batches, end.
  virtual Status begin_collection(const CollectionSpec& spec) = 0;
  virtual Status insert_batch(std::vector<Bytes> docs) = 0;
  virtual Result<uint64_t> end_collection() = 0;  // returns duplicates skipped
  // One change in oplog shape, as OplogUnpacker yields it: ns mapped to the target, commands only
  // those it lets through.
  virtual Status apply_op(const bson_t* op) = 0;
  virtual Status finish() = 0;
};

struct ServerSinkOptions {
  bool drop = false;     // drop each collection before restoring it
  size_t threads = 4;    // concurrent insert batches
};

Result<std::unique_ptr<RestoreSink>> make_server_sink(const std::string& uri, const ServerSinkOptions& options);
Result<std::unique_ptr<RestoreSink>> make_dir_sink(const std::string& dir);

// The state a restore must leave in each collection, predicted from the repository alone: the full
// backup's documents, with the replayed oplog entries applied in memory to the documents they touch
// (only those are held). Validations compare the target, read back, with it.
class ExpectedState {
 public:
  struct Collection {
    uint64_t count = 0;
    std::string hash;
    bool predictable = true;  // false: the hash cannot be predicted (why says why); the count can
    std::string why;
    bool exists = true;       // false: the replay dropped it (or renamed it away); the target must lack it
    nlohmann::json metadata;  // comparable_metadata(): options and indexes as the target must hold them
  };
  // First pass: an entry that will be replayed (ns already mapped to the target).
  void note_op(const bson_t* op);
  // A collection of the full backup, as restored into `ns`, with its metadata.json (options, indexes).
  void add_collection(const std::string& ns, const std::string& metadata_json);
  // A document of the full backup, as restored into `ns` ("db.coll" in the target).
  void add_document(const std::string& ns, ByteView doc);
  // Second pass: the same entries in order.
  void apply_op(const bson_t* op);
  std::map<std::string, Collection> finish() const;

 private:
  // First pass: the state (by the backed-up ns, or a token for a collection made after the backup)
  // whose documents a name holds from here on, through renames and drops.
  std::string origin(const std::string& ns);
  std::string fresh_origin();
  struct State {
    CollectionDigest all, before;  // every document restored; the touched ones among them
    std::set<std::string> touched;
    std::map<std::string, Bytes> docs;  // touched documents by _id key, as replay leaves them
    bool predictable = true;
    std::string why;
    bool exists = false;
    nlohmann::json metadata;  // comparable_metadata(); null: not known
  };
  // A command entry's effect on the collections' existence, options and indexes.
  void apply_metadata_command(const std::string& db, const std::string& cmd, const bson_t* o);
  std::map<std::string, State> colls_;
  std::map<std::string, std::string> origin_;
  std::set<std::string> dropped_dbs_;
  uint64_t fresh_ = 0;
};

// A collection's metadata.json (mongodump's: options, index specs) reduced to what a restore must keep
// and two servers report alike: {"options": {...}, "indexes": {name: spec}}, numbers by value (relaxed
// extended JSON), without the index version `v`, `ns` and `background`, flags that are false, and a
// capped size rounded up to 256 bytes as MongoDB rounds it.
Result<nlohmann::json> comparable_metadata(const std::string& metadata_json);
// The differences between two comparable_metadata() values, each named ("index n_1 missing", ...).
std::vector<std::string> metadata_differences(const nlohmann::json& want, const nlohmann::json& got);

// Count and hash of what a target holds now, read back from it.
Result<CollectionDigest> digest_server_collection(MongoConnection& conn, const std::string& db, const std::string& coll);
Result<CollectionDigest> digest_dir_collection(const std::string& dir, const std::string& db, const std::string& coll);

// Which databases a restore takes and under which names (OplogUnpacker maps entries with it).
struct NsFilter {
  std::vector<std::string> databases;              // empty: all
  std::vector<std::pair<std::string, std::string>> rename;  // OLD -> NEW
  bool selected(const std::string& db) const;
  std::string target(const std::string& db) const;
};

}  // namespace lifeboat::sources::mongodb
