// Snapshot selection.
#include "repo/snapshot_select.h"

#include <fmt/format.h>

#include <algorithm>
#include <set>

#include "core/time.h"

namespace lifeboat::repo {

bool SnapshotFilter::matches(const Snapshot& s) const {
  if (!host.empty() && s.hostname != host) return false;
  if (!source.empty() && s.source != source) return false;
  for (const auto& t : tags)
    if (!s.has_tag(t)) return false;
  if (!paths.empty() &&
      std::set<std::string>(paths.begin(), paths.end()) != std::set<std::string>(s.paths.begin(), s.paths.end()))
    return false;
  return true;
}

std::vector<SnapshotRef> filter_snapshots(const std::vector<SnapshotRef>& all, const SnapshotFilter& filter) {
  std::vector<SnapshotRef> out;
  for (const auto& r : all)
    if (filter.matches(r.snapshot)) out.push_back(r);
  return out;
}

Result<SnapshotRef> select_snapshot(const std::vector<SnapshotRef>& all, const std::string& spec,
                                    std::optional<int64_t> at_ns, const SnapshotFilter& filter) {
  auto candidates = filter_snapshots(all, filter);
  if (spec.empty() || spec == "latest") {
    const SnapshotRef* best = nullptr;
    for (const auto& r : candidates)
      if (!at_ns || r.snapshot.time_ns <= *at_ns) best = &r;  // sorted oldest first
    if (!best) {
      if (at_ns && !candidates.empty()) {
        const auto& first = candidates.front();
        // Listings show seconds: a snapshot shown at the very second asked for was taken a fraction later.
        if (first.snapshot.time_ns / 1000000000 == *at_ns / 1000000000)
          return Error(Code::kNotFound,
                       fmt::format("no snapshot at or before {}: the oldest matching one, {}, was taken {} ms later, at {} (listings "
                                   "show it as {}); give --at {} or later, or name it: {}",
                                   format_rfc3339(*at_ns), first.short_id(), (first.snapshot.time_ns - *at_ns) / 1000000,
                                   format_rfc3339(first.snapshot.time_ns), format_local(first.snapshot.time_ns),
                                   format_rfc3339(first.snapshot.time_ns), first.short_id()));
        return Error(Code::kNotFound, fmt::format("no snapshot at or before {} (the oldest matching one, {}, is from {})",
                                                  format_local(*at_ns), first.short_id(), format_local(first.snapshot.time_ns)));
      }
      if (at_ns) return Error(Code::kNotFound, fmt::format("no snapshot at or before {}: none matches", format_local(*at_ns)));
      return Error(Code::kNotFound, "no matching snapshot in the repository");
    }
    return *best;
  }
  std::vector<const SnapshotRef*> hits;
  for (const auto& r : candidates)
    if (r.id.rfind(spec, 0) == 0) hits.push_back(&r);
  if (hits.empty()) return Error(Code::kNotFound, fmt::format("no snapshot with ID {}", spec));
  if (hits.size() > 1)
    return Error(Code::kInvalidArgument, fmt::format("snapshot ID prefix {} is ambiguous ({} matches); give more digits",
                                                     spec, hits.size()));
  if (at_ns && hits[0]->snapshot.time_ns > *at_ns)
    return Error(Code::kInvalidArgument, fmt::format("snapshot {} was taken at {}, {} ms after --at {}: drop --at to restore it",
                                                     hits[0]->short_id(), format_rfc3339(hits[0]->snapshot.time_ns),
                                                     (hits[0]->snapshot.time_ns - *at_ns) / 1000000, format_rfc3339(*at_ns)));
  return *hits[0];
}

}  // namespace lifeboat::repo
