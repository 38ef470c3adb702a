// Repository integrity check: structure always; with read_data, every (or a subset of) pack byte by byte.
#pragma once

#include <string>
#include <vector>

#include "core/progress.h"
#include "repo/repository.h"

namespace lifeboat::repo {

struct CheckOptions {
  bool read_data = false;
  // Subset n/t: reads packs whose first ID byte % t == n-1; 0/0 means all packs (when read_data).
  uint32_t subset_n = 0, subset_t = 0;
};

struct CheckReport {
  std::vector<std::string> errors;    // damage: a file or blob that is missing, altered or unreadable
  std::vector<std::string> warnings;  // harmless leftovers: unreferenced packs, unused blobs
  uint64_t snapshots = 0, trees = 0, packs = 0, packs_read = 0, blobs = 0, bytes_read = 0;
  bool ok() const { return errors.empty(); }
};

Result<CheckReport> check_repository(Repository& repo, const CheckOptions& options, ProgressCounters* progress);

// Reads and verifies one pack completely: name = SHA-256, header decrypts, each blob decrypts,
// decompresses and matches its ID. Returns a list of problems (empty when sound).
std::vector<std::string> verify_pack(Repository& repo, const PackId& id, const std::vector<PackEntry>* expected,
                                     uint64_t* bytes_read);

}  // namespace lifeboat::repo
