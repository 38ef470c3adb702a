// Retention: which snapshots a policy keeps, with the reason for every decision (forget --explain).
#pragma once

#include <map>
#include <set>
#include <string>
#include <vector>

#include "repo/snapshot.h"

namespace lifeboat::repo {

struct RetentionPolicy {
  int keep_last = 0;
  int keep_hourly = 0, keep_daily = 0, keep_weekly = 0, keep_monthly = 0, keep_yearly = 0;
  int64_t keep_within_ns = 0;  // keep everything newer than latest - duration
  int64_t keep_within_hourly_ns = 0, keep_within_daily_ns = 0, keep_within_weekly_ns = 0,
          keep_within_monthly_ns = 0, keep_within_yearly_ns = 0;
  std::vector<std::string> keep_tags;
  bool empty() const;
  std::string describe() const;
};

struct RetentionDecision {
  SnapshotRef ref;
  bool keep = false;
  std::vector<std::string> reasons;  // why it is kept (all matching rules), or why it goes
};

// Applies the policy to one group of snapshots (any order). Calendar rules count periods that have
// snapshots: keep-daily 7 keeps the newest snapshot of each of the 7 most recent days that have one.
// Durations are measured back from the newest snapshot of the group, not from now, so a host that
// stopped backing up does not lose its last backups. Pinned snapshots are always kept.
std::vector<RetentionDecision> apply_retention(const std::vector<SnapshotRef>& group, const RetentionPolicy& policy,
                                               const std::set<std::string>& pinned);

// Groups snapshots by the chosen fields ("source", "host", "paths", "tags"); key is printable.
std::map<std::string, std::vector<SnapshotRef>> group_snapshots(const std::vector<SnapshotRef>& all,
                                                                const std::vector<std::string>& group_by);

}  // namespace lifeboat::repo
