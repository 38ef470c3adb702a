// Lock files (docs/format.md, "Locks").
#include "repo/lock.h"

#include <fmt/format.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <set>
#include <nlohmann/json.hpp>

#include "core/json_int.h"
#include "core/platform_user.h"
#include "core/time.h"
#include "repo/backend_access.h"

namespace lifeboat::repo {

const char* lock_kind_name(LockKind k) {
  switch (k) {
    case LockKind::kShared: return "shared";
    case LockKind::kMaintenance: return "maintenance";
    case LockKind::kExclusive: return "exclusive";
    case LockKind::kLease: return "lease";
  }
  return "?";
}

namespace {

LockKind kind_from_name(const std::string& s) {
  if (s == "exclusive") return LockKind::kExclusive;
  if (s == "maintenance") return LockKind::kMaintenance;
  if (s == "lease") return LockKind::kLease;
  return LockKind::kShared;
}

bool conflicts(LockKind a, LockKind b) {
  if (a == LockKind::kLease || b == LockKind::kLease) return false;  // only its lease conflicts
  if (a == LockKind::kExclusive || b == LockKind::kExclusive) return true;
  return a == LockKind::kMaintenance && b == LockKind::kMaintenance;
}

bool is_stale(const LockInfo& l, int64_t now_ns) {
  if (now_ns - l.time_ns > kLockStaleAfterNs) return true;
  // On our own host a dead process cannot hold a lock.
  if (l.hostname == platform::hostname() && l.pid > 0 && kill(static_cast<pid_t>(l.pid), 0) != 0 && errno == ESRCH)
    return true;
  return false;
}

}  // namespace

Result<std::vector<LockInfo>> RepoLock::list(Repository& repo) {
  LB_ASSIGN_OR_RETURN(auto names, repo.list_names(FileType::kLock));
  std::vector<LockInfo> out;
  int64_t now = repo.now_ns();
  for (const auto& name : names) {
    auto plain = repo.load_file(FileType::kLock, name);
    if (!plain) {
      if (plain.status().code() == Code::kNotFound) continue;  // removed meanwhile
      return plain.status();
    }
    auto j = nlohmann::json::parse(to_string(*plain), nullptr, false);
    if (j.is_discarded()) return Error(Code::kCorrupt, "locks/" + name + " is not valid JSON");
    LockInfo l;
    l.name = name;
    try {
      l.time_ns = json_int(j, "time_ns", int64_t{0});
      l.kind = kind_from_name(j.value("kind", std::string(j.value("exclusive", false) ? "exclusive" : "shared")));
      l.started_ns = json_int(j, "started_ns", l.time_ns);
      l.hostname = j.value("hostname", "");
      l.username = j.value("username", "");
      l.pid = json_int(j, "pid", int64_t{0});
      l.lease = j.value("lease", "");
      l.replaces = j.value("replaces", "");
      l.releases = j.value("releases", "");
    } catch (const nlohmann::json::exception& e) {
      return Error(Code::kCorrupt, fmt::format("locks/{} is damaged: {}", name, e.what()));
    }
    l.stale = is_stale(l, now);
    out.push_back(l);
  }
  std::set<std::string> ended;
  for (const auto& l : out) {
    if (!l.replaces.empty()) ended.insert(l.replaces);
    if (!l.releases.empty()) ended.insert(l.releases);
  }
  for (auto& l : out)
    if (ended.count(l.name) || !l.releases.empty()) l.stale = true;
  return out;
}

Result<std::string> RepoLock::write_lock_file(const std::string& replaces) {
  int64_t now = repo_.now_ns();
  nlohmann::json j = {{"time_ns", now},
                      {"time", format_rfc3339(now)},
                      {"started_ns", started_ns_},
                      {"kind", lock_kind_name(kind_)},
                      {"exclusive", kind_ == LockKind::kExclusive},
                      {"hostname", platform::hostname()},
                      {"username", platform::username()},
                      {"pid", static_cast<int64_t>(getpid())}};
  if (!lease_.empty()) j["lease"] = lease_;
  if (!replaces.empty()) j["replaces"] = replaces;
  return repo_.save_file(FileType::kLock, as_bytes(j.dump()));
}

void RepoLock::release(const std::string& name) {
  if (repo_.role() == crypto::Role::kAdmin) {
    (void)BackendAccess::of(repo_).remove({FileType::kLock, name});
    return;
  }
  int64_t now = repo_.now_ns();
  nlohmann::json j = {{"time_ns", now},      {"time", format_rfc3339(now)},      {"kind", "release"},
                      {"releases", name},    {"hostname", platform::hostname()}, {"username", platform::username()},
                      {"pid", static_cast<int64_t>(getpid())}};
  (void)repo_.save_file(FileType::kLock, as_bytes(j.dump()));  // failing, the lock goes stale in 30 minutes
}

static Status conflict(const std::vector<LockInfo>& locks, LockKind kind, const std::string& own, const std::string& lease) {
  for (const auto& l : locks) {
    if (l.stale || l.name == own) continue;
    if (!lease.empty() && l.lease == lease)
      return Error(Code::kLockFailed,
                   fmt::format("{} is held by {}@{} (pid {}) since {}: only one may hold it (a second follower would store "
                               "every slice twice); stop that one first, or if that process is gone run 'lifeboat unlock'",
                               lease, l.username, l.hostname, l.pid, format_local(l.started_ns)));
    if (conflicts(kind, l.kind))
      return Error(Code::kLockFailed,
                   fmt::format("repository is locked ({}) by {}@{} (pid {}) since {}; wait for it to finish, or if "
                               "that process is gone run 'lifeboat unlock'",
                               lock_kind_name(l.kind), l.username, l.hostname, l.pid, format_local(l.started_ns)));
  }
  return Status::ok();
}

Result<std::unique_ptr<RepoLock>> RepoLock::acquire(Repository& repo, LockKind kind, std::string lease) {
  std::unique_ptr<RepoLock> lock(new RepoLock(repo, kind, std::move(lease)));
  lock->started_ns_ = repo.now_ns();
  LB_ASSIGN_OR_RETURN(auto before, list(repo));
  LB_RETURN_IF_ERROR(conflict(before, kind, "", lock->lease_));
  LB_ASSIGN_OR_RETURN(lock->name_, lock->write_lock_file());
  // Two processes may both have passed the first check; whoever sees the other after writing backs off.
  LB_ASSIGN_OR_RETURN(auto after, list(repo));
  Status s = conflict(after, kind, lock->name_, lock->lease_);
  if (!s) {
    lock->release(lock->name_);
    lock->name_.clear();
    return s;
  }
  lock->refresher_ = std::thread([l = lock.get()] { l->refresh_loop(); });
  return lock;
}

void RepoLock::refresh_loop() {
  std::unique_lock guard(mu_);
  while (!cv_.wait_for(guard, std::chrono::nanoseconds(kLockRefreshEveryNs), [&] { return stopping_; })) {
    bool deletes = repo_.role() == crypto::Role::kAdmin;
    auto fresh = write_lock_file(deletes ? "" : name_);
    if (fresh) {
      if (deletes) (void)BackendAccess::of(repo_).remove({FileType::kLock, name_});
      name_ = *fresh;
    }
  }
}

RepoLock::~RepoLock() {
  {
    std::lock_guard guard(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (refresher_.joinable()) refresher_.join();
  if (!name_.empty()) release(name_);
}

Result<int> RepoLock::remove_locks(Repository& repo, bool all) {
  LB_RETURN_IF_ERROR(repo.require_admin(all ? "unlock --remove-all" : "unlock"));
  LB_ASSIGN_OR_RETURN(auto locks, list(repo));
  int removed = 0;
  // Locks first, then the markers releasing them: a marker removed first would bring its lock back
  // to life until it goes stale.
  for (int markers = 0; markers < 2; ++markers)
    for (const auto& l : locks) {
      if ((!all && !l.stale) || l.releases.empty() != (markers == 0)) continue;
      LB_RETURN_IF_ERROR(BackendAccess::of(repo).remove({FileType::kLock, l.name}));
      ++removed;
    }
  return removed;
}

}  // namespace lifeboat::repo
