// Write session: the only code that creates packs and index files.
#include "repo/write_session.h"

#include <fmt/format.h>

#include <cstring>
#include <utility>

#include "core/interrupt.h"
#include "core/platform_user.h"
#include "core/time.h"
#include "repo/backend_access.h"
#include "repo/compress.h"

namespace lifeboat::repo {

namespace {
constexpr size_t kMaxQueuedPacks = 1;  // with the one being uploaded and the one filling: three packs in memory
// An index file is written after 8 packs or 100,000 blobs (about 4 MB encoded), whichever comes
// first: packs of tiny files hold 100,000 blobs each, and encoding, compressing and sealing 8 of them
// at once took ~120 MB (docs/memory.md).
constexpr size_t kIndexEveryPacks = 8;
constexpr size_t kIndexEveryEntries = 100000;
constexpr int64_t kIndexEveryNs = 60LL * 1000000000;
}  // namespace

Result<size_t> MemorySource::read(uint8_t* buf, size_t n) {
  size_t k = std::min(n, data_.size() - pos_);
  if (k == 0) return k;  // an empty view may have no data pointer at all (an empty slice's oplog)
  std::memcpy(buf, data_.data() + pos_, k);
  pos_ += k;
  return k;
}

WriteSession::WriteSession(Repository& repo, bool dedup_against_index)
    : repo_(repo), sealer_(repo.new_sealer()), dedup_against_index_(dedup_against_index), last_index_write_ns_(monotonic_ns()) {
  // Object stores answer each request after a round trip: several packs in flight keep the link busy.
  size_t uploaders = BackendAccess::of(repo).remote() ? 4 : 1;
  for (size_t i = 0; i < uploaders; ++i) uploaders_.emplace_back([this] { upload_loop(); });
}

WriteSession::~WriteSession() {
  {
    std::lock_guard lock(upload_mu_);
    stopping_ = true;
  }
  queue_cv_.notify_all();
  for (auto& t : uploaders_) t.join();
}

Status WriteSession::error() const {
  std::lock_guard lock(const_cast<std::mutex&>(upload_mu_));
  return error_;
}

Status WriteSession::add_blob(BlobType type, const BlobId& id, ByteView plaintext) {
  // An append key keeps every tree it writes (new or known) on its host: its next backup compares with them.
  if (type == BlobType::kTree && repo_.writer_cache()) LB_RETURN_IF_ERROR(repo_.writer_cache()->put_tree(id, plaintext));
  {
    std::lock_guard lock(mu_);
    if (in_flight_.count(id) || (dedup_against_index_ && repo_.index().contains(id))) {
      stats_.blobs_known++;
      return Status::ok();
    }
    in_flight_.insert(id);
  }
  return store_sealed(type, id, plaintext);
}

Status WriteSession::store_sealed(BlobType type, const BlobId& id, ByteView plaintext) {
  LB_RETURN_IF_ERROR(error());
  thread_local Bytes compressed;
  thread_local Bytes sealed;
  PackEntry e;
  e.type = type;
  e.id = id;
  e.raw_len = static_cast<uint32_t>(plaintext.size());
  e.compressed = compress_blob(plaintext, repo_.config().compression_level, compressed);
  sealed.clear();
  sealer_.aead.seal_append(e.compressed ? ByteView(compressed) : plaintext, sealed);
  return append_sealed(e, sealed);
}

Status WriteSession::add_sealed_blob(const PackEntry& entry, ByteView sealed) {
  LB_RETURN_IF_ERROR(error());
  if (sealer_.capsule)  // its packs are sealed to the public key, not with the AEAD key the blob was sealed with
    return Error(Code::kForbidden, "an append key cannot take blobs sealed elsewhere (copy into it with an admin key)");
  {
    std::lock_guard lock(mu_);
    if (in_flight_.count(entry.id) || (dedup_against_index_ && repo_.index().contains(entry.id))) {
      stats_.blobs_known++;
      return Status::ok();
    }
    in_flight_.insert(entry.id);
  }
  return append_sealed(entry, sealed);
}

Status WriteSession::append_sealed(const PackEntry& e, ByteView sealed) {
  const BlobType type = e.type;
  if (sealed.size() > kMaxBlobStoredLen) return Error(Code::kFatal, "blob too large for a pack entry");
  stats_.blobs_new++;
  stats_.raw_bytes_new += e.raw_len;
  stats_.stored_bytes_new += sealed.size();
  PackBuilder full;
  bool have_full = false;
  {
    std::lock_guard lock(mu_);
    PackBuilder& p = packers_[static_cast<int>(type)];
    if (p.count() == 0 && type == BlobType::kData) {
      if (spare_.capacity()) p.reuse(std::exchange(spare_, Bytes()));
      p.reserve(data_pack_capacity());
    }
    p.append(e, sealed);
    if (p.size_bytes() >= repo_.config().pack_size_bytes) {
      full = std::move(p);
      p = PackBuilder();
      have_full = true;
    }
  }
  if (have_full) queue_pack(std::move(full));
  return Status::ok();
}

size_t WriteSession::data_pack_capacity() const {
  return repo_.config().pack_size_bytes + repo_.chunker().params().max_size + 65536;
}

void WriteSession::queue_pack(PackBuilder&& pack) {
  std::unique_lock lock(upload_mu_);
  done_cv_.wait(lock, [&] { return queue_.size() < kMaxQueuedPacks; });
  queue_.push_back(std::move(pack));
  queue_cv_.notify_all();
}

void WriteSession::upload_loop() {
  std::unique_lock lock(upload_mu_);
  for (;;) {
    queue_cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
    if (queue_.empty()) return;
    PackBuilder pack = std::move(queue_.front());
    queue_.pop_front();
    ++uploading_;
    done_cv_.notify_all();
    lock.unlock();

    std::vector<PackEntry> entries = pack.entries();
    Bytes bytes = pack.finish(sealer_.aead, sealer_.capsule);
    PackId id = crypto::sha256(bytes);
    if (sealer_.capsule) repo_.note_capsule(id, *sealer_.capsule);
    Status s = BackendAccess::of(repo_).save({FileType::kPack, to_hex(id)}, bytes, repo_.save_options(FileType::kPack));
    if (s.code() == Code::kAlreadyExists) s = Status::ok();  // identical pack bytes already stored
    if (s) {
      // Index first, then leave in_flight: a concurrent add_blob always finds the blob in one of them.
      repo_.index().add_pack(id, entries);
      std::lock_guard g(mu_);
      for (const auto& e : entries) in_flight_.erase(e.id);
    }
    if (bytes.capacity() >= data_pack_capacity()) {
      std::lock_guard g(mu_);
      if (!spare_.capacity()) spare_ = std::move(bytes);  // PackBuilder::reuse clears it
    }
    stats_.packs_written++;

    lock.lock();
    --uploading_;
    if (!s) {
      if (error_) error_ = s.with_context("saving pack");
    } else {
      unindexed_entries_ += entries.size();
      unindexed_.push_back({id, std::move(entries)});
      if (unindexed_.size() >= kIndexEveryPacks || unindexed_entries_ >= kIndexEveryEntries ||
          monotonic_ns() - last_index_write_ns_ > kIndexEveryNs) {
        Status is = write_index_locked();
        if (!is && error_) error_ = is;
      }
    }
    done_cv_.notify_all();
  }
}

Status WriteSession::write_index_locked() {
  if (unindexed_.empty()) return Status::ok();
  IndexFile f;
  f.packs = std::move(unindexed_);
  unindexed_.clear();
  size_t entries = std::exchange(unindexed_entries_, 0);
  auto name = repo_.save_index(f);
  last_index_write_ns_ = monotonic_ns();
  if (!name) {
    // Keep the entries so a later flush retries them.
    unindexed_ = std::move(f.packs);
    unindexed_entries_ = entries;
    return name.status().with_context("saving index");
  }
  return Status::ok();
}

Result<StoredStream> WriteSession::store_stream(ByteSource& source, ProgressCounters* progress, bool interruptible) {
  const auto& params = repo_.chunker().params();
  const size_t max = params.max_size;
  // Uninitialized on purpose: only the pages a stream actually fills become resident.
  thread_local std::unique_ptr<uint8_t[]> buf_owner;
  thread_local size_t buf_size = 0;
  if (buf_size < 2 * max) {
    buf_owner.reset(new uint8_t[2 * max]);
    buf_size = 2 * max;
  }
  struct {
    uint8_t* ptr;
    size_t n;
    uint8_t* data() { return ptr; }
    size_t size() const { return n; }
  } buf{buf_owner.get(), buf_size};
  size_t start = 0, end = 0;
  bool eof = false;
  StoredStream out;
  for (;;) {
    if (interruptible && interrupted()) return Error(Code::kInterrupted, "interrupted");
    // Refill so at least one maximal chunk is buffered (or the stream has ended).
    if (!eof && end - start < max) {
      if (start > 0) {
        std::memmove(buf.data(), buf.data() + start, end - start);
        end -= start;
        start = 0;
      }
      while (!eof && end < buf.size()) {
        LB_ASSIGN_OR_RETURN(size_t n, source.read(buf.data() + end, buf.size() - end));
        if (n == 0) eof = true;
        end += n;
        if (end - start >= max) break;
      }
    }
    if (start == end) break;
    size_t len = repo_.chunker().next_boundary(buf.data() + start, end - start);
    ByteView chunk(buf.data() + start, len);
    BlobId id = repo_.blob_id(chunk);
    LB_RETURN_IF_ERROR(add_blob(BlobType::kData, id, chunk));
    out.content.push_back(id);
    out.size_bytes += len;
    if (progress) progress->bytes_done += len;
    start += len;
  }
  return out;
}

Result<BlobId> WriteSession::store_tree(const Tree& tree) {
  Bytes data = tree.encode();
  BlobId id = repo_.blob_id(data);
  LB_RETURN_IF_ERROR(add_blob(BlobType::kTree, id, data));
  return id;
}

Status WriteSession::flush() {
  PackBuilder open[2];
  {
    std::lock_guard lock(mu_);
    for (int i = 0; i < 2; ++i) {
      open[i] = std::move(packers_[i]);
      packers_[i] = PackBuilder();
    }
  }
  for (auto& p : open)
    if (p.count()) queue_pack(std::move(p));
  std::unique_lock lock(upload_mu_);
  done_cv_.wait(lock, [&] { return queue_.empty() && uploading_ == 0; });
  LB_RETURN_IF_ERROR(error_);
  return write_index_locked();
}

Result<std::string> WriteSession::commit(Snapshot& snapshot) {
  if (snapshot.hostname.empty()) snapshot.hostname = platform::hostname();
  if (snapshot.username.empty()) snapshot.username = platform::username();
  LB_RETURN_IF_ERROR(flush());
  if (repo_.signing_seed()) {  // docs/security.md, "Trust"
    snapshot.writer_key.clear();
    snapshot.writer_signature.clear();
    auto sig = crypto::ed25519_sign(*repo_.signing_seed(), as_bytes(snapshot.signed_message(repo_.config().id)));
    snapshot.writer_key = repo_.key_name();
    snapshot.writer_signature = base64_encode({sig.data(), sig.size()});
  }
  snapshot.appended = repo_.append_only();
  std::string json = snapshot.to_json();
  LB_ASSIGN_OR_RETURN(std::string id, repo_.save_file(FileType::kSnapshot, as_bytes(json)));
  if (repo_.writer_cache()) {
    Status s = repo_.writer_cache()->put_snapshot(id, json);
    if (!s) Repository::warn(s.message() + ": the next backup with this key rescans everything (still deduplicated)");
  }
  return id;
}

nlohmann::json session_summary(const WriteSession& session, int64_t start_monotonic_ns) {
  return {{"blobs_new", session.stats().blobs_new.load()},
          {"data_added_bytes", session.stats().raw_bytes_new.load()},
          {"data_stored_bytes", session.stats().stored_bytes_new.load()},
          {"duration_ms", (monotonic_ns() - start_monotonic_ns) / 1000000}};
}

}  // namespace lifeboat::repo
