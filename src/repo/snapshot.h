// Snapshots: the root tree of what a source produced, when and where, plus free-form source metadata.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"
#include "repo/blob.h"

namespace lifeboat::repo {

struct Snapshot {
  int64_t time_ns = 0;
  std::string hostname;
  std::string username;
  std::string source = "files";  // which Source produced it: files, stdin, mongodb, …
  std::vector<std::string> paths;
  std::vector<std::string> tags;
  BlobId tree{};
  std::optional<std::string> parent;   // snapshot ID the backup compared against
  nlohmann::json metadata = nlohmann::json::object();  // source-specific: positions, counts, hashes
  nlohmann::json summary = nlohmann::json::object();   // files/bytes new, changed, unchanged, added
  // Who wrote it: the key file's name and its Ed25519 signature (base64) over signed_message().
  // Absent in snapshots written before key roles.
  std::string writer_key, writer_signature;

  // Not stored; set by the repository as it reads the snapshot (docs/security.md, "Trust"):
  bool appended = false;   // sealed to the public key, so written by an append key
  std::string untrusted;   // empty when trusted; else why not (offered to no restore and no retention)

  // What the writer signs: this snapshot without its writer fields, bound to the repository.
  std::string signed_message(const std::string& repo_id) const;

  std::string to_json() const;
  static Result<Snapshot> from_json(std::string_view text);
  bool has_tag(const std::string& tag) const;
  // A record of what Lifeboat did (a drill, a scheduled prune or check), stored as a snapshot with an
  // empty tree: never data to restore, so `latest` and selections by time pass over it.
  bool is_record() const { return source == kDrillSource || source == kMaintenanceSource; }
  static constexpr const char* kDrillSource = "drill";
  static constexpr const char* kMaintenanceSource = "maintenance";
};

// A snapshot and its ID (the SHA-256 of its stored file).
struct SnapshotRef {
  std::string id;
  Snapshot snapshot;
  std::string short_id() const { return id.substr(0, 8); }
  // As `snapshots --json` shows it: id, short_id, time (RFC 3339) and every field.
  nlohmann::json to_json() const;
};

}  // namespace lifeboat::repo
