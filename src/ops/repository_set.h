// The plan's repositories, each opened once per process — one key derivation — and shared by backup
// runs, restores, drills, status, report, /metrics and the daemon, so one in-memory index serves them
// all. A run takes a repository for itself (runs on one repository take turns); a long-running
// follower gets a handle of its own made from the opened key, with no second key derivation.
#pragma once

#include <functional>
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
    // The plan's name of the repository held (a copy's, when a read fell back to it).
    const std::string& name() const { return *name_; }

   private:
    friend class RepositorySet;
    Lease(repo::Repository* r, std::unique_lock<std::mutex> l, const std::string* n) : repo_(r), lock_(std::move(l)), name_(n) {}
    repo::Repository* repo_;
    std::unique_lock<std::mutex> lock_;
    const std::string* name_;
  };

  // Opens the plan's repository `name` on first use (kRepoMissing when it does not exist yet).
  Result<Lease> acquire(const std::string& name);
  // A repository to read a source's backups from (restores, drills, status, failover): `name`, or —
  // when it cannot be opened (its region is lost) — the first of its copies (copy_of) that opens.
  // The fallback is said once through `notice`, with why; an error names every repository tried.
  Result<Lease> acquire_readable(const std::string& name);
  // Where acquire_readable reads `name` from now ("" before it was tried).
  std::string reading_from(const std::string& name);
  // Where the process says things like the fallback (the CLI: one line on stderr; the daemon: its log).
  std::function<void(const std::string&)> notice;
  // Adds a repository this process created (a copy made for the first time).
  Lease adopt(const std::string& name, std::unique_ptr<repo::Repository> repo);
  // A separate handle on `name` (own index and caches) for a run that lasts for ever (followers).
  Result<std::unique_ptr<repo::Repository>> separate_handle(const std::string& name);

  const plan::Plan& plan() const { return plan_; }

 private:
  struct Entry {
    std::mutex use;
    std::unique_ptr<repo::Repository> repo;
    std::string url, name;
  };
  Result<Entry*> entry(const std::string& name);
  const plan::Plan& plan_;
  std::mutex mu_;  // guards entries_ and each entry's opening
  std::map<std::string, std::unique_ptr<Entry>> entries_;
  std::map<std::string, std::string> fallback_;  // primary -> the copy read instead
};

}  // namespace lifeboat::ops
