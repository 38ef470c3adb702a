// How a bucket's objects sit in a snapshot's tree: escaped names, the object xattr, and reading them back.
#include <fmt/format.h>
#include <fnmatch.h>

#include "core/names.h"
#include "repo/node_io.h"
#include "repo/snapshot_select.h"
#include "repo/tree_walk.h"
#include "sources/gcs_bucket/gcs_bucket.h"

namespace lifeboat::sources::gcs_bucket {

namespace {

// An object name's components, split at every '/' (empty ones kept).
std::vector<std::string> split_components(const std::string& name) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    size_t slash = name.find('/', start);
    out.push_back(name.substr(start, slash == std::string::npos ? std::string::npos : slash - start));
    if (slash == std::string::npos) return out;
    start = slash + 1;
  }
}

}  // namespace

std::string gcs_tree_path(const std::string& relative_name) {
  std::string out;
  for (const auto& c : split_components(relative_name)) {
    if (!out.empty()) out += '/';
    out += escape_component(c);
  }
  return out;
}

Result<BucketLocation> parse_location(const std::string& url) {
  LB_ASSIGN_OR_RETURN(auto bp, cloud::parse_gs_url(url));
  BucketLocation loc{bp.first, bp.second};
  if (!loc.prefix.empty() && loc.prefix.back() != '/') loc.prefix += '/';
  return loc;
}

bool matches_any(const std::vector<std::string>& patterns, const std::string& name) {
  std::string base = name.substr(name.rfind('/') == std::string::npos ? 0 : name.rfind('/') + 1);
  for (const auto& p : patterns)
    if (fnmatch(p.c_str(), name.c_str(), 0) == 0 || fnmatch(p.c_str(), base.c_str(), 0) == 0) return true;
  return false;
}

namespace {

// A recorded resource's generation: GCS writes it as a string of digits (a number is read too).
int64_t generation_of(const nlohmann::json& resource) {
  auto g = resource.is_object() ? resource.value("generation", nlohmann::json()) : nlohmann::json();
  if (g.is_string()) return std::strtoll(g.get<std::string>().c_str(), nullptr, 10);
  return g.is_number() ? g.get<int64_t>() : 0;
}

}  // namespace

int64_t StoredObject::generation() const { return generation_of(resource); }

Result<std::vector<StoredObject>> stored_objects(repo::Repository& repo, const repo::Snapshot& snapshot) {
  std::string prefix = snapshot.metadata.value("prefix", "");
  std::vector<StoredObject> out;
  Status s = repo::walk_tree(repo, snapshot.tree, [&](const std::string& path, const repo::Node& n) -> Status {
    if (n.kind != repo::NodeKind::kFile) return Status::ok();
    for (const auto& [k, v] : n.xattrs) {
      if (k != kObjectXattr) continue;
      auto j = nlohmann::json::parse(v, nullptr, false);
      if (j.is_discarded() || !j.is_object() || !j.contains("name"))
        return Error(Code::kCorrupt, fmt::format("{}: the object record of the snapshot is unreadable", path));
      StoredObject o;
      std::string name = j.value("name", "");
      if (!name.starts_with(prefix))
        return Error(Code::kCorrupt, fmt::format("{}: object {} lies outside the backed-up prefix {}", path, name, prefix));
      o.relative_name = name.substr(prefix.size());
      o.resource = std::move(j);
      o.node = n;
      o.tree_path = path;
      o.noncurrent = path.starts_with(std::string(kVersionsDir) + "/");
      out.push_back(std::move(o));
    }
    return Status::ok();
  });
  LB_RETURN_IF_ERROR(s);
  return out;
}

namespace {

int64_t recorded_generation(const repo::Node& n) {
  for (const auto& [k, v] : n.xattrs)
    if (k == kObjectXattr) return generation_of(nlohmann::json::parse(v, nullptr, false));
  return 0;
}

}  // namespace

Status StreamingObjectTree::place(const std::string& relative_name, repo::Node node, const std::string& suffix) {
  auto comps = split_components(relative_name);
  // open_[0] is the root; open_[i] (i ≥ 1) is the directory comps[i-1] while the path matches.
  size_t keep = 1;
  while (keep < open_.size() && keep < comps.size() && open_[keep].raw == comps[keep - 1]) ++keep;
  LB_RETURN_IF_ERROR(close_to(keep));
  for (size_t i = keep - 1; i + 1 < comps.size(); ++i) {
    std::string escaped = escape_component(comps[i]);
    if (open_.back().dirs.count(escaped))
      return Error(Code::kFatal, fmt::format("the bucket listing is not in name order: {} came after directory {} was complete; "
                                             "nothing was committed", relative_name, escaped));
    Level l;
    l.raw = comps[i];
    open_.push_back(std::move(l));
  }
  node.name = escape_component(comps.back()) + suffix;
  open_.back().files.emplace(node.name, std::move(node));
  return Status::ok();
}

Status StreamingObjectTree::close_to(size_t depth) {
  while (open_.size() > depth) {
    Level done = std::move(open_.back());
    open_.pop_back();
    LB_ASSIGN_OR_RETURN(auto id, store(done));
    open_.back().dirs[escape_component(done.raw)] = id;
  }
  return Status::ok();
}

// A directory's tree: subdirectories, then files; an object named like a folder of other objects
// ("a" beside "a/b") is shown as "a%" (escaping never ends a name in '%').
Result<repo::BlobId> StreamingObjectTree::store(Level& level) {
  repo::Tree t;
  for (const auto& [name, id] : level.dirs) t.nodes.push_back(repo::dir_node(name, id));
  for (auto& [name, node] : level.files) {
    if (level.dirs.count(name)) node.name = name + "%";
    t.nodes.push_back(std::move(node));
  }
  t.sort();
  return session_.store_tree(t);
}

Result<repo::BlobId> StreamingObjectTree::finish() {
  LB_RETURN_IF_ERROR(close_to(1));
  for (const auto& [name, id] : extra_root_dirs_) open_[0].dirs[name] = id;
  return store(open_[0]);
}

Status ParentObjects::open_root(Cursor& c, bool live) {
  if (!c.trees.empty()) return Status::ok();
  c.trees.push_back(repo::Tree{});
  if (!root_) return Status::ok();
  LB_ASSIGN_OR_RETURN(repo::Tree root, repo_.load_tree(*root_));
  if (live) {
    c.trees[0] = std::move(root);
  } else if (const repo::Node* v = root.find(kVersionsDir); v && v->kind == repo::NodeKind::kDir && v->subtree) {
    LB_ASSIGN_OR_RETURN(c.trees[0], repo_.load_tree(*v->subtree));
  }
  return Status::ok();
}

Result<std::optional<repo::Node>> ParentObjects::find(const std::string& relative_name, int64_t generation, bool live) {
  if (!root_) return std::optional<repo::Node>();
  Cursor& c = live ? live_ : versions_;
  LB_RETURN_IF_ERROR(open_root(c, live));
  auto comps = split_components(relative_name);
  size_t keep = 0;
  while (keep < c.raw.size() && keep + 1 < comps.size() && c.raw[keep] == comps[keep]) ++keep;
  c.raw.resize(keep);
  c.trees.resize(keep + 1);
  for (size_t i = keep; i + 1 < comps.size(); ++i) {
    repo::Tree next;  // empty: the parent has no such directory
    if (const repo::Node* d = c.trees.back().find(escape_component(comps[i])); d && d->kind == repo::NodeKind::kDir && d->subtree) {
      LB_ASSIGN_OR_RETURN(next, repo_.load_tree(*d->subtree));
    }
    c.raw.push_back(comps[i]);
    c.trees.push_back(std::move(next));
  }
  const repo::Tree& dir = c.trees.back();
  std::string leaf = escape_component(comps.back());
  std::vector<std::string> names = live ? std::vector<std::string>{leaf, leaf + "%"}
                                        : std::vector<std::string>{fmt::format("{}%g{}", leaf, generation)};
  for (const auto& name : names)
    if (const repo::Node* n = dir.find(name); n && n->kind == repo::NodeKind::kFile && recorded_generation(*n) == generation)
      return std::optional<repo::Node>(*n);
  return std::optional<repo::Node>();
}

Result<repo::SnapshotRef> pick_gcs_snapshot(const std::vector<repo::SnapshotRef>& all, const std::string& url,
                                            const std::vector<std::string>& tags, std::optional<int64_t> at_ns) {
  repo::SnapshotFilter f;
  f.source = kSource;
  f.tags = tags;
  if (!url.empty()) {
    LB_ASSIGN_OR_RETURN(auto loc, parse_location(url));
    f.paths = {loc.url()};
  }
  auto r = repo::select_snapshot(all, "latest", at_ns, f);
  if (!r && r.status().code() == Code::kNotFound)
    return Error(Code::kNotFound, fmt::format("no backup of {}{}", url.empty() ? "a bucket" : url,
                                              at_ns ? " at or before the requested time" : ""));
  return r;
}

}  // namespace lifeboat::sources::gcs_bucket
