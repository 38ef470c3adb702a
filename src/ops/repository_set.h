// The plan's repositories, each opened once per process — one key derivation — and shared by backup
// runs, restores, drills, status, report, /metrics and the daemon, so one in-memory index serves them
// all. A run takes a repository for itself (runs on one repository take turns); a long-running
// follower gets a handle of its own made from the opened key, with no second key derivation.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "plan/plan.h"
#include "repo/repository.h"

namespace lifeboat::ops {

Result<std::string> repository_password(const plan::RepositorySpec& spec);

class RepositorySet {
 public:
  explicit RepositorySet(const plan::Plan& plan) : plan_(plan) {}
  RepositorySet(const RepositorySet&) = delete;
  RepositorySet& operator=(const RepositorySet&) = delete;

  // Exclusive use of one open repository for as long as it is held.
  class Lease {
   public:
    repo::Repository& operator*() const { return *repo_; }
    repo::Repository* operator->() const { return repo_; }
    repo::Repository& get() const { return *repo_; }

   private:
    friend class RepositorySet;
    Lease(repo::Repository* r, std::unique_lock<std::mutex> l) : repo_(r), lock_(std::move(l)) {}
    repo::Repository* repo_;
    std::unique_lock<std::mutex> lock_;
  };

  // Opens the plan's repository `name` on first use (kRepoMissing when it does not exist yet).
  Result<Lease> acquire(const std::string& name);
  // Adds a repository this process created (a copy made for the first time).
  Lease adopt(const std::string& name, std::unique_ptr<repo::Repository> repo);
  // A separate handle on `name` (own index and caches) for a run that lasts for ever (followers).
  Result<std::unique_ptr<repo::Repository>> separate_handle(const std::string& name);

  const plan::Plan& plan() const { return plan_; }

 private:
  struct Entry {
    std::mutex use;
    std::unique_ptr<repo::Repository> repo;
    std::string url;
  };
  Result<Entry*> entry(const std::string& name);
  const plan::Plan& plan_;
  std::mutex mu_;  // guards entries_ and each entry's opening
  std::map<std::string, std::unique_ptr<Entry>> entries_;
};

}  // namespace lifeboat::ops
