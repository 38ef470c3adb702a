// Firestore backups: pick the server's read time, split the database into ranges of document
// names, read them with several readers at that read time, store one node per document in name
// order, read every stored document back to check counts and hashes, commit (see firestore.h).
#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>

#include "cloud/firestore_client.h"
#include "core/time.h"
#include "core/worker_pool.h"
#include "repo/node_io.h"
#include "repo/write_session.h"
#include "sources/firestore/firestore.h"
#include "sources/firestore/firestore_internal.h"

namespace lifeboat::sources::firestore {

namespace {

// Documents a query asks for at once. Large: the emulator scans its whole database for every query,
// so fewer, longer queries are much faster there; a page of this size stays a few tens of MB.
constexpr size_t kPage = 20000;
// Documents a range holds at most, so the ranges waiting for the tree stay bounded (a range costs a
// node per document until its turn: ~300 bytes each).
constexpr size_t kRangeDocs = 20000;

struct ReadDoc {
  std::string relative;
  repo::Node node;
};


}  // namespace

bool firestore_name_less(const std::string& a, const std::string& b) {
  // Segment by segment: "users/alice" < "users/alice/orders/o1" < "users/alicf".
  size_t n = std::min(a.size(), b.size());
  for (size_t i = 0; i < n; ++i) {
    unsigned char x = a[i] == '/' ? 0 : static_cast<unsigned char>(a[i]) + 1;
    unsigned char y = b[i] == '/' ? 0 : static_cast<unsigned char>(b[i]) + 1;
    if (x != y) return x < y;
  }
  return a.size() < b.size();
}

std::vector<cloud::FirestoreRange> collection_ranges(const std::string& root, const std::vector<std::string>& collections) {
  std::vector<cloud::FirestoreRange> out;
  if (collections.empty()) return {cloud::FirestoreRange{}};
  // Everything below collection C lies between "C/\0" and "C\0/\0" in name order.
  for (const auto& c : collections)
    out.push_back({fmt::format("{}/{}/{}", root, c, std::string(1, '\0')), fmt::format("{}/{}{}/{}", root, c, std::string(1, '\0'), std::string(1, '\0'))});
  return out;
}

Result<std::vector<cloud::FirestoreRange>> split_ranges(const cloud::FirestoreClient& client, const std::string& root,
                                                        const std::vector<std::string>& collections, size_t parts,
                                                        const std::string& read_time, size_t max_docs) {
  auto base = collection_ranges(root, collections);
  if (parts <= 1 && max_docs == 0) return base;
  auto enough = [&](int64_t n) {
    size_t k = std::max<size_t>(1, parts);
    if (max_docs) k = std::max<size_t>(k, (static_cast<size_t>(std::max<int64_t>(0, n)) + max_docs - 1) / max_docs);
    return k;
  };
  if (collections.empty()) {
    size_t want = parts;
    if (max_docs && !client.emulator()) {
      LB_ASSIGN_OR_RETURN(int64_t n, client.count(root, base.front(), read_time));
      want = enough(n);
    }
    LB_ASSIGN_OR_RETURN(auto cuts, want > 1 ? client.partition(root, want, read_time)
                                            : Result<std::optional<std::vector<std::string>>>(std::optional<std::vector<std::string>>()));
    if (cuts) {
      std::vector<cloud::FirestoreRange> out;
      std::string start;
      for (const auto& c : *cuts) {
        out.push_back({start, c});
        start = c;
      }
      out.push_back({start, ""});
      return out;
    }
  }
  // No partitionQuery (the emulator): count each range and cut it at evenly spaced offsets, into
  // about one range per reader (every query costs the emulator a scan of the database), or more
  // when a range would hold more than max_docs documents.
  std::vector<cloud::FirestoreRange> out;
  for (const auto& r : base) {
    LB_ASSIGN_OR_RETURN(int64_t n, client.count(root, r, read_time));
    size_t k = std::min<size_t>(enough(n), static_cast<size_t>(n / 1000) + 1);
    std::string start = r.start;
    for (size_t i = 1; i < k; ++i) {
      LB_ASSIGN_OR_RETURN(auto cut, client.name_at(root, r, n * static_cast<int64_t>(i) / static_cast<int64_t>(k), read_time));
      if (!cut || *cut == start) continue;
      out.push_back({start, *cut});
      start = *cut;
    }
    out.push_back({start, r.end});
  }
  return out;
}

Result<FirestoreBackupResult> backup_firestore(repo::Repository& repo, const FirestoreBackupOptions& options,
                                               ProgressCounters& progress) {
  if (options.project.empty()) return Error(Code::kInvalidArgument, "backup firestore needs --project");
  const int64_t start_mono = monotonic_ns();
  LB_ASSIGN_OR_RETURN(auto client, cloud::FirestoreClient::from_environment());
  const std::string root = cloud::firestore_documents_root(options.project, options.database);
  const std::string db = root.substr(0, root.size() - std::string("/documents").size());

  // The read time is the server's: whatever it answers "now" with.
  LB_ASSIGN_OR_RETURN(auto first, client->query(root, {}, "", 1, "", true));
  if (first.read_time.empty()) return Error(Code::kUnavailable, fmt::format("{}: the server gave no read time", db));
  const std::string read_time = first.read_time;
  LB_ASSIGN_OR_RETURN(int64_t read_ns, parse_time(read_time));
  auto window_check = [&]() -> Status {
    int64_t age = now_unix_ns() - read_ns;
    if (age + options.read_window_ns / 20 > options.read_window_ns)
      return Error(Code::kFatal,
                   fmt::format("{}: the backup could not finish inside the read window ({} since the read time {}, the server keeps "
                               "{}); nothing was committed. Enable point-in-time recovery on the database (7 days, then "
                               "--read-window 7d) or back up fewer collections at a time (--collection)",
                               db, format_duration_ms(age / 1000000), read_time, format_duration_ms(options.read_window_ns / 1000000)));
    return Status::ok();
  };

  const size_t readers = std::max<size_t>(1, options.readers);
  // Ranges of at most kRangeDocs documents, in name order: they reach the tree in order, at most
  // readers + 1 of them held at a time (docs/memory.md).
  std::vector<std::string> collections = options.collections;
  std::sort(collections.begin(), collections.end(), firestore_name_less);
  LB_ASSIGN_OR_RETURN(auto ranges, split_ranges(*client, root, collections, client->emulator() ? readers : readers * 4,
                                                read_time, kRangeDocs));

  LB_RETURN_IF_ERROR(repo.reconcile_packs().status());  // what earlier backups stored (and is there) is not stored again
  repo::WriteSession session(repo);
  DocumentTreeWriter tree(session);
  struct RangeOut {
    std::vector<ReadDoc> docs;
    bool done = false;
  };
  std::vector<RangeOut> outs(ranges.size());
  std::mutex mu;
  std::condition_variable range_done;
  StatsMap stats;
  Status failed;
  std::atomic<bool> stop{false};
  uint64_t total_bytes = 0;
  {
    WorkerPool pool(readers, ranges.size() + 1);
    auto submit = [&](size_t i) {
      pool.submit([&, i] {
        const auto& range = ranges[i];
        std::vector<ReadDoc> mine;
        StatsMap my_stats;
        uint64_t bytes = 0;
        Status st = read_range_each(*client, root, range, read_time, kPage, [&](nlohmann::json&& d) -> Status {
          std::string rel = relative_name(d.value("name", ""), root);
          // A document the query returned outside the database asked for is not ours to store, nor
          // to leave out quietly: the backup stops, naming it (nothing is committed).
          if (rel.empty())
            return Error(Code::kCorrupt, fmt::format("the server returned a document outside {}: '{}'; nothing was "
                                                     "committed",
                                                     root, d.value("name", std::string("(no name)"))));
          nlohmann::json stored = stored_document(d, root);
          std::string text = stored.dump();
          int64_t mtime = 0;
          if (auto t = parse_time(stored.value("updateTime", "")); t) mtime = *t;
          LB_ASSIGN_OR_RETURN(auto node, repo::store_bytes_node(session, escape_name(rel), as_bytes(text), 0644, mtime));
          node.atime_ns = node.ctime_ns = 0;  // one time per document keeps the daily trees small
          bytes += text.size();
          progress.files_done++;
          progress.bytes_done += text.size();
          my_stats[top_collection(rel)].add(stored);
          mine.push_back({rel, std::move(node)});
          return Status::ok();
        }, window_check, &stop);
        if (!st.is_ok() && cloud::firestore_read_time_too_old(st))
          st = st.with_context(fmt::format("the server no longer keeps the read time {} (without point-in-time recovery it "
                                           "keeps an hour); nothing was committed", read_time));
        std::sort(mine.begin(), mine.end(), [](const ReadDoc& a, const ReadDoc& b) { return firestore_name_less(a.relative, b.relative); });
        std::lock_guard<std::mutex> g(mu);
        if (!st.is_ok()) {
          if (failed.is_ok()) failed = st;
          stop = true;
        } else {
          total_bytes += bytes;
          merge_stats(stats, my_stats);
          outs[i].docs = std::move(mine);
        }
        outs[i].done = true;
        range_done.notify_all();
      });
    };
    const size_t window = readers + 1;
    size_t submitted = 0;
    for (; submitted < std::min(window, ranges.size()); ++submitted) submit(submitted);
    for (size_t i = 0; i < ranges.size(); ++i) {
      std::vector<ReadDoc> docs;
      {
        std::unique_lock<std::mutex> l(mu);
        range_done.wait(l, [&] { return outs[i].done || stop; });
        if (stop) break;
        docs = std::move(outs[i].docs);
        outs[i].docs = {};
      }
      for (auto& d : docs) {
        if (Status st = tree.add(d.relative, std::move(d.node)); !st.is_ok()) {
          std::lock_guard<std::mutex> g(mu);
          if (failed.is_ok()) failed = st;
          stop = true;
          break;
        }
      }
      if (stop) break;
      if (submitted < ranges.size()) submit(submitted++);
    }
    pool.wait_idle();
  }
  if (failed.is_ok()) failed = window_check();
  if (!failed.is_ok()) {
    (void)session.flush();  // stored documents help the next attempt; no snapshot
    return failed;
  }
  progress.totals_final = true;

  const size_t documents = tree.count();
  for (const auto& c : options.collections) stats[c];  // an empty collection asked for is recorded as empty
  LB_ASSIGN_OR_RETURN(auto root_id, tree.finish());
  LB_RETURN_IF_ERROR(session.flush());

  // Read every document back from the repository — the stored tree, loaded again, and each document
  // it names — not the list just stored, and recount: a document the tree lost fails like a changed one.
  // An append key cannot read back what it stored (docs/security.md): the check says it was skipped.
  nlohmann::json checks = nlohmann::json::array();
  if (repo.append_only()) {
    checks.push_back({{"check", "hashes"},
                      {"ok", false},
                      {"skipped", true},
                      {"detail", "not read back: an append key cannot decrypt what it stored (`lifeboat check "
                                 "--read-data` or a restore with a restore or admin key verifies it)"}});
  } else {
    size_t stored_documents = 0;
    LB_ASSIGN_OR_RETURN(StatsMap reread, stats_of_tree(repo, root_id, readers, stored_documents));
    for (const auto& c : options.collections) reread[c];
    bool same = reread == stats && stored_documents == documents;
    checks.push_back({{"check", "hashes"},
                      {"ok", same},
                      {"detail", same ? fmt::format("{} documents in {} collections read back from the repository match their counts and hashes",
                                                    documents, stats.size())
                                      : "documents read back from the repository differ from what was read"}});
    if (!same) return Error(Code::kCorrupt, fmt::format("{}: documents read back from the repository differ from what the server sent; nothing was committed", db));
  }

  repo::Snapshot snap;
  snap.time_ns = read_ns;
  snap.hostname = options.hostname;
  snap.source = kSource;
  snap.paths = {db};
  snap.tags = options.tags;
  snap.tree = root_id;
  snap.metadata = {{"project", options.project},
                   {"database", options.database.empty() ? "(default)" : options.database},
                   {"name", options.name.empty() ? db : options.name},
                   {"read_time", read_time},
                   {"documents", documents},
                   {"bytes", total_bytes},
                   {"collections", stats_json(stats)},
                   {"only", options.collections},
                   {"readers", readers},
                   {"ranges", ranges.size()},
                   {"finished_ns", now_unix_ns()}};
  snap.summary = repo::session_summary(session, start_mono);
  snap.summary["documents"] = documents;
  snap.summary["total_bytes"] = total_bytes;
  snap.summary["collections"] = stats.size();
  snap.summary["checks"] = checks;
  FirestoreBackupResult result;
  LB_ASSIGN_OR_RETURN(result.snapshot_id, session.commit(snap));
  result.snapshot = std::move(snap);
  return result;
}

Result<repo::SnapshotRef> pick_firestore_snapshot(const std::vector<repo::SnapshotRef>& all, const std::string& project,
                                                  const std::string& database, const std::vector<std::string>& tags,
                                                  std::optional<int64_t> at_ns) {
  std::string db = fmt::format("projects/{}/databases/{}", project, database.empty() ? "(default)" : database);
  const repo::SnapshotRef* best = nullptr;
  for (const auto& s : all) {
    if (s.snapshot.source != kSource || s.snapshot.paths.empty() || (!project.empty() && s.snapshot.paths[0] != db)) continue;
    if (at_ns && s.snapshot.time_ns > *at_ns) continue;
    if (!std::all_of(tags.begin(), tags.end(), [&](const std::string& t) { return s.snapshot.has_tag(t); })) continue;
    if (!best || s.snapshot.time_ns > best->snapshot.time_ns) best = &s;
  }
  if (!best)
    return Error(Code::kNotFound, fmt::format("no Firestore backup of {}{}", project.empty() ? "any database" : db,
                                              at_ns ? " at or before " + format_rfc3339(*at_ns) : ""));
  return *best;
}

}  // namespace lifeboat::sources::firestore
