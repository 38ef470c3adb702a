// GCS bucket restores (into a bucket with metadata, or into a directory), the checks that read the
// restored target back, and the guarded bucket-to-bucket sync.
#include <fcntl.h>
#include <fmt/format.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <map>
#include <mutex>
#include <random>
#include <filesystem>
#include <set>

#include "core/crc32c.h"
#include "core/interrupt.h"
#include "core/worker_pool.h"
#include "sources/gcs_bucket/gcs_bucket.h"

namespace lifeboat::sources::gcs_bucket {

namespace {

constexpr const char* kWriteScope = "https://www.googleapis.com/auth/devstorage.read_write";

struct Md5 {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  Md5() { EVP_DigestInit_ex(ctx, EVP_md5(), nullptr); }
  ~Md5() { EVP_MD_CTX_free(ctx); }
  Md5(const Md5&) = delete;
  Md5& operator=(const Md5&) = delete;
  void update(ByteView b) { EVP_DigestUpdate(ctx, b.data(), b.size()); }
  std::string base64() {
    unsigned char md[16];
    unsigned int len = 0;
    EVP_DigestFinal_ex(ctx, md, &len);
    return base64_encode(ByteView(md, len));
  }
};

// Runs fn over items on a bounded pool; the first error stops new work and is returned.
template <typename T, typename F>
Status for_each_parallel(std::vector<T>& items, size_t threads, F fn) {
  std::mutex mu;
  Status first;
  {
    WorkerPool pool(std::max<size_t>(1, threads), std::max<size_t>(1, threads) * 4);
    for (auto& item : items) {
      pool.submit([&, p = &item] {
        {
          std::lock_guard lk(mu);
          if (!first.is_ok()) return;
        }
        Status s = interrupted() ? Error(Code::kInterrupted, "interrupted") : fn(*p);
        if (!s.is_ok()) {
          std::lock_guard lk(mu);
          if (first.is_ok()) first = s;
        }
      });
    }
    pool.wait_idle();
  }
  return first;
}

// A stored object's bytes, blob by blob, as an upload reader (each blob authenticated by read_blob).
class BlobReader {
 public:
  BlobReader(repo::Repository& repo, const repo::Node& node) : repo_(repo), node_(node) {}
  Result<size_t> read(uint8_t* buf, size_t n) {
    while (pos_ == cur_.size()) {
      if (next_ == node_.content.size()) return size_t{0};
      LB_ASSIGN_OR_RETURN(cur_, repo_.read_blob(node_.content[next_++]));
      pos_ = 0;
      crc = crc32c_extend(crc, cur_);
    }
    size_t take = std::min(n, cur_.size() - pos_);
    std::memcpy(buf, cur_.data() + pos_, take);
    pos_ += take;
    return take;
  }
  uint32_t crc = 0;

 private:
  repo::Repository& repo_;
  const repo::Node& node_;
  Bytes cur_;
  size_t pos_ = 0, next_ = 0;
};

std::vector<StoredObject> current_objects(std::vector<StoredObject> all, const std::vector<std::string>& includes) {
  std::vector<StoredObject> out;
  for (auto& o : all)
    if (!o.noncurrent && (includes.empty() || matches_any(includes, o.relative_name))) out.push_back(std::move(o));
  return out;
}

Result<std::map<std::string, cloud::GcsObject>> list_live(const cloud::GcsClient& client, const BucketLocation& loc) {
  std::map<std::string, cloud::GcsObject> out;
  LB_RETURN_IF_ERROR(client.list_objects(loc.bucket, loc.prefix, false, [&](const cloud::GcsObject& o) {
    out.emplace(o.name.substr(loc.prefix.size()), o);
    return Status::ok();
  }));
  return out;
}

// Opens (creating) each directory of `rel_dir` beneath `root_fd` without following any symlink: a link
// or a file in the way is an error naming the path, never a write elsewhere.
Result<int> open_dir_beneath(int root_fd, const std::string& rel_dir, const std::string& target) {
  int fd = dup(root_fd);
  size_t start = 0;
  while (start < rel_dir.size()) {
    size_t slash = rel_dir.find('/', start);
    std::string comp = rel_dir.substr(start, slash == std::string::npos ? std::string::npos : slash - start);
    start = slash == std::string::npos ? rel_dir.size() : slash + 1;
    if (mkdirat(fd, comp.c_str(), 0755) != 0 && errno != EEXIST) {
      int e = errno;
      close(fd);
      return Error(Code::kIo, fmt::format("creating {}/{}: {}", target, rel_dir.substr(0, start), strerror(e)));
    }
    int next = openat(fd, comp.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    int e = errno;
    close(fd);
    if (next < 0)
      return Error(Code::kIo, fmt::format("{}/{} is in the way (not a directory, or a symlink, which a restore never follows): {}",
                                          target, rel_dir.substr(0, start), strerror(e)));
    fd = next;
  }
  return fd;
}

Status write_object_file(repo::Repository& repo, int root_fd, const StoredObject& o, const std::string& target) {
  std::string path = o.tree_path;
  size_t slash = path.rfind('/');
  std::string dir = slash == std::string::npos ? "" : path.substr(0, slash);
  std::string base = slash == std::string::npos ? path : path.substr(slash + 1);
  LB_ASSIGN_OR_RETURN(int dfd, open_dir_beneath(root_fd, dir, target));
  thread_local std::mt19937_64 rng(std::random_device{}());
  std::string tmp = fmt::format(".lifeboat-tmp-{:016x}", rng());
  int fd = openat(dfd, tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd < 0) {
    int e = errno;
    close(dfd);
    return Error(Code::kIo, fmt::format("writing {}/{}: {}", target, path, strerror(e)));
  }
  BlobReader reader(repo, o.node);
  Status s;
  std::vector<uint8_t> buf(1 << 20);
  uint64_t written = 0;
  while (s.is_ok()) {
    auto n = reader.read(buf.data(), buf.size());
    if (!n) {
      s = n.status();
      break;
    }
    if (*n == 0) break;
    for (size_t off = 0; off < *n;) {
      ssize_t w = ::write(fd, buf.data() + off, *n - off);
      if (w < 0) {
        s = Error(Code::kIo, fmt::format("writing {}/{}: {}", target, path, strerror(errno)));
        break;
      }
      off += static_cast<size_t>(w);
    }
    written += *n;
  }
  if (s.is_ok() && (written != o.node.size || (!o.crc32c().empty() && crc32c_base64(reader.crc) != o.crc32c())))
    s = Error(Code::kCorrupt, fmt::format("{}: the stored bytes do not match the object's size and CRC32C", o.relative_name));
  if (s.is_ok()) {
    timespec ts[2] = {{o.node.mtime_ns / 1000000000, o.node.mtime_ns % 1000000000}, {o.node.mtime_ns / 1000000000, o.node.mtime_ns % 1000000000}};
    futimens(fd, ts);
  }
  if (close(fd) != 0 && s.is_ok()) s = Error(Code::kIo, fmt::format("writing {}/{}: {}", target, path, strerror(errno)));
  if (s.is_ok() && renameat(dfd, tmp.c_str(), dfd, base.c_str()) != 0)
    s = Error(Code::kIo, fmt::format("{}/{}: {}", target, path, strerror(errno)));
  if (!s.is_ok()) unlinkat(dfd, tmp.c_str(), 0);
  close(dfd);
  return s;
}

Result<int> open_target(const std::string& target, bool create) {
  if (create) {
    std::string p;
    for (size_t i = 0; i <= target.size(); ++i) {
      if (i == target.size() || (target[i] == '/' && i > 0)) {
        p = target.substr(0, i);
        if (mkdir(p.c_str(), 0755) != 0 && errno != EEXIST)
          return Error(Code::kIo, fmt::format("creating {}: {}", p, strerror(errno)));
      }
    }
  }
  int fd = open(target.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Error(Code::kIo, fmt::format("{}: {}", target, strerror(errno)));
  return fd;
}

bool same_object(const StoredObject& o, const cloud::GcsObject& there) {
  return there.size_bytes == o.node.size && !o.crc32c().empty() && there.crc32c == o.crc32c() &&
         cloud::gcs_writable_metadata(there.resource) == cloud::gcs_writable_metadata(o.resource);
}

}  // namespace

Result<GcsRestoreResult> restore_gcs(repo::Repository& repo, const repo::Snapshot& snapshot, const GcsRestoreOptions& options,
                                     ProgressCounters& progress) {
  if (options.to.empty() == options.target.empty())
    return Error(Code::kInvalidArgument, "restore gcs needs exactly one target: --to gs://BUCKET[/PREFIX] or --target DIR");
  LB_RETURN_IF_ERROR(repo.load_index());
  LB_ASSIGN_OR_RETURN(auto all, stored_objects(repo, snapshot));
  auto objects = current_objects(std::move(all), options.includes);
  GcsRestoreResult result;
  for (const auto& o : objects) {
    progress.files_total += 1;
    progress.bytes_total += o.node.size;
  }
  progress.totals_final = true;

  if (!options.target.empty()) {
    if (options.dry_run) {
      for (const auto& o : objects) result.would_upload.push_back(o.tree_path);
      return result;
    }
    LB_ASSIGN_OR_RETURN(int root, open_target(options.target, true));
    Status s = for_each_parallel(objects, options.threads, [&](StoredObject& o) {
      LB_RETURN_IF_ERROR(write_object_file(repo, root, o, options.target));
      progress.files_done += 1;
      progress.bytes_done += o.node.size;
      return Status::ok();
    });
    close(root);
    LB_RETURN_IF_ERROR(s);
    result.objects = objects.size();
    for (const auto& o : objects) result.bytes += o.node.size;
    return result;
  }

  LB_ASSIGN_OR_RETURN(auto loc, parse_location(options.to));
  LB_ASSIGN_OR_RETURN(auto client, cloud::GcsClient::from_environment(kWriteScope));
  LB_RETURN_IF_ERROR(client->get_bucket(loc.bucket));
  LB_ASSIGN_OR_RETURN(auto existing, list_live(*client, loc));
  std::vector<StoredObject> upload;
  std::set<std::string> wanted;
  for (auto& o : objects) {
    wanted.insert(o.relative_name);
    auto it = existing.find(o.relative_name);
    if (it != existing.end() && same_object(o, it->second)) {
      ++result.unchanged;
      progress.files_done += 1;
      progress.bytes_done += o.node.size;
      continue;
    }
    result.would_upload.push_back(loc.prefix + o.relative_name);
    upload.push_back(std::move(o));
  }
  std::vector<std::string> extras;
  for (const auto& [rel, obj] : existing)
    if (!wanted.count(rel) && (options.includes.empty() || matches_any(options.includes, rel))) extras.push_back(rel);
  for (const auto& rel : extras) result.would_delete.push_back(loc.prefix + rel);
  if (options.dry_run) return result;

  LB_RETURN_IF_ERROR(for_each_parallel(upload, options.threads, [&](StoredObject& o) -> Status {
    BlobReader reader(repo, o.node);
    std::string name = loc.prefix + o.relative_name;
    LB_ASSIGN_OR_RETURN(auto put, client->upload(loc.bucket, name, cloud::gcs_writable_metadata(o.resource), o.node.size,
                                                 [&](uint8_t* b, size_t n) { return reader.read(b, n); }));
    // The server's checksum of what it now holds must be the one the object had when backed up.
    std::string want = o.crc32c().empty() ? crc32c_base64(reader.crc) : o.crc32c();
    if (put.crc32c != want)
      return Error(Code::kCorrupt, fmt::format("gs://{}/{}: the bucket reports CRC32C {} after the upload, {} expected", loc.bucket,
                                               name, put.crc32c, want));
    progress.files_done += 1;
    progress.bytes_done += o.node.size;
    return Status::ok();
  }));
  result.objects = upload.size();
  for (const auto& o : upload) result.bytes += o.node.size;
  if (options.delete_extra) {
    for (const auto& rel : extras) {
      LB_RETURN_IF_ERROR(client->remove(loc.bucket, loc.prefix + rel));
      ++result.deleted;
    }
  }
  return result;
}

std::vector<CheckResult> check_gcs_target(repo::Repository& repo, const repo::Snapshot& snapshot, const GcsRestoreOptions& where,
                                             const std::vector<std::string>& critical, const std::vector<std::string>& checks) {
  std::vector<CheckResult> out;
  auto fail_all = [&](const std::string& why) {
    for (const auto& c : checks) out.push_back({c, false, why});
    return out;
  };
  auto all = stored_objects(repo, snapshot);
  if (!all) return fail_all(all.status().message());
  auto objects = current_objects(std::move(*all), where.includes);
  std::vector<std::string> missing, wrong_hash, wrong_critical, wrong_metadata, extra;
  std::set<std::string> expected_names;
  for (const auto& o : objects) expected_names.insert(o.relative_name);
  uint64_t critical_checked = 0;
  std::string place;
  bool want_critical = std::find(checks.begin(), checks.end(), "critical") != checks.end();
  auto is_critical = [&](const StoredObject& o) { return want_critical && matches_any(critical, o.relative_name); };
  auto compare = [&](const StoredObject& o, const std::string& crc, const std::string& md5, std::vector<std::string>& bad) {
    if ((!o.crc32c().empty() && crc != o.crc32c()) || (!o.md5().empty() && !md5.empty() && md5 != o.md5()))
      bad.push_back(fmt::format("{} (CRC32C {}, backup {})", o.relative_name, crc, o.crc32c()));
  };
  if (!where.to.empty()) {
    auto loc = parse_location(where.to);
    if (!loc) return fail_all(loc.status().message());
    place = loc->url();
    auto client = cloud::GcsClient::from_environment(kWriteScope);
    if (!client) return fail_all(client.status().message());
    auto there = list_live(**client, *loc);
    if (!there) return fail_all("cannot list the target: " + there.status().message());
    for (const auto& [name, obj] : *there)
      if (!expected_names.count(name) && (where.includes.empty() || matches_any(where.includes, name))) extra.push_back(name);
    for (const auto& o : objects) {
      auto it = there->find(o.relative_name);
      if (it == there->end() || it->second.size_bytes != o.node.size) {
        missing.push_back(o.relative_name);
        if (is_critical(o)) {  // a critical object that is not there fails its check too, whatever the others do
          ++critical_checked;
          wrong_critical.push_back(fmt::format("{} is {}", o.relative_name, it == there->end() ? "missing" : "of another size"));
        }
        continue;
      }
      compare(o, it->second.crc32c, it->second.md5, wrong_hash);
      // The metadata a restore writes back (content type, encoding, disposition, language, cache
      // control, custom metadata, storage class, custom time), as the backup recorded it.
      auto want = cloud::gcs_writable_metadata(o.resource), have = cloud::gcs_writable_metadata(it->second.resource);
      if (want != have) {
        std::string field;
        for (const auto& [k, v] : want.items())
          if (!have.contains(k) || have[k] != v) field = field.empty() ? k : field;
        for (const auto& [k, v] : have.items())
          if (!want.contains(k)) field = field.empty() ? k : field;
        wrong_metadata.push_back(fmt::format("{} ({} differs from the backup)", o.relative_name, field));
      }
      if (!is_critical(o)) continue;
      // Downloaded and hashed here: the bytes themselves, not the server's word for them.
      ++critical_checked;
      uint32_t crc = 0;
      Md5 md5;
      Status s;
      for (uint64_t off = 0; off < o.node.size && s.is_ok(); off += 8 << 20) {
        auto b = (*client)->read_range(loc->bucket, it->second.name, it->second.generation, off,
                                       std::min<uint64_t>(8 << 20, o.node.size - off), o.node.size);
        if (!b) s = b.status();
        else {
          crc = crc32c_extend(crc, *b);
          md5.update(*b);
        }
      }
      if (!s.is_ok()) wrong_critical.push_back(fmt::format("{}: {}", o.relative_name, s.message()));
      else compare(o, crc32c_base64(crc), md5.base64(), wrong_critical);
    }
  } else {
    place = where.target;
    std::set<std::string> paths;
    for (const auto& o : objects) paths.insert(o.tree_path);
    std::error_code ec;
    for (auto it = std::filesystem::recursive_directory_iterator(where.target, ec);
         !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
      if (it->is_directory(ec) && !it->is_symlink(ec)) continue;
      std::string rel = std::filesystem::relative(it->path(), where.target, ec).string();
      if (!paths.count(rel)) extra.push_back(rel);
    }
    for (const auto& o : objects) {
      std::string path = where.target + "/" + o.tree_path;
      int fd = open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
      struct stat st;
      if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || static_cast<uint64_t>(st.st_size) != o.node.size) {
        if (fd >= 0) close(fd);
        missing.push_back(o.relative_name);
        if (is_critical(o)) {
          ++critical_checked;
          wrong_critical.push_back(fmt::format("{} is missing or of another size", o.relative_name));
        }
        continue;
      }
      uint32_t crc = 0;
      Md5 md5;
      std::vector<uint8_t> buf(1 << 20);
      ssize_t n;
      while ((n = ::read(fd, buf.data(), buf.size())) > 0) {
        crc = crc32c_extend(crc, ByteView(buf.data(), static_cast<size_t>(n)));
        md5.update(ByteView(buf.data(), static_cast<size_t>(n)));
      }
      close(fd);
      std::string m = md5.base64();
      compare(o, crc32c_base64(crc), m, wrong_hash);
      if (is_critical(o)) {
        ++critical_checked;
        compare(o, crc32c_base64(crc), m, wrong_critical);
      }
    }
  }
  auto first = [](const std::vector<std::string>& v) {
    std::string s;
    for (size_t i = 0; i < v.size() && i < 5; ++i) s += (i ? "; " : "") + v[i];
    return v.size() > 5 ? s + fmt::format("; … {} more", v.size() - 5) : s;
  };
  // Extra objects fail `counts` where the restore promised the target equals the snapshot (delete_extra);
  // otherwise they are named. An include that selects nothing proves nothing: it fails too.
  bool extra_fails = where.delete_extra && !extra.empty();
  std::string extra_note = extra.empty() ? ""
                           : fmt::format("; {} extra object(s) in the target{}: {}", extra.size(),
                                         where.delete_extra ? " although the restore deletes extras" : " (kept: not delete_extra)",
                                         first(extra));
  if (objects.empty() && !where.includes.empty())
    return fail_all(fmt::format("no object of the snapshot matches the include patterns ({}): nothing was checked",
                                fmt::join(where.includes, ", ")));
  for (const auto& c : checks) {
    if (c == "counts")
      out.push_back({c, missing.empty() && !extra_fails,
                     (missing.empty() ? fmt::format("{} objects present in {} with their sizes", objects.size(), place)
                                      : fmt::format("{} of {} objects missing or of another size in {}: {}", missing.size(),
                                                    objects.size(), place, first(missing))) +
                         extra_note});
    else if (c == "hashes")
      out.push_back({c, missing.empty() && wrong_hash.empty() && wrong_metadata.empty(),
                     !wrong_hash.empty() ? fmt::format("{} objects in {} differ from the backup: {}", wrong_hash.size(), place,
                                                       first(wrong_hash))
                     : !wrong_metadata.empty()
                         ? fmt::format("{} objects in {} have other metadata than the backup: {}", wrong_metadata.size(), place,
                                       first(wrong_metadata))
                     : !missing.empty()
                         ? fmt::format("{} of {} objects could not be read back from {} (see counts)", missing.size(), objects.size(),
                                       place)
                         : fmt::format("{} objects read back from {} have the backup's CRC32C{}", objects.size(), place,
                                       where.to.empty() ? "" : " and metadata")});
    else
      out.push_back({c, wrong_critical.empty() && critical_checked > 0,
                     critical_checked == 0 ? fmt::format("no object matches the critical patterns ({})", fmt::join(critical, ", "))
                     : wrong_critical.empty()
                         ? fmt::format("{} critical object(s) downloaded from {} and re-hashed: CRC32C and MD5 match the backup",
                                       critical_checked, place)
                         : fmt::format("{} of {} critical object(s) in {} differ: {}", wrong_critical.size(), critical_checked,
                                       place, first(wrong_critical))});
  }
  return out;
}

Result<GcsSyncResult> sync_buckets(const GcsSyncOptions& options, ProgressCounters& progress) {
  LB_ASSIGN_OR_RETURN(auto from, parse_location(options.from));
  LB_ASSIGN_OR_RETURN(auto to, parse_location(options.to));
  if (from.bucket == to.bucket && (from.prefix.starts_with(to.prefix) || to.prefix.starts_with(from.prefix)))
    return Error(Code::kInvalidArgument, fmt::format("sync {} {}: the two places overlap", from.url(), to.url()));
  LB_ASSIGN_OR_RETURN(auto client, cloud::GcsClient::from_environment(kWriteScope));
  LB_RETURN_IF_ERROR(client->get_bucket(from.bucket));
  LB_RETURN_IF_ERROR(client->get_bucket(to.bucket));
  // Both listings complete before anything changes: a failed source listing stops the sync here.
  auto src = list_live(*client, from);
  if (!src)
    return src.status().with_context(fmt::format("the source listing failed, so nothing was copied or deleted in {}", to.url()));
  LB_ASSIGN_OR_RETURN(auto dst, list_live(*client, to));
  GcsSyncResult result;
  std::vector<const cloud::GcsObject*> copies;
  for (const auto& [rel, o] : *src) {
    auto it = dst.find(rel);
    if (it != dst.end() && it->second.size_bytes == o.size_bytes && !o.crc32c.empty() && it->second.crc32c == o.crc32c &&
        cloud::gcs_writable_metadata(it->second.resource) == cloud::gcs_writable_metadata(o.resource)) {
      ++result.unchanged;
      continue;
    }
    copies.push_back(&o);
    result.to_copy.push_back(rel);
  }
  for (const auto& [rel, o] : dst)
    if (!src->count(rel)) result.to_delete.push_back(rel);
  if (options.delete_extra && !result.to_delete.empty()) {
    uint64_t allowed;
    const std::string& m = options.max_delete;
    if (!m.empty() && m.back() == '%') allowed = dst.size() * std::strtoull(m.c_str(), nullptr, 10) / 100;
    else allowed = std::strtoull(m.c_str(), nullptr, 10);
    if (result.to_delete.size() > allowed)
      return Error(Code::kFatal,
                   fmt::format("sync refused: --delete would remove {} of the {} objects in {} ({} allowed by --max-delete {}); "
                               "nothing was copied or deleted. If the source really lost them, raise --max-delete",
                               result.to_delete.size(), dst.size(), to.url(), allowed, m));
  }
  if (options.dry_run) return result;
  progress.files_total = copies.size();
  progress.totals_final = true;
  std::mutex mu;
  LB_RETURN_IF_ERROR(for_each_parallel(copies, options.threads, [&](const cloud::GcsObject* o) -> Status {
    std::string rel = o->name.substr(from.prefix.size());
    LB_ASSIGN_OR_RETURN(auto put, client->rewrite(from.bucket, o->name, o->generation, to.bucket, to.prefix + rel));
    if (!o->crc32c.empty() && put.crc32c != o->crc32c)
      return Error(Code::kCorrupt, fmt::format("{}{}: CRC32C {} after the copy, the source has {}", to.url(), rel, put.crc32c, o->crc32c));
    progress.files_done += 1;
    progress.bytes_done += o->size_bytes;
    std::lock_guard lk(mu);
    ++result.copied;
    result.bytes += o->size_bytes;
    return Status::ok();
  }));
  if (options.delete_extra)
    for (const auto& rel : result.to_delete) {
      LB_RETURN_IF_ERROR(client->remove(to.bucket, to.prefix + rel));
      ++result.deleted;
    }
  return result;
}

}  // namespace lifeboat::sources::gcs_bucket
