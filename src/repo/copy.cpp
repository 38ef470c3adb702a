// Snapshot copies between repositories.
#include "repo/copy.h"

#include <fmt/format.h>

#include <map>
#include <unordered_set>

#include "core/interrupt.h"
#include "core/time.h"
#include "repo/tree_walk.h"
#include "repo/write_session.h"

namespace lifeboat::repo {

bool share_keys(const Repository& a, const Repository& b) {
  static const char probe[] = "lifeboat: do these repositories share keys?";
  return a.blob_id(as_bytes(probe)) == b.blob_id(as_bytes(probe));
}

namespace {

// Same keys: the blobs go across sealed, so tree and content IDs stay the same.
Status copy_sealed(Repository& src, Repository& dst, WriteSession& session, const BlobId& root,
                   std::unordered_set<BlobId, BlobIdHash>& done, CopyReport& report) {
  auto send = [&](const BlobId& id) -> Status {
    if (!done.insert(id).second) return Status::ok();
    if (dst.index().contains(id)) {
      report.blobs_present++;
      return Status::ok();
    }
    LB_ASSIGN_OR_RETURN(auto blob, src.read_sealed_blob(id));
    report.blobs_copied++;
    report.bytes_sent += blob.second.size();
    return session.add_sealed_blob(blob.first, blob.second);
  };
  LB_RETURN_IF_ERROR(send(root));
  return walk_tree(src, root, [&](const std::string&, const Node& n) -> Status {
    if (interrupted()) return Error(Code::kInterrupted, "interrupted");
    if (n.subtree) LB_RETURN_IF_ERROR(send(*n.subtree));
    for (const auto& b : n.content) LB_RETURN_IF_ERROR(send(b));
    return Status::ok();
  });
}

// Stores a plaintext blob under the destination's keys, counting it as copied or already present.
Result<BlobId> store_reencrypted(Repository& dst, WriteSession& session, BlobType type, const Bytes& plain,
                                 CopyReport& report) {
  BlobId nid = dst.blob_id(plain);
  if (dst.index().contains(nid)) {
    report.blobs_present++;
  } else {
    report.blobs_copied++;
    report.bytes_sent += plain.size();
  }
  LB_RETURN_IF_ERROR(session.add_blob(type, nid, plain));
  return nid;
}

// Different keys: every blob is decrypted and stored under the destination's keys; blob IDs
// change, so trees are rebuilt bottom-up.
Result<BlobId> copy_reencrypt(Repository& src, Repository& dst, WriteSession& session, const BlobId& tree_id,
                              std::map<BlobId, BlobId>& trees, std::map<BlobId, BlobId>& blobs, CopyReport& report) {
  if (auto it = trees.find(tree_id); it != trees.end()) return it->second;
  LB_ASSIGN_OR_RETURN(Tree tree, src.load_tree(tree_id));
  for (auto& n : tree.nodes) {
    if (interrupted()) return Error(Code::kInterrupted, "interrupted");
    if (n.subtree) {
      LB_ASSIGN_OR_RETURN(*n.subtree, copy_reencrypt(src, dst, session, *n.subtree, trees, blobs, report));
    }
    for (auto& b : n.content) {
      if (auto it = blobs.find(b); it != blobs.end()) {
        b = it->second;
        continue;
      }
      LB_ASSIGN_OR_RETURN(Bytes plain, src.read_blob(b));
      LB_ASSIGN_OR_RETURN(BlobId nid, store_reencrypted(dst, session, BlobType::kData, plain, report));
      blobs[b] = nid;
      b = nid;
    }
  }
  // Trees count like data blobs (as the sealed copy counts them), each distinct one once.
  LB_ASSIGN_OR_RETURN(BlobId nid, store_reencrypted(dst, session, BlobType::kTree, tree.encode(), report));
  trees[tree_id] = nid;
  return nid;
}

Status verify_snapshot(Repository& dst, const BlobId& root, CopyReport& report) {
  LB_RETURN_IF_ERROR(dst.reload_index());
  LB_RETURN_IF_ERROR(dst.load_tree(root).status());
  std::unordered_set<BlobId, BlobIdHash> seen;
  return walk_tree(dst, root, [&](const std::string& path, const Node& n) -> Status {
    for (const auto& b : n.content) {
      if (!seen.insert(b).second) continue;
      auto r = dst.read_blob(b);
      if (!r) return r.status().with_context(fmt::format("verifying the copy of {}", path));
      report.blobs_verified++;
    }
    return Status::ok();
  });
}

}  // namespace

Result<CopyReport> copy_snapshots(Repository& src, Repository& dst, const std::vector<SnapshotRef>& snapshots,
                                  bool verify) {
  CopyReport report;
  report.same_keys = share_keys(src, dst);
  LB_RETURN_IF_ERROR(src.load_index());
  LB_RETURN_IF_ERROR(dst.load_index());
  LB_ASSIGN_OR_RETURN(auto existing, dst.list_snapshots());
  LB_ASSIGN_OR_RETURN(auto src_pins, src.pins());
  LB_ASSIGN_OR_RETURN(auto dst_pins, dst.pinned());
  auto carry_pin = [&](const std::string& from, const std::string& to) -> Status {
    auto pin = src_pins.find(from);
    if (pin == src_pins.end() || dst_pins.count(to)) return Status::ok();
    LB_RETURN_IF_ERROR(dst.pin(to, pin->second.note));
    dst_pins.insert(to);
    report.pins_copied++;
    return Status::ok();
  };
  std::unordered_set<BlobId, BlobIdHash> done;
  std::map<BlobId, BlobId> trees, blobs;
  // Every missing snapshot's data goes through one write session (packs filled across snapshots, one
  // flush): a backlog of small snapshots (oplog slices) costs a few pack uploads, not one each. Each
  // snapshot is committed only after the data is flushed and, with `verify`, read back.
  WriteSession session(dst);
  std::vector<std::pair<std::string, Snapshot>> pending;  // source ID, the snapshot to commit
  auto commit_pending = [&]() -> Status {
    LB_RETURN_IF_ERROR(session.flush());
    for (auto& [from, snap] : pending) {
      if (verify) LB_RETURN_IF_ERROR(verify_snapshot(dst, snap.tree, report));
      LB_ASSIGN_OR_RETURN(std::string id, session.commit(snap));
      report.snapshots_copied++;
      report.copied.emplace_back(from, id);
      LB_RETURN_IF_ERROR(carry_pin(from, id));
    }
    pending.clear();
    return Status::ok();
  };
  for (const auto& ref : snapshots) {
    const SnapshotRef* present = nullptr;
    for (const auto& e : existing) {
      const auto& s = e.snapshot;
      if (s.summary.value("copied_from", "") == ref.id || e.id == ref.id ||
          (report.same_keys && s.tree == ref.snapshot.tree && s.time_ns == ref.snapshot.time_ns &&
           s.hostname == ref.snapshot.hostname && s.source == ref.snapshot.source)) {
        present = &e;
        break;
      }
    }
    if (present) {
      report.snapshots_present++;
      LB_RETURN_IF_ERROR(carry_pin(ref.id, present->id));
      continue;
    }
    Snapshot snap = ref.snapshot;
    if (report.same_keys) {
      Status s = copy_sealed(src, dst, session, ref.snapshot.tree, done, report);
      if (!s.is_ok()) {
        (void)commit_pending();  // the snapshots copied whole before this one count
        return s;
      }
    } else {
      auto root = copy_reencrypt(src, dst, session, ref.snapshot.tree, trees, blobs, report);
      if (!root) {
        (void)commit_pending();
        return root.status();
      }
      snap.tree = *root;
      snap.parent.reset();  // IDs differ in the destination
    }
    snap.summary["copied_from"] = ref.id;
    pending.emplace_back(ref.id, std::move(snap));
  }
  LB_RETURN_IF_ERROR(commit_pending());
  return report;
}

}  // namespace lifeboat::repo
