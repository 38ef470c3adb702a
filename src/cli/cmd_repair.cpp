// lifeboat repair index | snapshots: recover a damaged repository (docs/cli.md, "repair").
#include <fmt/format.h>

#include "cli/context.h"
#include "repo/lock.h"
#include "repo/repair.h"

namespace lifeboat::cli {

void register_repair(CommandSet c) {
  auto* group = c.app.add_subcommand("repair", "rebuild the index from the packs, or rewrite snapshots without lost data");
  group->require_subcommand(1);
  auto* index = group->add_subcommand("index", "rebuild the index from the pack headers in storage");
  index->callback([c] {
    c.action = [c]() -> Status {
      LB_ASSIGN_OR_RETURN(auto repo, open_repository(c.global));
      LB_RETURN_IF_ERROR(repo->require_admin("repair"));
      LB_ASSIGN_OR_RETURN(auto lock, repo::RepoLock::acquire(*repo, repo::LockKind::kExclusive));
      LB_ASSIGN_OR_RETURN(auto r, repo::repair_index(*repo));
      if (c.global.json) {
        print_json({{"packs", r.packs}, {"blobs", r.blobs}, {"index_files_replaced", r.index_files_replaced},
                    {"index_files_written", r.index_files_written}, {"unreadable_packs", r.unreadable_packs}});
      } else {
        for (const auto& u : r.unreadable_packs) fmt::print(stderr, "warning: pack {} left out\n", u);
        if (!c.global.quiet)
          fmt::print("index rebuilt from {} packs ({} blobs) into {} file(s); {} old index file(s) replaced\n", r.packs, r.blobs,
                     r.index_files_written, r.index_files_replaced);
      }
      return Status::ok();
    };
  });
  auto* snaps = group->add_subcommand("snapshots", "rewrite snapshots that need data no pack holds, without those files");
  auto forget = std::make_shared<bool>(false);
  auto dry = std::make_shared<bool>(false);
  snaps->add_flag("--forget", *forget, "remove the damaged originals once their repaired copies are saved");
  snaps->add_flag("--dry-run", *dry, "only list what would be rewritten");
  snaps->callback([c, forget, dry] {
    c.action = [c, forget, dry]() -> Status {
      LB_ASSIGN_OR_RETURN(auto repo, open_repository(c.global));
      LB_RETURN_IF_ERROR(repo->require_admin("repair"));
      LB_ASSIGN_OR_RETURN(auto lock, repo::RepoLock::acquire(*repo, repo::LockKind::kExclusive));
      LB_ASSIGN_OR_RETURN(auto r, repo::repair_snapshots(*repo, *forget, *dry));
      if (c.global.json) {
        nlohmann::json list = nlohmann::json::array();
        for (const auto& w : r.rewritten)
          list.push_back({{"original", w.original}, {"repaired", w.repaired}, {"removed", w.removed}});
        print_json({{"snapshots", r.snapshots}, {"rewritten", list}, {"dry_run", *dry}, {"forgot_originals", *forget && !*dry}});
      } else if (!c.global.quiet) {
        for (const auto& w : r.rewritten) {
          fmt::print("snapshot {}: {} {} path(s) whose data is gone{}\n", w.original.substr(0, 8),
                     *dry ? "would drop" : "dropped", w.removed.size(),
                     w.repaired.empty() ? "" : fmt::format(", saved as {} (tag: repaired)", w.repaired.substr(0, 8)));
          for (const auto& p : w.removed) fmt::print("  {}\n", p);
        }
        fmt::print("{} snapshot(s) checked, {} {}\n", r.snapshots, r.rewritten.size(),
                   *dry ? "would be rewritten" : *forget ? "rewritten (originals forgotten)" : "rewritten (originals kept)");
      }
      return Status::ok();
    };
  });
}

}  // namespace lifeboat::cli
