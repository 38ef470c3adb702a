// Files that sources build in memory rather than read from disk (registry metadata, secret payloads,
// downloaded artifacts): storing bytes as a file node, reading a node's bytes back, and a tree of
// such nodes stored bottom-up.
#pragma once

#include <functional>
#include <map>
#include <string>

#include "repo/repository.h"
#include "repo/write_session.h"

namespace lifeboat::repo {

// `data` stored through `session` (chunked, deduplicated) as a file node named `name`.
Result<Node> store_bytes_node(WriteSession& session, const std::string& name, ByteView data, uint32_t mode, int64_t mtime_ns);

// The same for content pushed as it arrives (a download's body): `produce` runs in the calling
// thread and hands each piece to `push`; a second thread chunks and stores them, at most `window`
// bytes between the two, so memory stays bounded whatever the size. An error from either side ends
// both and is returned (what was stored of it is unreferenced: prune removes it).
using Push = std::function<Status(ByteView)>;
Result<Node> store_pushed_node(WriteSession& session, const std::string& name, uint32_t mode, int64_t mtime_ns,
                               const std::function<Status(const Push& push)>& produce, size_t window = 8 << 20);

// A file node's whole content, read (and authenticated) from the repository.
Result<Bytes> read_node_bytes(Repository& repo, const Node& node);

// A file node's content read piece by piece, one blob held at a time: each call fills up to `max`
// bytes and returns how many (0 at the end). For uploads that stream (HttpRequest::body_reader).
class NodeReader {
 public:
  NodeReader(Repository& repo, const Node& node) : repo_(repo), node_(node) {}
  Result<size_t> read(uint8_t* buf, size_t max);

 private:
  Repository& repo_;
  const Node& node_;
  size_t next_blob_ = 0;
  Bytes blob_;
  size_t pos_ = 0;
};

// A directory node pointing at `subtree`.
Node dir_node(std::string name, const BlobId& subtree, uint32_t mode = 0755, int64_t mtime_ns = 0);

// A directory being built: subdirectories by name, file nodes by name.
struct DirBuilder {
  std::map<std::string, DirBuilder> dirs;
  std::map<std::string, Node> files;
  // Places a node at a '/'-separated relative path (its last component is the node's name).
  void place(const std::string& relative_path, Node node);
  // Stores every directory bottom-up (mode 0755); returns the root tree's ID.
  Result<BlobId> store(WriteSession& session) const;
};

}  // namespace lifeboat::repo
