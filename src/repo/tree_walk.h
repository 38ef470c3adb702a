// Depth-first walks over snapshot trees, and the comparison of two trees (diff).
#pragma once

#include <functional>
#include <string>

#include "repo/repository.h"

namespace lifeboat::repo {

// Calls fn(path, node) for every node under `root` in pre-order; paths are relative, '/'-joined.
Status walk_tree(Repository& repo, const BlobId& root,
                 const std::function<Status(const std::string& path, const Node& node)>& fn);

// What a set of snapshot trees references, each blob (data and trees) counted once however many
// snapshots share it: "stored bytes" as stats, report and /metrics all give it (what keeping these
// snapshots costs in the repository; a subtree met again is not walked again). The index must be loaded.
struct ReferencedSize {
  uint64_t blobs = 0, raw_bytes = 0, stored_bytes = 0;  // every blob, trees included
  uint64_t data_raw_bytes = 0, data_stored_bytes = 0;    // the files' content alone (dedup and compression ratios)
};
Result<ReferencedSize> referenced_size(Repository& repo, const std::vector<BlobId>& roots);

enum class Change : char { kAdded = '+', kRemoved = '-', kModified = 'M', kTypeChanged = 'T', kMetadata = 'U' };

struct DiffEntry {
  Change change;
  std::string path;
  NodeKind kind;
};

// Compares two trees, descending only where subtree IDs differ; calls fn for each difference in path order.
Status diff_trees(Repository& repo, const BlobId& a, const BlobId& b, const std::function<void(const DiffEntry&)>& fn);

}  // namespace lifeboat::repo
