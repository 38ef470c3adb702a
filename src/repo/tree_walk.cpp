// Tree walks and diffs.
#include "repo/tree_walk.h"

#include <unordered_set>

#include "core/interrupt.h"

namespace lifeboat::repo {

static Status walk(Repository& repo, const BlobId& id, const std::string& prefix,
                   const std::function<Status(const std::string&, const Node&)>& fn) {
  if (interrupted()) return Error(Code::kInterrupted, "interrupted");
  LB_ASSIGN_OR_RETURN(Tree tree, repo.load_tree(id));
  for (const auto& n : tree.nodes) {
    std::string path = prefix.empty() ? n.name : prefix + "/" + n.name;
    LB_RETURN_IF_ERROR(fn(path, n));
    if (n.kind == NodeKind::kDir && n.subtree) LB_RETURN_IF_ERROR(walk(repo, *n.subtree, path, fn));
  }
  return Status::ok();
}

Status walk_tree(Repository& repo, const BlobId& root,
                 const std::function<Status(const std::string& path, const Node& node)>& fn) {
  return walk(repo, root, "", fn);
}

Result<ReferencedSize> referenced_size(Repository& repo, const std::vector<BlobId>& roots) {
  ReferencedSize out;
  std::unordered_set<BlobId, BlobIdHash> seen;
  auto count = [&](const BlobId& id, bool data) {
    if (!seen.insert(id).second) return false;
    if (auto loc = repo.index().find(id)) {
      ++out.blobs;
      out.raw_bytes += loc->raw_len;
      out.stored_bytes += loc->stored_len;
      if (data) {
        out.data_raw_bytes += loc->raw_len;
        out.data_stored_bytes += loc->stored_len;
      }
    }
    return true;
  };
  std::vector<BlobId> pending(roots.begin(), roots.end());
  while (!pending.empty()) {
    BlobId id = pending.back();
    pending.pop_back();
    if (!count(id, false)) continue;
    LB_ASSIGN_OR_RETURN(Tree t, repo.load_tree(id));
    for (const auto& n : t.nodes) {
      if (n.subtree) pending.push_back(*n.subtree);
      for (const auto& c : n.content) count(c, true);
    }
  }
  return out;
}

static Status report_all(Repository& repo, const Node& n, const std::string& path, Change change,
                         const std::function<void(const DiffEntry&)>& fn) {
  fn({change, path, n.kind});
  if (n.kind != NodeKind::kDir || !n.subtree) return Status::ok();
  return walk(repo, *n.subtree, path, [&](const std::string& p, const Node& c) {
    fn({change, p, c.kind});
    return Status::ok();
  });
}

static bool metadata_differs(const Node& x, const Node& y) {
  return x.mode != y.mode || x.uid != y.uid || x.gid != y.gid || x.mtime_ns != y.mtime_ns || x.xattrs != y.xattrs ||
         x.link_target != y.link_target;
}

static Status diff(Repository& repo, const BlobId& a, const BlobId& b, const std::string& prefix,
                   const std::function<void(const DiffEntry&)>& fn) {
  if (a == b) return Status::ok();
  LB_ASSIGN_OR_RETURN(Tree ta, repo.load_tree(a));
  LB_ASSIGN_OR_RETURN(Tree tb, repo.load_tree(b));
  size_t i = 0, j = 0;
  auto join = [&](const std::string& name) { return prefix.empty() ? name : prefix + "/" + name; };
  while (i < ta.nodes.size() || j < tb.nodes.size()) {
    if (j == tb.nodes.size() || (i < ta.nodes.size() && ta.nodes[i].name < tb.nodes[j].name)) {
      LB_RETURN_IF_ERROR(report_all(repo, ta.nodes[i], join(ta.nodes[i].name), Change::kRemoved, fn));
      ++i;
    } else if (i == ta.nodes.size() || tb.nodes[j].name < ta.nodes[i].name) {
      LB_RETURN_IF_ERROR(report_all(repo, tb.nodes[j], join(tb.nodes[j].name), Change::kAdded, fn));
      ++j;
    } else {
      const Node& x = ta.nodes[i++];
      const Node& y = tb.nodes[j++];
      std::string path = join(x.name);
      if (x.kind != y.kind) {
        fn({Change::kTypeChanged, path, y.kind});
        if (x.kind == NodeKind::kDir && x.subtree)
          LB_RETURN_IF_ERROR(walk(repo, *x.subtree, path, [&](const std::string& p, const Node& c) {
            fn({Change::kRemoved, p, c.kind});
            return Status::ok();
          }));
        if (y.kind == NodeKind::kDir && y.subtree)
          LB_RETURN_IF_ERROR(walk(repo, *y.subtree, path, [&](const std::string& p, const Node& c) {
            fn({Change::kAdded, p, c.kind});
            return Status::ok();
          }));
      } else if (x.kind == NodeKind::kDir) {
        if (metadata_differs(x, y)) fn({Change::kMetadata, path, y.kind});
        if (x.subtree && y.subtree) LB_RETURN_IF_ERROR(diff(repo, *x.subtree, *y.subtree, path, fn));
      } else if (x.content != y.content || x.size != y.size) {
        fn({Change::kModified, path, y.kind});
      } else if (metadata_differs(x, y)) {
        fn({Change::kMetadata, path, y.kind});
      }
    }
  }
  return Status::ok();
}

Status diff_trees(Repository& repo, const BlobId& a, const BlobId& b, const std::function<void(const DiffEntry&)>& fn) {
  return diff(repo, a, b, "", fn);
}

}  // namespace lifeboat::repo
