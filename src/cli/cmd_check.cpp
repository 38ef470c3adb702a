// lifeboat check: verify the repository's structure and, optionally, its data.
#include <fmt/format.h>

#include "cli/context.h"
#include "core/progress.h"
#include "repo/check.h"
#include "repo/lock.h"

namespace lifeboat::cli {

void register_check(CommandSet c) {
  auto* cmd = c.app.add_subcommand("check", "verify the repository");
  auto opts = std::make_shared<repo::CheckOptions>();
  auto subset = std::make_shared<std::string>();
  cmd->add_flag("--read-data", opts->read_data, "read and verify every pack");
  cmd->add_option("--read-data-subset", *subset, "read and verify subset N/T of the packs (e.g. 1/7 on Mondays)");
  auto find_blob = std::make_shared<std::string>();
  cmd->add_option("--find-blob", *find_blob, "list the packs on storage holding blobs with this ID prefix")
      ->group("");  // a diagnostic: hidden from --help
  auto find_action = [c, find_blob] {
    c.action = [c, find_blob]() -> Status {
      LB_ASSIGN_OR_RETURN(auto repo, open_repository(c.global));
      LB_RETURN_IF_ERROR(repo->require_reader("check"));
      return repo->list_pack_files([&](const storage::FileInfo& fi) {
        repo::PackId id;
        if (!repo::parse_id(fi.name, id)) return Status::ok();
        auto entries = repo->load_pack_header(id, fi.size_bytes);
        if (!entries) return Status::ok();
        for (const auto& e : *entries)
          if (repo::to_hex(e.id).rfind(*find_blob, 0) == 0)
            fmt::print("pack {} holds {} blob {}\n", fi.name, repo::blob_type_name(e.type), repo::to_hex(e.id));
        return Status::ok();
      });
    };
  };
  cmd->callback([c, opts, subset, find_blob, find_action] {
    if (!find_blob->empty()) return find_action();
    c.action = [c, opts, subset]() -> Status {
      if (!subset->empty()) {
        unsigned n = 0, t = 0;
        char extra;
        if (sscanf(subset->c_str(), "%u/%u%c", &n, &t, &extra) != 2 || t == 0 || t > 256 || n == 0 || n > t)
          return Error(Code::kInvalidArgument, "--read-data-subset wants N/T with 1 <= N <= T <= 256, e.g. 2/5");
        opts->read_data = true;
        opts->subset_n = n;
        opts->subset_t = t;
      }
      LB_ASSIGN_OR_RETURN(auto repo, open_repository(c.global));
      LB_RETURN_IF_ERROR(repo->require_reader("check"));
      // Exclusive, like restic: a check must not race a writer's half-finished packs into false alarms.
      LB_ASSIGN_OR_RETURN(auto lock, repo::RepoLock::acquire(*repo, repo::LockKind::kExclusive));
      ProgressCounters counters;
      ProgressDisplay display("check", counters, progress_enabled(c.global));
      LB_ASSIGN_OR_RETURN(auto report, repo::check_repository(*repo, *opts, &counters));
      display.stop();
      if (c.global.json) {
        print_json({{"ok", report.ok()},
                    {"errors", report.errors},
                    {"warnings", report.warnings},
                    {"snapshots", report.snapshots},
                    {"trees", report.trees},
                    {"packs", report.packs},
                    {"packs_read", report.packs_read},
                    {"blobs", report.blobs},
                    {"bytes_read", report.bytes_read}});
      } else {
        for (const auto& w : report.warnings) fmt::print(stderr, "warning: {}\n", w);
        for (const auto& e : report.errors) fmt::print(stderr, "error: {}\n", e);
        if (!c.global.quiet)
          fmt::print("checked {} snapshots, {} trees, {} packs ({} read), {} blobs: {}\n", report.snapshots,
                     report.trees, report.packs, report.packs_read, report.blobs,
                     report.ok() ? "no errors" : fmt::format("{} error(s)", report.errors.size()));
      }
      if (!report.ok()) {
        // Which repair fits: index trouble first (it may bring lost blobs back), then snapshots.
        bool index_trouble = false, data_lost = false;
        for (const auto& e : report.errors) {
          if (e.find("index") != std::string::npos) index_trouble = true;
          if (e.find("missing") != std::string::npos || e.find("is gone") != std::string::npos) data_lost = true;
        }
        std::string advice;
        if (index_trouble) advice += " Run `lifeboat repair index` to rebuild the index from the packs that exist.";
        if (data_lost)
          advice += " Snapshots whose data is gone stay unrestorable in part: `lifeboat repair snapshots` rewrites them "
                    "without the lost files (add --forget to drop the originals).";
        if (advice.empty()) advice = " Damaged packs cannot be repaired: back up again, then forget and prune what needs them.";
        return Error(Code::kCorrupt, fmt::format("repository has {} error(s); see above.{}", report.errors.size(), advice));
      }
      return Status::ok();
    };
  });
}

}  // namespace lifeboat::cli
