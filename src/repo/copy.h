// Copying snapshots to a second repository (another bucket or region): only what it lacks is sent;
// sealed blobs as they are when both share keys, re-encrypted (new blob IDs, rewritten trees) when not.
#pragma once

#include <string>
#include <vector>

#include "repo/repository.h"
#include "repo/snapshot.h"

namespace lifeboat::repo {

struct CopyReport {
  bool same_keys = false;
  uint64_t snapshots_copied = 0, snapshots_present = 0;
  uint64_t pins_copied = 0;  // pins (with their notes) carried to the copies of pinned snapshots
  uint64_t blobs_copied = 0, blobs_present = 0, bytes_sent = 0, blobs_verified = 0;
  std::vector<std::pair<std::string, std::string>> copied;  // source ID, ID in the destination
};

// Both repositories must be locked (shared) by the caller. With `verify`, every blob of each copied
// snapshot is read back from the destination and authenticated before the copy counts as done. A
// pinned snapshot's copy (new, or already there) is pinned too, with the same note.
Result<CopyReport> copy_snapshots(Repository& src, Repository& dst, const std::vector<SnapshotRef>& snapshots,
                                  bool verify);

bool share_keys(const Repository& a, const Repository& b);

}  // namespace lifeboat::repo
