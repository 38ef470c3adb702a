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

Status read_range_each(const cloud::FirestoreClient& client, const std::string& root, const cloud::FirestoreRange& range,
                       const std::string& read_time, size_t page_size, const std::function<Status(nlohmann::json&& document)>& fn,
                       const std::function<Status()>& after_page, const std::atomic<bool>* stop) {
  std::string after;
  while (!stop || !*stop) {
    if (interrupted()) return Error(Code::kInterrupted, "interrupted");
    LB_ASSIGN_OR_RETURN(auto end, client.query_each(root, range, after, page_size, read_time, fn));
    bool last = end.documents < page_size;
    if (!last) after = end.last_name;
    LB_RETURN_IF_ERROR(after_page());
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

DocumentTreeWriter::DocumentTreeWriter(repo::WriteSession& session) : session_(session) {}

Status DocumentTreeWriter::add(const std::string& relative, repo::Node node) {
  if (!last_.empty() && !firestore_name_less(last_, relative))
    return Error(Code::kFatal, fmt::format("documents reached the snapshot tree out of name order ({} after {}); nothing "
                                           "was committed", relative, last_));
  last_ = relative;
  std::string name = escape_name(relative);
  if (group_.empty()) group_ = name;
  if (bucket_.empty()) bucket_ = name;
  open_group_.place(bucket_ + "/" + name, std::move(node));
  ++count_;
  uint64_t h = name_hash(relative);
  if (h % 16 == 0) bucket_.clear();
  if (h % 1024 == 0) return close_group();
  return Status::ok();
}

Status DocumentTreeWriter::close_group() {
  if (group_.empty()) return Status::ok();
  LB_ASSIGN_OR_RETURN(auto id, open_group_.store(session_));
  groups_.nodes.push_back(repo::dir_node(group_, id));
  open_group_ = {};
  group_.clear();
  bucket_.clear();
  return Status::ok();
}

Result<repo::BlobId> DocumentTreeWriter::finish() {
  LB_RETURN_IF_ERROR(close_group());
  groups_.sort();
  LB_ASSIGN_OR_RETURN(auto documents, session_.store_tree(groups_));
  repo::Tree root;
  root.nodes.push_back(repo::dir_node("documents", documents));
  return session_.store_tree(root);
}

Result<repo::BlobId> store_document_tree(repo::WriteSession& session, size_t count,
                                         const std::function<std::pair<std::string, repo::Node>(size_t)>& at) {
  DocumentTreeWriter writer(session);
  for (size_t i = 0; i < count; ++i) {
    auto [rel, node] = at(i);
    LB_RETURN_IF_ERROR(writer.add(rel, std::move(node)));
  }
  return writer.finish();
}

Status for_each_document_node(repo::Repository& repo, const repo::BlobId& tree,
                              const std::function<Status(const std::string& relative, const repo::Node& node)>& fn) {
  return repo::walk_tree(repo, tree, [&](const std::string& path, const repo::Node& node) -> Status {
    if (node.kind != repo::NodeKind::kFile) return Status::ok();
    if (!path.starts_with("documents/"))
      return Error(Code::kCorrupt, fmt::format("the snapshot holds {}, which is not a document", path));
    return fn(unescape_name(node.name), node);
  });
}

Result<std::vector<std::pair<std::string, repo::Node>>> document_nodes(repo::Repository& repo, const repo::BlobId& tree) {
  std::vector<std::pair<std::string, repo::Node>> out;
  LB_RETURN_IF_ERROR(for_each_document_node(repo, tree, [&](const std::string& rel, const repo::Node& node) {
    out.emplace_back(rel, node);
    return Status::ok();
  }));
  return out;
}

Status for_each_stored(repo::Repository& repo, const NodeProducer& produce, size_t threads, size_t batch,
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
  // At most twice `threads` batches wait: what is held is bounded whatever the producer yields.
  WorkerPool pool(std::max<size_t>(1, threads), 2 * std::max<size_t>(1, threads));
  std::vector<repo::Node> pending;
  auto submit = [&] {
    pool.submit([&, nodes = std::move(pending)] {
      std::vector<nlohmann::json> docs;
      docs.reserve(nodes.size());
      for (const auto& node : nodes) {
        if (stop) return;
        auto bytes = repo::read_node_bytes(repo, node);
        if (!bytes) return fail(bytes.status().with_context("reading document " + unescape_name(node.name)));
        auto j = nlohmann::json::parse(bytes->begin(), bytes->end(), nullptr, false);
        if (j.is_discarded() || !j.is_object() || !j.contains("name"))
          return fail(Error(Code::kCorrupt, fmt::format("document {} in the repository is not a document", unescape_name(node.name))));
        docs.push_back(std::move(j));
      }
      if (stop) return;
      if (Status st = fn(std::move(docs)); !st.is_ok()) fail(st);
    });
    pending = {};
  };
  Status produced = produce([&](repo::Node&& node) -> Status {
    if (stop) return Error(Code::kFatal, "stopped");  // a reader failed: its error is returned instead
    pending.push_back(std::move(node));
    if (pending.size() == batch) submit();
    return Status::ok();
  });
  if (produced.is_ok() && !pending.empty() && !stop) submit();
  pool.wait_idle();
  if (!failed.is_ok()) return failed;
  return produced;
}

Result<StatsMap> stats_of_tree(repo::Repository& repo, const repo::BlobId& tree, size_t threads, size_t& documents) {
  std::mutex mu;
  StatsMap stats;
  documents = 0;
  auto produce = [&](const std::function<Status(repo::Node&&)>& emit) {
    return for_each_document_node(repo, tree, [&](const std::string&, const repo::Node& node) {
      ++documents;
      return emit(repo::Node(node));
    });
  };
  LB_RETURN_IF_ERROR(for_each_stored(repo, produce, threads, 256, [&](std::vector<nlohmann::json>&& docs) -> Status {
    StatsMap mine;
    for (const auto& d : docs) mine[top_collection(d.value("name", ""))].add(d);
    std::lock_guard<std::mutex> g(mu);
    merge_stats(stats, mine);
    return Status::ok();
  }));
  return stats;
}

}  // namespace lifeboat::sources::firestore
