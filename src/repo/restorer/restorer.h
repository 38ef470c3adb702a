// The restorer: recreates any tree of the repository under a directory (the shape of kopia's
// restore.Entry: repository, output, root, options). Every kind whose data is a directory tree
// (files, config, models) restores through it. Its pieces each have their own file: safe path
// walking (safe_path.h), the file assembler (assembler.h), verification (verify.h).
//
// The tree is walked a batch at a time, so memory does not grow with the snapshot (docs/memory.md);
// each batch's files are read pack by pack (repo/pack_reader.h); each file stays unnamed (or under a
// temporary name) until its last blob is written, and is linked into place only when complete and
// authenticated: a damaged blob leaves no partial file and makes the restore fail.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/progress.h"
#include "repo/repository.h"

namespace lifeboat::repo {

// What happens to an entry the target already holds (restic's modes): always replace it; replace it
// only if it differs in size or modification time (if-changed) or is older than the backup's
// (if-newer); never touch it. A directory of the tree where the target has something else, or a
// non-empty directory where the tree has a file, is a conflict: found before anything is written.
enum class Overwrite { kAlways, kIfChanged, kIfNewer, kNever };
std::optional<Overwrite> parse_overwrite(const std::string& name);

// Why a restore refused to start (nothing was written). The error names no flag: a caller that has
// flags words its advice with `TreeRestoreOptions::explain`.
enum class RestoreRefusal { kNoTarget, kNoIncludeMatch, kDeleteWithIncludes, kTargetNotEmpty };
std::string default_refusal_message(RestoreRefusal why, const std::string& target);

struct TreeRestoreOptions {
  std::string target;
  std::vector<std::string> includes;  // fnmatch patterns on the tree path; a matched dir brings all below
  bool verify = false;                // re-read every restored file and compare with the backed-up blobs
  size_t threads = 0;
  Overwrite overwrite = Overwrite::kAlways;
  bool refuse_non_empty = false;  // a target holding anything is refused (kTargetNotEmpty)
  bool delete_extra = false;      // remove what the tree's directories lack (not above them)
  bool dry_run = false;           // decide everything, write nothing: `changes` lists it
  // The tree is walked and written a batch at a time (this many entries, or files holding this many
  // blobs), so memory does not grow with the snapshot; tests make them small to cross every boundary.
  size_t batch_entries = 50000, batch_blobs = 250000;
  // The message of a refusal (default: default_refusal_message).
  std::function<std::string(RestoreRefusal, const std::string& target)> explain;
};

inline constexpr size_t kChangesListed = 100000;

struct TreeRestoreResult {
  uint64_t files = 0, dirs = 0, others = 0, bytes = 0, files_verified = 0, skipped = 0, deleted = 0;
  std::vector<std::string> errors;
  // For a dry run (and reported after a real run): ("+" new, "M" replaced, "=" kept, "-" deleted, path).
  // A real run lists the first kChangesListed and counts the rest (its memory stays bounded).
  std::vector<std::pair<std::string, std::string>> changes;
  uint64_t changes_omitted = 0;
};

// Restores the tree `tree` under options.target.
Result<TreeRestoreResult> restore_tree(Repository& repo, const BlobId& tree, const TreeRestoreOptions& options,
                                       ProgressCounters& progress);

}  // namespace lifeboat::repo
