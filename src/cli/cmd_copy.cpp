// lifeboat copy: snapshots to a second repository (another bucket or region).
#include <fmt/format.h>

#include "cli/context.h"
#include "core/time.h"
#include "repo/copy.h"
#include "repo/lock.h"

namespace lifeboat::cli {

namespace {
struct CopyFlags {
  std::string to, to_password_file;
  std::vector<std::string> snapshots;
  SnapshotPick pick;
  bool no_verify = false;
};
}  // namespace

void register_copy(CommandSet c) {
  auto* cmd = c.app.add_subcommand("copy", "copy snapshots to another repository, sending only what it lacks");
  auto f = std::make_shared<CopyFlags>();
  cmd->add_option("--to", f->to, "destination repository (path, s3:…, gs:…)")->required();
  cmd->add_option("--to-password-file", f->to_password_file, "its password (or LIFEBOAT_TO_PASSWORD; default: the same)");
  cmd->add_option("snapshots", f->snapshots, "snapshot IDs (default: every snapshot matching the filters)");
  cmd->add_flag("--no-verify", f->no_verify, "skip reading the copied data back from the destination");
  f->pick.add_flags(cmd, false);
  cmd->callback([c, f] {
    c.action = [c, f]() -> Status {
      LB_ASSIGN_OR_RETURN(auto src, open_repository(c.global));
      LB_RETURN_IF_ERROR(src->require_reader("copy"));
      LB_ASSIGN_OR_RETURN(auto dst, open_other_repository(c.global, f->to, f->to_password_file, "LIFEBOAT_TO_PASSWORD"));
      LB_ASSIGN_OR_RETURN(auto src_lock, repo::RepoLock::acquire(*src, repo::LockKind::kShared));
      LB_ASSIGN_OR_RETURN(auto dst_lock, repo::RepoLock::acquire(*dst, repo::LockKind::kShared));
      LB_ASSIGN_OR_RETURN(auto all, src->list_snapshots());
      std::vector<repo::SnapshotRef> chosen;
      if (f->snapshots.empty()) {
        for (const auto& r : all)
          if (f->pick.filter.matches(r.snapshot)) chosen.push_back(r);
      } else {
        for (const auto& s : f->snapshots) {
          LB_ASSIGN_OR_RETURN(auto r, repo::select_snapshot(all, s, std::nullopt, f->pick.filter));
          chosen.push_back(r);
        }
      }
      int64_t start = monotonic_ns();
      auto r = repo::copy_snapshots(*src, *dst, chosen, !f->no_verify);
      for (const auto& w : src->index_warnings()) fmt::print(stderr, "warning: {}\n", w);
      if (!r) return r.status();
      int64_t ms = (monotonic_ns() - start) / 1000000;
      if (c.global.json) {
        nlohmann::json copied = nlohmann::json::array();
        for (const auto& [from, to] : r->copied) copied.push_back({{"source", from}, {"destination", to}});
        print_json({{"destination", dst->location()}, {"mode", r->same_keys ? "sealed" : "re-encrypted"},
                    {"snapshots_copied", r->snapshots_copied}, {"snapshots_present", r->snapshots_present},
                    {"pins_copied", r->pins_copied},
                    {"blobs_copied", r->blobs_copied}, {"blobs_present", r->blobs_present},
                    {"bytes_sent", r->bytes_sent}, {"blobs_verified", r->blobs_verified},
                    {"copied", copied}, {"duration_ms", ms}});
      } else if (!c.global.quiet) {
        for (const auto& [from, to] : r->copied) fmt::print("copied {} -> {}\n", from.substr(0, 8), to.substr(0, 8));
        fmt::print("{} snapshot(s) copied ({} already there) to {} in {}: {} blobs sent ({}, {}), {} already there\n",
                   r->snapshots_copied, r->snapshots_present, dst->location(), format_duration_ms(ms),
                   r->blobs_copied, format_bytes(r->bytes_sent), r->same_keys ? "sealed, not decrypted" : "re-encrypted",
                   r->blobs_present);
        if (!f->no_verify) fmt::print("verified: {} blobs read back and authenticated in the destination\n", r->blobs_verified);
        if (r->pins_copied) fmt::print("{} pin(s) carried over with their notes\n", r->pins_copied);
      }
      return Status::ok();
    };
  });
}

}  // namespace lifeboat::cli
