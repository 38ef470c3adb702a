// GCS bucket backup: list (with versions when asked) a window at a time; reuse every object whose
// generation the parent already holds (looked up in its tree as the listing passes); download the rest
// in parallel as ranged reads checked against CRC32C and MD5; place each window into the escaped tree,
// stored directory by directory as the listing leaves it; re-hash the critical objects from the
// repository; commit.
#include <fmt/format.h>

#include <algorithm>
#include <openssl/evp.h>

#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <unordered_map>

#include "core/crc32c.h"
#include "core/interrupt.h"
#include "core/time.h"
#include "core/worker_pool.h"
#include "repo/write_session.h"
#include "sources/gcs_bucket/gcs_bucket.h"

namespace lifeboat::sources::gcs_bucket {

namespace {

constexpr const char* kReadScope = "https://www.googleapis.com/auth/devstorage.read_only";
constexpr uint64_t kRangeBytes = 8 << 20;
constexpr int kAttempts = 3;
constexpr size_t kListingWindow = 2000;  // objects listed ahead of those placed into the tree

// CRC32C and MD5 of a stream, in GCS's base64 forms.
class ObjectHasher {
 public:
  ObjectHasher() : md5_(EVP_MD_CTX_new()) { EVP_DigestInit_ex(md5_, EVP_md5(), nullptr); }
  ~ObjectHasher() { EVP_MD_CTX_free(md5_); }
  ObjectHasher(const ObjectHasher&) = delete;
  ObjectHasher& operator=(const ObjectHasher&) = delete;
  void update(ByteView b) {
    crc_ = crc32c_extend(crc_, b);
    EVP_DigestUpdate(md5_, b.data(), b.size());
  }
  std::string crc32c() const { return crc32c_base64(crc_); }
  std::string md5() {
    unsigned char md[16];
    unsigned int len = 0;
    EVP_DigestFinal_ex(md5_, md, &len);
    return base64_encode(ByteView(md, len));
  }

 private:
  uint32_t crc_ = 0;
  EVP_MD_CTX* md5_;
};

// One generation of one object as a pull stream of ranged reads, hashed as it passes.
class ObjectReader final : public repo::ByteSource {
 public:
  ObjectReader(const cloud::GcsClient& client, const std::string& bucket, const cloud::GcsObject& o)
      : client_(client), bucket_(bucket), o_(o) {}
  Result<size_t> read(uint8_t* buf, size_t n) override {
    if (pos_ == buf_.size()) {
      if (offset_ >= o_.size_bytes) return size_t{0};
      if (interrupted()) return Error(Code::kInterrupted, "interrupted");
      uint64_t len = std::min<uint64_t>(kRangeBytes, o_.size_bytes - offset_);
      LB_ASSIGN_OR_RETURN(buf_, client_.read_range(bucket_, o_.name, o_.generation, offset_, len, o_.size_bytes));
      offset_ += buf_.size();
      pos_ = 0;
      hasher.update(buf_);
    }
    size_t take = std::min(n, buf_.size() - pos_);
    std::memcpy(buf, buf_.data() + pos_, take);
    pos_ += take;
    return take;
  }
  ObjectHasher hasher;

 private:
  const cloud::GcsClient& client_;
  const std::string& bucket_;
  const cloud::GcsObject& o_;
  Bytes buf_;
  size_t pos_ = 0;
  uint64_t offset_ = 0;
};

// What a node records of an object: everything but the server's links and identifiers.
nlohmann::json recorded_resource(const nlohmann::json& r) {
  nlohmann::json out = r;
  for (const char* k : {"selfLink", "mediaLink", "id", "bucket", "etag", "kind", "acl", "owner"}) out.erase(k);
  return out;
}

repo::Node object_node(const cloud::GcsObject& o, std::vector<repo::BlobId> content) {
  repo::Node n;
  n.kind = repo::NodeKind::kFile;
  n.mode = 0644;
  n.size = o.size_bytes;
  n.mtime_ns = o.updated_ns;
  n.content = std::move(content);
  n.xattrs = {{kObjectXattr, recorded_resource(o.resource).dump()}};
  return n;
}


}  // namespace

Result<GcsBackupResult> backup_gcs(repo::Repository& repo, const GcsBackupOptions& options, ProgressCounters& progress) {
  int64_t start_mono = monotonic_ns();
  LB_ASSIGN_OR_RETURN(auto loc, parse_location(options.url));
  LB_ASSIGN_OR_RETURN(auto client, cloud::GcsClient::from_environment(kReadScope));
  LB_RETURN_IF_ERROR(client->get_bucket(loc.bucket));
  LB_RETURN_IF_ERROR(repo.reconcile_packs().status());

  // What the parent holds of each generation (a generation's bytes never change), looked up in the
  // parent's tree as the listing passes through it.
  ParentObjects parent(repo, options.parent ? std::optional<repo::BlobId>(options.parent->snapshot.tree) : std::nullopt);

  int64_t start_ns = now_unix_ns();
  struct Entry {
    cloud::GcsObject object;
    std::vector<repo::BlobId> content;
    bool vanished = false, reused = false;
    std::string note;  // changed or vanished while being read
  };
  repo::WriteSession session(repo);
  std::mutex err_mu;
  Status first_error;
  uint64_t downloaded_bytes = 0;
  std::mutex stat_mu;

  auto download = [&](Entry& e) -> Status {
    for (int attempt = 1;; ++attempt) {
      ObjectReader reader(*client, loc.bucket, e.object);
      auto stored = session.store_stream(reader, &progress);
      std::string where = fmt::format("gs://{}/{}", loc.bucket, e.object.name);
      if (!stored) {
        Code c = stored.status().code();
        if (c == Code::kNotFound) {
          // The listed generation is gone: the object was overwritten or deleted while we read.
          if (!e.object.live) {
            e.vanished = true;
            e.note = fmt::format("{} (noncurrent generation {}): deleted during the backup", where, e.object.generation);
            return Status::ok();
          }
          auto now = client->stat(loc.bucket, e.object.name);
          if (!now && now.status().code() == Code::kNotFound) {
            e.vanished = true;
            e.note = fmt::format("{}: deleted during the backup (not in this snapshot)", where);
            return Status::ok();
          }
          if (!now) return now.status();
          if (attempt >= kAttempts) return stored.status();
          e.note = fmt::format("{}: changed during the backup (generation {} stored instead of {})", where, now->generation,
                               e.object.generation);
          e.object = *now;
          continue;
        }
        if (c == Code::kUnavailable && attempt < kAttempts) continue;
        return stored.status().with_context(where);
      }
      std::string problem;
      if (stored->size_bytes != e.object.size_bytes)
        problem = fmt::format("{} bytes read, the object has {}", stored->size_bytes, e.object.size_bytes);
      else if (!e.object.crc32c.empty() && reader.hasher.crc32c() != e.object.crc32c)
        problem = fmt::format("CRC32C {} of the bytes read, the object's is {}", reader.hasher.crc32c(), e.object.crc32c);
      else if (std::string md5 = reader.hasher.md5(); !e.object.md5.empty() && md5 != e.object.md5)
        problem = fmt::format("MD5 {} of the bytes read, the object's is {}", md5, e.object.md5);
      if (problem.empty()) {
        e.content = std::move(stored->content);
        std::lock_guard lk(stat_mu);
        downloaded_bytes += stored->size_bytes;
        return Status::ok();
      }
      if (attempt >= kAttempts)
        return Error(Code::kCorrupt, fmt::format("{}: {} (after {} downloads; nothing was committed)", where, problem, attempt));
    }
  };

  // The listing is processed a window at a time: each window's downloads run side by side, then its
  // objects are placed into the tree in listing order (StreamingObjectTree), and the window is
  // dropped. Memory: the window, the parent's trees along one path, the directories open along one.
  GcsBackupResult result;
  StreamingObjectTree live_tree(session), versions_tree(session);
  uint64_t objects = 0, noncurrent = 0, total_bytes = 0, reused = 0;
  nlohmann::json vanished = nlohmann::json::array(), changed = nlohmann::json::array();
  std::vector<Entry> critical;
  std::deque<Entry> window;  // a deque: downloads hold pointers to its entries while more are listed
  size_t threads = std::max<size_t>(1, options.threads);
  WorkerPool pool(threads, threads * 4);
  auto place_window = [&]() -> Status {
    pool.wait_idle();
    {
      std::lock_guard lk(err_mu);
      if (first_error.is_ok() && interrupted()) first_error = Error(Code::kInterrupted, "interrupted");
      if (!first_error.is_ok()) return first_error;
    }
    for (auto& e : window) {
      if (!e.note.empty()) {
        result.warnings.push_back(e.note);
        (e.vanished ? vanished : changed).push_back(e.note);
      }
      if (e.vanished) continue;
      std::string rel = e.object.name.substr(loc.prefix.size());
      if (e.object.live) {
        ++objects;
        total_bytes += e.object.size_bytes;
        if (!options.critical.empty() && matches_any(options.critical, rel)) critical.push_back(e);
        LB_RETURN_IF_ERROR(live_tree.place(rel, object_node(e.object, e.content), ""));
      } else {
        ++noncurrent;
        LB_RETURN_IF_ERROR(versions_tree.place(rel, object_node(e.object, e.content), fmt::format("%g{}", e.object.generation)));
      }
      reused += e.reused;
    }
    window.clear();
    return Status::ok();
  };
  Status listed = client->list_objects(loc.bucket, loc.prefix, options.versions, [&](const cloud::GcsObject& o) -> Status {
    progress.files_total += 1;
    progress.bytes_total += o.size_bytes;
    Entry& e = window.emplace_back();
    e.object = o;
    e.object.resource = recorded_resource(o.resource);
    LB_ASSIGN_OR_RETURN(auto known, parent.find(o.name.substr(loc.prefix.size()), o.generation, o.live));
    // Reused only while every blob is in a pack that exists (reconcile_packs dropped missing ones).
    if (known && known->size == o.size_bytes &&
        std::all_of(known->content.begin(), known->content.end(), [&](const repo::BlobId& b) { return repo.index().contains(b); })) {
      e.content = known->content;
      e.reused = true;
      progress.files_done += 1;
      progress.bytes_done += o.size_bytes;
    } else {
      pool.submit([&, ep = &e] {
        {
          std::lock_guard lk(err_mu);
          if (!first_error.is_ok()) return;
        }
        Status s = download(*ep);
        progress.files_done += 1;
        if (!s.is_ok()) {
          std::lock_guard lk(err_mu);
          if (first_error.is_ok()) first_error = s;
        }
      });
    }
    return window.size() >= kListingWindow ? place_window() : Status::ok();
  });
  if (listed.is_ok()) listed = place_window();
  pool.wait_idle();
  if (!listed.is_ok()) {
    (void)session.flush();  // finished packs help the next attempt; no snapshot
    return listed;
  }
  progress.totals_final = true;
  if (options.versions) {
    LB_ASSIGN_OR_RETURN(auto versions_root, versions_tree.finish());
    live_tree.add_root_dir(kVersionsDir, versions_root);
  }
  LB_ASSIGN_OR_RETURN(auto root_id, live_tree.finish());

  // The critical objects, read back from the repository (not from the stream just stored) and re-hashed.
  nlohmann::json checks = nlohmann::json::array();
  if (!options.critical.empty() && repo.append_only()) {  // docs/security.md: it cannot decrypt what it stored
    checks.push_back({{"check", "critical"},
                      {"ok", false},
                      {"skipped", true},
                      {"detail", fmt::format("{} critical object(s) not read back: an append key cannot decrypt what "
                                             "it stored (`lifeboat check --read-data` or a restore with a restore or "
                                             "admin key verifies them)",
                                             critical.size())}});
  } else if (!options.critical.empty()) {
    LB_RETURN_IF_ERROR(session.flush());
    std::vector<std::string> bad;
    for (const Entry& entry : critical) {
      const Entry* e = &entry;
      ObjectHasher h;
      Status s;
      for (const auto& b : e->content) {
        auto data = repo.read_blob(b);
        if (!data) {
          s = data.status();
          break;
        }
        h.update(*data);
      }
      std::string md5 = h.md5();
      if (!s.is_ok()) bad.push_back(fmt::format("{}: {}", e->object.name, s.message()));
      else if ((!e->object.crc32c.empty() && h.crc32c() != e->object.crc32c) || (!e->object.md5.empty() && md5 != e->object.md5))
        bad.push_back(fmt::format("{}: stored bytes hash to CRC32C {} / MD5 {}, the bucket says {} / {}", e->object.name, h.crc32c(),
                                  md5, e->object.crc32c, e->object.md5));
    }
    result.critical_ok = bad.empty();
    checks.push_back({{"check", "critical"},
                      {"ok", bad.empty()},
                      {"detail", bad.empty() ? fmt::format("{} critical object(s) read back from the repository match the "
                                                           "bucket's CRC32C and MD5", critical.size())
                                             : fmt::format("{} of {} critical object(s) differ: {}", bad.size(), critical.size(),
                                                           fmt::join(bad, "; "))}});
  }

  repo::Snapshot snap;
  snap.time_ns = start_ns;
  snap.hostname = options.hostname;
  snap.source = kSource;
  snap.paths = {loc.url()};
  snap.tags = options.tags;
  snap.tree = root_id;
  if (options.parent) snap.parent = options.parent->id;
  snap.metadata = {{"bucket", loc.bucket},   {"prefix", loc.prefix},         {"name", options.name.empty() ? loc.url() : options.name},
                   {"versions", options.versions}, {"objects", objects},  {"noncurrent", noncurrent},
                   {"bytes", total_bytes},   {"vanished", vanished},         {"changed", changed},
                   {"finished_ns", now_unix_ns()}};
  snap.summary = repo::session_summary(session, start_mono);
  snap.summary["objects"] = objects;
  snap.summary["noncurrent"] = noncurrent;
  snap.summary["objects_unchanged"] = reused;
  snap.summary["objects_downloaded"] = objects + noncurrent - reused;
  snap.summary["downloaded_bytes"] = downloaded_bytes;
  snap.summary["total_bytes"] = total_bytes;
  if (!checks.empty()) snap.summary["checks"] = checks;
  LB_ASSIGN_OR_RETURN(result.snapshot_id, session.commit(snap));
  result.snapshot = std::move(snap);
  return result;
}

}  // namespace lifeboat::sources::gcs_bucket
