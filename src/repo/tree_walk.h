// Depth-first walks over snapshot trees, and the comparison of two trees (diff).
#pragma once

#include <functional>
#include <string>

#include "repo/repository.h"

namespace lifeboat::repo {

// Calls fn(path, node) for every node under `root` in pre-order; paths are relative, '/'-joined.
Status walk_tree(Repository& repo, const BlobId& root,
                 const std::function<Status(const std::string& path, const Node& node)>& fn);

enum class Change : char { kAdded = '+', kRemoved = '-', kModified = 'M', kTypeChanged = 'T', kMetadata = 'U' };

struct DiffEntry {
  Change change;
  std::string path;
  NodeKind kind;
};

// Compares two trees, descending only where subtree IDs differ; calls fn for each difference in path order.
Status diff_trees(Repository& repo, const BlobId& a, const BlobId& b, const std::function<void(const DiffEntry&)>& fn);

}  // namespace lifeboat::repo
