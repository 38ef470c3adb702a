// lifeboat stats: logical size of snapshots and what the repository stores for them.
#include <fmt/format.h>

#include "cli/context.h"
#include "core/time.h"
#include "repo/tree_walk.h"

namespace lifeboat::cli {

void register_stats(CommandSet c) {
  auto* cmd = c.app.add_subcommand("stats", "sizes: restored size of snapshots, unique data, stored bytes");
  auto specs = std::make_shared<std::vector<std::string>>();
  auto pick = std::make_shared<SnapshotPick>();
  cmd->add_option("snapshots", *specs, "snapshot IDs (default: all matching the filters)");
  pick->add_flags(cmd);
  cmd->callback([c, specs, pick] {
    c.action = [c, specs, pick]() -> Status {
      LB_ASSIGN_OR_RETURN(auto repo, open_repository(c.global));
      LB_RETURN_IF_ERROR(repo->require_reader("stats"));
      LB_RETURN_IF_ERROR(repo->load_index());
      LB_ASSIGN_OR_RETURN(auto all, repo->list_snapshots());
      LB_ASSIGN_OR_RETURN(auto at, pick->at_ns());
      std::vector<repo::SnapshotRef> chosen;
      if (!specs->empty()) {
        for (const auto& s : *specs) {
          LB_ASSIGN_OR_RETURN(auto r, repo::select_snapshot(all, s, at, pick->filter));
          chosen.push_back(r);
        }
      } else if (at) {
        LB_ASSIGN_OR_RETURN(auto r, repo::select_snapshot(all, "latest", at, pick->filter));
        chosen.push_back(r);
      } else {
        chosen = repo::filter_snapshots(all, pick->filter);
      }
      uint64_t files = 0, restore_bytes = 0;
      std::vector<repo::BlobId> roots;
      for (const auto& ref : chosen) {
        roots.push_back(ref.snapshot.tree);
        LB_RETURN_IF_ERROR(repo::walk_tree(*repo, ref.snapshot.tree, [&](const std::string&, const repo::Node& n) {
          if (n.kind == repo::NodeKind::kFile) {
            files++;
            restore_bytes += n.size;
          }
          return Status::ok();
        }));
      }
      // Unique data (the files' content, for the dedup ratio) and what storing it costs: every blob,
      // data and trees, once — the same figure `report` and `metrics` give a source as its stored bytes.
      LB_ASSIGN_OR_RETURN(auto size, repo::referenced_size(*repo, roots));
      uint64_t unique_raw = size.data_raw_bytes, unique_stored = size.stored_bytes;
      uint64_t repo_bytes = 0, packs = 0;
      LB_RETURN_IF_ERROR(repo->list_pack_files([&](const storage::FileInfo& fi) {
        repo_bytes += fi.size_bytes;
        packs++;
        return Status::ok();
      }));
      double dedup = unique_raw ? static_cast<double>(restore_bytes) / static_cast<double>(unique_raw) : 0;
      double compression = size.data_stored_bytes ? static_cast<double>(size.data_raw_bytes) / static_cast<double>(size.data_stored_bytes) : 0;
      if (c.global.json) {
        print_json({{"snapshots", chosen.size()},        {"files", files},
                    {"restore_size_bytes", restore_bytes}, {"unique_blobs", size.blobs},
                    {"unique_raw_bytes", unique_raw},      {"unique_stored_bytes", unique_stored},
                    {"dedup_ratio", dedup},                {"compression_ratio", compression},
                    {"repository_pack_bytes", repo_bytes}, {"packs", packs},
                    {"index_blobs", repo->index().blob_count()}});
        return Status::ok();
      }
      fmt::print("Snapshots:            {}\n", chosen.size());
      fmt::print("Files:                {}\n", files);
      fmt::print("Restore size:         {}\n", format_bytes(restore_bytes));
      fmt::print("Unique data:          {} in {} blobs (dedup {:.2f}x)\n", format_bytes(unique_raw), size.blobs, dedup);
      fmt::print("Stored for it:        {} with its trees (compression of the data {:.2f}x)\n", format_bytes(unique_stored), compression);
      fmt::print("Repository packs:     {} in {} packs\n", format_bytes(repo_bytes), packs);
      return Status::ok();
    };
  });
}

}  // namespace lifeboat::cli
