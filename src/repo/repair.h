// Repairs after damage, as restic has them (docs/cli.md, "repair"):
// - repair_index: rebuild the index from the pack headers in storage (index files damaged or lost,
//   or packs the index names that are gone);
// - repair_snapshots: rewrite snapshots that need blobs no pack holds, without those files, marked
//   as repaired; the originals are kept unless asked to forget them.
#pragma once

#include <string>
#include <vector>

#include "repo/repository.h"

namespace lifeboat::repo {

struct RepairIndexReport {
  size_t packs = 0, blobs = 0, index_files_replaced = 0, index_files_written = 0;
  std::vector<std::string> unreadable_packs;  // header does not authenticate or decode: left for check
};
// Needs the exclusive lock. Writes index files in parts (IndexPartWriter, as pack headers are read),
// the last superseding every existing file, then removes those.
Result<RepairIndexReport> repair_index(Repository& repo, size_t part_entries = IndexPartWriter::kPartEntries);

struct RepairSnapshotsReport {
  struct Rewritten {
    std::string original, repaired;  // repaired is empty with dry_run
    std::vector<std::string> removed;  // paths of files (or directories) whose data is gone
  };
  size_t snapshots = 0;
  std::vector<Rewritten> rewritten;
};
Result<RepairSnapshotsReport> repair_snapshots(Repository& repo, bool forget_originals, bool dry_run);

}  // namespace lifeboat::repo
