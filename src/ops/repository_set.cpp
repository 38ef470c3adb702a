// RepositorySet: open once, share, take turns.
#include "ops/repository_set.h"

#include <fmt/format.h>

#include <cstdlib>
#include <fstream>

#include "storage/backend.h"

namespace lifeboat::ops {

Result<std::string> repository_password(const plan::RepositorySpec& r) {
  if (!r.password_file.empty()) {
    std::ifstream in(r.password_file);
    std::string line;
    if (!in || !std::getline(in, line))
      return Error(Code::kInvalidArgument, fmt::format("repository {}: cannot read password file {}", r.name, r.password_file));
    return line;
  }
  const char* p = std::getenv(r.password_env.c_str());
  if (!p) return Error(Code::kInvalidArgument, fmt::format("repository {}: set {} (its password)", r.name, r.password_env));
  return std::string(p);
}

Result<RepositorySet::Entry*> RepositorySet::entry(const std::string& name) {
  std::lock_guard lk(mu_);
  auto& e = entries_[name];
  if (!e) e = std::make_unique<Entry>();
  if (e->repo) return e.get();
  const auto* spec = plan_.repository(name);
  if (!spec) return Error(Code::kNotFound, fmt::format("the plan has no repository {}", name));
  LB_ASSIGN_OR_RETURN(auto backend, storage::open_backend(spec->url));
  LB_ASSIGN_OR_RETURN(std::string password, repository_password(*spec));
  auto repo = repo::Repository::open(std::move(backend), password);
  if (!repo) return repo.status().with_context("repository " + name);
  e->repo = std::move(*repo);
  e->url = spec->url;
  return e.get();
}

Result<RepositorySet::Lease> RepositorySet::acquire(const std::string& name) {
  LB_ASSIGN_OR_RETURN(Entry * e, entry(name));
  return Lease(e->repo.get(), std::unique_lock<std::mutex>(e->use));
}

RepositorySet::Lease RepositorySet::adopt(const std::string& name, std::unique_ptr<repo::Repository> repo) {
  Entry* e;
  {
    std::lock_guard lk(mu_);
    auto& slot = entries_[name];
    if (!slot) slot = std::make_unique<Entry>();
    if (!slot->repo) slot->repo = std::move(repo);
    if (const auto* spec = plan_.repository(name)) slot->url = spec->url;
    e = slot.get();
  }
  return Lease(e->repo.get(), std::unique_lock<std::mutex>(e->use));
}

Result<std::unique_ptr<repo::Repository>> RepositorySet::separate_handle(const std::string& name) {
  LB_ASSIGN_OR_RETURN(Entry * e, entry(name));
  crypto::Key master;
  std::string key_name;
  {
    std::lock_guard use(e->use);
    master = e->repo->master_key();
    key_name = e->repo->key_name();
  }
  LB_ASSIGN_OR_RETURN(auto backend, storage::open_backend(e->url));
  return repo::Repository::open_with_master(std::move(backend), master, key_name);
}

}  // namespace lifeboat::ops
