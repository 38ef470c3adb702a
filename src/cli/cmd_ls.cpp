// lifeboat ls: list the files in a snapshot.
#include <fmt/format.h>

#include "cli/context.h"
#include "core/time.h"
#include "repo/tree_walk.h"

namespace lifeboat::cli {

static std::string mode_string(const repo::Node& n) {
  char type = n.kind == repo::NodeKind::kDir ? 'd' : n.kind == repo::NodeKind::kSymlink ? 'l'
            : n.kind == repo::NodeKind::kFifo ? 'p' : n.kind == repo::NodeKind::kCharDev ? 'c'
            : n.kind == repo::NodeKind::kBlockDev ? 'b' : n.kind == repo::NodeKind::kSocket ? 's' : '-';
  std::string s(1, type);
  const char* rwx = "rwxrwxrwx";
  for (int i = 0; i < 9; ++i) s += (n.mode & (1u << (8 - i))) ? rwx[i] : '-';
  return s;
}

void register_ls(CommandSet c) {
  auto* cmd = c.app.add_subcommand("ls", "list files in a snapshot");
  auto spec = std::make_shared<std::string>("latest");
  auto pick = std::make_shared<SnapshotPick>();
  auto long_format = std::make_shared<bool>(false);
  cmd->add_option("snapshot", *spec, "snapshot ID or 'latest'")->capture_default_str();
  cmd->add_flag("-l,--long", *long_format, "show mode, owner, size and time");
  pick->add_flags(cmd);
  cmd->callback([c, spec, pick, long_format] {
    c.action = [c, spec, pick, long_format]() -> Status {
      LB_ASSIGN_OR_RETURN(auto repo, open_repository(c.global));
      LB_RETURN_IF_ERROR(repo->require_reader("ls"));
      LB_ASSIGN_OR_RETURN(auto ref, pick_snapshot(*repo, *spec, *pick));
      if (c.global.json) print_json({{"snapshot", snapshot_json(ref)}});
      return repo::walk_tree(*repo, ref.snapshot.tree, [&](const std::string& path, const repo::Node& n) {
        std::string abs = "/" + path;
        if (c.global.json) {
          nlohmann::json j = {{"path", abs},    {"type", repo::node_kind_name(n.kind)}, {"mode", n.mode},
                              {"uid", n.uid},   {"gid", n.gid},   {"user", n.user},   {"group", n.group},
                              {"size", n.size}, {"mtime", format_rfc3339(n.mtime_ns)}, {"inode", n.inode},
                              {"links", n.links}};
          if (n.kind == repo::NodeKind::kSymlink) j["link_target"] = n.link_target;
          print_json(j);
        } else if (*long_format) {
          fmt::print("{} {:>8} {:>8} {:>12} {}  {}{}\n", mode_string(n), n.user.empty() ? std::to_string(n.uid) : n.user,
                     n.group.empty() ? std::to_string(n.gid) : n.group, n.size, format_local(n.mtime_ns), abs,
                     n.kind == repo::NodeKind::kSymlink ? " -> " + n.link_target : "");
        } else {
          fmt::print("{}\n", abs);
        }
        return Status::ok();
      });
    };
  });
}

}  // namespace lifeboat::cli
