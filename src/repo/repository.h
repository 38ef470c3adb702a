// Repository: opens or creates one (config + key files), seals and reads objects, blobs, trees, snapshots.
#pragma once

#include <functional>
#include <future>
#include <list>
#include <map>
#include <atomic>
#include <mutex>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/clock.h"
#include "crypto/crypto.h"
#include "crypto/key_file.h"
#include "crypto/public_key.h"
#include "repo/chunker.h"
#include "repo/index.h"
#include "repo/snapshot.h"
#include "repo/tree.h"
#include "repo/writer_cache.h"
#include "storage/backend.h"

namespace lifeboat::repo {

using storage::FileType;

struct RepoConfig {
  std::string id;  // random, names the repository in locks, reports and metrics
  ChunkerParams chunker;
  uint32_t pack_size_bytes = 16 * 1024 * 1024;
  int compression_level = 3;
  int64_t created_ns = 0;
  int64_t object_lock_ns = 0;  // packs, index files, snapshots, keys and config are locked this long (0: off)

  std::string to_json() const;
  static Result<RepoConfig> from_json(std::string_view text);
};

struct InitOptions {
  crypto::KdfParams kdf;
  ChunkerParams chunker;
  uint32_t pack_size_bytes = 16 * 1024 * 1024;
  int compression_level = 3;
  int64_t object_lock_ns = 0;  // needs a backend with object lock (s3:, gs:)
  std::optional<crypto::Key> master;  // --copy-keys-from: share another repository's keys (and chunker)
};

// Loads a file named by the SHA-256 of its bytes and checks it; a download that does not match is
// fetched again (twice) before it is called damaged (kCorrupt).
Result<Bytes> load_content_addressed(storage::Backend& backend, const storage::Handle& h);

// What the index files say, after resolving `supersedes` (a superseded file is ignored) and conflicts
// (a pack listed live anywhere is live, even if another file tombstones it).
struct IndexState {
  std::vector<std::string> files;  // every index file read, superseded ones included
  std::map<PackId, std::vector<PackEntry>> live;
  std::map<PackId, IndexFile::Tombstone> tombstones;
};

// Applies supersedes and live-wins to decoded index files (name, content).
IndexState resolve_index_state(std::vector<std::pair<std::string, IndexFile>> files);

struct KeyInfo {
  std::string name;
  crypto::KeyFile file;
  bool current = false;
};

class Repository {
 public:
  static Result<std::unique_ptr<Repository>> init(std::unique_ptr<storage::Backend> backend,
                                                  std::string_view password, const InitOptions& options);
  // kRepoMissing when there is no config; kWrongPassword when no key file opens with the password.
  static Result<std::unique_ptr<Repository>> open(std::unique_ptr<storage::Backend> backend,
                                                  std::string_view password);

  // Another handle on an opened repository (its own index and caches) without deriving the key again.
  static Result<std::unique_ptr<Repository>> open_with_master(std::unique_ptr<storage::Backend> backend,
                                                              const crypto::Key& master, const std::string& key_name);
  // The same for any role: `secrets` are another handle's (secrets()).
  static Result<std::unique_ptr<Repository>> open_with_secrets(std::unique_ptr<storage::Backend> backend,
                                                               const crypto::KeySecrets& secrets,
                                                               const std::string& key_name);
  const crypto::KeySecrets& secrets() const { return secrets_; }
  // How many times this process ran the password KDF (Argon2id) to open a repository.
  static uint64_t key_derivations();

  // The clock object-lock retention, lock staleness and prune's grace periods follow (default: the
  // system's); tests move it instead of waiting.
  void use_clock(const Clock& clock) { clock_ = &clock; }
  int64_t now_ns() const { return clock_->now_ns(); }

  // Where the repository is (its URL or path), and whether reaching it costs a network round trip.
  std::string location() const { return backend_->location(); }
  bool remote() const { return backend_->remote(); }
  // Every pack file stored (name and size): check, stats and verification list them.
  Status list_pack_files(const std::function<Status(const storage::FileInfo&)>& fn);
  // Removes a snapshot file unless object lock still holds it: returns 0 when it was removed, else the
  // instant its retention ends (it is kept; the caller says so).
  Result<int64_t> forget_snapshot(const std::string& id);
  // Create-only, with the object-lock retention the config asks for (none for locks and pins).
  storage::SaveOptions save_options(storage::FileType type) const;
  // With object lock on: when a file's retention ends (the backend's figure, else its creation time
  // plus the lock period); 0 when it is deletable now.
  Result<int64_t> retained_until(const storage::Handle& h);
  // Extends the retention of every live pack, index file, snapshot and key whose retention ends
  // within half a lock period, so a stolen credential can never delete data still needed. Returns
  // how many objects were extended.
  Result<uint64_t> extend_object_lock(const std::set<std::string>& live_packs);
  const RepoConfig& config() const { return config_; }
  // An append key's repository holds no master, AEAD or seal private key (zeros here): every read of
  // stored data is refused before it is tried (require_reader).
  const crypto::RepoKeys& keys() const { return keys_; }
  const crypto::Key& master_key() const { return master_; }

  // The role of the key this repository was opened with (docs/security.md, "Roles").
  crypto::Role role() const { return role_; }
  bool append_only() const { return role_ == crypto::Role::kAppend; }
  // kForbidden naming the role and `what` unless the key may read stored data (admin, restore).
  Status require_reader(std::string_view what) const;
  // kForbidden unless the key is an admin key (forget, prune, repair, key changes, unlock --all).
  Status require_admin(std::string_view what) const;
  // The signing key of the key file in use (none for key files older than roles).
  const std::optional<crypto::Key>& signing_seed() const { return signing_seed_; }
  // An append key's cache of what it wrote from this host (null for other roles): trees and
  // snapshots the next backup compares with. list_snapshots, load_snapshot and load_tree read it
  // instead of the repository.
  WriterCache* writer_cache() { return writer_cache_.get(); }
  // The key new blobs and pack headers are sealed with: the AEAD key, or for an append key a fresh
  // capsule's key (forgotten with the sealer: the writer cannot read back what it stored).
  struct Sealer {
    crypto::Aead aead;
    std::optional<crypto::Capsule> capsule;
  };
  Sealer new_sealer() const;
  // The key that opens a pack's blobs and header (its capsule's, or the AEAD key).
  Result<crypto::Aead> pack_aead(const PackId& pack) const;
  // The same, for a pack whose capsule was just read from its trailer.
  Result<crypto::Aead> aead_for(const std::optional<crypto::Capsule>& capsule) const;
  PackKeyFor pack_key_for() const {
    return [this](const std::optional<crypto::Capsule>& c) { return aead_for(c); };
  }
  // Capsules of packs sealed to the public key, learned from index files and pack trailers.
  void note_capsule(const PackId& pack, const crypto::Capsule& capsule);
  std::optional<crypto::Capsule> capsule_of(const PackId& pack) const;
  // Saves an index file (docs/format.md, "Index files"): the ID list any key reads, then the index
  // proper sealed for readers; the capsules of its packs are added from what this repository knows.
  Result<std::string> save_index(IndexFile& file);
  // Reads and decodes one index file whole (readers) and records its capsules.
  Result<IndexFile> load_index_file(const std::string& name);
  // A blob as stored (sealed), with its pack entry: for copies between repositories sharing keys.
  Result<std::pair<PackEntry, Bytes>> read_sealed_blob(const BlobId& id);
  const crypto::Aead& aead() const { return aead_; }
  const Chunker& chunker() const { return chunker_; }
  BlobId blob_id(ByteView plaintext) const { return crypto::hmac_sha256(keys_.content_id, plaintext); }

  // Whole sealed files (index, snapshot, lock): stored as seal(zstd(plaintext)) under the hex SHA-256 of
  // the stored bytes. load_file checks that hash before decrypting, so a flipped byte names the file.
  Result<std::string> save_file(FileType type, ByteView plaintext);
  // `appended`, when given, says whether the file was sealed to the public key (an append key wrote it).
  Result<Bytes> load_file(FileType type, const std::string& name, bool* appended = nullptr);
  Result<std::vector<std::string>> list_names(FileType type);

  // Loads every index file into the in-memory index (once; later calls are no-ops).
  Status load_index();
  // Forgets what was loaded and reads the index files again (prune, long-running processes).
  Status reload_index();
  // Strict by default (prune must see everything); tolerant skips damaged index files and records a
  // warning, so a restore still reaches every snapshot the damage does not touch.
  Result<IndexState> read_index_state(bool tolerant = false);
  // Reads every index file once, in name order, and hands each decoded file to `fn`; `listed` gets
  // every name read (damaged ones included). Tolerant as read_index_state is.
  Status each_index_file(bool tolerant, std::vector<std::string>& listed,
                         const std::function<void(const std::string&, IndexFile&&)>& fn);
  const std::vector<std::string>& index_warnings() const { return index_warnings_; }
  // Makes `state` the loaded index (check builds it tolerantly, skipping damaged index files).
  void use_index_state(IndexState state);
  // Live blobs: what writers may dedup against.
  MasterIndex& index() { return index_; }
  // Blobs of tombstoned packs: still readable (restore, check), never offered for dedup.
  MasterIndex& tombstoned() { return tombstoned_; }
  const std::map<PackId, IndexFile::Tombstone>& tombstoned_packs() const { return tombstoned_packs_; }
  // What a backup does before it stores anything, with one listing of the packs:
  // - packs the index names that are gone from storage are dropped from the in-memory index, so
  //   nothing new deduplicates against them (their blobs are stored again) and a warning says the
  //   repository is damaged and names `lifeboat check`;
  // - complete packs that no index names (left by a killed writer) are adopted: their headers are
  //   read and an index file written, so their blobs are reused instead of stored again. Packs
  //   whose header does not authenticate are left for check to report.
  struct PackReconciliation {
    size_t adopted = 0;
    std::vector<PackId> missing;
  };
  Result<PackReconciliation> reconcile_packs();
  // Lists the packs and drops those the loaded index names but storage lacks from the in-memory
  // index (live and tombstoned), so a blob also stored in a pack that exists is found there. Returns
  // the missing packs. Readers call it when a pack turns out to be gone.
  Result<std::vector<PackId>> drop_missing_packs();
  // Warnings of the repository layer (a damaged repository found by a backup, a snapshot file that
  // cannot be read): stderr, as "lifeboat: warning: …".
  static void warn(const std::string& message);
  // Reads a pack's header with two ranged reads (length trailer, then header).
  Result<std::vector<PackEntry>> load_pack_header(const PackId& id, uint64_t pack_size);
  // Loads, decrypts, decompresses a blob and checks its content ID: wrong bytes are never returned.
  Result<Bytes> read_blob(const BlobId& id);
  // The decoding half of read_blob, for readers that fetched the sealed bytes themselves (read in
  // pack order): authenticates, decompresses and checks the content ID.
  Result<Bytes> open_blob(const BlobId& id, const BlobLocation& loc, ByteView sealed) const;
  Result<Tree> load_tree(const BlobId& id);

  // Oldest first. Untrusted snapshots (docs/security.md, "Trust": a forged or altered signature, a key
  // removed before it wrote them, another host than its key's, a date before its key) are left out
  // with a warning, so no restore, parent or retention ever uses them; `include_untrusted` lists them
  // too, each saying why (the snapshots command, forget by ID).
  Result<std::vector<SnapshotRef>> list_snapshots(bool include_untrusted = false);
  // For choosing a backup's parent: a snapshot file that cannot be read or decoded (damaged, foreign)
  // is skipped with a warning instead of failing the backup.
  Result<std::vector<SnapshotRef>> list_readable_snapshots();
  Result<SnapshotRef> load_snapshot(const std::string& id);

  // Pins: a pinned snapshot is kept by every retention policy. Stored as pins/<snapshot id>, sealed.
  Status pin(const std::string& snapshot_id, const std::string& note);
  Status unpin(const std::string& snapshot_id);
  Result<std::set<std::string>> pinned();
  struct Pin {
    std::string note, pinned;  // the note given, and when (RFC 3339)
  };
  // Every pin with its note (each pin file read).
  Result<std::map<std::string, Pin>> pins();

  // Key files.
  Result<std::vector<KeyInfo>> list_keys();
  // An admin's HMAC over a key file's role, binding, signing key and revocation (KeyFile::endorsement).
  void endorse(crypto::KeyFile& kf) const;
  bool endorsed(const crypto::KeyFile& kf) const;
  // Sets `ref.snapshot.untrusted` by the rules of docs/security.md, "Trust", given the key files.
  void judge_trust(SnapshotRef& ref, const std::map<std::string, crypto::KeyFile>& keys) const;
  // Slack for clocks: a snapshot may be dated this much before its key file's creation.
  static constexpr int64_t kKeyClockSlackNs = 3600LL * 1000000000;
  // Adds a key file with `role` (admin keys only; an append key gets what it needs to write, a
  // restore key the master secret). `host`: the host an append key's snapshots must name ("": any).
  Result<std::string> add_key(std::string_view password, const crypto::KdfParams& kdf,
                              crypto::Role role = crypto::Role::kAdmin, const std::string& host = "");
  Status remove_key(const std::string& name);
  // Adds a key file for the new password, then removes the one this session opened with (a crash in
  // between leaves two working keys, never none). Returns the new key's name.
  Result<std::string> replace_current_key(std::string_view password, const crypto::KdfParams& kdf);
  const std::string& key_name() const { return key_name_; }

 private:
  // The storage behind the repository is reached through its methods, so nothing above the repository
  // layer deletes a file behind its back; the layer's own files use BackendAccess (backend_access.h).
  friend struct BackendAccess;
  storage::Backend& backend() { return *backend_; }
  Repository(std::unique_ptr<storage::Backend> backend, const crypto::Key& master);
  static Result<std::unique_ptr<Repository>> with_config(std::unique_ptr<storage::Backend> backend, const crypto::Key& master,
                                                         const std::string& key_name, ByteView config_bytes);
  static Result<std::unique_ptr<Repository>> with_secrets(std::unique_ptr<storage::Backend> backend,
                                                          const crypto::KeySecrets& secrets, const std::string& key_name,
                                                          ByteView config_bytes);
  Status load_index_ids();  // load_index for an append key: the ID lists alone
  // The content key of a capsule (readers only; generation 0 is the only one so far).
  Result<crypto::Key> capsule_key(const crypto::Capsule& capsule) const;
  // Opens a whole file sealed with the AEAD key or to the public key (then *appended is set).
  Result<Bytes> open_sealed(ByteView sealed, bool* appended) const;
  crypto::KeySecrets secrets_;
  std::unique_ptr<WriterCache> writer_cache_;
  crypto::Role role_ = crypto::Role::kAdmin;
  std::optional<crypto::Key> signing_seed_;
  crypto::PublicKey seal_public_{};
  uint8_t seal_generation_ = 0;
  mutable std::mutex capsules_mu_;
  std::map<PackId, crypto::Capsule> capsules_;
  mutable std::map<PackId, crypto::Key> pack_keys_;  // derived from capsules_, under capsules_mu_
  std::unique_ptr<storage::Backend> backend_;
  const Clock* clock_ = &system_clock();
  crypto::Key master_;
  crypto::RepoKeys keys_;
  crypto::Aead aead_;
  RepoConfig config_;
  Chunker chunker_;
  std::string key_name_;
  MasterIndex index_;
  MasterIndex tombstoned_;
  std::map<PackId, IndexFile::Tombstone> tombstoned_packs_;
  Status drop_packs(const std::vector<PackId>& missing);  // with drop_missing_mu_ held
  Result<std::vector<SnapshotRef>> list_snapshots_from(bool skip_damaged, bool include_untrusted = false);
  std::set<std::string> warned_untrusted_;  // under snapshot_cache_mu_: each named once per process
  std::map<std::string, crypto::KeyFile> key_file_cache_;  // under snapshot_cache_mu_: key files by name
  Result<std::map<PackId, uint64_t>> stored_packs();  // one listing: every pack file and its size
  std::mutex drop_missing_mu_;
  std::set<PackId> dropped_packs_;  // missing packs already taken out of the in-memory index
  std::atomic<bool> index_loaded_{false};
  std::mutex load_index_mu_;  // readers on several threads may be the first to need the index
  std::vector<std::string> index_warnings_;

  // Remote backends: one request per blob would make restores latency-bound, so a miss fetches up to
  // 8 MiB of the pack from that blob on (blobs are read back mostly in the order they were written)
  // and keeps the last few windows.
  Result<Bytes> read_sealed_range(const BlobLocation& loc);
  struct PackWindow {
    PackId pack;
    uint64_t offset, length;
    std::shared_future<std::shared_ptr<const Bytes>> data;  // null when the fetch failed; readers that
                                                            // need the same window wait for one fetch
  };
  std::mutex snapshot_cache_mu_;                 // guards snapshot_cache_
  std::map<std::string, Snapshot> snapshot_cache_;  // snapshot files read before, by name (content-addressed)
  std::mutex window_mu_;
  std::list<PackWindow> windows_;
  std::map<PackId, uint64_t> pack_sizes_;
  bool pack_sizes_listed_ = false;
};

// Index files written whole by repair and prune (every pack of the repository) go out in parts of
// at most `part_entries` entries (blobs of packs and of tombstones), so neither a file nor its
// encoding in memory grows with the repository. Every part but the last is written as it fills; the
// last names `supersedes`, so until it exists readers see the old files and the new parts together (a
// pack listed twice is the same pack), and from then on the new parts alone. A crash in between
// leaves both: the next repair or prune supersedes them.
class IndexPartWriter {
 public:
  static constexpr size_t kPartEntries = 200000;
  IndexPartWriter(Repository& repo, std::vector<std::string> supersedes, size_t part_entries = kPartEntries)
      : repo_(repo), supersedes_(std::move(supersedes)), part_entries_(part_entries) {}
  Status add_pack(const PackId& id, std::vector<PackEntry> entries);
  Status add_tombstone(IndexFile::Tombstone t);
  // Writes the last part (with `supersedes`); returns the names of every part written.
  Result<std::vector<std::string>> finish();

 private:
  Status write_part(bool last);
  Repository& repo_;
  std::vector<std::string> supersedes_, written_;
  size_t part_entries_, held_ = 0;
  IndexFile part_;
};

}  // namespace lifeboat::repo
