// repair index and repair snapshots.
#include "repo/repair.h"

#include <fmt/format.h>

#include <map>
#include <set>
#include <optional>

#include "core/interrupt.h"
#include "repo/backend_access.h"
#include "repo/write_session.h"

namespace lifeboat::repo {

Result<RepairIndexReport> repair_index(Repository& repo, size_t part_entries) {
  LB_RETURN_IF_ERROR(repo.require_admin("repair index"));
  RepairIndexReport report;
  LB_ASSIGN_OR_RETURN(auto old_files, repo.list_names(FileType::kIndex));
  std::vector<std::pair<PackId, uint64_t>> stored;
  LB_RETURN_IF_ERROR(BackendAccess::of(repo).list(FileType::kPack, [&](const storage::FileInfo& fi) {
    PackId id;
    if (parse_id(fi.name, id)) stored.emplace_back(id, fi.size_bytes);
    else report.unreadable_packs.push_back(fmt::format("{}: not a pack name", fi.name));
    return Status::ok();
  }));
  // Written in parts as the pack headers are read: memory holds one part, not the whole index.
  IndexPartWriter parts(repo, old_files, part_entries);
  for (const auto& [id, size] : stored) {
    if (interrupted()) return Error(Code::kInterrupted, "interrupted");
    auto entries = repo.load_pack_header(id, size);
    if (!entries) {
      report.unreadable_packs.push_back(fmt::format("{}: {}", to_hex(id), entries.status().message()));
      continue;
    }
    report.blobs += entries->size();
    report.packs++;
    LB_RETURN_IF_ERROR(parts.add_pack(id, std::move(*entries)));
  }
  // The last part names the old files as superseded, so readers ignore them even before they are gone.
  LB_ASSIGN_OR_RETURN(auto written, parts.finish());
  std::set<std::string> keep(written.begin(), written.end());
  report.index_files_written = written.size();
  for (const auto& name : old_files) {
    if (keep.count(name)) continue;  // content-addressed: a part identical to an old file is that file
    Status s = BackendAccess::of(repo).remove({FileType::kIndex, name});
    if (s) report.index_files_replaced++;
  }
  LB_RETURN_IF_ERROR(repo.reload_index());
  return report;
}

namespace {

// Rebuilds a tree without what is gone. Returns nullopt when the tree itself cannot be loaded.
Result<std::optional<BlobId>> rewrite_tree(Repository& repo, WriteSession* session, const BlobId& id, const std::string& prefix,
                                           std::vector<std::string>& removed, bool& changed) {
  auto tree = repo.load_tree(id);
  if (!tree) return std::optional<BlobId>{};
  Tree out;
  bool any_change = false;
  for (auto& n : tree->nodes) {
    std::string path = prefix + "/" + n.name;
    if (n.subtree) {
      bool sub_changed = false;
      LB_ASSIGN_OR_RETURN(auto sub, rewrite_tree(repo, session, *n.subtree, path, removed, sub_changed));
      if (!sub) {
        removed.push_back(path + "/");
        any_change = true;
        continue;
      }
      if (sub_changed) any_change = true;
      n.subtree = *sub;
    }
    bool lost = false;
    for (const auto& b : n.content)
      if (!repo.index().contains(b) && !repo.tombstoned().contains(b)) lost = true;
    if (lost) {
      removed.push_back(path);
      any_change = true;
      continue;
    }
    out.nodes.push_back(std::move(n));
  }
  changed = any_change;
  if (!any_change) return std::optional<BlobId>{id};
  if (!session) return std::optional<BlobId>{id};  // dry run: what would change is known
  LB_ASSIGN_OR_RETURN(BlobId nid, session->store_tree(out));
  return std::optional<BlobId>{nid};
}

}  // namespace

Result<RepairSnapshotsReport> repair_snapshots(Repository& repo, bool forget_originals, bool dry_run) {
  LB_RETURN_IF_ERROR(repo.require_admin("repair snapshots"));
  LB_RETURN_IF_ERROR(repo.reload_index());
  // Packs that are gone are not data: leave them out before deciding what is lost.
  LB_RETURN_IF_ERROR(repo.drop_missing_packs().status());
  RepairSnapshotsReport report;
  LB_ASSIGN_OR_RETURN(auto names, repo.list_names(FileType::kSnapshot));
  // Rewriting seals with the AEAD key and signs with this key: an untrusted snapshot would come out
  // trusted, so it is left as it is (and said).
  std::set<std::string> untrusted;
  LB_ASSIGN_OR_RETURN(auto listed, repo.list_snapshots(/*include_untrusted=*/true));
  for (const auto& r : listed)
    if (!r.snapshot.untrusted.empty()) untrusted.insert(r.id);
  for (const auto& name : names) {
    if (interrupted()) return Error(Code::kInterrupted, "interrupted");
    if (untrusted.count(name)) {
      Repository::warn(fmt::format("snapshot {} is untrusted: not rewritten", name.substr(0, 8)));
      continue;
    }
    auto ref = repo.load_snapshot(name);
    if (!ref) continue;  // an unreadable snapshot file is check's to report, and cannot be rewritten
    report.snapshots++;
    std::vector<std::string> removed;
    bool changed = false;
    std::optional<WriteSession> session;
    if (!dry_run) session.emplace(repo);
    LB_ASSIGN_OR_RETURN(auto root, rewrite_tree(repo, session ? &*session : nullptr, ref->snapshot.tree, "", removed, changed));
    if (!changed && root) continue;
    RepairSnapshotsReport::Rewritten r{name, "", removed};
    if (!root) r.removed = {"/ (the root tree is gone)"};
    if (!dry_run) {
      if (!root) {
        // Nothing of it is left to keep: only forgetting helps.
        if (forget_originals) LB_RETURN_IF_ERROR(BackendAccess::of(repo).remove({FileType::kSnapshot, name}));
      } else {
        Snapshot snap = ref->snapshot;
        snap.tree = *root;
        snap.parent.reset();
        snap.tags.push_back("repaired");
        snap.summary["repaired_from"] = name;
        snap.summary["repaired_removed"] = removed.size();
        LB_ASSIGN_OR_RETURN(r.repaired, session->commit(snap));
        if (forget_originals) LB_RETURN_IF_ERROR(BackendAccess::of(repo).remove({FileType::kSnapshot, name}));
      }
    }
    report.rewritten.push_back(std::move(r));
  }
  return report;
}

}  // namespace lifeboat::repo
