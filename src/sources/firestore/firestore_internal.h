// Pieces the Firestore backup, restore and checks share (not part of the source's interface).
#pragma once

#include <atomic>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "cloud/firestore_client.h"
#include "repo/node_io.h"
#include "repo/write_session.h"
#include "sources/firestore/firestore.h"

namespace lifeboat::sources::firestore {

// Is the document in one of the top-level collections (all of them when none are named)?
bool in_collections(const std::vector<std::string>& collections, const std::string& relative);
// kCorrupt naming the first collection of `got` whose count or hash differs from the backup's record
// (a snapshot's metadata "collections"); collections the record lacks are not judged.
Status match_record(const StatsMap& got, const nlohmann::json& recorded);

// Firestore's name order on relative names: segment by segment.
bool firestore_name_less(const std::string& a, const std::string& b);
// One range per top-level collection (everything below it), or the whole database.
std::vector<cloud::FirestoreRange> collection_ranges(const std::string& root, const std::vector<std::string>& collections);
// Those ranges cut into about `parts` pieces, or more so that none holds more than `max_docs`
// documents (0: no limit): the server's partitions, else cuts at counted offsets. In name order when
// the collections are.
Result<std::vector<cloud::FirestoreRange>> split_ranges(const cloud::FirestoreClient& client, const std::string& root,
                                                        const std::vector<std::string>& collections, size_t parts,
                                                        const std::string& read_time, size_t max_docs = 0);

// Reads every document of `range` at `read_time` ("" for now) in pages of `page_size`, calling
// fn with each page (in name order) until the range ends, fn fails, `stop` turns true or the process
// is interrupted.
Status read_range(const cloud::FirestoreClient& client, const std::string& root, const cloud::FirestoreRange& range,
                  const std::string& read_time, size_t page_size, bool keys_only,
                  const std::function<Status(std::vector<nlohmann::json>& documents)>& fn,
                  const std::atomic<bool>* stop = nullptr);

// The same, one document at a time as each page's answer is parsed (a page is never held whole);
// after_page runs after each page.
Status read_range_each(const cloud::FirestoreClient& client, const std::string& root, const cloud::FirestoreRange& range,
                       const std::string& read_time, size_t page_size, const std::function<Status(nlohmann::json&& document)>& fn,
                       const std::function<Status()>& after_page, const std::atomic<bool>* stop = nullptr);

// Firestore's guidance for a new write load on a database: 500 writes/s, then 50% more every 5
// minutes ("500/50/5"); the rate allowed `elapsed_ns` after the restore began.
double ramp_writes_per_second(int64_t elapsed_ns);

// Builds the snapshot tree "documents/GROUP/BUCKET/NAME" from documents given one at a time in name
// order (firestore_name_less; a document out of order is refused): a group (about 1,024 documents,
// cut where a name's hash says) is stored as soon as it closes, so what is held is one group and a
// node per group, not the documents.
class DocumentTreeWriter {
 public:
  explicit DocumentTreeWriter(repo::WriteSession& session);
  Status add(const std::string& relative, repo::Node node);
  // Stores what is open and the trees above it; returns the root tree.
  Result<repo::BlobId> finish();
  size_t count() const { return count_; }

 private:
  Status close_group();
  repo::WriteSession& session_;
  repo::DirBuilder open_group_;  // the open group's buckets
  std::string group_, bucket_, last_;
  repo::Tree groups_;  // "documents": one node per stored group
  size_t count_ = 0;
};
// The same tree from `count` documents given by `at(i)` → (relative name, file node), in name order.
Result<repo::BlobId> store_document_tree(repo::WriteSession& session, size_t count,
                                         const std::function<std::pair<std::string, repo::Node>(size_t)>& at);
// Calls fn with every document node of a snapshot's tree (relative name, node), in tree order, one
// tree at a time.
Status for_each_document_node(repo::Repository& repo, const repo::BlobId& tree,
                              const std::function<Status(const std::string& relative, const repo::Node& node)>& fn);
// All of them in one vector (the checks, which need every name anyway).
Result<std::vector<std::pair<std::string, repo::Node>>> document_nodes(repo::Repository& repo, const repo::BlobId& tree);
// Yields nodes through `emit` (which fails once a reader has failed: stop then).
using NodeProducer = std::function<Status(const std::function<Status(repo::Node&&)>& emit)>;
// Reads the produced nodes' documents from the repository with `threads` readers, calling fn with each
// run of up to `batch` of them (from several threads at once); the first error stops the rest. At most
// 2 x threads batches wait at a time, so memory does not grow with the documents.
Status for_each_stored(repo::Repository& repo, const NodeProducer& produce, size_t threads, size_t batch,
                       const std::function<Status(std::vector<nlohmann::json>&&)>& fn);
// Counts and hashes of every document of a snapshot tree, read back from the repository; `documents`
// gets how many the tree names.
Result<StatsMap> stats_of_tree(repo::Repository& repo, const repo::BlobId& tree, size_t threads, size_t& documents);

}  // namespace lifeboat::sources::firestore
