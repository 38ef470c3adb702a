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

struct LockInfo {
  std::string name;
  int64_t time_ns = 0;
  bool exclusive = false;
  std::string hostname;
  std::string username;
  int64_t pid = 0;
  bool stale = false;
};

constexpr int64_t kLockStaleAfterNs = 30LL * 60 * 1000000000;  // no refresh for 30 minutes
constexpr int64_t kLockRefreshEveryNs = 5LL * 60 * 1000000000;

class RepoLock {
 public:
  // kLockFailed naming the holder when a conflicting live lock exists.
  static Result<std::unique_ptr<RepoLock>> acquire(Repository& repo, bool exclusive);
  ~RepoLock();
  RepoLock(const RepoLock&) = delete;
  RepoLock& operator=(const RepoLock&) = delete;

  static Result<std::vector<LockInfo>> list(Repository& repo);
  // Removes stale locks (or all with `all`); returns how many were removed.
  static Result<int> remove_locks(Repository& repo, bool all);

 private:
  RepoLock(Repository& repo, bool exclusive) : repo_(repo), exclusive_(exclusive) {}
  Result<std::string> write_lock_file();
  void refresh_loop();
  Repository& repo_;
  bool exclusive_;
  std::string name_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread refresher_;
};

}  // namespace lifeboat::repo
