// The files source, restore side: recreates a snapshot's tree under a target directory.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/progress.h"
#include "repo/repository.h"

namespace lifeboat::sources::files {

// What happens to an entry the target already holds (restic's modes): always replace it; replace it
// only if it differs in size or modification time (if-changed) or is older than the backup's
// (if-newer); never touch it. A directory of the snapshot where the target has something else, or a
// non-empty directory where the snapshot has a file, is a conflict: found before anything is written.
enum class Overwrite { kAlways, kIfChanged, kIfNewer, kNever };
std::optional<Overwrite> parse_overwrite(const std::string& name);

struct FilesRestoreOptions {
  std::string target;
  std::vector<std::string> includes;  // fnmatch patterns on the snapshot path; a matched dir brings all below
  bool verify = false;                // re-read every restored file and compare with the backed-up blobs
  size_t threads = 0;
  Overwrite overwrite = Overwrite::kAlways;
  bool refuse_non_empty = false;  // the CLI without --overwrite: a target holding anything is an error
  bool delete_extra = false;      // remove what the snapshot's directories lack (not above them)
  bool dry_run = false;           // decide everything, write nothing: `changes` lists it
};

struct FilesRestoreResult {
  uint64_t files = 0, dirs = 0, others = 0, bytes = 0, files_verified = 0, skipped = 0, deleted = 0;
  std::vector<std::string> errors;
  // For --dry-run (and reported after a real run): ("+" new, "M" replaced, "=" kept, "-" deleted, path).
  std::vector<std::pair<std::string, std::string>> changes;
};

// The files' data is read pack by pack (repo/pack_reader.h); each file stays unnamed (or under a
// temporary name) until its last blob is written, and is linked into place only when complete and
// authenticated: a damaged blob leaves no partial file and makes the restore fail.
Result<FilesRestoreResult> restore_files(repo::Repository& repo, const repo::Snapshot& snapshot,
                                         const FilesRestoreOptions& options, ProgressCounters& progress);

// Reads a restored file through `fd` and checks each blob-sized piece against its content ID, and
// that nothing follows the last one.
Status verify_file_content(repo::Repository& repo, int fd, const repo::Node& node, const std::string& path);

// What a restored target holds compared with the snapshot, read from the target: every directory,
// file (hard links included: each path is read), symlink and special file.
struct TreeVerification {
  uint64_t files_expected = 0, files_found = 0, files_verified = 0;
  uint64_t dirs_expected = 0, dirs_found = 0, others_expected = 0, others_found = 0;
  std::vector<std::string> problems;  // the first few, with their paths
  std::vector<std::string> missing;   // the first few absent (or of another type)
};
Result<TreeVerification> verify_restored_tree(repo::Repository& repo, const repo::Snapshot& snapshot, const std::string& target);

}  // namespace lifeboat::sources::files
