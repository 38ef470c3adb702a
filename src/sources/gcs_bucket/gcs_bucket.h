// The GCS bucket source: backups of a bucket (or a prefix) with every object's metadata, incremental
// by generation; restores into a bucket or a directory; checks that read the target back; and the
// guarded bucket-to-bucket sync.
//
// A snapshot (source "gcs") holds the objects as a tree: object names relative to the prefix, split
// at '/', each component escaped (see gcs_tree_name) so that every name a bucket may hold ("a" next to
// "a/b", "a//b", "..", "dir/") has one place. Each file node carries the object's resource (name,
// generation, checksums, content type, custom metadata, …) as JSON in its `user.gcs.object` xattr:
// the tree path is only where it is shown, the xattr is the truth. Noncurrent versions (--versions)
// live under the root directory "%versions", which no escaped name can be.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "cloud/gcs_client.h"
#include "core/progress.h"
#include "repo/repository.h"
#include "repo/write_session.h"
#include "sources/source_kind.h"

namespace lifeboat::sources::gcs_bucket {

inline constexpr const char* kSource = "gcs";
inline constexpr const char* kObjectXattr = "user.gcs.object";
inline constexpr const char* kVersionsDir = "%versions";

// The tree path of a relative object name: each component escaped as one (core/names.h
// escape_component: '%' → "%25"; "", "." and ".." → "%00", "%2E", "%2E%2E"), joined by '/'.
std::string gcs_tree_path(const std::string& relative_name);
// "gs://b/p" → bucket "b", prefix "p/" (a prefix names a folder; "" for the whole bucket).
struct BucketLocation {
  std::string bucket, prefix;
  std::string url() const { return "gs://" + bucket + "/" + prefix; }
};
Result<BucketLocation> parse_location(const std::string& url);
// fnmatch on the relative name (no FNM_PATHNAME: "*" crosses '/'), or on its last component.
bool matches_any(const std::vector<std::string>& patterns, const std::string& relative_name);

// One stored object: where its node is, what the bucket said about it, and its data.
struct StoredObject {
  std::string relative_name;  // name without the backed-up prefix
  std::string tree_path;      // where the snapshot shows it (what a directory restore writes)
  nlohmann::json resource;    // the object's resource, as recorded
  repo::Node node;
  bool noncurrent = false;
  std::string crc32c() const { return resource.value("crc32c", ""); }
  std::string md5() const { return resource.value("md5Hash", ""); }
  int64_t generation() const;
};
// Every object in a snapshot's tree (noncurrent versions too, marked), in tree order.
Result<std::vector<StoredObject>> stored_objects(repo::Repository& repo, const repo::Snapshot& snapshot);

// The snapshot's tree built as a listing passes through it. Names must come in the listing's order
// (bytewise, as GCS lists them): every name below "p/" then arrives in one run, and directory p is
// stored once a name outside that run arrives. Memory: the directories open along one path. A name
// out of order (a directory met again after it was stored) is refused, never silently dropped.
class StreamingObjectTree {
 public:
  explicit StreamingObjectTree(repo::WriteSession& session) : session_(session) { open_.push_back(Level{}); }
  // `node` for the object `relative_name` (its name set here: the escaped last component + `suffix`).
  Status place(const std::string& relative_name, repo::Node node, const std::string& suffix);
  // A finished subtree under the root (the noncurrent versions' "%versions").
  void add_root_dir(const std::string& name, const repo::BlobId& tree) { extra_root_dirs_.emplace_back(name, tree); }
  // Stores every directory still open; the root tree's ID.
  Result<repo::BlobId> finish();

 private:
  struct Level {
    std::string raw;                              // this directory's own component, unescaped
    std::map<std::string, repo::BlobId> dirs;     // stored subdirectories, by escaped name
    std::map<std::string, repo::Node> files;      // by escaped name (+ suffix)
  };
  Status close_to(size_t depth);  // stores levels until `depth` remain open
  Result<repo::BlobId> store(Level& level);
  repo::WriteSession& session_;
  std::vector<Level> open_;
  std::vector<std::pair<std::string, repo::BlobId>> extra_root_dirs_;
};

// The parent snapshot's node of one generation of an object, looked up in the parent's tree as the
// listing passes through it (one loaded tree per level of the current path, for the live objects and
// for "%versions"): what the parent holds never sits in memory whole.
class ParentObjects {
 public:
  ParentObjects(repo::Repository& repo, std::optional<repo::BlobId> root) : repo_(repo), root_(root) {}
  // The parent's node for this generation (live: the object itself; else under %versions), or nullopt.
  Result<std::optional<repo::Node>> find(const std::string& relative_name, int64_t generation, bool live);

 private:
  struct Cursor {
    std::vector<std::string> raw;       // components of the loaded path below the cursor's root
    std::vector<repo::Tree> trees;      // trees[0]: the cursor's root; trees[i+1]: below raw[i]; empty if absent
  };
  Status open_root(Cursor& c, bool live);
  repo::Repository& repo_;
  std::optional<repo::BlobId> root_;
  Cursor live_, versions_;
};

struct GcsBackupOptions {
  std::string url;  // gs://BUCKET[/PREFIX]
  std::string name;  // recorded in metadata (default: the URL)
  bool versions = false;
  std::vector<std::string> tags;
  std::vector<std::string> critical;  // patterns re-hashed from the repository after the backup
  std::string hostname;
  size_t threads = 8;
  std::optional<repo::SnapshotRef> parent;  // objects of the same generation are not downloaded again
};

struct GcsBackupResult {
  std::string snapshot_id;
  repo::Snapshot snapshot;
  std::vector<std::string> warnings;  // objects that changed or vanished while being read
  bool critical_ok = true;
};

Result<GcsBackupResult> backup_gcs(repo::Repository& repo, const GcsBackupOptions& options, ProgressCounters& progress);

// The newest gcs snapshot of `url` (by its paths) at or before `at_ns`, among those with `tags`.
Result<repo::SnapshotRef> pick_gcs_snapshot(const std::vector<repo::SnapshotRef>& all, const std::string& url,
                                            const std::vector<std::string>& tags, std::optional<int64_t> at_ns);

struct GcsRestoreOptions {
  std::string to;      // gs://BUCKET[/PREFIX], or
  std::string target;  // a directory
  std::vector<std::string> includes;
  bool delete_extra = false;  // bucket targets: remove objects under the prefix the snapshot lacks
  bool dry_run = false;       // say what would be uploaded, skipped and deleted; change nothing
  size_t threads = 8;
};

struct GcsRestoreResult {
  uint64_t objects = 0, bytes = 0, unchanged = 0, deleted = 0;
  std::vector<std::string> would_upload, would_delete;  // dry run (and --delete-extra's list)
  std::vector<std::pair<std::string, std::string>> expected;  // target name → crc32c, for the checks
};

Result<GcsRestoreResult> restore_gcs(repo::Repository& repo, const repo::Snapshot& snapshot, const GcsRestoreOptions& options,
                                     ProgressCounters& progress);

// Reads the restored target (a bucket's listing and data, or a directory's files) and compares it with
// the snapshot: "counts" (every object present with its size), "hashes" (each one's CRC32C: the
// server's for a bucket, computed from the bytes for a directory), "critical" (objects matching the
// patterns downloaded or read and re-hashed here, CRC32C and MD5).
std::vector<CheckResult> check_gcs_target(repo::Repository& repo, const repo::Snapshot& snapshot,
                                             const GcsRestoreOptions& where, const std::vector<std::string>& critical,
                                             const std::vector<std::string>& checks);

struct GcsSyncOptions {
  std::string from, to;
  bool delete_extra = false;
  std::string max_delete = "10%";  // a count, or a percentage of the destination's objects
  bool dry_run = false;
  size_t threads = 8;
};
struct GcsSyncResult {
  uint64_t copied = 0, unchanged = 0, deleted = 0, bytes = 0;
  std::vector<std::string> to_copy, to_delete;
};
// Copies new and changed objects (server-side rewrite, CRC32C checked); with delete_extra, removes
// objects the source lacks, but never when the source listing failed or the deletions exceed max_delete.
Result<GcsSyncResult> sync_buckets(const GcsSyncOptions& options, ProgressCounters& progress);

}  // namespace lifeboat::sources::gcs_bucket
