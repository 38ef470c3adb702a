// The snapshot tree of a Firestore backup: documents grouped by name-hash boundaries, and reading
// them back (see firestore.h).
#include <fmt/format.h>

#include <mutex>

#include "core/interrupt.h"
#include "core/worker_pool.h"
#include "repo/node_io.h"
#include "repo/tree_walk.h"
#include "sources/firestore/firestore_internal.h"

namespace lifeboat::sources::firestore {

Status read_range(const cloud::FirestoreClient& client, const std::string& root, const cloud::FirestoreRange& range,
                  const std::string& read_time, size_t page_size, bool keys_only,
                  const std::function<Status(std::vector<nlohmann::json>& documents)>& fn, const std::atomic<bool>* stop) {
  std::string after;
  while (!stop || !*stop) {
    if (interrupted()) return Error(Code::kInterrupted, "interrupted");
    LB_ASSIGN_OR_RETURN(auto page, client.query(root, range, after, page_size, read_time, keys_only));
    bool last = page.documents.size() < page_size;
    if (!last) after = page.documents.back().value("name", "");
    LB_RETURN_IF_ERROR(fn(page.documents));
    if (last) break;
  }
  return Status::ok();
}

bool in_collections(const std::vector<std::string>& collections, const std::string& relative) {
  return collections.empty() || std::find(collections.begin(), collections.end(), top_collection(relative)) != collections.end();
}

Status match_record(const StatsMap& got, const nlohmann::json& recorded) {
  const StatsMap want = stats_from_json(recorded);
  for (const auto& [c, s] : got) {
    auto it = want.find(c);
    if (it != want.end() && !(it->second == s))
      return Error(Code::kCorrupt, fmt::format("collection {}: the documents read from the repository ({}) do not match the "
                                               "backup's record ({} documents, hash {}); the repository is damaged (run check)",
                                               c, s.documents, it->second.documents, it->second.hash().substr(0, 16)));
  }
  return Status::ok();
}

Result<repo::BlobId> store_document_tree(repo::WriteSession& session, size_t count,
                                         const std::function<std::pair<std::string, repo::Node>(size_t)>& at) {
  repo::DirBuilder root;
  repo::DirBuilder& docs = root.dirs["documents"];
  std::string group, bucket;
  for (size_t i = 0; i < count; ++i) {
    auto [rel, node] = at(i);
    std::string name = escape_name(rel);
    if (group.empty()) group = name;
    if (bucket.empty()) bucket = name;
    docs.place(group + "/" + bucket + "/" + name, std::move(node));
    uint64_t h = name_hash(rel);
    if (h % 16 == 0) bucket.clear();
    if (h % 1024 == 0) group.clear(), bucket.clear();
  }
  return root.store(session);
}

Result<std::vector<std::pair<std::string, repo::Node>>> document_nodes(repo::Repository& repo, const repo::BlobId& tree) {
  std::vector<std::pair<std::string, repo::Node>> out;
  LB_RETURN_IF_ERROR(repo::walk_tree(repo, tree, [&](const std::string& path, const repo::Node& node) -> Status {
    if (node.kind != repo::NodeKind::kFile) return Status::ok();
    if (!path.starts_with("documents/"))
      return Error(Code::kCorrupt, fmt::format("the snapshot holds {}, which is not a document", path));
    out.emplace_back(unescape_name(node.name), node);
    return Status::ok();
  }));
  return out;
}

Status for_each_stored(repo::Repository& repo, const std::vector<repo::Node>& nodes, size_t threads, size_t batch,
                       const std::function<Status(std::vector<nlohmann::json>&&)>& fn) {
  std::mutex mu;
  Status failed;
  std::atomic<bool> stop{false};
  auto fail = [&](const Status& st) {
    std::lock_guard<std::mutex> g(mu);
    if (failed.is_ok()) failed = st;
    stop = true;
  };
  batch = std::max<size_t>(1, batch);
  WorkerPool pool(std::max<size_t>(1, threads), 2 * std::max<size_t>(1, threads));
  for (size_t begin = 0; begin < nodes.size() && !stop; begin += batch) {
    size_t end = std::min(nodes.size(), begin + batch);
    pool.submit([&, begin, end] {
      std::vector<nlohmann::json> docs;
      for (size_t i = begin; i < end && !stop; ++i) {
        auto bytes = repo::read_node_bytes(repo, nodes[i]);
        if (!bytes) return fail(bytes.status().with_context("reading document " + unescape_name(nodes[i].name)));
        auto j = nlohmann::json::parse(bytes->begin(), bytes->end(), nullptr, false);
        if (j.is_discarded() || !j.is_object() || !j.contains("name"))
          return fail(Error(Code::kCorrupt, fmt::format("document {} in the repository is not a document", unescape_name(nodes[i].name))));
        docs.push_back(std::move(j));
      }
      if (stop) return;
      if (Status st = fn(std::move(docs)); !st.is_ok()) fail(st);
    });
  }
  pool.wait_idle();
  return failed;
}

Result<StatsMap> stats_of_nodes(repo::Repository& repo, const std::vector<repo::Node>& nodes, size_t threads) {
  std::mutex mu;
  StatsMap stats;
  LB_RETURN_IF_ERROR(for_each_stored(repo, nodes, threads, 256, [&](std::vector<nlohmann::json>&& docs) -> Status {
    StatsMap mine;
    for (const auto& d : docs) mine[top_collection(d.value("name", ""))].add(d);
    std::lock_guard<std::mutex> g(mu);
    merge_stats(stats, mine);
    return Status::ok();
  }));
  return stats;
}

}  // namespace lifeboat::sources::firestore
