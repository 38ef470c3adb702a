// Tree codec (docs/format.md, "Trees").
#include "repo/tree.h"

#include <algorithm>

namespace lifeboat::repo {

namespace {
constexpr char kTreeMagic[4] = {'L', 'B', 'T', 'R'};
constexpr uint8_t kTreeVersion = 1;
}  // namespace

const char* node_kind_name(NodeKind k) {
  switch (k) {
    case NodeKind::kFile: return "file";
    case NodeKind::kDir: return "dir";
    case NodeKind::kSymlink: return "symlink";
    case NodeKind::kFifo: return "fifo";
    case NodeKind::kCharDev: return "chardev";
    case NodeKind::kBlockDev: return "blockdev";
    case NodeKind::kSocket: return "socket";
  }
  return "?";
}

void Tree::sort() {
  std::sort(nodes.begin(), nodes.end(), [](const Node& a, const Node& b) { return a.name < b.name; });
}

const Node* Tree::find(std::string_view name) const {
  auto it = std::lower_bound(nodes.begin(), nodes.end(), name,
                             [](const Node& n, std::string_view v) { return n.name < v; });
  return it != nodes.end() && it->name == name ? &*it : nullptr;
}

Bytes Tree::encode() const {
  Bytes out;
  ByteWriter w(out);
  w.raw(as_bytes({kTreeMagic, 4}));
  w.u8(kTreeVersion);
  w.varint(nodes.size());
  for (const auto& n : nodes) {
    w.u8(static_cast<uint8_t>(n.kind));
    w.str(n.name);
    w.varint(n.mode);
    w.varint(n.uid);
    w.varint(n.gid);
    w.str(n.user);
    w.str(n.group);
    w.svarint(n.mtime_ns);
    w.svarint(n.atime_ns);
    w.svarint(n.ctime_ns);
    w.varint(n.inode);
    w.varint(n.device);
    w.varint(n.links);
    w.varint(n.size);
    w.varint(n.rdev);
    w.str(n.link_target);
    w.varint(n.xattrs.size());
    for (const auto& [k, v] : n.xattrs) {
      w.str(k);
      w.str(v);
    }
    w.varint(n.content.size());
    for (const auto& id : n.content) w.raw({id.data(), id.size()});
    w.u8(n.subtree ? 1 : 0);
    if (n.subtree) w.raw({n.subtree->data(), 32});
  }
  return out;
}

Result<Tree> Tree::decode(ByteView data) {
  ByteReader r(data);
  ByteView magic = r.raw(4);
  if (r.failed() || std::memcmp(magic.data(), kTreeMagic, 4) != 0) return Error(Code::kCorrupt, "tree has a bad magic");
  if (r.u8() != kTreeVersion) return Error(Code::kCorrupt, "tree has an unknown version");
  uint64_t count = r.varint();
  if (r.failed() || count > r.remaining() / 20) return Error(Code::kCorrupt, "tree has a bad node count");
  Tree t;
  t.nodes.resize(count);
  for (auto& n : t.nodes) {
    uint8_t kind = r.u8();
    if (kind < 1 || kind > 7) return Error(Code::kCorrupt, "tree has an unknown node kind");
    n.kind = static_cast<NodeKind>(kind);
    n.name = r.str(4096);
    n.mode = static_cast<uint32_t>(r.varint());
    n.uid = static_cast<uint32_t>(r.varint());
    n.gid = static_cast<uint32_t>(r.varint());
    n.user = r.str(256);
    n.group = r.str(256);
    n.mtime_ns = r.svarint();
    n.atime_ns = r.svarint();
    n.ctime_ns = r.svarint();
    n.inode = r.varint();
    n.device = r.varint();
    n.links = r.varint();
    n.size = r.varint();
    n.rdev = r.varint();
    n.link_target = r.str(65536);
    uint64_t nx = r.varint();
    if (r.failed() || nx > r.remaining() / 2) return Error(Code::kCorrupt, "tree node is truncated");
    for (uint64_t i = 0; i < nx; ++i) {
      std::string k = r.str(4096);
      std::string v = r.str(1 << 20);
      n.xattrs.emplace_back(std::move(k), std::move(v));
    }
    uint64_t nc = r.varint();
    if (r.failed() || nc > r.remaining() / 32) return Error(Code::kCorrupt, "tree node is truncated");
    n.content.resize(nc);
    for (auto& id : n.content) {
      ByteView b = r.raw(32);
      if (!r.failed()) std::memcpy(id.data(), b.data(), 32);
    }
    uint8_t has_subtree = r.u8();
    if (has_subtree > 1) return Error(Code::kCorrupt, "tree node has a bad subtree flag");
    if (has_subtree) {
      ByteView b = r.raw(32);
      if (!r.failed()) {
        BlobId id;
        std::memcpy(id.data(), b.data(), 32);
        n.subtree = id;
      }
    }
    if (r.failed()) return Error(Code::kCorrupt, "tree node is truncated");
    if (n.name.empty() || n.name.find('/') != std::string::npos || n.name.find('\0') != std::string::npos ||
        n.name == "." || n.name == "..")
      return Error(Code::kCorrupt, "tree has a node with an invalid name");
  }
  if (!r.done()) return Error(Code::kCorrupt, "tree has trailing bytes");
  for (size_t i = 1; i < t.nodes.size(); ++i)
    if (!(t.nodes[i - 1].name < t.nodes[i].name)) return Error(Code::kCorrupt, "tree nodes are not sorted and unique");
  return t;
}

}  // namespace lifeboat::repo
