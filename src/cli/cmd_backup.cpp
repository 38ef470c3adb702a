// lifeboat backup: the files kind's own command (files and directories, or a command's output),
// through its entry like every kind; with a plan, the plan's sources.
#include <fmt/format.h>

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
      if (auto plan = plan_mode(c.global)) return plan_backup(c.global, *plan, command->words());
      return command->action();
    };
  });
}

}  // namespace lifeboat::cli
