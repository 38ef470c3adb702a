// Repository open/init, sealed files, blob reads and key management.
#include "repo/repository.h"

#include <atomic>

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <set>
#include <unordered_set>
#include <nlohmann/json.hpp>

#include "core/json_int.h"
#include "core/time.h"
#include "repo/compress.h"
#include <openssl/crypto.h>

namespace lifeboat::repo {

namespace {
constexpr size_t kMaxFileBytes = 1ull << 31;  // sanity bound for decompressed index/snapshot files
constexpr char kIndexV2Magic[4] = {'L', 'B', 'I', '2'};

// The storage of a key that is not an admin key deletes nothing, not even its own lock files (it
// writes markers instead): forget, prune, repair and key changes fail here even if a caller forgot to
// ask require_admin first, and its storage credentials need no delete permission.
class RoleGuardBackend final : public storage::ForwardingBackend {
 public:
  RoleGuardBackend(std::unique_ptr<storage::Backend> inner, crypto::Role role)
      : ForwardingBackend(std::move(inner)), role_(role) {}
  Status remove(const storage::Handle& h) override {
    return Error(Code::kForbidden, fmt::format("a {} key deletes nothing ({}/{} left in place); use an admin key",
                                               crypto::role_name(role_), storage::file_type_name(h.type), h.name));
  }

 private:
  crypto::Role role_;
};

// HKDF-SHA256(ikm, salt "lifeboat-v1", info = purpose), as RepoKeys derives its subkeys.
crypto::Key shared_key(const crypto::Key& content_id, const char* purpose) {
  Bytes b = crypto::hkdf_sha256({content_id.data(), content_id.size()}, "lifeboat-v1", purpose, crypto::kKeySize);
  crypto::Key k;
  std::copy(b.begin(), b.end(), k.begin());
  return k;
}
// Keys every role holds, derived from the content-ID key: the ID lists of index files, and lock
// files (hostnames, pids and times every writer must read to respect the others' locks).
crypto::Key index_ids_key(const crypto::Key& content_id) { return shared_key(content_id, "index-ids"); }
crypto::Key locks_key(const crypto::Key& content_id) { return shared_key(content_id, "locks"); }
}  // namespace

std::string RepoConfig::to_json() const {
  nlohmann::json j = {{"version", 1},
                      {"id", id},
                      {"chunker", {{"min_size", chunker.min_size}, {"avg_size", chunker.avg_size}, {"max_size", chunker.max_size}}},
                      {"pack_size_bytes", pack_size_bytes},
                      {"compression", "zstd"},
                      {"compression_level", compression_level},
                      {"created", format_rfc3339(created_ns)},
                      {"created_ns", created_ns}};
  if (object_lock_ns) j["object_lock_seconds"] = object_lock_ns / 1000000000LL;
  return j.dump(2);
}

Result<RepoConfig> RepoConfig::from_json(std::string_view text) {
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded()) return Error(Code::kCorrupt, "repository config is not valid JSON");
  try {
    if (json_int<int>(j.at("version")) != 1)
      return Error(Code::kCorrupt, "repository format version is newer than this lifeboat; upgrade lifeboat");
    RepoConfig c;
    c.id = j.at("id").get<std::string>();
    c.chunker.min_size = json_int<uint32_t>(j.at("chunker").at("min_size"));
    c.chunker.avg_size = json_int<uint32_t>(j.at("chunker").at("avg_size"));
    c.chunker.max_size = json_int<uint32_t>(j.at("chunker").at("max_size"));
    c.pack_size_bytes = json_int<uint32_t>(j.at("pack_size_bytes"));
    c.compression_level = json_int<int>(j.at("compression_level"));
    c.created_ns = json_int(j, "created_ns", int64_t{0});
    c.object_lock_ns = json_int(j, "object_lock_seconds", int64_t{0}) * 1000000000LL;
    bool pow2 = c.chunker.avg_size && !(c.chunker.avg_size & (c.chunker.avg_size - 1));
    if (!pow2 || c.chunker.min_size >= c.chunker.avg_size || c.chunker.avg_size >= c.chunker.max_size ||
        c.chunker.max_size > 8 * 1024 * 1024 || c.chunker.min_size < 64)
      return Error(Code::kCorrupt, "repository config has invalid chunker bounds");
    return c;
  } catch (const nlohmann::json::exception& e) {
    return Error(Code::kCorrupt, std::string("repository config is missing a field: ") + e.what());
  }
}

Repository::Repository(std::unique_ptr<storage::Backend> backend, const crypto::Key& master)
    : backend_(std::move(backend)), master_(master), keys_(crypto::RepoKeys::derive(master)), aead_(keys_.aead),
      chunker_(keys_.chunker, ChunkerParams{}) {
  secrets_.master = master;
  seal_public_ = keys_.seal_public;
}

Result<std::unique_ptr<Repository>> Repository::init(std::unique_ptr<storage::Backend> backend,
                                                     std::string_view password, const InitOptions& options) {
  if (password.empty()) return Error(Code::kInvalidArgument, "an empty password is not allowed");
  if (options.object_lock_ns && !backend->supports_retention())
    return Error(Code::kInvalidArgument, fmt::format("--retention needs object lock, which {} lacks: use an s3: "
                                                     "(bucket with object lock) or gs: repository", backend->location()));
  LB_RETURN_IF_ERROR(backend->create_layout(options.object_lock_ns > 0));
  crypto::Key master = options.master ? *options.master : crypto::random_key();
  std::unique_ptr<Repository> repo(new Repository(std::move(backend), master));
  repo->config_.id = hex_encode(crypto::random_bytes(16));
  repo->config_.chunker = options.chunker;
  repo->config_.pack_size_bytes = options.pack_size_bytes;
  repo->config_.compression_level = options.compression_level;
  repo->config_.created_ns = now_unix_ns();
  repo->config_.object_lock_ns = options.object_lock_ns;
  repo->chunker_ = Chunker(repo->keys_.chunker, options.chunker);
  // Key first, config last: a repository without config is "missing", never half-readable.
  LB_ASSIGN_OR_RETURN(repo->key_name_, repo->add_key(password, options.kdf));
  Bytes sealed = repo->aead_.seal(as_bytes(repo->config_.to_json()));
  LB_RETURN_IF_ERROR(repo->backend_->save({FileType::kConfig, ""}, sealed, repo->save_options(FileType::kConfig)));
  return repo;
}

namespace {
std::atomic<uint64_t> g_key_derivations{0};
}  // namespace

uint64_t Repository::key_derivations() { return g_key_derivations.load(std::memory_order_relaxed); }

Result<std::unique_ptr<Repository>> Repository::open_with_master(std::unique_ptr<storage::Backend> backend,
                                                                 const crypto::Key& master, const std::string& key_name) {
  auto config_bytes = backend->load({FileType::kConfig, ""});
  if (!config_bytes) return config_bytes.status().with_context("reading repository config");
  return with_config(std::move(backend), master, key_name, *config_bytes);
}

// The config is read once by whoever opens; a second read would be a second chance for a damaged
// download.
Result<std::unique_ptr<Repository>> Repository::with_config(std::unique_ptr<storage::Backend> backend, const crypto::Key& master,
                                                            const std::string& key_name, ByteView config_bytes) {
  std::unique_ptr<Repository> repo(new Repository(std::move(backend), master));
  repo->key_name_ = key_name;
  auto plain = repo->aead_.open(config_bytes);
  if (!plain) return plain.status().with_context("repository config");
  LB_ASSIGN_OR_RETURN(repo->config_, RepoConfig::from_json(to_string(*plain)));
  repo->chunker_ = Chunker(repo->keys_.chunker, repo->config_.chunker);
  return repo;
}

Result<std::unique_ptr<Repository>> Repository::open_with_secrets(std::unique_ptr<storage::Backend> backend,
                                                                  const crypto::KeySecrets& secrets,
                                                                  const std::string& key_name) {
  Bytes config_bytes;
  if (secrets.role != crypto::Role::kAppend) {
    auto b = backend->load({FileType::kConfig, ""});
    if (!b) return b.status().with_context("reading repository config");
    config_bytes = std::move(*b);
  }
  return with_secrets(std::move(backend), secrets, key_name, config_bytes);
}

Result<std::unique_ptr<Repository>> Repository::with_secrets(std::unique_ptr<storage::Backend> backend,
                                                             const crypto::KeySecrets& secrets,
                                                             const std::string& key_name, ByteView config_bytes) {
  std::unique_ptr<Repository> repo;
  if (secrets.role == crypto::Role::kAppend) {
    // The config file is sealed with the AEAD key this key lacks: the key file carries a copy.
    repo.reset(new Repository(std::move(backend), crypto::random_key()));
    repo->master_ = crypto::Key{};
    repo->keys_ = crypto::RepoKeys{};
    repo->keys_.content_id = secrets.content_id;
    repo->keys_.chunker = secrets.chunker;
    repo->aead_ = crypto::Aead(crypto::random_key());  // never opens anything stored; nothing seals with it
    repo->seal_public_ = secrets.seal_public;
    repo->seal_generation_ = secrets.seal_generation;
    repo->key_name_ = key_name;
    LB_ASSIGN_OR_RETURN(repo->config_, RepoConfig::from_json(secrets.config));
    repo->chunker_ = Chunker(repo->keys_.chunker, repo->config_.chunker);
    repo->writer_cache_ = std::make_unique<WriterCache>(WriterCache::default_dir(repo->config_.id, key_name), secrets.cache_key);
  } else {
    LB_ASSIGN_OR_RETURN(repo, with_config(std::move(backend), secrets.master, key_name, config_bytes));
  }
  repo->secrets_ = secrets;
  repo->role_ = secrets.role;
  repo->signing_seed_ = secrets.signing_seed;
  if (repo->role_ != crypto::Role::kAdmin)
    repo->backend_ = std::make_unique<RoleGuardBackend>(std::move(repo->backend_), repo->role_);
  return repo;
}

Result<std::unique_ptr<Repository>> Repository::open(std::unique_ptr<storage::Backend> backend,
                                                     std::string_view password) {
  auto config_bytes = backend->load({FileType::kConfig, ""});
  if (!config_bytes) {
    if (config_bytes.status().code() == Code::kNotFound)
      return Error(Code::kRepoMissing, fmt::format("no repository at {}: create one with 'lifeboat init'",
                                                   backend->location()));
    return config_bytes.status().with_context("reading repository config");
  }
  std::vector<std::string> names;
  LB_RETURN_IF_ERROR(backend->list(FileType::kKey, [&](const storage::FileInfo& fi) {
    names.push_back(fi.name);
    return Status::ok();
  }));
  if (names.empty()) return Error(Code::kCorrupt, fmt::format("repository at {} has no key files", backend->location()));
  std::sort(names.begin(), names.end());
  std::vector<std::string> damaged;
  for (const auto& name : names) {
    auto bytes = load_content_addressed(*backend, {FileType::kKey, name});
    if (!bytes && bytes.status().code() != Code::kCorrupt) continue;
    if (!bytes) {
      damaged.push_back(name);
      continue;
    }
    auto digest = crypto::sha256(*bytes);
    auto kf = crypto::KeyFile::from_json(to_string(*bytes));
    if (hex_encode({digest.data(), digest.size()}) != name || !kf) {
      damaged.push_back(name);
      continue;
    }
    g_key_derivations.fetch_add(1, std::memory_order_relaxed);
    auto secrets = kf->unwrap(password);
    if (!secrets) {
      if (secrets.status().code() == Code::kWrongPassword) continue;
      return secrets.status().with_context("keys/" + name);
    }
    return with_secrets(std::move(backend), *secrets, name, *config_bytes);
  }
  if (!damaged.empty())
    return Error(Code::kCorrupt,
                 fmt::format("key file keys/{} is damaged (its content does not match its name) and no other key file "
                             "opens with this password; restore the key file from a copy",
                             damaged[0]));
  return Error(Code::kWrongPassword,
               fmt::format("wrong password: none of the {} key file(s) of {} opens with it (check LIFEBOAT_PASSWORD "
                           "or --password-file)",
                           names.size(), backend->location()));
}

Status Repository::require_reader(std::string_view what) const {
  if (role_ != crypto::Role::kAppend) return Status::ok();
  return Error(Code::kForbidden,
               fmt::format("{}: refused, this is an append key (it adds backups and holds no key that opens stored "
                           "data); use an admin or restore key",
                           what));
}

Status Repository::require_admin(std::string_view what) const {
  if (role_ == crypto::Role::kAdmin) return Status::ok();
  return Error(Code::kForbidden, fmt::format("{}: refused, this is {} {} key (only admin keys forget, prune, repair or "
                                             "change keys); use an admin key",
                                             what, role_ == crypto::Role::kAppend ? "an" : "a", crypto::role_name(role_)));
}

Repository::Sealer Repository::new_sealer() const {
  if (!append_only()) return Sealer{aead_, std::nullopt};
  auto [capsule, key] = crypto::make_capsule(seal_public_, seal_generation_);
  return Sealer{crypto::Aead(key), capsule};
}

Result<crypto::Key> Repository::capsule_key(const crypto::Capsule& capsule) const {
  LB_RETURN_IF_ERROR(require_reader("opening a pack"));
  if (capsule.generation != 0)
    return Error(Code::kCorrupt, fmt::format("sealed for key generation {}, which this repository does not have",
                                             capsule.generation));
  return crypto::open_capsule(capsule, keys_.seal_private);
}

Result<crypto::Aead> Repository::aead_for(const std::optional<crypto::Capsule>& capsule) const {
  if (!capsule) return aead_;
  LB_ASSIGN_OR_RETURN(crypto::Key k, capsule_key(*capsule));
  return crypto::Aead(k);
}

Result<crypto::Aead> Repository::pack_aead(const PackId& pack) const {
  std::optional<crypto::Capsule> capsule;
  {
    std::lock_guard g(capsules_mu_);
    auto it = capsules_.find(pack);
    if (it == capsules_.end()) return aead_;
    if (auto k = pack_keys_.find(pack); k != pack_keys_.end()) return crypto::Aead(k->second);
    capsule = it->second;
  }
  auto key = capsule_key(*capsule);
  if (!key) return key.status().with_context("pack " + to_hex(pack));
  crypto::Key k = *key;
  std::lock_guard g(capsules_mu_);
  pack_keys_[pack] = k;
  return crypto::Aead(k);
}

void Repository::note_capsule(const PackId& pack, const crypto::Capsule& capsule) {
  std::lock_guard g(capsules_mu_);
  capsules_.emplace(pack, capsule);
}

std::optional<crypto::Capsule> Repository::capsule_of(const PackId& pack) const {
  std::lock_guard g(capsules_mu_);
  auto it = capsules_.find(pack);
  if (it == capsules_.end()) return std::nullopt;
  return it->second;
}

Result<std::string> Repository::save_index(IndexFile& file) {
  {
    std::lock_guard g(capsules_mu_);
    for (const auto& p : file.packs)
      if (auto it = capsules_.find(p.id); it != capsules_.end()) file.capsules[p.id] = it->second;
    for (const auto& t : file.tombstones)
      if (auto it = capsules_.find(t.id); it != capsules_.end()) file.capsules[t.id] = it->second;
  }
  Bytes ids = crypto::Aead(index_ids_key(keys_.content_id)).seal(compress_frame(file.encode_ids(), 3));
  Bytes plain = compress_frame(file.encode(), 3);
  Bytes main = append_only() ? crypto::seal_to(seal_public_, seal_generation_, plain) : aead_.seal(plain);
  Bytes stored(kIndexV2Magic, kIndexV2Magic + 4);
  ByteWriter(stored).u32(static_cast<uint32_t>(ids.size()));
  append_bytes(stored, ids);
  append_bytes(stored, main);
  auto digest = crypto::sha256(stored);
  std::string name = hex_encode({digest.data(), digest.size()});
  Status s = backend_->save({FileType::kIndex, name}, stored, save_options(FileType::kIndex));
  if (!s && s.code() != Code::kAlreadyExists) return s;
  return name;
}

namespace {
// An index file as stored: (ID list, index proper), the ID list empty for files older than roles.
Result<std::pair<ByteView, ByteView>> split_index_file(ByteView stored) {
  if (stored.size() < 8 || std::memcmp(stored.data(), kIndexV2Magic, 4) != 0) return std::pair<ByteView, ByteView>{{}, stored};
  uint32_t ids_len = ByteReader(stored.subspan(4, 4)).u32();
  if (ids_len > stored.size() - 8) return Error(Code::kCorrupt, "index file's ID list is longer than the file");
  return std::pair<ByteView, ByteView>{stored.subspan(8, ids_len), stored.subspan(8 + ids_len)};
}
}  // namespace

Result<IndexFile> Repository::load_index_file(const std::string& name) {
  LB_RETURN_IF_ERROR(require_reader("reading index/" + name.substr(0, 8)));
  LB_ASSIGN_OR_RETURN(Bytes stored, load_content_addressed(*backend_, {FileType::kIndex, name}));
  auto context = [&](const Status& st) { return st.with_context("index/" + name); };
  auto parts = split_index_file(stored);
  if (!parts) return context(parts.status());
  auto opened = open_sealed(parts->second, nullptr);
  if (!opened) return context(opened.status());
  auto plain = decompress_frame(*opened, kMaxFileBytes);
  if (!plain) return context(plain.status());
  auto file = IndexFile::decode(*plain);
  if (!file) return context(file.status());
  for (const auto& [pack, capsule] : file->capsules) note_capsule(pack, capsule);
  return file;
}

Status Repository::load_index_ids() {
  // An append key learns which blobs exist (the first 20 bytes of their keyed IDs), nothing else:
  // docs/security.md, "What an append key learns".
  index_.clear();
  std::vector<std::pair<std::string, IndexIds>> files;
  size_t older = 0;
  LB_ASSIGN_OR_RETURN(auto names, list_names(FileType::kIndex));
  crypto::Aead ids_aead(index_ids_key(keys_.content_id));
  for (const auto& name : names) {
    auto stored = load_content_addressed(*backend_, {FileType::kIndex, name});
    if (!stored) {
      if (stored.status().code() == Code::kNotFound) continue;  // superseded and removed since the listing
      if (stored.status().code() != Code::kCorrupt) return stored.status();
      index_warnings_.push_back(stored.status().message() + " (skipped)");
      warn(index_warnings_.back() + ": its blobs are stored again");
      continue;
    }
    auto parts = split_index_file(*stored);
    if (parts && parts->first.empty()) {
      ++older;
      continue;
    }
    Result<IndexIds> ids = parts.status();
    if (parts) {
      auto opened = ids_aead.open(parts->first);
      auto plain = opened ? decompress_frame(*opened, kMaxFileBytes) : Result<Bytes>(opened.status());
      ids = plain ? IndexIds::decode(*plain) : Result<IndexIds>(plain.status());
    }
    if (!ids) {
      index_warnings_.push_back("index/" + name + ": " + ids.status().message() + " (skipped)");
      warn(index_warnings_.back() + ": its blobs are stored again");
      continue;
    }
    files.emplace_back(name, std::move(*ids));
  }
  if (older)
    warn(fmt::format("{} index file(s) predate key roles and hold no ID list an append key can read: blobs only they "
                     "name are stored again (an admin's `lifeboat repair index` rewrites them)",
                     older));
  std::set<std::string> superseded;
  for (const auto& [name, ids] : files) superseded.insert(ids.supersedes.begin(), ids.supersedes.end());
  std::vector<PackEntry> entries;
  for (const auto& [name, ids] : files) {
    if (superseded.count(name)) continue;
    for (const auto& k : ids.keys) {
      PackEntry e;
      std::copy(k.begin(), k.end(), e.id.begin());  // the rest of the ID stays zero: lookups use 20 bytes
      e.stored_len = crypto::kSealOverhead;
      entries.push_back(e);
    }
  }
  index_.begin_load(entries.size());
  index_.load_pack(PackId{}, entries);  // no pack: an append key never reads a location
  index_.finish_load({});
  index_loaded_ = true;
  return Status::ok();
}

Result<std::string> Repository::save_file(FileType type, ByteView plaintext) {
  Bytes sealed = type == FileType::kLock ? crypto::Aead(locks_key(keys_.content_id)).seal(compress_frame(plaintext, 3))
                 : append_only()         ? crypto::seal_to(seal_public_, seal_generation_, compress_frame(plaintext, 3))
                                         : aead_.seal(compress_frame(plaintext, 3));
  auto digest = crypto::sha256(sealed);
  std::string name = hex_encode({digest.data(), digest.size()});
  Status s = backend_->save({type, name}, sealed, save_options(type));
  if (!s && s.code() != Code::kAlreadyExists) return s;  // same name = same bytes: already stored
  return name;
}

storage::SaveOptions Repository::save_options(FileType type) const {
  storage::SaveOptions o;
  if (config_.object_lock_ns && type != FileType::kLock && type != FileType::kPin)
    o.retain_until_ns = now_ns() + config_.object_lock_ns;
  return o;
}

Result<int64_t> Repository::retained_until(const storage::Handle& h) {
  if (!config_.object_lock_ns) return int64_t{0};
  LB_ASSIGN_OR_RETURN(auto info, backend_->stat(h));
  int64_t until = info.retain_until_ns ? info.retain_until_ns : info.mtime_ns + config_.object_lock_ns;
  return until > now_ns() ? until : int64_t{0};
}

Status Repository::list_pack_files(const std::function<Status(const storage::FileInfo&)>& fn) {
  return backend_->list(FileType::kPack, fn);
}

Result<int64_t> Repository::forget_snapshot(const std::string& id) {
  LB_RETURN_IF_ERROR(require_admin("forgetting snapshot " + id.substr(0, 8)));
  LB_ASSIGN_OR_RETURN(int64_t locked, retained_until({FileType::kSnapshot, id}));
  if (locked) return locked;
  LB_RETURN_IF_ERROR(backend_->remove({FileType::kSnapshot, id}));
  return int64_t{0};
}

Result<uint64_t> Repository::extend_object_lock(const std::set<std::string>& live_packs) {
  if (!config_.object_lock_ns) return uint64_t{0};
  int64_t now = now_ns();
  int64_t until = now + config_.object_lock_ns;
  uint64_t extended = 0;
  for (FileType t : {FileType::kPack, FileType::kIndex, FileType::kSnapshot, FileType::kKey}) {
    std::vector<storage::FileInfo> due;
    LB_RETURN_IF_ERROR(backend_->list(t, [&](const storage::FileInfo& fi) {
      if (t == FileType::kPack && !live_packs.count(fi.name)) return Status::ok();
      int64_t ends = fi.retain_until_ns ? fi.retain_until_ns : fi.mtime_ns + config_.object_lock_ns;
      if (ends < now + config_.object_lock_ns / 2) due.push_back(fi);
      return Status::ok();
    }));
    for (const auto& fi : due) {
      LB_RETURN_IF_ERROR(backend_->extend_retention({t, fi.name}, until));
      ++extended;
    }
  }
  return extended;
}

Result<Bytes> load_content_addressed(storage::Backend& backend, const storage::Handle& h) {
  Status last;
  for (int attempt = 0; attempt < 3; ++attempt) {
    LB_ASSIGN_OR_RETURN(Bytes bytes, backend.load(h));
    auto digest = crypto::sha256(bytes);
    if (hex_encode({digest.data(), digest.size()}) == h.name) return bytes;
    last = Error(Code::kCorrupt, fmt::format("{}/{}: content does not match its name (damaged file)",
                                             storage::file_type_name(h.type), h.name));
  }
  return last;
}

Result<Bytes> Repository::open_sealed(ByteView sealed, bool* appended) const {
  if (appended) *appended = false;
  if (crypto::has_capsule_magic(sealed)) {  // written by an append key
    auto parts = crypto::split_capsule_file(sealed);
    if (parts) {
      auto key = aead_for(parts->first);
      auto plain = key ? key->open(parts->second) : Result<Bytes>(key.status());
      if (plain || plain.status().code() == Code::kForbidden) {
        if (appended) *appended = plain.is_ok();
        return plain;
      }
    }
  }
  // A file sealed with the AEAD key starts with a random nonce, which is the magic once in 2^32.
  return aead_.open(sealed);
}

Result<Bytes> Repository::load_file(FileType type, const std::string& name, bool* appended) {
  if (type != FileType::kLock)
    LB_RETURN_IF_ERROR(require_reader(fmt::format("reading {}/{}", storage::file_type_name(type), name.substr(0, 8))));
  LB_ASSIGN_OR_RETURN(Bytes sealed, load_content_addressed(*backend_, {type, name}));
  Result<Bytes> plain = Error(Code::kCorrupt, "");
  if (type == FileType::kLock) plain = crypto::Aead(locks_key(keys_.content_id)).open(sealed);
  if (!plain) plain = open_sealed(sealed, appended);  // (locks written before roles: the AEAD key)
  if (!plain) return plain.status().with_context(fmt::format("{}/{}", storage::file_type_name(type), name));
  auto out = decompress_frame(*plain, kMaxFileBytes);
  if (!out) return out.status().with_context(fmt::format("{}/{}", storage::file_type_name(type), name));
  return out;
}

Result<std::vector<std::string>> Repository::list_names(FileType type) {
  std::vector<std::string> names;
  LB_RETURN_IF_ERROR(backend_->list(type, [&](const storage::FileInfo& fi) {
    names.push_back(fi.name);
    return Status::ok();
  }));
  std::sort(names.begin(), names.end());
  return names;
}

Status Repository::each_index_file(bool tolerant, std::vector<std::string>& listed,
                                   const std::function<void(const std::string&, IndexFile&&)>& fn) {
  // A file listed but gone when read was removed by a prune, after it wrote the file that supersedes it:
  // that successor may postdate our listing, so list again and read what is new. Each round follows a
  // deletion that came after its successor was written, so a quiet repository ends this at once.
  constexpr int kMaxListings = 20;
  std::set<std::string> seen;
  for (int listing = 1;; ++listing) {
    LB_ASSIGN_OR_RETURN(auto names, list_names(FileType::kIndex));
    bool vanished = false;
    for (const auto& name : names) {
      if (!seen.insert(name).second) continue;
      auto file = load_index_file(name);
      if (!file) {
        if (file.status().code() == Code::kNotFound) {
          vanished = true;
          continue;
        }
        if (file.status().code() == Code::kForbidden) return file.status();
        listed.push_back(name);
        if (!tolerant) return file.status();
        index_warnings_.push_back(file.status().message() + " (skipped)");
        continue;
      }
      listed.push_back(name);
      fn(name, std::move(*file));
    }
    if (!vanished) return Status::ok();
    if (listing == kMaxListings)
      return Error(Code::kUnavailable, fmt::format("index files kept vanishing while being read ({} listings): is a "
                                                   "prune looping? Try again when it has finished",
                                                   kMaxListings));
  }
}

Result<IndexState> Repository::read_index_state(bool tolerant) {
  std::vector<std::string> listed;
  std::vector<std::pair<std::string, IndexFile>> files;
  LB_RETURN_IF_ERROR(each_index_file(tolerant, listed, [&](const std::string& name, IndexFile&& file) {
    files.emplace_back(name, std::move(file));
  }));
  IndexState resolved = resolve_index_state(std::move(files));
  resolved.files = std::move(listed);
  return resolved;
}

IndexState resolve_index_state(std::vector<std::pair<std::string, IndexFile>> files) {
  IndexState state;
  std::set<std::string> superseded;
  for (const auto& [name, file] : files)
    for (const auto& s : file.supersedes) superseded.insert(s);
  for (auto& [name, file] : files) {
    state.files.push_back(name);
    if (superseded.count(name)) continue;
    for (auto& p : file.packs) {
      auto& v = state.live[p.id];
      if (v.empty()) v = std::move(p.entries);
    }
    for (auto& t : file.tombstones) state.tombstones.emplace(t.id, std::move(t));
  }
  for (auto it = state.tombstones.begin(); it != state.tombstones.end();)
    it = state.live.count(it->first) ? state.tombstones.erase(it) : std::next(it);
  return state;
}

Status Repository::load_index() {
  if (index_loaded_) return Status::ok();
  std::lock_guard g(load_index_mu_);
  if (index_loaded_) return Status::ok();
  if (append_only()) return load_index_ids();
  // One index file at a time straight into the in-memory index (docs/memory.md, "The index"): what
  // the files say is resolved as resolve_index_state does, without holding every decoded file.
  index_.clear();
  tombstoned_.clear();
  tombstoned_packs_.clear();
  // An upper bound of the entries (each costs at least 32 stored bytes: its ID does not compress);
  // only the part filled becomes resident.
  uint64_t stored_bytes = 0;
  LB_RETURN_IF_ERROR(backend_->list(FileType::kIndex, [&](const storage::FileInfo& fi) {
    stored_bytes += fi.size_bytes;
    return Status::ok();
  }));
  index_.begin_load(static_cast<size_t>(stored_bytes / 32 + 1024));
  struct Span {
    std::string name;
    size_t begin, end;
    std::vector<IndexFile::Tombstone> tombstones;
  };
  std::vector<Span> spans;
  std::set<std::string> superseded;
  std::vector<std::string> listed;
  LB_RETURN_IF_ERROR(each_index_file(/*tolerant=*/true, listed, [&](const std::string& name, IndexFile&& file) {
    size_t begin = index_.loaded();
    for (const auto& p : file.packs) index_.load_pack(p.id, p.entries);
    for (const auto& s : file.supersedes) superseded.insert(s);
    spans.push_back({name, begin, index_.loaded(), std::move(file.tombstones)});
  }));
  std::vector<std::pair<size_t, size_t>> drop;
  for (const auto& s : spans)
    if (superseded.count(s.name)) drop.emplace_back(s.begin, s.end);
  index_.finish_load(drop);
  std::unordered_set<PackId, BlobIdHash> live;
  for (const auto& p : index_.packs()) live.insert(p);
  for (auto& s : spans) {
    if (superseded.count(s.name)) continue;
    for (auto& t : s.tombstones)
      if (!live.count(t.id)) tombstoned_packs_.emplace(t.id, std::move(t));
  }
  std::map<PackId, std::vector<PackEntry>> tomb;
  for (const auto& [id, t] : tombstoned_packs_) tomb[id] = t.entries;
  tombstoned_.bulk_load(tomb);
  index_loaded_ = true;
  return Status::ok();
}

void Repository::use_index_state(IndexState state) {
  index_.clear();
  tombstoned_.clear();
  index_.bulk_load(state.live);
  std::map<PackId, std::vector<PackEntry>> tomb;
  for (auto& [id, t] : state.tombstones) tomb[id] = t.entries;
  tombstoned_.bulk_load(tomb);
  tombstoned_packs_ = std::move(state.tombstones);
  index_loaded_ = true;
}

Status Repository::reload_index() {
  index_loaded_ = false;
  return load_index();
}

Result<std::vector<PackEntry>> Repository::load_pack_header(const PackId& id, uint64_t pack_size) {
  std::string name = to_hex(id);
  if (pack_size < 4 + crypto::kSealOverhead) return Error(Code::kCorrupt, "pack " + name + " is too short");
  uint64_t tail_len = std::min<uint64_t>(pack_size, kMaxPackTrailer);
  LB_ASSIGN_OR_RETURN(Bytes tail, backend_->load({FileType::kPack, name}, pack_size - tail_len, tail_len));
  auto trailer = parse_pack_trailer(tail, pack_size);
  if (!trailer) return trailer.status().with_context("pack " + name);
  uint64_t blobs_len = pack_size - trailer->size - trailer->header_len;
  LB_ASSIGN_OR_RETURN(Bytes sealed, backend_->load({FileType::kPack, name}, blobs_len, trailer->header_len));
  auto key = aead_for(trailer->capsule);
  if (!key) return key.status().with_context("pack " + name + " header");
  auto plain = key->open(sealed);
  if (!plain) return plain.status().with_context("pack " + name + " header");
  auto entries = decode_pack_header(*plain, blobs_len);
  if (entries && trailer->capsule) note_capsule(id, *trailer->capsule);
  return entries;
}

void Repository::warn(const std::string& message) { fmt::print(stderr, "lifeboat: warning: {}\n", message); }

Status Repository::drop_packs(const std::vector<PackId>& missing) {
  // Rare (a damaged repository): read the index again without the missing packs. A blob also held
  // by a pack that exists stays known through that pack.
  LB_ASSIGN_OR_RETURN(IndexState state, read_index_state(/*tolerant=*/true));
  for (const auto& p : missing) {
    state.live.erase(p);
    state.tombstones.erase(p);
    dropped_packs_.insert(p);
  }
  MasterIndex live, tomb;
  live.bulk_load(state.live);
  std::map<PackId, std::vector<PackEntry>> t;
  for (const auto& [id, ts] : state.tombstones) t[id] = ts.entries;
  tomb.bulk_load(t);
  index_.replace_with(std::move(live));
  tombstoned_.replace_with(std::move(tomb));
  tombstoned_packs_ = std::move(state.tombstones);
  return Status::ok();
}

Result<std::map<PackId, uint64_t>> Repository::stored_packs() {
  std::map<PackId, uint64_t> stored;
  LB_RETURN_IF_ERROR(backend_->list(FileType::kPack, [&](const storage::FileInfo& fi) {
    PackId id;
    if (parse_id(fi.name, id)) stored.emplace(id, fi.size_bytes);
    return Status::ok();
  }));
  return stored;
}

Result<std::vector<PackId>> Repository::drop_missing_packs() {
  std::lock_guard g(drop_missing_mu_);
  LB_ASSIGN_OR_RETURN(auto stored, stored_packs());
  std::vector<PackId> missing;
  for (const auto& p : index_.packs())
    if (!stored.count(p)) missing.push_back(p);
  for (const auto& [p, t] : tombstoned_packs_)
    if (!stored.count(p)) missing.push_back(p);
  if (!missing.empty()) LB_RETURN_IF_ERROR(drop_packs(missing));
  return missing;
}

Result<Repository::PackReconciliation> Repository::reconcile_packs() {
  // An append key neither knows where blobs are nor opens a pack header: it stores what it cannot
  // prove is stored, and leaves damage to readers' `check`.
  LB_RETURN_IF_ERROR(load_index());
  if (append_only()) return PackReconciliation{};
  LB_ASSIGN_OR_RETURN(auto stored, stored_packs());
  PackReconciliation out;
  for (const auto& p : index_.packs())
    if (!stored.count(p)) out.missing.push_back(p);
  if (!out.missing.empty()) {
    {
      std::lock_guard g(drop_missing_mu_);
      LB_RETURN_IF_ERROR(drop_packs(out.missing));
    }
    warn(fmt::format("the repository is damaged: {} pack file(s) the index names are missing (first: {}). This backup "
                     "stores their data again, but older snapshots that need them cannot be fully restored: run "
                     "`lifeboat check`",
                     out.missing.size(), to_hex(out.missing.front())));
  }
  std::unordered_set<PackId, BlobIdHash> known;
  for (const auto& p : index_.packs()) known.insert(p);
  for (const auto& [p, t] : tombstoned_packs_) known.insert(p);  // prune owns those
  IndexFile file;
  for (const auto& [id, size] : stored) {
    if (known.count(id)) continue;
    auto entries = load_pack_header(id, size);
    if (!entries) continue;
    index_.add_pack(id, *entries);
    file.packs.push_back({id, std::move(*entries)});
  }
  if (file.packs.empty()) return out;
  LB_RETURN_IF_ERROR(save_index(file).status());
  out.adopted = file.packs.size();
  return out;
}

Result<Bytes> Repository::read_blob(const BlobId& id) {
  LB_RETURN_IF_ERROR(require_reader("reading blob " + short_hex(id)));
  LB_RETURN_IF_ERROR(load_index());
  auto loc = index_.find(id);
  if (!loc) loc = tombstoned_.find(id);
  if (!loc)
    return Error(Code::kCorrupt, fmt::format("blob {} is not in the index (missing data; run 'lifeboat check')",
                                             short_hex(id)));
  std::string pack_name = to_hex(loc->pack);
  auto sealed = read_sealed_range(*loc);
  if (!sealed && sealed.status().code() == Code::kNotFound) {
    // The pack is gone. A later backup may have stored the blob again elsewhere: take the missing
    // packs out of the in-memory index once and look again.
    bool known_gone;
    {
      std::lock_guard g(drop_missing_mu_);
      known_gone = dropped_packs_.count(loc->pack) > 0;
    }
    // Another reader may have dropped it already (the index is then rebuilt): look again either way.
    if (known_gone || drop_missing_packs().is_ok()) {
      auto again = index_.find(id);
      if (!again) again = tombstoned_.find(id);
      if (again && again->pack != loc->pack) return read_blob(id);
    }
  }
  if (!sealed) return sealed.status().with_context(fmt::format("blob {} in pack {}", short_hex(id), pack_name));
  auto data = open_blob(id, *loc, *sealed);
  if (!data) {  // a download garbled on the way fails authentication: fetch it once more
    sealed = backend_->load({FileType::kPack, pack_name}, loc->offset, loc->stored_len);
    if (!sealed) return sealed.status().with_context(fmt::format("blob {} in pack {}", short_hex(id), pack_name));
    data = open_blob(id, *loc, *sealed);
  }
  return data;
}

Result<Bytes> Repository::open_blob(const BlobId& id, const BlobLocation& loc, ByteView sealed) const {
  auto context = [&] { return fmt::format("blob {} in pack {}", short_hex(id), to_hex(loc.pack)); };
  auto key = pack_aead(loc.pack);
  if (!key) return key.status().with_context(context());
  auto plain = key->open(sealed);
  if (!plain) return plain.status().with_context(context());
  Bytes data;
  if (loc.compressed) {
    auto d = decompress_blob(*plain, loc.raw_len);
    if (!d) return d.status().with_context(context());
    data = std::move(*d);
  } else {
    data = std::move(*plain);
  }
  if (data.size() != loc.raw_len || blob_id(data) != id)
    return Error(Code::kCorrupt, fmt::format("blob {} in pack {} does not match its ID", short_hex(id), to_hex(loc.pack)));
  return data;
}

Result<Bytes> Repository::read_sealed_range(const BlobLocation& loc) {
  const std::string name = to_hex(loc.pack);
  if (!backend_->remote()) return backend_->load({FileType::kPack, name}, loc.offset, loc.stored_len);
  constexpr uint64_t kWindow = 8 << 20;
  auto slice = [&](const Bytes& window, uint64_t window_offset) {
    auto b = window.begin() + static_cast<ptrdiff_t>(loc.offset - window_offset);
    return Bytes(b, b + loc.stored_len);
  };
  std::promise<std::shared_ptr<const Bytes>> fetch;
  uint64_t len = 0;
  {
    std::unique_lock lk(window_mu_);
    for (auto it = windows_.begin(); it != windows_.end(); ++it) {
      if (it->pack == loc.pack && loc.offset >= it->offset && loc.offset + loc.stored_len <= it->offset + it->length) {
        auto fut = it->data;
        uint64_t off = it->offset;
        windows_.splice(windows_.begin(), windows_, it);
        lk.unlock();
        if (auto data = fut.get()) return slice(*data, off);
        return backend_->load({FileType::kPack, name}, loc.offset, loc.stored_len);
      }
    }
    if (!pack_sizes_listed_) {
      pack_sizes_listed_ = true;
      (void)backend_->list(FileType::kPack, [&](const storage::FileInfo& fi) {
        PackId id;
        if (parse_id(fi.name, id)) pack_sizes_[id] = fi.size_bytes;
        return Status::ok();
      });
    }
    auto size = pack_sizes_.find(loc.pack);
    if (size == pack_sizes_.end() || size->second < loc.offset + loc.stored_len || loc.stored_len >= kWindow) {
      lk.unlock();
      return backend_->load({FileType::kPack, name}, loc.offset, loc.stored_len);
    }
    len = std::min<uint64_t>(kWindow, size->second - loc.offset);
    windows_.push_front(PackWindow{loc.pack, loc.offset, len, fetch.get_future().share()});
    if (windows_.size() > 8) windows_.pop_back();
  }
  auto window = backend_->load({FileType::kPack, name}, loc.offset, len);
  if (!window) {
    fetch.set_value(nullptr);
    return window.status();
  }
  auto shared = std::make_shared<const Bytes>(std::move(*window));
  fetch.set_value(shared);
  return slice(*shared, loc.offset);
}

Result<std::pair<PackEntry, Bytes>> Repository::read_sealed_blob(const BlobId& id) {
  LB_RETURN_IF_ERROR(require_reader("copying blob " + short_hex(id)));
  LB_RETURN_IF_ERROR(load_index());
  auto loc = index_.find(id);
  if (!loc) loc = tombstoned_.find(id);
  if (!loc) return Error(Code::kCorrupt, fmt::format("blob {} is not in the index", short_hex(id)));
  std::string pack_name = to_hex(loc->pack);
  for (int attempt = 0;; ++attempt) {
    auto sealed = attempt == 0 ? read_sealed_range(*loc) : backend_->load({FileType::kPack, pack_name}, loc->offset, loc->stored_len);
    if (!sealed) return sealed.status().with_context(fmt::format("blob {} in pack {}", short_hex(id), pack_name));
    // Authenticate before passing it on: a copy must never carry damage to the second region. A blob an
    // append key sealed to the public key is sealed again with the AEAD key the copy shares.
    LB_ASSIGN_OR_RETURN(crypto::Aead key, pack_aead(loc->pack));
    auto opened = key.open(*sealed);
    bool authentic = opened.is_ok();
    if (authentic && capsule_of(loc->pack)) *sealed = aead_.seal(*opened);
    if (authentic || attempt == 2) {
      if (!authentic) return Error(Code::kCorrupt, fmt::format("blob {} in pack {} fails authentication", short_hex(id), pack_name));
      PackEntry e;
      e.type = loc->type;
      e.compressed = loc->compressed;
      e.id = id;
      e.stored_len = static_cast<uint32_t>(sealed->size());
      e.raw_len = loc->raw_len;
      return std::make_pair(e, std::move(*sealed));
    }
  }
}

Result<Tree> Repository::load_tree(const BlobId& id) {
  Result<Bytes> cached = Error(Code::kNotFound, "");
  if (writer_cache_) {
    cached = writer_cache_->get_tree(id);
    if (!cached)
      return Error(Code::kNotFound, fmt::format("tree {} is not in this append key's cache on this host (an append key "
                                                "reads back only the trees it wrote from here)",
                                                short_hex(id)));
  }
  LB_ASSIGN_OR_RETURN(Bytes data, writer_cache_ ? std::move(cached) : read_blob(id));
  auto t = Tree::decode(data);
  if (!t) return t.status().with_context("tree " + short_hex(id));
  return t;
}

Result<SnapshotRef> Repository::load_snapshot(const std::string& id) {
  if (writer_cache_) {
    LB_ASSIGN_OR_RETURN(auto all, list_snapshots());
    for (auto& r : all)
      if (r.id == id) return r;
    return Error(Code::kForbidden, fmt::format("snapshot {} was not written by this append key from this host: an "
                                               "append key reads no other snapshot; use an admin or restore key",
                                               id.substr(0, 8)));
  }
  // Opened with a capsule's key: sealed to the public key, so an append key wrote it.
  bool appended = false;
  LB_ASSIGN_OR_RETURN(Bytes plain, load_file(FileType::kSnapshot, id, &appended));
  auto s = Snapshot::from_json(to_string(plain));
  if (!s) return s.status().with_context("snapshots/" + id);
  s->appended = appended;
  return SnapshotRef{id, std::move(*s)};
}

Result<std::vector<SnapshotRef>> Repository::list_snapshots(bool include_untrusted) {
  return list_snapshots_from(/*skip_damaged=*/false, include_untrusted);
}

Result<std::vector<SnapshotRef>> Repository::list_readable_snapshots() { return list_snapshots_from(/*skip_damaged=*/true); }

Result<std::vector<SnapshotRef>> Repository::list_snapshots_from(bool skip_damaged, bool include_untrusted) {
  if (writer_cache_) {  // an append key sees the snapshots it wrote from this host, nothing else
    LB_ASSIGN_OR_RETURN(auto cached, writer_cache_->snapshots());
    std::vector<SnapshotRef> out;
    for (auto& [id, json] : cached)
      if (auto s = Snapshot::from_json(json)) out.push_back(SnapshotRef{id, std::move(*s)});
    std::stable_sort(out.begin(), out.end(),
                     [](const SnapshotRef& a, const SnapshotRef& b) { return a.snapshot.time_ns < b.snapshot.time_ns; });
    return out;
  }
  LB_ASSIGN_OR_RETURN(auto names, list_names(FileType::kSnapshot));
  std::vector<SnapshotRef> out;
  // Snapshot files are content-addressed (the name is the hash of what is stored): one read once is
  // the same for ever, so a long-running process (daemon, standby) lists new ones only.
  std::map<std::string, Snapshot> seen;
  std::lock_guard cache_lock(snapshot_cache_mu_);
  for (const auto& name : names) {
    if (auto it = snapshot_cache_.find(name); it != snapshot_cache_.end()) {
      out.push_back(SnapshotRef{name, it->second});
      seen.emplace(name, std::move(it->second));
      continue;
    }
    auto ref = load_snapshot(name);
    if (ref) seen.emplace(name, ref->snapshot);
    if (!ref) {
      if (ref.status().code() == Code::kNotFound) continue;  // forgotten between listing and reading
      // I/O errors are not damage: they fail the listing either way.
      if (!skip_damaged || ref.status().code() != Code::kCorrupt) return ref.status();
      warn(fmt::format("skipping snapshot file {}: {} (run `lifeboat check`)", name.substr(0, 8), ref.status().message()));
      continue;
    }
    out.push_back(std::move(*ref));
  }
  snapshot_cache_ = std::move(seen);
  bool any_signed = false;
  for (const auto& r : out) any_signed |= r.snapshot.appended || !r.snapshot.writer_key.empty();
  if (any_signed) {
    // Key files are named by their content: each is read once per process (a daemon lists often).
    LB_ASSIGN_OR_RETURN(auto key_names, list_names(FileType::kKey));
    std::map<std::string, crypto::KeyFile> files;
    for (const auto& name : key_names) {
      if (auto it = key_file_cache_.find(name); it != key_file_cache_.end()) {
        files.emplace(name, it->second);
        continue;
      }
      auto bytes = load_content_addressed(*backend_, {FileType::kKey, name});
      if (!bytes && bytes.status().code() != Code::kCorrupt && bytes.status().code() != Code::kNotFound)
        return bytes.status();
      auto kf = bytes ? crypto::KeyFile::from_json(to_string(*bytes)) : Result<crypto::KeyFile>(bytes.status());
      if (kf) files.emplace(name, std::move(*kf));  // a damaged key file vouches for nothing
    }
    key_file_cache_ = files;
    std::map<std::string, crypto::KeyFile> keys;
    for (auto& [name, kf] : files) {
      // A revocation stands under the name of the key it replaced; it is trusted only if endorsed.
      if (kf.revoked && endorsed(kf)) keys[kf.revoked->key] = std::move(kf);  // wins over a copy of the key
      else keys.emplace(name, std::move(kf));
    }
    std::vector<SnapshotRef> kept;
    for (auto& r : out) {
      judge_trust(r, keys);
      if (!r.snapshot.untrusted.empty() && !include_untrusted) {
        if (warned_untrusted_.insert(r.id).second)
          warn(fmt::format("snapshot {} is not trusted and is left out: {} (`lifeboat snapshots --untrusted` lists it)",
                           r.short_id(), r.snapshot.untrusted));
        continue;
      }
      kept.push_back(std::move(r));
    }
    out = std::move(kept);
  }
  std::stable_sort(out.begin(), out.end(),
                   [](const SnapshotRef& a, const SnapshotRef& b) { return a.snapshot.time_ns < b.snapshot.time_ns; });
  return out;
}

Status Repository::pin(const std::string& snapshot_id, const std::string& note) {
  LB_RETURN_IF_ERROR(require_reader("pinning a snapshot"));
  nlohmann::json j = {{"snapshot", snapshot_id}, {"pinned", format_rfc3339(now_ns())}, {"note", note}};
  Bytes sealed = aead_.seal(compress_frame(as_bytes(j.dump()), 3));
  return backend_->save({FileType::kPin, snapshot_id}, sealed, {.create_only = false, .retain_until_ns = 0});
}

Status Repository::unpin(const std::string& snapshot_id) {
  LB_RETURN_IF_ERROR(require_admin("unpinning a snapshot"));
  return backend_->remove({FileType::kPin, snapshot_id});
}

Result<std::set<std::string>> Repository::pinned() {
  LB_ASSIGN_OR_RETURN(auto names, list_names(FileType::kPin));
  return std::set<std::string>(names.begin(), names.end());
}

Result<std::map<std::string, Repository::Pin>> Repository::pins() {
  LB_ASSIGN_OR_RETURN(auto names, list_names(FileType::kPin));
  std::map<std::string, Pin> out;
  if (!names.empty()) LB_RETURN_IF_ERROR(require_reader("reading pins"));
  for (const auto& name : names) {
    // Named by the snapshot it pins, not by its content: opened (authenticated) without the name check.
    LB_ASSIGN_OR_RETURN(Bytes sealed, backend_->load({FileType::kPin, name}));
    auto opened = aead_.open(sealed);
    if (!opened) return opened.status().with_context("pins/" + name);
    auto plain = decompress_frame(*opened, kMaxFileBytes);
    if (!plain) return plain.status().with_context("pins/" + name);
    auto j = nlohmann::json::parse(to_string(*plain), nullptr, false);
    if (!j.is_object()) return Error(Code::kCorrupt, fmt::format("pins/{} is not valid JSON", name));
    auto text = [&](const char* k) { return j.contains(k) && j[k].is_string() ? j[k].get<std::string>() : std::string(); };
    out[name] = Pin{text("note"), text("pinned")};
  }
  return out;
}

namespace {
crypto::Key endorsement_key(const crypto::Key& master) { return shared_key(master, "key-endorsement"); }
}  // namespace

void Repository::endorse(crypto::KeyFile& kf) const {
  auto mac = crypto::hmac_sha256(endorsement_key(master_), as_bytes(kf.endorsement_message()));
  kf.endorsement.assign(mac.begin(), mac.end());
}

bool Repository::endorsed(const crypto::KeyFile& kf) const {
  if (append_only() || kf.endorsement.size() != 32) return false;
  auto mac = crypto::hmac_sha256(endorsement_key(master_), as_bytes(kf.endorsement_message()));
  return CRYPTO_memcmp(mac.data(), kf.endorsement.data(), 32) == 0;
}

void Repository::judge_trust(SnapshotRef& ref, const std::map<std::string, crypto::KeyFile>& keys) const {
  Snapshot& s = ref.snapshot;
  s.untrusted.clear();
  const std::string who = s.writer_key.empty() ? "" : s.writer_key.substr(0, 8);
  auto it = s.writer_key.empty() ? keys.end() : keys.find(s.writer_key);
  auto signature_ok = [&](const crypto::KeyFile& kf) {
    auto sig = base64_decode(s.writer_signature);
    return kf.signing_public && sig &&
           crypto::ed25519_verify(*kf.signing_public, as_bytes(s.signed_message(config_.id)), *sig);
  };
  if (!s.appended) {
    // Sealed with the AEAD key: written by a key holding the master secret. A signature it carries
    // must still verify if its key is known (an altered snapshot says so).
    if (it != keys.end() && it->second.signing_public && !signature_ok(it->second))
      s.untrusted = fmt::format("its signature by key {} does not verify (altered?)", who);
    return;
  }
  if (s.writer_key.empty()) {
    s.untrusted = "written with the public key but unsigned";
    return;
  }
  if (it == keys.end()) {
    s.untrusted = fmt::format("signed by key {}, which this repository does not have", who);
    return;
  }
  const crypto::KeyFile& kf = it->second;
  if (!endorsed(kf)) s.untrusted = fmt::format("key file {} is not endorsed by an admin key (planted?)", who);
  else if (kf.role != crypto::Role::kAppend) s.untrusted = fmt::format("key {} is not an append key", who);
  else if (!signature_ok(kf)) s.untrusted = fmt::format("its signature by key {} does not verify (altered or forged)", who);
  else if (kf.revoked && std::find(kf.revoked->trusted_snapshots.begin(), kf.revoked->trusted_snapshots.end(), ref.id) ==
                             kf.revoked->trusted_snapshots.end())
    s.untrusted = fmt::format("written after its key {} was removed ({})", who, kf.revoked->time);
  else if (!kf.host.empty() && s.hostname != kf.host)
    s.untrusted = fmt::format("claims host {} but key {} is bound to host {}", s.hostname, who, kf.host);
  else if (auto created = parse_time(kf.created); created && s.time_ns + kKeyClockSlackNs < *created)
    s.untrusted = fmt::format("dated {}, before its key {} existed ({})", format_rfc3339(s.time_ns), who, kf.created);
}

Result<std::vector<KeyInfo>> Repository::list_keys() {
  LB_ASSIGN_OR_RETURN(auto names, list_names(FileType::kKey));
  std::vector<KeyInfo> out;
  for (const auto& name : names) {
    LB_ASSIGN_OR_RETURN(Bytes bytes, backend_->load({FileType::kKey, name}));
    auto kf = crypto::KeyFile::from_json(to_string(bytes));
    if (!kf) return kf.status().with_context("keys/" + name);
    out.push_back({name, std::move(*kf), name == key_name_});
  }
  return out;
}

Result<std::string> Repository::add_key(std::string_view password, const crypto::KdfParams& kdf, crypto::Role role,
                                        const std::string& host) {
  LB_RETURN_IF_ERROR(require_admin("adding a key"));
  if (password.empty()) return Error(Code::kInvalidArgument, "an empty password is not allowed");
  crypto::KeySecrets secrets;
  secrets.role = role;
  if (role == crypto::Role::kAppend) {
    secrets.content_id = keys_.content_id;
    secrets.chunker = keys_.chunker;
    secrets.seal_public = keys_.seal_public;
    secrets.seal_generation = 0;
    secrets.cache_key = crypto::random_key();
    secrets.config = config_.to_json();
  } else {
    secrets.master = keys_.master;
  }
  LB_ASSIGN_OR_RETURN(auto kf, crypto::KeyFile::create(std::move(secrets), password, kdf, host));
  endorse(kf);
  std::string json = kf.to_json();
  auto digest = crypto::sha256(as_bytes(json));
  std::string name = hex_encode({digest.data(), digest.size()});
  LB_RETURN_IF_ERROR(backend_->save({FileType::kKey, name}, as_bytes(json), save_options(FileType::kKey)));
  return name;
}

Status Repository::remove_key(const std::string& name) {
  LB_RETURN_IF_ERROR(require_admin("removing a key"));
  LB_ASSIGN_OR_RETURN(auto keys, list_keys());
  auto it = std::find_if(keys.begin(), keys.end(), [&](const KeyInfo& k) { return k.name == name; });
  if (it == keys.end()) return Error(Code::kNotFound, "no key file " + name);
  if (it->current)
    return Error(Code::kInvalidArgument,
                 "refusing to remove the key file this session opened with; open with another password first");
  if (keys.size() == 1) return Error(Code::kInvalidArgument, "refusing to remove the last key file");
  if (it->file.role == crypto::Role::kAppend && it->file.signing_public && !it->file.revoked) {
    // An append key is replaced by its revocation: its password opens nothing from now on, and of its
    // snapshots only those that exist and are trusted now stay trusted (docs/security.md, "Trust").
    crypto::KeyFile revoked = it->file;
    revoked.wrapped.clear();
    revoked.revoked = crypto::KeyFile::Revocation{name, format_rfc3339(now_ns()), {}};
    LB_ASSIGN_OR_RETURN(auto snaps, list_snapshots());
    for (const auto& r : snaps)
      if (r.snapshot.writer_key == name && r.snapshot.appended) revoked.revoked->trusted_snapshots.push_back(r.id);
    endorse(revoked);
    std::string json = revoked.to_json();
    auto digest = crypto::sha256(as_bytes(json));
    LB_RETURN_IF_ERROR(backend_->save({FileType::kKey, hex_encode({digest.data(), digest.size()})}, as_bytes(json),
                                      save_options(FileType::kKey)));
    // The revocation replaces the key under its own name: snapshots name the key they were signed by.
  }
  return backend_->remove({FileType::kKey, name});
}

Result<std::string> Repository::replace_current_key(std::string_view password, const crypto::KdfParams& kdf) {
  LB_RETURN_IF_ERROR(require_admin("changing a key's password"));
  std::string old = key_name_;
  LB_ASSIGN_OR_RETURN(std::string name, add_key(password, kdf));
  LB_RETURN_IF_ERROR(backend_->remove({FileType::kKey, old}));
  key_name_ = name;
  return name;
}

Status IndexPartWriter::add_pack(const PackId& id, std::vector<PackEntry> entries) {
  held_ += entries.size() + 1;
  part_.packs.push_back({id, std::move(entries)});
  return held_ >= part_entries_ ? write_part(false) : Status::ok();
}

Status IndexPartWriter::add_tombstone(IndexFile::Tombstone t) {
  held_ += t.entries.size() + 1;
  part_.tombstones.push_back(std::move(t));
  return held_ >= part_entries_ ? write_part(false) : Status::ok();
}

Status IndexPartWriter::write_part(bool last) {
  if (last) part_.supersedes = supersedes_;
  LB_ASSIGN_OR_RETURN(auto name, repo_.save_index(part_));
  written_.push_back(std::move(name));
  part_ = IndexFile{};
  held_ = 0;
  return Status::ok();
}

Result<std::vector<std::string>> IndexPartWriter::finish() {
  LB_RETURN_IF_ERROR(write_part(true));
  return written_;
}

}  // namespace lifeboat::repo
