// lifeboat backup: the files kind's own command (files and directories, or a command's output),
// through its entry like every kind; with a plan, the plan's sources (or paths, into its repository).
#include <fmt/format.h>

#include <filesystem>

#include "cli/context.h"
#include "sources/registry.h"

namespace lifeboat::cli {

void register_backup(CommandSet c) {
  auto* cmd = c.app.add_subcommand("backup", "back up files and directories (or a command's output)");
  const auto* files = sources::find_source_kind("files");
  auto command = std::make_shared<KindBackupCommand>(add_kind_backup(c, cmd, *files));
  cmd->callback([c, cmd, command] {
    if (!cmd->get_subcommands().empty()) return;  // `backup mongodb …` set its own action
    c.action = [c, command]() -> Status {
      if (auto plan = plan_mode(c.global)) {
        // With a plan, words name its sources; paths (none of them a source's name) are backed up as
        // the files kind does, into the plan's repository (-r NAME when it has several).
        auto words = command->words();
        LB_ASSIGN_OR_RETURN(auto p, plan::load_plan(*plan));
        bool paths = !words.empty();
        for (const auto& w : words) {
          std::error_code ec;
          if (p.source(w) || (w.find('/') == std::string::npos && !std::filesystem::exists(w, ec))) paths = false;
        }
        if (!paths) return plan_backup(c.global, *plan, words);
      }
      return command->action();
    };
  });
}

}  // namespace lifeboat::cli
