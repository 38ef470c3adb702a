// Firestore restores: documents from a snapshot (or from the live database as of an instant) written
// with parallel batch writes, each failed write retried; then, with --replace, documents of the
// restored collections that the source state lacks are deleted. And the checks that read the target
// back (see firestore.h).
#include <fmt/format.h>

#include <chrono>
#include <future>
#include <cmath>
#include <mutex>
#include <thread>

#include "cloud/firestore_client.h"
#include "core/interrupt.h"
#include "core/time.h"
#include "core/worker_pool.h"
#include "repo/node_io.h"
#include "sources/firestore/firestore_internal.h"

namespace lifeboat::sources::firestore {

namespace {

constexpr size_t kBatch = 500;  // batchWrite's limit

// Firestore's guidance for a new write load: 500 writes/s, then 50% more every 5 minutes.
class Ramp {
 public:
  explicit Ramp(bool on) : on_(on), start_(monotonic_ns()), next_(start_) {}
  void acquire(size_t writes) {
    if (!on_) return;
    std::unique_lock<std::mutex> g(mu_);
    int64_t now = monotonic_ns();
    double rate = ramp_writes_per_second(now - start_);
    int64_t at = std::max(next_, now);
    next_ = at + static_cast<int64_t>(1e9 * static_cast<double>(writes) / rate);
    g.unlock();
    if (at > now) sleep_unless_interrupted((at - now) / 1000000);
  }

 private:
  bool on_;
  int64_t start_;
  std::mutex mu_;
  int64_t next_;
};

bool retryable_code(int code) { return code == 4 || code == 8 || code == 10 || code == 13 || code == 14; }

// Writes `writes` (names in `names`, for messages), retrying the writes whose status is retryable.
Status write_batch(const cloud::FirestoreClient& client, const std::string& database, nlohmann::json writes,
                   std::vector<std::string> names, Ramp& ramp) {
  for (int attempt = 1; !writes.empty(); ++attempt) {
    if (interrupted()) return Error(Code::kInterrupted, "interrupted");
    ramp.acquire(writes.size());
    auto answer = client.batch_write(database, writes);
    if (!answer && writes.size() > 1 && answer.status().message().find("HTTP 400") != std::string::npos) {
      // The server refused the whole batch for one write (a document over 1 MiB, …): halve it until
      // that write stands alone and can be named.
      size_t half = writes.size() / 2;
      nlohmann::json a(writes.begin(), writes.begin() + static_cast<ptrdiff_t>(half));
      nlohmann::json b(writes.begin() + static_cast<ptrdiff_t>(half), writes.end());
      std::vector<std::string> na(names.begin(), names.begin() + static_cast<ptrdiff_t>(half));
      std::vector<std::string> nb(names.begin() + static_cast<ptrdiff_t>(half), names.end());
      LB_RETURN_IF_ERROR(write_batch(client, database, std::move(a), std::move(na), ramp));
      return write_batch(client, database, std::move(b), std::move(nb), ramp);
    }
    if (!answer && writes.size() == 1 && answer.status().message().find("HTTP 400") != std::string::npos)
      return Error(Code::kIo, fmt::format("document {}: {}", names[0], answer.status().message()));
    LB_ASSIGN_OR_RETURN(auto statuses, std::move(answer));
    nlohmann::json again = nlohmann::json::array();
    std::vector<std::string> again_names;
    for (size_t i = 0; i < statuses.size(); ++i) {
      int code = statuses[i].value("code", 0);
      if (code == 0) continue;
      std::string msg = statuses[i].value("message", "");
      if (!retryable_code(code) || attempt >= 6)
        return Error(Code::kIo, fmt::format("document {}: the server refused the write (code {}): {}{}", names[i], code, msg,
                                            attempt >= 6 && retryable_code(code) ? " (after 6 attempts)" : ""));
      again.push_back(writes[i]);
      again_names.push_back(names[i]);
    }
    if (!again.empty() && !sleep_unless_interrupted(100 << std::min(attempt, 6))) return Error(Code::kInterrupted, "interrupted");
    writes = std::move(again);
    names = std::move(again_names);
  }
  return Status::ok();
}

struct Shared {
  std::mutex mu;
  Status failed;
  std::atomic<bool> stop{false};
  FirestoreRestoreResult result;
  StatsMap repo_stats;  // snapshot sources: recomputed from what the repository gave

  void fail(const Status& s) {
    std::lock_guard<std::mutex> g(mu);
    if (failed.is_ok()) failed = s;
    stop = true;
  }
};

// Writes a list of stored documents into the target, recording what the target must now hold.
Status write_documents(const cloud::FirestoreClient& client, const std::string& target_db, const std::string& target_root,
                       std::vector<nlohmann::json> docs, const FirestoreRestoreOptions& o, Ramp& ramp, Shared& shared,
                       ProgressCounters& progress) {
  StatsMap local;
  std::vector<std::string> names;
  uint64_t bytes = 0;
  nlohmann::json writes = nlohmann::json::array();
  std::vector<std::string> batch_names;
  for (auto& d : docs) {
    std::string rel = d.value("name", "");
    local[top_collection(rel)].add(d);
    names.push_back(rel);
    if (o.dry_run) continue;
    nlohmann::json w = {{"update", {{"name", target_root + "/" + rel}, {"fields", api_fields(d, target_root)}}}};
    bytes += w.dump().size();
    writes.push_back(std::move(w));
    batch_names.push_back(rel);
    if (writes.size() == kBatch) {
      LB_RETURN_IF_ERROR(write_batch(client, target_db, std::move(writes), std::move(batch_names), ramp));
      writes = nlohmann::json::array();
      batch_names.clear();
    }
  }
  if (!writes.empty()) LB_RETURN_IF_ERROR(write_batch(client, target_db, std::move(writes), std::move(batch_names), ramp));
  progress.files_done += docs.size();
  progress.bytes_done += bytes;
  std::lock_guard<std::mutex> g(shared.mu);
  merge_stats(shared.result.expected, local);
  shared.result.names.insert(names.begin(), names.end());
  shared.result.written += o.dry_run ? 0 : docs.size();
  shared.result.bytes += bytes;
  return Status::ok();
}

Result<std::vector<std::string>> target_names(const cloud::FirestoreClient& client, const std::string& root,
                                              const std::vector<std::string>& collections) {
  std::vector<std::string> out;
  for (const auto& range : collection_ranges(root, collections))
    LB_RETURN_IF_ERROR(read_range(client, root, range, "", 50000, true, [&](std::vector<nlohmann::json>& page) -> Status {
      for (const auto& d : page) out.push_back(relative_name(d.value("name", ""), root));
      return Status::ok();
    }));
  return out;
}

}  // namespace

double ramp_writes_per_second(int64_t elapsed_ns) {
  return 500.0 * std::pow(1.5, static_cast<double>(std::max<int64_t>(0, elapsed_ns) / (300LL * 1000000000LL)));
}

Result<std::string> live_read_time(const std::string& project, const std::string& database, int64_t at_ns) {
  LB_ASSIGN_OR_RETURN(auto client, cloud::FirestoreClient::from_environment());
  int64_t now = now_unix_ns();
  if (at_ns > now) return Error(Code::kInvalidArgument, fmt::format("{} lies in the future", format_rfc3339(at_ns)));
  const int64_t minute = 60LL * 1000000000LL;
  if (now - at_ns > 60 * minute) at_ns -= at_ns % minute;  // beyond the last hour the server keeps whole minutes
  at_ns -= at_ns % 1000;                                   // microseconds
  std::string rt = format_rfc3339(at_ns);
  auto probe = client->query(cloud::firestore_documents_root(project, database), {}, "", 1, rt, true);
  if (!probe) {
    if (cloud::firestore_read_time_too_old(probe.status()) || probe.status().code() == Code::kIo) return std::string();
    return probe.status();
  }
  // A database without a single document at that instant is taken as one whose versions do not reach
  // back so far (the emulator answers so for times before it started), never as a state to restore.
  if (probe->documents.empty()) return std::string();
  return rt;
}

Result<FirestoreRestoreResult> restore_firestore(repo::Repository& repo, const FirestoreSourceState& from,
                                                 const FirestoreRestoreOptions& o, ProgressCounters& progress) {
  if (o.to_project.empty()) return Error(Code::kInvalidArgument, "restore firestore needs a target project");
  LB_ASSIGN_OR_RETURN(auto client, cloud::FirestoreClient::from_environment());
  const std::string target_root = cloud::firestore_documents_root(o.to_project, o.to_database);
  const std::string target_db = target_root.substr(0, target_root.size() - std::string("/documents").size());
  Ramp ramp(o.ramp && !client->emulator());
  Shared shared;
  const size_t writers = std::max<size_t>(1, o.writers);
  std::vector<std::string> restored_collections = o.collections;
  std::future<Result<std::vector<std::string>>> present;

  if (from.snapshot) {
    LB_RETURN_IF_ERROR(repo.load_index());
    const auto& snap = from.snapshot->snapshot;
    shared.result.read_time = snap.metadata.value("read_time", "");
    // The documents stream from the tree a batch at a time (docs/memory.md); the total is the backup's record.
    uint64_t total = 0;
    for (const auto& [c, st] : stats_from_json(snap.metadata.value("collections", nlohmann::json::object())))
      if (in_collections(o.collections, c)) total += st.documents;
    progress.files_total = total;
    progress.totals_final = true;
    auto produce = [&](const std::function<Status(repo::Node&&)>& emit) {
      return for_each_document_node(repo, snap.tree, [&](const std::string& rel, const repo::Node& node) {
        return in_collections(o.collections, rel) ? emit(repo::Node(node)) : Status::ok();
      });
    };
    if (restored_collections.empty())
      for (auto it = snap.metadata["collections"].begin(); it != snap.metadata["collections"].end(); ++it)
        restored_collections.push_back(it.key());
    // What the target holds beyond the source state can be listed while the writes go on: writing
    // the source's documents adds none of it.
    if (!restored_collections.empty())
      present = std::async(std::launch::async, [&] { return target_names(*client, target_root, restored_collections); });
    Status written = for_each_stored(repo, produce, writers, kBatch, [&](std::vector<nlohmann::json>&& docs) {
      return write_documents(*client, target_db, target_root, std::move(docs), o, ramp, shared, progress);
    });
    if (present.valid()) present.wait();
    LB_RETURN_IF_ERROR(written);
    // What the repository gave must be what the backup recorded (whole collections only).
    LB_RETURN_IF_ERROR(match_record(shared.result.expected, snap.metadata.value("collections", nlohmann::json::object())));
  } else {
    const std::string src_root = cloud::firestore_documents_root(from.project, from.database);
    shared.result.read_time = from.read_time;
    LB_ASSIGN_OR_RETURN(auto ranges, split_ranges(*client, src_root, o.collections, client->emulator() ? writers : writers * 4, from.read_time));
    WorkerPool pool(writers, ranges.size() + 1);
    for (const auto& range : ranges) {
      pool.submit([&, range] {
        Status st = read_range(*client, src_root, range, from.read_time, 10 * kBatch, false,
                               [&](std::vector<nlohmann::json>& page) -> Status {
                                 std::vector<nlohmann::json> docs;
                                 for (const auto& d : page) docs.push_back(stored_document(d, src_root));
                                 return write_documents(*client, target_db, target_root, std::move(docs), o, ramp, shared, progress);
                               }, &shared.stop);
        if (!st.is_ok()) shared.fail(st);
      });
    }
    pool.wait_idle();
    if (!shared.failed.is_ok()) return shared.failed;
    if (restored_collections.empty())
      for (const auto& [c, s] : shared.result.expected) restored_collections.push_back(c);
  }
  for (const auto& c : restored_collections) shared.result.expected[c];  // an empty collection stays empty

  // Documents of the restored collections the source state lacks: deleted with --replace.
  if (!restored_collections.empty()) {
    if (!present.valid()) present = std::async(std::launch::deferred, [&] { return target_names(*client, target_root, restored_collections); });
    LB_ASSIGN_OR_RETURN(auto listed, present.get());
    std::vector<std::string> extra;
    for (auto& n : listed)
      if (!shared.result.names.count(n)) extra.push_back(std::move(n));
    if (o.replace && !o.dry_run) {
      for (size_t begin = 0; begin < extra.size(); begin += kBatch) {
        nlohmann::json writes = nlohmann::json::array();
        std::vector<std::string> names;
        for (size_t i = begin; i < std::min(extra.size(), begin + kBatch); ++i) {
          writes.push_back({{"delete", target_root + "/" + extra[i]}});
          names.push_back(extra[i]);
        }
        LB_RETURN_IF_ERROR(write_batch(*client, target_db, std::move(writes), std::move(names), ramp));
      }
      shared.result.deleted = extra.size();
    } else {
      shared.result.would_delete = std::move(extra);
    }
  }
  return std::move(shared.result);
}

Result<ManagedExport> export_firestore(repo::Repository& repo, const FirestoreSourceState& from,
                                       const std::vector<std::string>& collections, const std::string& dir,
                                       ProgressCounters& progress) {
  std::mutex mu;
  std::vector<std::pair<std::string, nlohmann::json>> docs;
  StatsMap stats;
  auto keep = [&](std::vector<nlohmann::json>&& page) -> Status {
    std::lock_guard<std::mutex> g(mu);
    for (auto& d : page) {
      std::string rel = d.value("name", "");
      if (!in_collections(collections, rel)) continue;
      stats[top_collection(rel)].add(d);
      progress.files_done++;
      docs.emplace_back(std::move(rel), std::move(d));
    }
    return Status::ok();
  };
  std::string project = from.project;
  if (from.snapshot) {
    LB_RETURN_IF_ERROR(repo.load_index());
    const auto& snap = from.snapshot->snapshot;
    project = snap.metadata.value("project", "");
    auto produce = [&](const std::function<Status(repo::Node&&)>& emit) {
      return for_each_document_node(repo, snap.tree, [&](const std::string& rel, const repo::Node& node) {
        return in_collections(collections, rel) ? emit(repo::Node(node)) : Status::ok();
      });
    };
    LB_RETURN_IF_ERROR(for_each_stored(repo, produce, 4, 256, keep));
    LB_RETURN_IF_ERROR(match_record(stats, snap.metadata.value("collections", nlohmann::json::object())));
  } else {
    LB_ASSIGN_OR_RETURN(auto client, cloud::FirestoreClient::from_environment());
    const std::string src_root = cloud::firestore_documents_root(from.project, from.database);
    for (const auto& range : collection_ranges(src_root, collections))
      LB_RETURN_IF_ERROR(read_range(*client, src_root, range, from.read_time, 10 * kBatch, false, [&](std::vector<nlohmann::json>& page) {
        std::vector<nlohmann::json> stored;
        for (const auto& d : page) stored.push_back(stored_document(d, src_root));
        return keep(std::move(stored));
      }));
  }
  return write_managed_export(dir, project, std::move(docs));
}

std::vector<CheckResult> check_firestore_target(const FirestoreRestoreOptions& where, const StatsMap& expected,
                                                   const std::set<std::string>& names, const std::vector<std::string>& checks) {
  std::vector<CheckResult> out;
  auto fail_all = [&](const std::string& why) {
    for (const auto& c : checks) out.push_back({c, false, why});
    return out;
  };
  auto client = cloud::FirestoreClient::from_environment();
  if (!client) return fail_all(client.status().message());
  const std::string root = cloud::firestore_documents_root(where.to_project, where.to_database);
  std::vector<std::string> collections;
  for (const auto& [c, s] : expected) collections.push_back(c);
  // Read back in parallel ranges (every restored document, whatever wrote it).
  StatsMap got;
  std::map<std::string, uint64_t> extra;
  auto ranges = split_ranges(**client, root, collections, std::max<size_t>(1, where.writers), "");
  if (!ranges) return fail_all("reading the target back: " + ranges.status().message());
  std::mutex mu;
  Status failed;
  {
    WorkerPool pool(std::max<size_t>(1, where.writers), ranges->size() + 1);
    for (const auto& range : *ranges)
      pool.submit([&, range] {
        StatsMap mine;
        std::map<std::string, uint64_t> my_extra;
        Status st = read_range(**client, root, range, "", 20000, false, [&](std::vector<nlohmann::json>& page) -> Status {
          for (const auto& d : page) {
            auto stored = stored_document(d, root);
            std::string rel = stored.value("name", "");
            if (names.count(rel)) mine[top_collection(rel)].add(stored);
            else ++my_extra[top_collection(rel)];
          }
          return Status::ok();
        });
        std::lock_guard<std::mutex> g(mu);
        if (!st.is_ok() && failed.is_ok()) failed = st;
        merge_stats(got, mine);
        for (const auto& [c, n] : my_extra) extra[c] += n;
      });
    pool.wait_idle();
  }
  if (!failed.is_ok()) return fail_all("reading the target back: " + failed.message());
  // Collections of the target the restored state lacks: named (a restore writes and replaces only the
  // collections it restores, and leaves the others).
  auto listed = (*client)->collection_ids(root, "");
  if (!listed) return fail_all("listing the target's collections: " + listed.status().message());
  std::vector<std::string> other_collections;
  for (const auto& c : *listed)
    if (!expected.count(c)) other_collections.push_back(c);
  std::string others = other_collections.empty() ? ""
                       : fmt::format("; {} collection(s) the restored state lacks, left by the restore: {}",
                                     other_collections.size(), fmt::join(other_collections, ", "));
  for (const auto& name : checks) {
    std::vector<std::string> bad;
    uint64_t total = 0;
    for (const auto& [c, want] : expected) {
      const CollectionStats& have = got.count(c) ? got.at(c) : CollectionStats{};
      total += want.documents;
      if (name == "counts") {
        if (have.documents != want.documents)
          bad.push_back(fmt::format("{}: {} of {} documents", c, have.documents, want.documents));
        else if (where.replace && extra.count(c))
          bad.push_back(fmt::format("{}: {} documents the source state lacks, although the restore replaces the collection", c,
                                    extra.at(c)));
      } else if (name == "hashes") {
        if (have.hash() != want.hash() || have.documents != want.documents)
          bad.push_back(fmt::format("{}: hash {} where the source state's is {}", c, have.hash().substr(0, 16), want.hash().substr(0, 16)));
      }
    }
    if (name != "counts" && name != "hashes") {
      out.push_back({name, false, "not a Firestore check (counts, hashes)"});
      continue;
    }
    std::string kept;  // documents beyond the restored state, kept without replace: named under `counts`
    if (name == "counts" && !where.replace) {
      uint64_t n = 0;
      for (const auto& [c, k] : extra) n += k;
      if (n) kept = fmt::format("; {} document(s) in the restored collections the source state lacks (kept: not replace)", n);
    }
    out.push_back({name, bad.empty(),
                   (bad.empty() ? fmt::format("{} documents in {} collections read back from {} match", total, expected.size(), root)
                                : fmt::format("{} collection(s) differ: {}", bad.size(), fmt::join(bad, "; "))) +
                       kept + others});
  }
  return out;
}

}  // namespace lifeboat::sources::firestore
