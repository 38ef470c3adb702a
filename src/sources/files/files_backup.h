// The files source, backup side: walks paths into trees, reusing the parent snapshot for unchanged files.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/progress.h"
#include "repo/repository.h"
#include "repo/write_session.h"

namespace lifeboat::sources::files {

struct FilesBackupOptions {
  std::vector<std::string> paths;     // absolute, normalized
  std::vector<std::string> excludes;  // fnmatch patterns on the base name or the full path
  std::vector<std::string> tags;
  std::string hostname;
  std::optional<repo::SnapshotRef> parent;  // unchanged files (size, mtime, ctime, inode) are not read
  std::optional<repo::BlobId> parent_tree;  // as parent, for store_paths: the root tree to compare with
  size_t threads = 0;                       // 0: one per core
  bool count_totals = false;                // scan first (in parallel) so progress can show an ETA
};

struct FilesBackupResult {
  std::string snapshot_id;
  repo::Snapshot snapshot;
  std::vector<std::string> unreadable;  // "path: reason" for each skipped entry
};

// Backs up the paths and commits a snapshot. With unreadable entries the snapshot is still committed and
// the result lists them (the CLI exits 3). On interrupt, finished packs are indexed and no snapshot is made.
Result<FilesBackupResult> backup_files(repo::Repository& repo, const FilesBackupOptions& options,
                                       ProgressCounters& progress);

// The tree of the paths stored through `session` (nothing committed): for sources that hold files
// beside other data in one snapshot (config). Counts as in a files snapshot's summary.
struct StoredPaths {
  repo::BlobId tree{};
  nlohmann::json summary = nlohmann::json::object();  // files_new, files_changed, files_unmodified, dirs, total_bytes
  std::vector<std::string> unreadable;
};
Result<StoredPaths> store_paths(repo::Repository& repo, repo::WriteSession& session, const FilesBackupOptions& options,
                                ProgressCounters& progress);

// Runs a command and stores its standard output as one file named `filename` in a snapshot. If the
// command exits non-zero (or is killed), no snapshot is committed.
struct CommandBackupOptions {
  std::vector<std::string> argv;
  std::string filename = "stdin";
  std::vector<std::string> tags;
  std::string hostname;
  std::string source = "stdin";
};
Result<FilesBackupResult> backup_command_output(repo::Repository& repo, const CommandBackupOptions& options,
                                                ProgressCounters& progress);

// Normalizes a user-given path into an absolute one without "." / ".." / duplicate slashes.
std::string absolute_path(const std::string& path);

}  // namespace lifeboat::sources::files
