// A writer session: chunks streams, dedups against the index, compresses and seals blobs, fills packs,
// uploads them in the background, writes index files, and finally commits a snapshot.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_set>

#include "core/progress.h"
#include "repo/repository.h"

namespace lifeboat::repo {

// Pull-style input for store_stream: read() returns bytes read, 0 at the end.
class ByteSource {
 public:
  virtual ~ByteSource() = default;
  virtual Result<size_t> read(uint8_t* buf, size_t n) = 0;
};

class MemorySource final : public ByteSource {
 public:
  explicit MemorySource(ByteView data) : data_(data) {}
  Result<size_t> read(uint8_t* buf, size_t n) override;

 private:
  ByteView data_;
  size_t pos_ = 0;
};

struct StoredStream {
  std::vector<BlobId> content;
  uint64_t size_bytes = 0;
};

struct SessionStats {
  std::atomic<uint64_t> blobs_new{0};
  std::atomic<uint64_t> blobs_known{0};
  std::atomic<uint64_t> raw_bytes_new{0};     // plaintext bytes of new blobs
  std::atomic<uint64_t> stored_bytes_new{0};  // bytes added to packs
  std::atomic<uint64_t> packs_written{0};
};

class WriteSession {
 public:
  // With dedup_against_index false, blobs the index already has are stored again (prune's repacking);
  // blobs are still stored once per session.
  explicit WriteSession(Repository& repo, bool dedup_against_index = true);
  ~WriteSession();
  WriteSession(const WriteSession&) = delete;
  WriteSession& operator=(const WriteSession&) = delete;

  // Stores a blob unless the repository (or this session) has it already. Thread-safe.
  Status add_blob(BlobType type, const BlobId& id, ByteView plaintext);
  // Splits a stream into content-defined chunks and stores each. Thread-safe; memory per call is
  // bounded by twice the maximum chunk size. Adds to `progress` bytes_done as it reads.
  // `interruptible` false: finish even after SIGINT/SIGTERM (a service's last commit before it stops).
  Result<StoredStream> store_stream(ByteSource& source, ProgressCounters* progress = nullptr, bool interruptible = true);
  Result<BlobId> store_tree(const Tree& tree);
  // Stores a blob already sealed with this repository's key (copying between repositories that share
  // keys): no decryption, no re-compression. Deduplicated like add_blob.
  Status add_sealed_blob(const PackEntry& entry, ByteView sealed);

  // Writes open packs and every index entry not yet in an index file. Durable when it returns OK.
  Status flush();
  // flush(), then saves the snapshot; returns its ID. The snapshot is the last thing written.
  // A snapshot without a host or user name gets this host's and this user's, in `snapshot` too.
  Result<std::string> commit(Snapshot& snapshot);

  const SessionStats& stats() const { return stats_; }

 private:
  Status store_sealed(BlobType type, const BlobId& id, ByteView plaintext);
  Status append_sealed(const PackEntry& entry, ByteView sealed);
  void queue_pack(PackBuilder&& pack);
  size_t data_pack_capacity() const;  // a data pack's buffer: the pack size, one more chunk, the header
  void upload_loop();
  Status write_index_locked();
  Status error() const;

  Repository& repo_;
  // Seals this session's blobs and pack headers: the AEAD key, or for an append key one capsule's key
  // for the whole session, forgotten when the session ends.
  const Repository::Sealer sealer_;
  bool dedup_against_index_;
  SessionStats stats_;

  std::mutex mu_;  // guards packers_, in_flight_ and spare_
  PackBuilder packers_[2];
  // A saved pack's buffer, kept for the next data pack (none: no capacity). Reused pages cost no faults, where
  // a fresh 16 MiB buffer costs 4096 faults and as many zeroed pages (0.4 CPU-s of a 1 GiB backup). One is
  // enough in steady state, as the uploader hands it back before the next pack starts; two saved no more
  // faults and cost 17 MiB more peak RSS than one.
  Bytes spare_;
  std::unordered_set<BlobId, BlobIdHash> in_flight_;

  std::mutex upload_mu_;  // guards the queue, pending index and error
  std::condition_variable queue_cv_, done_cv_;
  std::deque<PackBuilder> queue_;
  size_t uploading_ = 0;
  bool stopping_ = false;
  std::vector<IndexFile::Pack> unindexed_;
  size_t unindexed_entries_ = 0;
  int64_t last_index_write_ns_;
  Status error_;
  std::vector<std::thread> uploaders_;
};

// What a session added, for a snapshot's summary: blobs_new, data_added_bytes, data_stored_bytes, duration_ms.
nlohmann::json session_summary(const WriteSession& session, int64_t start_monotonic_ns);

}  // namespace lifeboat::repo
