// Pieces the Firestore backup, restore and checks share (not part of the source's interface).
#pragma once

#include <atomic>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "cloud/firestore_client.h"
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
// Those ranges cut into about `parts` pieces: the server's partitions, else cuts at counted offsets.
Result<std::vector<cloud::FirestoreRange>> split_ranges(const cloud::FirestoreClient& client, const std::string& root,
                                                        const std::vector<std::string>& collections, size_t parts,
                                                        const std::string& read_time);

// Reads every document of `range` at `read_time` ("" for now) in pages of `page_size`, calling
// fn with each page (in name order) until the range ends, fn fails, `stop` turns true or the process
// is interrupted.
Status read_range(const cloud::FirestoreClient& client, const std::string& root, const cloud::FirestoreRange& range,
                  const std::string& read_time, size_t page_size, bool keys_only,
                  const std::function<Status(std::vector<nlohmann::json>& documents)>& fn,
                  const std::atomic<bool>* stop = nullptr);

// Firestore's guidance for a new write load on a database: 500 writes/s, then 50% more every 5
// minutes ("500/50/5"); the rate allowed `elapsed_ns` after the restore began.
double ramp_writes_per_second(int64_t elapsed_ns);

// Stores documents (given in name order by `at(i)` → relative name, file node) as the snapshot tree
// "documents/GROUP/BUCKET/NAME"; returns the root tree.
Result<repo::BlobId> store_document_tree(repo::WriteSession& session, size_t count,
                                         const std::function<std::pair<std::string, repo::Node>(size_t)>& at);
// Every document node of a snapshot's tree (relative name, node), in tree order.
Result<std::vector<std::pair<std::string, repo::Node>>> document_nodes(repo::Repository& repo, const repo::BlobId& tree);
// Reads the nodes' documents from the repository with `threads` readers, calling fn with each run of
// up to `batch` of them (from several threads at once); the first error stops the rest.
Status for_each_stored(repo::Repository& repo, const std::vector<repo::Node>& nodes, size_t threads, size_t batch,
                       const std::function<Status(std::vector<nlohmann::json>&&)>& fn);
// Counts and hashes of the nodes' documents, read back from the repository.
Result<StatsMap> stats_of_nodes(repo::Repository& repo, const std::vector<repo::Node>& nodes, size_t threads);

}  // namespace lifeboat::sources::firestore
