// Plan backups: the kind's backup, then retention, verification and copies to second regions.
#include <fmt/format.h>

#include <map>
#include <set>

#include "core/time.h"
#include "ops/plan_ops.h"
#include "repo/copy.h"
#include "repo/lock.h"
#include "repo/retention.h"
#include "repo/tree_walk.h"
#include "storage/backend.h"

namespace lifeboat::ops {

namespace {

repo::RetentionPolicy policy_of(const plan::RetentionSpec& r) {
  repo::RetentionPolicy p;
  p.keep_last = r.last;
  p.keep_hourly = r.hourly;
  p.keep_daily = r.daily;
  p.keep_weekly = r.weekly;
  p.keep_monthly = r.monthly;
  p.keep_yearly = r.yearly;
  if (!r.within.empty())
    if (auto d = parse_duration(r.within)) p.keep_within_ns = *d;
  return p;
}

}  // namespace

Result<nlohmann::json> verify_snapshot(repo::Repository& repo, const std::string& id, double sample) {
  LB_RETURN_IF_ERROR(repo.reload_index());
  std::map<std::string, uint64_t> pack_sizes;
  LB_RETURN_IF_ERROR(repo.list_pack_files([&](const storage::FileInfo& fi) {
    pack_sizes[fi.name] = fi.size_bytes;
    return Status::ok();
  }));
  LB_ASSIGN_OR_RETURN(auto ref, repo.load_snapshot(id));
  uint64_t nodes = 0, blobs = 0, bytes_read = 0;
  std::set<std::string> packs, read_back;
  bool dropped_missing = false;
  auto locate = [&](const repo::BlobId& b) {
    auto loc = repo.index().find(b);
    return loc ? loc : repo.tombstoned().find(b);
  };
  auto check_blob = [&](const std::string& path, const repo::BlobId& b) -> Status {
    auto loc = locate(b);
    if (!loc) return Error(Code::kCorrupt, fmt::format("{}: blob {} is in no index", path, repo::short_hex(b)));
    std::string pack = repo::to_hex(loc->pack);
    auto it = pack_sizes.find(pack);
    if (it == pack_sizes.end() && !dropped_missing) {
      // The index files may name the blob in a pack that is gone and in the one this backup stored it
      // in again (the backup found the first missing): the copy that exists counts.
      LB_RETURN_IF_ERROR(repo.drop_missing_packs().status());
      dropped_missing = true;
    }
    if (it == pack_sizes.end()) {
      auto again = locate(b);
      if (again) it = pack_sizes.find(repo::to_hex(again->pack));
      if (!again || it == pack_sizes.end())
        return Error(Code::kCorrupt, fmt::format("{}: pack {} holding blob {} is missing from storage (run `lifeboat check`)",
                                                 path, pack.substr(0, 8), repo::short_hex(b)));
      loc = again;
      pack = it->first;
    }
    if (it->second < static_cast<uint64_t>(loc->offset) + loc->stored_len)
      return Error(Code::kCorrupt, fmt::format("{}: pack {} is {} bytes, too short for blob {} (run `lifeboat check`)", path,
                                               pack.substr(0, 8), it->second, repo::short_hex(b)));
    packs.insert(pack);
    ++blobs;
    // A share of the blobs, chosen by their IDs (so a blob shared by many files is read once), read
    // back from storage: decrypted, decompressed and hashed against its ID (read_blob does all three).
    uint32_t pick = (uint32_t{b[0]} << 8) | b[1];
    if (sample > 0 && pick < sample * 65536.0 && read_back.insert(repo::to_hex(b)).second) {
      auto data = repo.read_blob(b);
      if (!data) return data.status().with_context(fmt::format("{}: reading blob {} back from pack {}", path, repo::short_hex(b), pack.substr(0, 8)));
      bytes_read += data->size();
    }
    return Status::ok();
  };
  LB_RETURN_IF_ERROR(check_blob("/", ref.snapshot.tree));
  Status s = repo::walk_tree(repo, ref.snapshot.tree, [&](const std::string& path, const repo::Node& n) -> Status {
    ++nodes;
    if (n.subtree) LB_RETURN_IF_ERROR(check_blob(path, *n.subtree));
    for (const auto& b : n.content) LB_RETURN_IF_ERROR(check_blob(path, b));
    return Status::ok();
  });
  LB_RETURN_IF_ERROR(s);
  return nlohmann::json{{"nodes", nodes},          {"blobs", blobs},       {"packs", packs.size()},
                        {"blobs_read", read_back.size()}, {"bytes_read", bytes_read}, {"sample", sample}};
}

namespace {

// Copies (second regions): every snapshot of the source the copy lacks, dependents such as oplog
// slices included (they carry the source tag), so a point-in-time restore works from the copy too. A
// copy repository that does not exist yet is created sharing the primary's keys, so blobs travel sealed.
Result<nlohmann::json> copy_to_regions(RepositorySet& repos, const plan::SourceSpec& s, repo::Repository& primary) {
  const plan::Plan& plan = repos.plan();
  nlohmann::json out = nlohmann::json::array();
  for (const auto& r : plan.repositories) {
    if (r.copy_of != s.repository) continue;
    auto dst = repos.acquire(r.name);
    if (!dst && dst.status().code() == Code::kRepoMissing) {
      LB_ASSIGN_OR_RETURN(auto backend, storage::open_backend(r.url));
      LB_ASSIGN_OR_RETURN(std::string password, repository_password(r));
      LB_RETURN_IF_ERROR(primary.require_admin("creating copy repository " + r.name));
      repo::InitOptions o;
      o.master = primary.master_key();
      o.chunker = primary.config().chunker;
      o.pack_size_bytes = primary.config().pack_size_bytes;
      if (!r.object_lock.empty()) {
        LB_ASSIGN_OR_RETURN(o.object_lock_ns, parse_duration(r.object_lock));
      }
      auto created = repo::Repository::init(std::move(backend), password, o);
      if (!created) return created.status().with_context("creating copy repository " + r.name);
      dst = repos.adopt(r.name, std::move(*created));
    }
    if (!dst) return dst.status();
    repo::Repository& copy = dst->get();
    LB_ASSIGN_OR_RETURN(auto lock, repo::RepoLock::acquire(copy, repo::LockKind::kShared));
    LB_ASSIGN_OR_RETURN(auto all, primary.list_snapshots());
    auto rep = repo::copy_snapshots(primary, copy, snapshots_of(all, s.name), true);
    if (!rep) return rep.status().with_context("copy to " + r.name);
    out.push_back({{"repository", r.name}, {"snapshots_copied", rep->snapshots_copied}, {"bytes_sent", rep->bytes_sent},
                   {"mode", rep->same_keys ? "sealed" : "re-encrypted"}, {"blobs_verified", rep->blobs_verified}});
  }
  return out;
}


// The kind's housekeeping of its dependents (MongoDB: slice compaction and the point-in-time window,
// by default as long as the plan keeps daily backups); null when the kind has none.
Result<nlohmann::json> tidy_dependents(repo::Repository& repo, const plan::SourceSpec& s,
                                       const std::set<std::string>& pinned) {
  if (!s.entry || !s.entry->tidy || !s.parsed) return nlohmann::json();
  int64_t window = 0;
  if (s.retention.daily > 0) window = int64_t{s.retention.daily} * 86400LL * 1000000000;
  else if (!s.retention.within.empty())
    if (auto d = parse_duration(s.retention.within)) window = *d;
  return s.entry->tidy(repo, s.name, *s.parsed, window, pinned);
}

// The plan's policy over the source's snapshots. Keep-forever sources are pinned instead. A kind's
// dependent snapshots (oplog slices) are not judged by the policy: each goes with its base.
Result<nlohmann::json> judge_snapshots(repo::Repository& repo, const plan::SourceSpec& s, const std::set<std::string>& pinned) {
  if (s.retention.forever) {  // every snapshot of the source not pinned yet (a backup may make several)
    LB_ASSIGN_OR_RETURN(auto all, repo.list_snapshots());
    nlohmann::json ids = nlohmann::json::array();
    for (const auto& x : snapshots_of(all, s.name)) {
      if (pinned.count(x.id)) continue;
      LB_RETURN_IF_ERROR(repo.pin(x.id, "plan: " + s.name + " is kept forever"));
      ids.push_back(x.id);
    }
    return nlohmann::json{{"pinned", ids}};
  }
  auto policy = policy_of(s.retention);
  if (policy.empty()) return nlohmann::json{{"policy", "none"}};
  LB_ASSIGN_OR_RETURN(auto all, repo.list_snapshots());
  std::vector<repo::SnapshotRef> bases, dependents;
  for (auto& x : snapshots_of(all, s.name)) {
    if (s.entry && s.entry->is_dependent && s.entry->is_dependent(x.snapshot)) dependents.push_back(std::move(x));
    else bases.push_back(std::move(x));
  }
  std::vector<repo::RetentionDecision> decisions;
  if (s.entry && s.entry->retention_group) {
    std::map<std::string, std::vector<repo::SnapshotRef>> groups;
    for (auto& b : bases) groups[s.entry->retention_group(b.snapshot)].push_back(b);
    for (auto& [key, group] : groups)
      for (auto& d : repo::apply_retention(group, policy, pinned)) decisions.push_back(std::move(d));
  } else {
    decisions = repo::apply_retention(bases, policy, pinned);
  }
  std::set<std::string> kept;
  for (const auto& d : decisions)
    if (d.keep) kept.insert(d.ref.id);
  for (const auto& dep : dependents) {
    repo::RetentionDecision d{dep, true, {}};
    auto base = s.entry->base_of ? s.entry->base_of(dep, bases) : std::nullopt;
    if (pinned.count(dep.id)) {
      d.reasons = {"pinned"};
    } else if (!base) {
      d.reasons = {"extends no backup that is still there: kept until one is judged"};
    } else if (kept.count(*base)) {
      d.reasons = {fmt::format("extends backup {}, which is kept", base->substr(0, 8))};
    } else {
      d.keep = false;
      d.reasons = {fmt::format("extends backup {}, which is forgotten", base->substr(0, 8))};
    }
    decisions.push_back(std::move(d));
  }
  uint64_t removed = 0, removed_dependents = 0, kept_locked = 0;
  nlohmann::json explain = nlohmann::json::array();
  for (const auto& d : decisions) {
    bool dependent = s.entry && s.entry->is_dependent && s.entry->is_dependent(d.ref.snapshot);
    explain.push_back({{"snapshot", d.ref.short_id()}, {"time", format_rfc3339(d.ref.snapshot.time_ns)}, {"keep", d.keep},
                       {"dependent", dependent}, {"reasons", d.reasons}});
    if (d.keep) continue;
    LB_ASSIGN_OR_RETURN(int64_t locked, repo.forget_snapshot(d.ref.id));
    if (locked) {
      ++kept_locked;
      continue;
    }
    ++(dependent ? removed_dependents : removed);
  }
  return nlohmann::json{{"policy", policy.describe()},      {"forgotten", removed}, {"dependents_forgotten", removed_dependents},
                        {"kept_by_object_lock", kept_locked}, {"explain", explain}};
}

}  // namespace

Result<nlohmann::json> refresh_copies(RepositorySet& repos, const plan::SourceSpec& s) {
  if (repos.plan().copies_of(s.repository).empty()) return nlohmann::json::array();
  LB_ASSIGN_OR_RETURN(auto repo, repos.acquire(s.repository));
  LB_ASSIGN_OR_RETURN(auto lock, repo::RepoLock::acquire(*repo, repo::LockKind::kShared));
  LB_RETURN_IF_ERROR(repo->reload_index());  // a follower's handle may have written since
  return copy_to_regions(repos, s, *repo);
}

// Retention for one source: its tagged snapshots only; the kind tidies its dependents first.
Result<nlohmann::json> apply_source_retention(repo::Repository& repo, const plan::SourceSpec& s) {
  LB_ASSIGN_OR_RETURN(auto pinned, repo.pinned());
  LB_ASSIGN_OR_RETURN(auto tidied, tidy_dependents(repo, s, pinned));
  LB_ASSIGN_OR_RETURN(auto out, judge_snapshots(repo, s, pinned));
  if (!tidied.is_null()) out["tidy"] = tidied;
  return out;
}

std::vector<SourceOutcome> run_backups(RepositorySet& repos, const std::vector<const plan::SourceSpec*>& list) {
  std::vector<SourceOutcome> out;
  for (const auto* s : list) {
    out.push_back(timed_outcome(*s, [&](SourceOutcome& o) -> Status {
      if (!s->entry || !s->parsed) return Error(Code::kInvalidArgument, fmt::format("source kind {} cannot back up", s->kind));
      LB_ASSIGN_OR_RETURN(auto repo, repos.acquire(s->repository));
      LB_ASSIGN_OR_RETURN(auto lock, repo::RepoLock::acquire(*repo, repo::LockKind::kShared));
      ProgressCounters progress;
      sources::SourceContext ctx{*repo, s->name, progress};
      LB_ASSIGN_OR_RETURN(auto b, s->entry->backup(ctx, *s->parsed));
      LB_RETURN_IF_ERROR(b.report.status);  // saved, but the kind's own checks of it failed
      o.result = {{"snapshot", b.snapshot_id}, {"summary", b.summary}, {"warnings", b.warnings}};
      if (!b.more_snapshots.empty()) o.result["more_snapshots"] = b.more_snapshots;
      if (repo->append_only()) {
        // Said in the result and as warnings, never skipped silently: the admin side does these.
        static const char* kSkipped[][2] = {
            {"verified", "not read back: an append key cannot decrypt what it stored (`lifeboat check --read-data` "
                         "with a restore or admin key verifies it)"},
            {"retention", "not applied: an append key forgets nothing (an admin key's `lifeboat maintenance` does)"},
            {"copies", "not made: an append key cannot read what it would copy (an admin key's `lifeboat copy` or "
                       "maintenance does)"}};
        for (const auto& [field, why] : kSkipped) {
          o.result[field] = {{"skipped", why}};
          if (std::string(field) != "copies" || !repos.plan().copies_of(s->repository).empty())
            o.result["warnings"].push_back(fmt::format("{} {}", field, why));
        }
        return Status::ok();
      }
      if (!b.snapshot_id.empty()) {
        LB_ASSIGN_OR_RETURN(o.result["verified"], verify_snapshot(*repo, b.snapshot_id, s->verify_sample));
      }
      for (const auto& id : b.more_snapshots) LB_RETURN_IF_ERROR(verify_snapshot(*repo, id, s->verify_sample).status());
      LB_ASSIGN_OR_RETURN(o.result["retention"], apply_source_retention(*repo, *s));
      LB_ASSIGN_OR_RETURN(o.result["copies"], copy_to_regions(repos, *s, *repo));
      return Status::ok();
    }));
  }
  return out;
}

}  // namespace lifeboat::ops
