#include "repo/node_io.h"

#include <algorithm>
#include <cstring>

namespace lifeboat::repo {

Result<Node> store_bytes_node(WriteSession& session, const std::string& name, ByteView data, uint32_t mode, int64_t mtime_ns) {
  MemorySource src(data);
  LB_ASSIGN_OR_RETURN(auto stored, session.store_stream(src));
  Node n;
  n.kind = NodeKind::kFile;
  n.name = name;
  n.mode = mode;
  n.mtime_ns = n.ctime_ns = n.atime_ns = mtime_ns;
  n.links = 1;
  n.size = stored.size_bytes;
  n.content = stored.content;
  return n;
}

Result<Bytes> read_node_bytes(Repository& repo, const Node& node) {
  Bytes out;
  out.reserve(node.size);
  for (const auto& b : node.content) {
    LB_ASSIGN_OR_RETURN(auto data, repo.read_blob(b));
    append_bytes(out, data);
  }
  return out;
}

Result<size_t> NodeReader::read(uint8_t* buf, size_t max) {
  while (pos_ == blob_.size()) {
    if (next_blob_ == node_.content.size()) return size_t{0};
    LB_ASSIGN_OR_RETURN(blob_, repo_.read_blob(node_.content[next_blob_++]));
    pos_ = 0;
  }
  size_t take = std::min(max, blob_.size() - pos_);
  std::memcpy(buf, blob_.data() + pos_, take);
  pos_ += take;
  return take;
}

void DirBuilder::place(const std::string& relative_path, Node node) {
  DirBuilder* d = this;
  size_t start = 0;
  while (true) {
    size_t slash = relative_path.find('/', start);
    if (slash == std::string::npos) break;
    d = &d->dirs[relative_path.substr(start, slash - start)];
    start = slash + 1;
  }
  node.name = relative_path.substr(start);
  d->files[node.name] = std::move(node);
}

Result<BlobId> DirBuilder::store(WriteSession& session) const {
  Tree t;
  for (const auto& [name, sub] : dirs) {
    LB_ASSIGN_OR_RETURN(auto id, sub.store(session));
    Node n;
    n.kind = NodeKind::kDir;
    n.name = name;
    n.mode = 0755;
    n.subtree = id;
    t.nodes.push_back(std::move(n));
  }
  for (const auto& [name, node] : files) t.nodes.push_back(node);
  t.sort();
  return session.store_tree(t);
}

}  // namespace lifeboat::repo
