// Two-phase prune. Mark: packs nobody needs leave the live index as tombstones (still readable, never
// deduplicated against). Sweep: a tombstoned pack is deleted only once every writer that could have
// deduplicated against it (a lock that started before the mark) has finished, and only if no
// snapshot — including ones committed meanwhile — needs one of its blobs; otherwise it comes back.
#include "repo/prune.h"

#include <fmt/format.h>

#include <unistd.h>

#include <cstdlib>
#include <unordered_set>

#include "core/interrupt.h"
#include "core/time.h"
#include "repo/backend_access.h"
#include "repo/write_session.h"

namespace lifeboat::repo {

namespace {

// LIFEBOAT_DEBUG_PRUNE=1 traces every decision on stderr (for diagnosing races in tests).
void trace(const std::string& what) {
  static const bool on = getenv("LIFEBOAT_DEBUG_PRUNE") != nullptr;
  if (on) fmt::print(stderr, "prune[{}]: {}\n", getpid(), what);
}

using BlobSet = std::unordered_set<BlobId, BlobIdHash>;

// Marks every blob reachable from the snapshots' trees: live ones in `live_used` (a bitset over the
// live index's sorted positions, one bit a blob), the rest in `other_used`.
Status mark_used(Repository& repo, const std::vector<SnapshotRef>& snapshots, std::vector<bool>& live_used,
                 BlobSet& other_used, BlobSet& trees_seen) {
  auto mark = [&](const BlobId& id) {
    if (auto pos = repo.index().position(id)) live_used[*pos] = true;
    else other_used.insert(id);
  };
  for (const auto& ref : snapshots) {
    std::vector<BlobId> stack{ref.snapshot.tree};
    while (!stack.empty()) {
      if (interrupted()) return Error(Code::kInterrupted, "interrupted (nothing was changed yet)");
      BlobId tid = stack.back();
      stack.pop_back();
      if (!trees_seen.insert(tid).second) continue;
      mark(tid);
      auto tree = repo.load_tree(tid);
      if (!tree)
        return tree.status().with_context(fmt::format("snapshot {} needs tree {} which cannot be read; run "
                                                      "'lifeboat check' before pruning",
                                                      ref.short_id(), short_hex(tid)));
      for (const auto& n : tree->nodes) {
        for (const auto& c : n.content) mark(c);
        if (n.subtree) stack.push_back(*n.subtree);
      }
    }
  }
  return Status::ok();
}

// The index in parts (IndexPartWriter); returns their names.
Result<std::vector<std::string>> write_index(Repository& repo, const std::map<PackId, std::vector<PackEntry>>& live,
                                             const std::map<PackId, IndexFile::Tombstone>& tombstones,
                                             const std::vector<std::string>& supersedes, size_t part_entries) {
  IndexPartWriter parts(repo, supersedes, part_entries);
  for (const auto& [id, entries] : live) LB_RETURN_IF_ERROR(parts.add_pack(id, entries));
  for (const auto& [id, t] : tombstones) LB_RETURN_IF_ERROR(parts.add_tombstone(t));
  return parts.finish();
}

// Removes index files superseded by `keep` (content-addressed: a new part identical to an old file is
// that file, and stays).
Status remove_index_files(Repository& repo, const std::vector<std::string>& names, const std::vector<std::string>& keep) {
  for (const auto& n : names) {
    if (std::find(keep.begin(), keep.end(), n) != keep.end()) continue;
    // A superseded index file under object lock stays until its retention ends; readers skip it.
    LB_ASSIGN_OR_RETURN(int64_t locked, repo.retained_until({FileType::kIndex, n}));
    if (!locked) LB_RETURN_IF_ERROR(BackendAccess::of(repo).remove({FileType::kIndex, n}));
  }
  return Status::ok();
}

}  // namespace

Result<PruneReport> prune_repository(Repository& repo, const PruneOptions& options, const RepoLock& own) {
  LB_RETURN_IF_ERROR(repo.require_admin("prune"));
  PruneReport report;
  // Snapshots first, index second: a snapshot is written after its index files, so every snapshot
  // listed here has its blobs in the index files read next, even while writers keep committing.
  LB_ASSIGN_OR_RETURN(auto snapshots, repo.list_snapshots());
  LB_ASSIGN_OR_RETURN(IndexState state, repo.read_index_state());
  repo.use_index_state(state);
  report.snapshots = snapshots.size();
  std::set<std::string> snapshots_marked;
  for (const auto& s : snapshots) snapshots_marked.insert(s.id);

  // 1. Mark.
  std::vector<bool> live_used(repo.index().sorted_size(), false);
  BlobSet other_used, trees_seen;
  LB_RETURN_IF_ERROR(mark_used(repo, snapshots, live_used, other_used, trees_seen));
  for (const auto& id : other_used)
    if (!repo.tombstoned().contains(id))
      return Error(Code::kCorrupt, fmt::format("a snapshot needs blob {} that no index names; run 'lifeboat check' "
                                               "before pruning",
                                               short_hex(id)));

  // 2. Tombstoned packs a snapshot needs come back to life. They are not in the live index built
  // above, so step 3 must not judge them by it (it would find nothing used and bury them again).
  std::set<PackId> resurrected;
  for (auto it = state.tombstones.begin(); it != state.tombstones.end();) {
    bool needed = std::any_of(it->second.entries.begin(), it->second.entries.end(),
                              [&](const PackEntry& e) { return other_used.count(e.id) > 0; });
    if (needed) {
      trace("resurrect " + to_hex(it->first).substr(0, 8));
      resurrected.insert(it->first);
      state.live[it->first] = it->second.entries;
      report.packs_resurrected++;
      it = state.tombstones.erase(it);
    } else {
      ++it;
    }
  }

  // 3. Classify live packs by how much of them is used.
  std::vector<PackId> to_tombstone, to_repack;
  for (const auto& [id, entries] : state.live) {
    if (resurrected.count(id)) {
      report.packs++;
      continue;  // needed by a snapshot; a later prune repacks it if it is mostly waste
    }
    uint64_t used = 0, total = 0;
    for (const auto& e : entries) {
      total += e.stored_len;
      auto pos = repo.index().position(e.id);
      // A blob stored in two packs counts for the pack the index chose; the other copy is unused.
      bool here = pos && live_used[*pos] && repo.index().location_at(*pos).pack == id;
      if (here) used += e.stored_len, report.blobs_used++;
      else report.blobs_unused++;
    }
    report.packs++;
    report.bytes_before += total;
    if (used == 0) to_tombstone.push_back(id);
    else if (total && static_cast<double>(total - used) / static_cast<double>(total) > options.max_unused)
      to_repack.push_back(id);
  }

  // 4. Packs on storage that no index names: a crashed writer's, or a running writer's not yet indexed.
  // Both become tombstones; a running writer's index will name the pack live, and live wins.
  std::vector<std::pair<PackId, uint64_t>> orphans;
  LB_RETURN_IF_ERROR(BackendAccess::of(repo).list(FileType::kPack, [&](const storage::FileInfo& fi) {
    PackId id;
    if (parse_id(fi.name, id) && !state.live.count(id) && !state.tombstones.count(id))
      orphans.emplace_back(id, fi.size_bytes);
    return Status::ok();
  }));
  report.orphans = orphans.size();
  report.packs_repacked = to_repack.size();
  report.packs_tombstoned = to_tombstone.size() + to_repack.size() + orphans.size();
  if (options.dry_run) {
    // What the real run's sweep (step 7) would delete: every tombstone, earlier ones and those this
    // run would add (marked now), that no other running writer started before, unless object lock
    // keeps it. The real run re-reads snapshots before deleting and may bring a few back.
    LB_ASSIGN_OR_RETURN(auto locks, RepoLock::list(repo));
    int64_t now = repo.now_ns();
    auto sweepable = [&](int64_t marked_ns) {
      for (const auto& l : locks)
        if (!l.stale && l.kind != LockKind::kLease && l.name != own.name() && l.started_ns < marked_ns + options.clock_skew_ns) return false;
      return true;
    };
    std::vector<std::pair<PackId, int64_t>> candidates;
    for (const auto& [id, t] : state.tombstones) candidates.emplace_back(id, t.marked_ns);
    for (const auto& id : to_tombstone) candidates.emplace_back(id, now);
    for (const auto& id : to_repack) candidates.emplace_back(id, now);
    for (const auto& [id, size] : orphans) candidates.emplace_back(id, now);
    for (const auto& [id, marked] : candidates) {
      if (!sweepable(marked)) {
        report.tombstones_waiting++;
        continue;
      }
      LB_ASSIGN_OR_RETURN(int64_t locked, repo.retained_until({FileType::kPack, to_hex(id)}));
      if (locked) {
        report.packs_retained++;
        continue;
      }
      auto info = BackendAccess::of(repo).stat({FileType::kPack, to_hex(id)});
      if (info) report.bytes_deleted += info->size_bytes;
      report.packs_deleted++;
    }
    return report;
  }

  // 5. Repack: copy the used blobs of wasteful packs into new packs (indexed by the session). What to
  // copy is decided first: the session adds its packs to the live index while it runs.
  if (!to_repack.empty()) {
    std::vector<PackEntry> to_copy;
    for (const auto& id : to_repack)
      for (const auto& e : state.live[id]) {
        auto pos = repo.index().position(e.id);
        if (pos && live_used[*pos] && repo.index().location_at(*pos).pack == id) to_copy.push_back(e);
      }
    WriteSession session(repo, /*dedup_against_index=*/false);
    for (const auto& e : to_copy) {
      LB_ASSIGN_OR_RETURN(Bytes data, repo.read_blob(e.id));
      LB_RETURN_IF_ERROR(session.add_blob(e.type, e.id, data));
      report.bytes_repacked += e.stored_len;
    }
    LB_RETURN_IF_ERROR(session.flush());
  }

  // 6. Publish the mark: one index with every live pack and all tombstones replaces what was read.
  int64_t pending_mark = repo.now_ns();
  for (const auto& id : to_tombstone) trace("tombstone unused " + to_hex(id).substr(0, 8));
  for (const auto& id : to_repack) trace("tombstone repacked " + to_hex(id).substr(0, 8));
  for (const auto& [id, size] : orphans) trace("tombstone orphan " + to_hex(id).substr(0, 8));
  for (const auto& id : to_tombstone) {
    state.tombstones[id] = {id, pending_mark, state.live[id]};
    state.live.erase(id);
  }
  for (const auto& id : to_repack) {
    state.tombstones[id] = {id, pending_mark, state.live[id]};
    state.live.erase(id);
  }
  for (const auto& [id, size] : orphans) {
    auto entries = repo.load_pack_header(id, size);
    state.tombstones[id] = {id, pending_mark, entries ? *entries : std::vector<PackEntry>{}};
  }
  LB_ASSIGN_OR_RETURN(auto marked_index, write_index(repo, state.live, state.tombstones, state.files, options.index_part_entries));
  LB_RETURN_IF_ERROR(remove_index_files(repo, state.files, marked_index));
  // Only now can no new writer see these packs as live: that instant is the mark.
  int64_t visible_ns = repo.now_ns();
  for (auto& [id, t] : state.tombstones)
    if (t.marked_ns == pending_mark) t.marked_ns = visible_ns;

  // 7. Sweep: tombstones no earlier-started writer can still need.
  LB_ASSIGN_OR_RETURN(auto locks, RepoLock::list(repo));
  auto sweepable = [&](const IndexFile::Tombstone& t) {
    for (const auto& l : locks)
      if (!l.stale && l.kind != LockKind::kLease && l.name != own.name() && l.started_ns < t.marked_ns + options.clock_skew_ns) return false;
    return true;
  };
  std::vector<PackId> doomed;
  for (const auto& [id, t] : state.tombstones)
    if (sweepable(t)) doomed.push_back(id);
  trace(fmt::format("{} locks, {} tombstones, {} sweepable", locks.size(), state.tombstones.size(), doomed.size()));
  report.tombstones_waiting = state.tombstones.size() - doomed.size();
  if (!doomed.empty()) {
    // Re-read, snapshots first: a pack some index now names live (a writer that indexed it after we
    // listed) stays; and snapshots committed since the mark may need tombstoned blobs (their writers
    // deduplicated against them before the mark): those packs come back instead of going.
    LB_ASSIGN_OR_RETURN(auto now_snapshots, repo.list_snapshots());
    LB_ASSIGN_OR_RETURN(IndexState fresh_state, repo.read_index_state());
    std::vector<PackId> still_doomed;
    for (const auto& id : doomed) {
      if (fresh_state.live.count(id)) {
        trace("live elsewhere " + to_hex(id).substr(0, 8));
        state.tombstones.erase(id);  // live in a writer's index: not ours to delete
        report.packs_resurrected++;
      } else {
        still_doomed.push_back(id);
      }
    }
    doomed = std::move(still_doomed);
    std::vector<SnapshotRef> fresh;
    for (const auto& s : now_snapshots)
      if (!snapshots_marked.count(s.id)) fresh.push_back(s);
    if (!fresh.empty() && !doomed.empty()) {
      repo.use_index_state(fresh_state);
      std::vector<bool> live_used2(repo.index().sorted_size(), false);
      BlobSet other2, seen2;
      LB_RETURN_IF_ERROR(mark_used(repo, fresh, live_used2, other2, seen2));
      std::vector<PackId> keep;
      for (const auto& id : doomed) {
        const auto& t = state.tombstones[id];
        if (std::any_of(t.entries.begin(), t.entries.end(), [&](const PackEntry& e) { return other2.count(e.id) > 0; })) {
          state.live[id] = t.entries;
          state.tombstones.erase(id);
          report.packs_resurrected++;
        } else {
          keep.push_back(id);
        }
      }
      doomed = keep;
    }
    for (const auto& id : doomed) {
      LB_ASSIGN_OR_RETURN(int64_t locked, repo.retained_until({FileType::kPack, to_hex(id)}));
      if (locked) {  // object lock: the store would refuse (GCS) or only hide it (S3); keep the tombstone
        report.packs_retained++;
        continue;
      }
      auto info = BackendAccess::of(repo).stat({FileType::kPack, to_hex(id)});
      if (info) report.bytes_deleted += info->size_bytes;
      std::string blobs;
      for (const auto& e : state.tombstones[id].entries) blobs += " " + short_hex(e.id);
      trace("delete " + to_hex(id).substr(0, 8) + " holding" + blobs);
      LB_RETURN_IF_ERROR(BackendAccess::of(repo).remove({FileType::kPack, to_hex(id)}));
      state.tombstones.erase(id);
      report.packs_deleted++;
    }
  }
  // 8. The final index: live packs, tombstones still waiting (with their visible mark time).
  LB_ASSIGN_OR_RETURN(auto final_index, write_index(repo, state.live, state.tombstones, marked_index, options.index_part_entries));
  LB_RETURN_IF_ERROR(remove_index_files(repo, marked_index, final_index));
  LB_RETURN_IF_ERROR(repo.reload_index());
  if (repo.config().object_lock_ns) {
    std::set<std::string> live;
    for (const auto& [id, entries] : state.live) live.insert(to_hex(id));
    LB_ASSIGN_OR_RETURN(report.objects_lock_extended, repo.extend_object_lock(live));
  }
  // Lock files nobody holds any more: stale ones, and those that keys which delete nothing released
  // or replaced, with their markers (docs/format.md, "Locks").
  LB_ASSIGN_OR_RETURN(report.locks_removed, RepoLock::remove_locks(repo, /*all=*/false));
  return report;
}

}  // namespace lifeboat::repo
