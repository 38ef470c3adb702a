// Oplog slice compaction and the point-in-time window.
#include "sources/mongodb/slice_tidy.h"

#include <fmt/format.h>

#include <algorithm>

#include "core/time.h"
#include "repo/write_session.h"
#include "sources/mongodb/mongo_backup.h"

namespace lifeboat::sources::mongodb {

namespace {


struct SliceInfo {
  const repo::SnapshotRef* ref;
  OplogTime from, to;
};

// One slice holding the entries of `parts` (contiguous, in order): their stored blobs concatenated.
Status merge(repo::Repository& repo, const std::vector<SliceInfo>& parts, TidyResult& out) {
  repo::Node n;
  n.kind = repo::NodeKind::kFile;
  n.name = kOplogFile;
  n.mode = 0644;
  uint64_t entries = 0;
  uint32_t proved = 0;
  std::string proof;
  for (const auto& p : parts) {
    LB_ASSIGN_OR_RETURN(auto tree, repo.load_tree(p.ref->snapshot.tree));
    if (const repo::Node* f = tree.find(kOplogFile)) {
      n.content.insert(n.content.end(), f->content.begin(), f->content.end());
      n.size += f->size;
    }
    const auto& m = p.ref->snapshot.metadata;
    entries += m.value("entries", uint64_t{0});
    if (m.value("proved_through_s", uint32_t{0}) >= proved) {
      proved = m.value("proved_through_s", uint32_t{0});
      proof = m.value("proof", std::string());
    }
  }
  const auto& last = parts.back().ref->snapshot;
  n.mtime_ns = last.time_ns;
  repo::Tree root;
  root.nodes.push_back(std::move(n));
  int64_t start = monotonic_ns();
  repo::WriteSession session(repo);
  LB_ASSIGN_OR_RETURN(auto root_id, session.store_tree(root));
  repo::Snapshot snap;
  snap.time_ns = last.time_ns;
  snap.hostname = last.hostname;
  snap.username = last.username;
  snap.source = kSliceSource;
  snap.paths = last.paths;
  snap.tags = last.tags;
  snap.tree = root_id;
  snap.metadata = {{"kind", "oplog-slice"},           {"from", oplog_time_json(parts.front().from)},
                   {"to", oplog_time_json(parts.back().to)}, {"entries", entries},
                   {"gap", false},                    {"compacted_from", parts.size()}};
  if (proved) {
    snap.metadata["proved_through_s"] = proved;
    snap.metadata["proof"] = proof;
  }
  snap.summary = repo::session_summary(session, start);
  snap.summary["entries"] = entries;
  LB_RETURN_IF_ERROR(session.commit(snap).status());
  ++out.compacted_into;
  for (const auto& p : parts) {
    LB_ASSIGN_OR_RETURN(int64_t locked, repo.forget_snapshot(p.ref->id));
    if (!locked) ++out.compacted;
    else ++out.kept_by_object_lock;
  }
  return Status::ok();
}

}  // namespace

nlohmann::json tidy_json(const TidyResult& r) {
  return {{"slices_compacted", r.compacted}, {"hourly_slices_written", r.compacted_into},
          {"slices_forgotten", r.forgotten}, {"interrupted_compaction_leftovers", r.redundant},
          {"kept_by_object_lock", r.kept_by_object_lock}};
}

Result<TidyResult> tidy_slices(repo::Repository& repo, const TidyOptions& o) {
  TidyResult out;
  LB_ASSIGN_OR_RETURN(auto all, repo.list_snapshots());
  std::vector<SliceInfo> slices;
  std::vector<OplogTime> full_ends;
  for (const auto& s : all) {
    if (s.snapshot.paths.empty() || s.snapshot.paths[0] != o.name) continue;
    const auto& m = s.snapshot.metadata;
    if (s.snapshot.source == kFullSource) {
      if (auto end = oplog_time_from_json(m.value("oplog_end", nlohmann::json()))) full_ends.push_back(*end);
    } else if (s.snapshot.source == kSliceSource) {
      auto from = oplog_time_from_json(m.value("from", nlohmann::json()));
      auto to = oplog_time_from_json(m.value("to", nlohmann::json()));
      if (from && to) slices.push_back({&s, *from, *to});
    }
  }
  std::sort(slices.begin(), slices.end(), [](const SliceInfo& a, const SliceInfo& b) {
    return a.from != b.from ? a.from < b.from : a.to < b.to;
  });

  // Leftovers of an interrupted compaction: a merged slice is committed before its parts are
  // forgotten, so a tidy killed in between leaves parts (or, after an older Lifeboat re-ran, a second
  // merged slice) inside a merged slice's range. The merged slice holds their entries: each such slice
  // is forgotten now, so tidy converges instead of merging the same range again.
  {
    std::vector<SliceInfo> rest;
    for (const auto& s : slices) {
      bool merged = s.ref->snapshot.metadata.value("compacted_from", 0) >= 2;
      bool covered = std::any_of(slices.begin(), slices.end(), [&](const SliceInfo& m) {
        if (m.ref == s.ref || m.ref->snapshot.metadata.value("compacted_from", 0) < 2) return false;
        if (!(m.from <= s.from && s.to <= m.to)) return false;
        bool same = m.from == s.from && m.to == s.to;
        return !merged || !same || m.ref->id < s.ref->id;  // of two equal merged slices, one stays
      });
      if (covered && !o.pinned.count(s.ref->id)) {
        LB_ASSIGN_OR_RETURN(int64_t locked, repo.forget_snapshot(s.ref->id));
        if (!locked) ++out.redundant;
        else ++out.kept_by_object_lock;
        continue;
      }
      rest.push_back(s);
    }
    slices = std::move(rest);
  }

  // The window: a restore to any instant inside it needs the newest full backup at or before the
  // window's start and the slices after that full's end; slices ending before it serve no instant
  // inside the window.
  std::vector<SliceInfo> kept;
  std::optional<OplogTime> anchor;
  if (o.window_ns > 0) {
    uint32_t window_start_s = static_cast<uint32_t>(std::max<int64_t>(0, (o.now_ns - o.window_ns) / kNsPerSecond));
    for (const auto& e : full_ends)
      if (e.t <= window_start_s && (!anchor || e > *anchor)) anchor = e;
  }
  for (const auto& s : slices) {
    if (anchor && s.to <= *anchor && !o.pinned.count(s.ref->id)) {
      LB_ASSIGN_OR_RETURN(int64_t locked, repo.forget_snapshot(s.ref->id));
      if (!locked) ++out.forgotten;
      else ++out.kept_by_object_lock;
      continue;
    }
    kept.push_back(s);
  }

  // Compaction: runs of contiguous slices, all older than compact_after, whose ends fall in the
  // same hour become one slice.
  if (o.compact_after_ns <= 0) return out;
  uint32_t cutoff_s = static_cast<uint32_t>(std::max<int64_t>(0, (o.now_ns - o.compact_after_ns) / kNsPerSecond));
  std::vector<SliceInfo> run;
  auto flush = [&]() -> Status {
    if (run.size() >= 2) LB_RETURN_IF_ERROR(merge(repo, run, out));
    run.clear();
    return Status::ok();
  };
  for (const auto& s : kept) {
    bool eligible = !s.ref->snapshot.metadata.value("gap", false) && !o.pinned.count(s.ref->id) && s.to.t < cutoff_s;
    bool joins = eligible && !run.empty() && s.from == run.back().to && s.to.t / 3600 == run.front().to.t / 3600;
    if (!joins) LB_RETURN_IF_ERROR(flush());
    if (eligible) run.push_back(s);
  }
  LB_RETURN_IF_ERROR(flush());
  return out;
}

}  // namespace lifeboat::sources::mongodb
