// Picking snapshots: by ID prefix, "latest", or the newest at or before an instant (--at), with filters.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "repo/snapshot.h"

namespace lifeboat::repo {

struct SnapshotFilter {
  std::string host;
  std::string source;
  std::vector<std::string> tags;   // all must be present
  std::vector<std::string> paths;  // must equal the snapshot's paths (as a set), if given
  bool matches(const Snapshot& s) const;
};

std::vector<SnapshotRef> filter_snapshots(const std::vector<SnapshotRef>& all, const SnapshotFilter& filter);

// `spec` is "latest" (or empty) or a unique ID prefix. With `at_ns`, "latest" means the newest snapshot
// taken at or before that instant. `all` must be sorted oldest first.
Result<SnapshotRef> select_snapshot(const std::vector<SnapshotRef>& all, const std::string& spec,
                                    std::optional<int64_t> at_ns, const SnapshotFilter& filter);

}  // namespace lifeboat::repo
