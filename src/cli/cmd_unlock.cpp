// lifeboat unlock: remove stale locks (or all, with --remove-all).
#include <fmt/format.h>

#include "cli/context.h"
#include "repo/lock.h"

namespace lifeboat::cli {

void register_unlock(CommandSet c) {
  auto* cmd = c.app.add_subcommand("unlock", "remove locks left by processes that are gone");
  auto all = std::make_shared<bool>(false);
  cmd->add_flag("--remove-all", *all, "remove every lock, even live ones (only when you are sure)");
  cmd->callback([c, all] {
    c.action = [c, all]() -> Status {
      LB_ASSIGN_OR_RETURN(auto repo, open_repository(c.global));
      LB_ASSIGN_OR_RETURN(int n, repo::RepoLock::remove_locks(*repo, *all));
      if (c.global.json) print_json({{"removed", n}});
      else if (!c.global.quiet) fmt::print("removed {} lock(s)\n", n);
      return Status::ok();
    };
  });
}

}  // namespace lifeboat::cli
