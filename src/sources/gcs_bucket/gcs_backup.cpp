// GCS bucket backup: list (with versions when asked), reuse every object whose generation the parent
// already holds, download the rest in parallel as ranged reads checked against CRC32C and MD5, build
// the escaped tree, re-hash the critical objects from the repository, commit.
#include <fmt/format.h>

#include <algorithm>
#include <openssl/evp.h>

#include <cstring>
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

struct DirBuild {
  std::map<std::string, DirBuild> dirs;
  std::map<std::string, repo::Node> files;
};

std::vector<std::string> split_name(const std::string& name) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    size_t slash = name.find('/', start);
    out.push_back(name.substr(start, slash == std::string::npos ? std::string::npos : slash - start));
    if (slash == std::string::npos) return out;
    start = slash + 1;
  }
}

void place(DirBuild& root, const std::string& relative_name, repo::Node node, const std::string& suffix) {
  auto comps = split_name(relative_name);
  DirBuild* d = &root;
  for (size_t i = 0; i + 1 < comps.size(); ++i) d = &d->dirs[escape_component(comps[i])];
  node.name = escape_component(comps.back()) + suffix;
  d->files.emplace(node.name, std::move(node));
}

// Stores a directory bottom-up. An object named like a folder of other objects ("a" beside "a/b")
// is shown as "a%" (escaping never ends a name in '%').
Result<repo::BlobId> store_dir(repo::WriteSession& session, DirBuild& d) {
  repo::Tree t;
  for (auto& [name, sub] : d.dirs) {
    LB_ASSIGN_OR_RETURN(auto id, store_dir(session, sub));
    repo::Node n;
    n.kind = repo::NodeKind::kDir;
    n.name = name;
    n.mode = 0755;
    n.subtree = id;
    t.nodes.push_back(std::move(n));
  }
  for (auto& [name, node] : d.files) {
    if (d.dirs.count(name)) node.name = name + "%";
    t.nodes.push_back(std::move(node));
  }
  t.sort();
  return session.store_tree(t);
}

std::string key_of(const std::string& name, int64_t generation) { return fmt::format("{}#{}", name, generation); }

}  // namespace

Result<GcsBackupResult> backup_gcs(repo::Repository& repo, const GcsBackupOptions& options, ProgressCounters& progress) {
  int64_t start_mono = monotonic_ns();
  LB_ASSIGN_OR_RETURN(auto loc, parse_location(options.url));
  LB_ASSIGN_OR_RETURN(auto client, cloud::GcsClient::from_environment(kReadScope));
  LB_RETURN_IF_ERROR(client->get_bucket(loc.bucket));
  LB_RETURN_IF_ERROR(repo.reconcile_packs().status());

  // Content the parent already holds, by name and generation (a generation's bytes never change).
  std::unordered_map<std::string, repo::Node> known;
  if (options.parent) {
    auto prev = stored_objects(repo, options.parent->snapshot);
    if (prev) {
      for (auto& o : *prev) known.emplace(key_of(o.resource.value("name", ""), o.generation()), std::move(o.node));
    }
  }

  int64_t start_ns = now_unix_ns();
  std::vector<cloud::GcsObject> listed;
  LB_RETURN_IF_ERROR(client->list_objects(loc.bucket, loc.prefix, options.versions, [&](const cloud::GcsObject& o) {
    listed.push_back(o);
    listed.back().resource = recorded_resource(o.resource);  // the listing is held until the tree is built: keep it lean
    progress.files_total += 1;
    progress.bytes_total += o.size_bytes;
    return Status::ok();
  }));
  progress.totals_final = true;

  struct Entry {
    cloud::GcsObject object;
    std::vector<repo::BlobId> content;
    bool vanished = false, reused = false;
    std::string note;  // changed or vanished while being read
  };
  std::vector<Entry> entries(listed.size());
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

  {
    size_t threads = std::max<size_t>(1, options.threads);
    WorkerPool pool(threads, threads * 4);
    for (size_t i = 0; i < listed.size(); ++i) {
      Entry& e = entries[i];
      e.object = std::move(listed[i]);
      auto k = known.find(key_of(e.object.name, e.object.generation));
      // Reused only while every blob is in a pack that exists (reconcile_packs dropped missing ones).
      if (k != known.end() && k->second.size == e.object.size_bytes &&
          std::all_of(k->second.content.begin(), k->second.content.end(),
                      [&](const repo::BlobId& b) { return repo.index().contains(b); })) {
        e.content = k->second.content;
        e.reused = true;
        progress.files_done += 1;
        progress.bytes_done += e.object.size_bytes;
        continue;
      }
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
    pool.wait_idle();
  }
  if (first_error.is_ok() && interrupted()) first_error = Error(Code::kInterrupted, "interrupted");
  if (!first_error.is_ok()) {
    (void)session.flush();  // finished packs help the next attempt; no snapshot
    return first_error;
  }

  GcsBackupResult result;
  DirBuild root, versions;
  uint64_t objects = 0, noncurrent = 0, total_bytes = 0, reused = 0;
  nlohmann::json vanished = nlohmann::json::array(), changed = nlohmann::json::array();
  std::vector<const Entry*> critical;
  for (auto& e : entries) {
    if (!e.note.empty()) {
      result.warnings.push_back(e.note);
      (e.vanished ? vanished : changed).push_back(e.note);
    }
    if (e.vanished) continue;
    std::string rel = e.object.name.substr(loc.prefix.size());
    if (e.object.live) {
      ++objects;
      total_bytes += e.object.size_bytes;
      if (!options.critical.empty() && matches_any(options.critical, rel)) critical.push_back(&e);
      place(root, rel, object_node(e.object, e.content), "");
    } else {
      ++noncurrent;
      place(versions, rel, object_node(e.object, e.content), fmt::format("%g{}", e.object.generation));
    }
    reused += e.reused;
  }
  if (options.versions) {
    root.dirs[kVersionsDir] = std::move(versions);
  }
  LB_ASSIGN_OR_RETURN(auto root_id, store_dir(session, root));

  // The critical objects, read back from the repository (not from the stream just stored) and re-hashed.
  nlohmann::json checks = nlohmann::json::array();
  if (!options.critical.empty()) {
    LB_RETURN_IF_ERROR(session.flush());
    std::vector<std::string> bad;
    for (const Entry* e : critical) {
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
