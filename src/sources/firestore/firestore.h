// The Firestore source: a whole database (or named top-level collections with everything below
// them) read at one server read time, in name order, by several readers over ranges of document
// names (at most 20,000 documents each, handed to the tree in name order, so memory stays bounded);
// stored one document per file node so that a day's backup stores only what changed;
// restored with batch writes into the same or another project and database, from a backup or —
// inside the database's own version retention — from the live database as of an instant — or
// written as a managed export for `gcloud firestore import` (firestore_export.cpp).
//
// A snapshot (source "firestore", paths ["projects/P/databases/D"]) is a tree:
//   documents/GROUP/BUCKET/NAME   one file node per document; NAME is its path below the documents
//                                 root ("users/alice/orders/o1") with '%' → "%25" and '/' → "%2F";
//                                 its content is the document as JSON (see encode_document)
// Documents are grouped in name order: a bucket ends after a document whose name hash is 0 mod 16,
// a group after one whose hash is 0 mod 1024 (boundaries that depend only on names, so unchanged
// stretches of the database keep their trees); BUCKET and GROUP are named by their first document.
// Metadata: project, database, read_time (the server's), collections ({id: {documents, hash}}),
// documents, bytes, only (the collections asked for, if any), readers, ranges.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/progress.h"
#include "repo/repository.h"
#include "sources/source_kind.h"

namespace lifeboat::sources::firestore {

inline constexpr const char* kSource = "firestore";

// ---- documents (firestore_doc.cpp) ----

// A document's name below its documents root ("users/alice"), or "" when it is not below it.
std::string relative_name(const std::string& full_name, const std::string& root);
// The top-level collection of a relative name ("users/alice/orders/o1" → "users").
std::string top_collection(const std::string& relative);
// The document as stored: {"name": relative, "fields": …, "createTime": …, "updateTime": …}, values
// normalised (doubles as doubles, integers as decimal strings, references into `root` relative as
// "~/users/bob"), keys sorted. Every value type survives: null, booleans, 64-bit integers, doubles
// (NaN, ±Infinity, −0.0), timestamps, strings, bytes, references, geo points, arrays, maps.
nlohmann::json stored_document(const nlohmann::json& api_document, const std::string& root);
// The API's fields of a stored document written below `root` (references made absolute again).
nlohmann::json api_fields(const nlohmann::json& stored, const std::string& root);
// The tree name of a relative document name: one component, escaped as core/names.h escape_component
// escapes ("users/bob" → "users%2Fbob"; "", "." and ".." never stand as themselves).
std::string escape_name(const std::string& relative);
std::string unescape_name(const std::string& tree_name);
// Hash of a name that decides bucket and group boundaries.
uint64_t name_hash(const std::string& relative);

// Per top-level collection: document count and an order-independent hash of every document's name
// and fields (create/update times left out: a restore makes new ones).
struct CollectionStats {
  uint64_t documents = 0;
  std::array<uint64_t, 4> sum{};  // SHA-256 of each document, added lane by lane
  void add(const nlohmann::json& stored);
  std::string hash() const;
  bool operator==(const CollectionStats&) const = default;
};
using StatsMap = std::map<std::string, CollectionStats>;
nlohmann::json stats_json(const StatsMap& stats);
// The reverse: a snapshot's recorded "collections" as counts and hashes.
StatsMap stats_from_json(const nlohmann::json& j);
// Adds `from`'s counts and hashes into `into` (documents read by several threads).
void merge_stats(StatsMap& into, const StatsMap& from);

// ---- backup and restore ----

struct FirestoreBackupOptions {
  std::string project, database = "(default)";
  std::vector<std::string> collections;  // top-level collections (empty: every one)
  std::string name;
  std::vector<std::string> tags;
  std::string hostname;
  size_t readers = 4;
  // How long the server keeps past versions readable (without PITR: an hour); a backup that would
  // outlast it fails instead of reading a time the server no longer has.
  int64_t read_window_ns = 3600LL * 1000000000LL;
};

struct FirestoreBackupResult {
  std::string snapshot_id;
  repo::Snapshot snapshot;
};

Result<FirestoreBackupResult> backup_firestore(repo::Repository& repo, const FirestoreBackupOptions& options,
                                               ProgressCounters& progress);

// The newest firestore snapshot of projects/P/databases/D at or before `at_ns` among those with `tags`.
Result<repo::SnapshotRef> pick_firestore_snapshot(const std::vector<repo::SnapshotRef>& all, const std::string& project,
                                                  const std::string& database, const std::vector<std::string>& tags,
                                                  std::optional<int64_t> at_ns);

struct FirestoreRestoreOptions {
  std::string to_project, to_database = "(default)";
  std::vector<std::string> collections;  // only these top-level collections (empty: all in the source)
  bool replace = false;  // delete documents of the restored collections that are not in the source state
  bool dry_run = false;
  size_t writers = 4;
  bool ramp = false;  // 500 writes/s, +50% every 5 minutes (a real project's guidance)
};

// Where the state comes from: a snapshot, or the live database read as of an instant.
struct FirestoreSourceState {
  std::optional<repo::SnapshotRef> snapshot;
  std::string project, database, read_time;  // live: read at this server time
};

struct FirestoreRestoreResult {
  uint64_t written = 0, deleted = 0, bytes = 0;
  std::vector<std::string> would_delete;  // with dry_run, or documents left because --replace was not given
  StatsMap expected;                      // what the restored collections must now hold
  std::set<std::string> names;            // the relative names restored (for the checks)
  std::string read_time;                  // the source state's read time
};

Result<FirestoreRestoreResult> restore_firestore(repo::Repository& repo, const FirestoreSourceState& from,
                                                 const FirestoreRestoreOptions& options, ProgressCounters& progress);

// Can the live database be read as of `at_ns`? Returns the server's read time to use ("" when the
// server no longer keeps that instant, or shows no document at all then). Beyond the last hour the
// instant is rounded down to a minute.
Result<std::string> live_read_time(const std::string& project, const std::string& database, int64_t at_ns);

// The managed-export layout that `gcloud firestore import` reads, written from stored documents
// (relative name, stored JSON): DIR/NAME.overall_export_metadata (NAME = DIR's last component),
// DIR/all_namespaces/all_kinds/all_namespaces_all_kinds.export_metadata and output-N, each a LevelDB
// log of App Engine EntityProtos, 5,000 documents a file. DIR must be new or empty.
struct ManagedExport {
  std::string directory, metadata_file;  // metadata_file: what an import is pointed at
  std::vector<std::string> files;
  uint64_t documents = 0;
};
Result<ManagedExport> write_managed_export(const std::string& dir, const std::string& project,
                                           std::vector<std::pair<std::string, nlohmann::json>> documents);

// The source state (only `collections`, when named) written as a managed export into `dir`; the
// documents must match the backup's recorded counts and hashes.
Result<ManagedExport> export_firestore(repo::Repository& repo, const FirestoreSourceState& from,
                                       const std::vector<std::string>& collections, const std::string& dir,
                                       ProgressCounters& progress);

// Reads the restored collections back from the target: "counts" (per collection, the documents that
// should be there are; with `replace`, none other), "hashes" (their names and fields hash to the
// source state's). One result per name.
std::vector<CheckResult> check_firestore_target(const FirestoreRestoreOptions& where, const StatsMap& expected,
                                                   const std::set<std::string>& names, const std::vector<std::string>& checks);

}  // namespace lifeboat::sources::firestore
