// lifeboat diff: what changed between two snapshots.
#include <fmt/format.h>

#include "cli/context.h"
#include "repo/tree_walk.h"

namespace lifeboat::cli {

void register_diff(CommandSet c) {
  auto* cmd = c.app.add_subcommand("diff", "show what changed between two snapshots");
  auto a = std::make_shared<std::string>(), b = std::make_shared<std::string>();
  cmd->add_option("snapshot1", *a, "older snapshot ID")->required();
  cmd->add_option("snapshot2", *b, "newer snapshot ID")->required();
  cmd->callback([c, a, b] {
    c.action = [c, a, b]() -> Status {
      LB_ASSIGN_OR_RETURN(auto repo, open_repository(c.global));
      LB_RETURN_IF_ERROR(repo->require_reader("diff"));
      SnapshotPick none;
      LB_ASSIGN_OR_RETURN(auto ra, pick_snapshot(*repo, *a, none));
      LB_ASSIGN_OR_RETURN(auto rb, pick_snapshot(*repo, *b, none));
      std::map<char, uint64_t> counts;
      nlohmann::json changes = nlohmann::json::array();
      LB_RETURN_IF_ERROR(repo::diff_trees(*repo, ra.snapshot.tree, rb.snapshot.tree, [&](const repo::DiffEntry& e) {
        counts[static_cast<char>(e.change)]++;
        std::string path = "/" + e.path + (e.kind == repo::NodeKind::kDir ? "/" : "");
        if (c.global.json) changes.push_back({{"change", std::string(1, static_cast<char>(e.change))}, {"path", path}});
        else if (!c.global.quiet) fmt::print("{}    {}\n", static_cast<char>(e.change), path);
      }));
      if (c.global.json) {
        print_json({{"from", ra.id}, {"to", rb.id}, {"changes", changes},
                    {"added", counts['+']}, {"removed", counts['-']}, {"modified", counts['M']},
                    {"type_changed", counts['T']}, {"metadata_changed", counts['U']}});
      } else if (!c.global.quiet) {
        fmt::print("\n{} added, {} removed, {} modified, {} type changed, {} metadata changed\n", counts['+'],
                   counts['-'], counts['M'], counts['T'], counts['U']);
      }
      return Status::ok();
    };
  });
}

}  // namespace lifeboat::cli
