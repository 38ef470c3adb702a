// The files source, backup side: a snapshot of paths (stored by repo/archiver) or of a command's output.
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

}  // namespace lifeboat::sources::files
