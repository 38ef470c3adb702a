// How a bucket's objects sit in a snapshot's tree: escaped names, the object xattr, and reading them back.
#include <fmt/format.h>
#include <fnmatch.h>

#include "core/names.h"
#include "repo/snapshot_select.h"
#include "repo/tree_walk.h"
#include "sources/gcs_bucket/gcs_bucket.h"

namespace lifeboat::sources::gcs_bucket {

std::string gcs_tree_path(const std::string& relative_name) {
  std::string out;
  size_t start = 0;
  while (true) {
    size_t slash = relative_name.find('/', start);
    std::string comp = relative_name.substr(start, slash == std::string::npos ? std::string::npos : slash - start);
    if (!out.empty() || start > 0) out += '/';
    out += escape_component(comp);
    if (slash == std::string::npos) return out;
    start = slash + 1;
  }
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

int64_t StoredObject::generation() const {
  auto g = resource.value("generation", nlohmann::json());
  if (g.is_string()) return std::strtoll(g.get<std::string>().c_str(), nullptr, 10);
  return g.is_number() ? g.get<int64_t>() : 0;
}

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
