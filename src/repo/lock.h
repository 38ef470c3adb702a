// Repository locks: shared for backups, exclusive for maintenance; refreshed while held, stale ones ignored.
#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "repo/repository.h"

namespace lifeboat::repo {

// shared: backup, restore (many at once). maintenance: prune (one at a time, alongside shared ones).
// exclusive: check (alone). lease: writes nothing and conflicts with nothing but a live lock holding
// the same lease (a follower's "one at a time"); prune's sweep does not wait for it.
enum class LockKind { kShared, kMaintenance, kExclusive, kLease };
const char* lock_kind_name(LockKind k);

struct LockInfo {
  std::string name;
  int64_t time_ns = 0;     // last refresh
  int64_t started_ns = 0;  // when the holder started; prune waits for holders older than its marks
  LockKind kind = LockKind::kShared;
  std::string hostname;
  std::string username;
  int64_t pid = 0;
  std::string lease;  // "" or what the holder alone may do ("mongodb-follow:DEPLOYMENT")
  // Keys that delete nothing (append, restore) never remove a lock file: a refresh writes a new one
  // that `replaces` the last, and a release writes a marker that `releases` it (docs/format.md, "Locks").
  std::string replaces, releases;
  bool stale = false;  // not live: not refreshed for 30 minutes, its process gone, replaced, released, or a marker
};

constexpr int64_t kLockStaleAfterNs = 30LL * 60 * 1000000000;  // no refresh for 30 minutes
constexpr int64_t kLockRefreshEveryNs = 5LL * 60 * 1000000000;

class RepoLock {
 public:
  // kLockFailed naming the holder when a conflicting live lock exists. A `lease` ("mongodb-follow:db1")
  // also conflicts with any live lock holding the same lease: one holder at a time, for as long as
  // the lock is held (refreshed; a holder that died is stale as any lock is).
  static Result<std::unique_ptr<RepoLock>> acquire(Repository& repo, LockKind kind, std::string lease = "");
  const std::string& name() const { return name_; }
  int64_t started_ns() const { return started_ns_; }
  ~RepoLock();
  RepoLock(const RepoLock&) = delete;
  RepoLock& operator=(const RepoLock&) = delete;

  static Result<std::vector<LockInfo>> list(Repository& repo);
  // Removes stale locks (or all with `all`), replaced and released ones and the markers of those
  // gone; returns how many lock files were removed. Needs a key that deletes (admin).
  static Result<int> remove_locks(Repository& repo, bool all);

 private:
  RepoLock(Repository& repo, LockKind kind, std::string lease) : repo_(repo), kind_(kind), lease_(std::move(lease)) {}
  Result<std::string> write_lock_file(const std::string& replaces = "");
  // Removes the lock file `name` (admin keys) or writes a marker releasing it (keys that delete nothing).
  void release(const std::string& name);
  void refresh_loop();
  Repository& repo_;
  LockKind kind_;
  std::string lease_;
  int64_t started_ns_ = 0;
  std::string name_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread refresher_;
};

}  // namespace lifeboat::repo
