// lifeboat snapshots: list snapshots, oldest first.
#include <fmt/format.h>

#include "cli/context.h"
#include "core/time.h"

namespace lifeboat::cli {

namespace {

std::string pin_text(const std::map<std::string, repo::Repository::Pin>& pins, const std::string& id) {
  auto it = pins.find(id);
  if (it == pins.end()) return "";
  return it->second.note.empty() ? "  (pinned)" : fmt::format("  (pinned: {})", it->second.note);
}

}  // namespace

void register_snapshots(CommandSet c) {
  auto* cmd = c.app.add_subcommand("snapshots", "list snapshots");
  auto pick = std::make_shared<SnapshotPick>();
  pick->add_flags(cmd, false);
  auto untrusted = std::make_shared<bool>(false);
  cmd->add_flag("--untrusted", *untrusted,
                "also list snapshots that are not trusted (a forged or altered signature, a removed key, another host "
                "than its key's, dated before its key), each with why");
  cmd->callback([c, pick, untrusted] {
    c.action = [c, pick, untrusted]() -> Status {
      LB_ASSIGN_OR_RETURN(auto repo, open_repository(c.global));
      LB_ASSIGN_OR_RETURN(auto all, repo->list_snapshots(*untrusted));
      auto list = repo::filter_snapshots(all, pick->filter);
      std::map<std::string, repo::Repository::Pin> pins;
      if (repo->append_only()) {
        if (!c.global.quiet)
          fmt::print(stderr, "lifeboat: this is an append key: it lists only the snapshots it wrote from this host (its "
                             "cache at {}), and reads no other\n", repo->writer_cache()->dir());
      } else {
        LB_ASSIGN_OR_RETURN(pins, repo->pins());
      }
      if (c.global.json) {
        nlohmann::json arr = nlohmann::json::array();
        for (const auto& r : list) {
          arr.push_back(snapshot_json(r));
          auto pin = pins.find(r.id);
          arr.back()["pinned"] = pin != pins.end();
          if (pin != pins.end()) {
            arr.back()["pin_note"] = pin->second.note;
            arr.back()["pinned_at"] = pin->second.pinned;
          }
        }
        print_json(arr);
        return Status::ok();
      }
      fmt::print("{:<8}  {:<19}  {:<12}  {:<13}  {:<8}  {:<16}  {}\n", "ID", "Time", "Host", "Source", "Writer", "Tags",
                 "Paths");
      fmt::print("{}\n", std::string(100, '-'));
      for (const auto& r : list) {
        const auto& s = r.snapshot;
        fmt::print("{:<8}  {:<19}  {:<12}  {:<13}  {:<8}  {:<16}  {}\n", r.short_id(), format_local(s.time_ns), s.hostname,
                   s.source, s.writer_key.empty() ? "-" : s.writer_key.substr(0, 8), fmt::format("{}", fmt::join(s.tags, ",")),
                   fmt::format("{}{}", fmt::join(s.paths, " "), pin_text(pins, r.id)));
        if (!s.untrusted.empty()) fmt::print("          UNTRUSTED: {}\n", s.untrusted);
      }
      fmt::print("{} snapshot(s)\n", list.size());
      return Status::ok();
    };
  });
}

}  // namespace lifeboat::cli
