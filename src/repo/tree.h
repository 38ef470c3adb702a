// Trees: one directory's entries (name, metadata, content blob IDs or subtree ID), stored as a blob.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/status.h"
#include "repo/blob.h"

namespace lifeboat::repo {

enum class NodeKind : uint8_t { kFile = 1, kDir = 2, kSymlink = 3, kFifo = 4, kCharDev = 5, kBlockDev = 6, kSocket = 7 };
const char* node_kind_name(NodeKind k);

struct Node {
  NodeKind kind = NodeKind::kFile;
  std::string name;  // raw bytes, any except '/' and NUL
  uint32_t mode = 0;  // permission bits incl. setuid/setgid/sticky
  uint32_t uid = 0, gid = 0;
  std::string user, group;
  int64_t mtime_ns = 0, atime_ns = 0, ctime_ns = 0;
  uint64_t inode = 0, device = 0, links = 0;
  uint64_t size = 0;
  uint64_t rdev = 0;
  std::string link_target;
  std::vector<std::pair<std::string, std::string>> xattrs;
  std::vector<BlobId> content;     // files
  std::optional<BlobId> subtree;   // directories

  bool operator==(const Node&) const = default;
};

struct Tree {
  std::vector<Node> nodes;  // sorted by name, names unique

  void sort();
  const Node* find(std::string_view name) const;
  Bytes encode() const;
  static Result<Tree> decode(ByteView data);
};

}  // namespace lifeboat::repo
