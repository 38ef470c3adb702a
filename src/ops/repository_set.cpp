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
  e->name = name;
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
  return Lease(e->repo.get(), std::unique_lock<std::mutex>(e->use), &e->name);
}

std::string RepositorySet::reading_from(const std::string& name) {
  std::lock_guard lk(mu_);
  auto it = fallback_.find(name);
  return it == fallback_.end() ? name : it->second;
}

Result<RepositorySet::Lease> RepositorySet::acquire_readable(const std::string& name) {
  std::string copy_in_use;
  {
    std::lock_guard lk(mu_);
    if (auto it = fallback_.find(name); it != fallback_.end()) copy_in_use = it->second;
  }
  if (!copy_in_use.empty()) return acquire(copy_in_use);
  auto primary = acquire(name);
  if (primary) return primary;
  // A wrong password is the operator's to fix, not a lost region.
  if (primary.status().code() == Code::kWrongPassword) return primary.status();
  std::vector<std::string> tried = {fmt::format("{}: {}", name, primary.status().message())};
  for (const auto* copy : plan_.copies_of(name)) {
    auto l = acquire(copy->name);
    if (!l) {
      tried.push_back(fmt::format("{}: {}", copy->name, l.status().message()));
      continue;
    }
    {
      std::lock_guard lk(mu_);
      fallback_[name] = copy->name;
    }
    if (notice)
      notice(fmt::format("repository {} cannot be opened ({}): reading its copy {} instead", name, primary.status().message(),
                         copy->name));
    return l;
  }
  if (tried.size() == 1) return primary.status();
  return Error(primary.status().code(), fmt::format("no repository holding {}'s backups opens: {}", name, fmt::join(tried, "; ")));
}

RepositorySet::Lease RepositorySet::adopt(const std::string& name, std::unique_ptr<repo::Repository> repo) {
  Entry* e;
  {
    std::lock_guard lk(mu_);
    auto& slot = entries_[name];
    if (!slot) slot = std::make_unique<Entry>();
    if (!slot->repo) slot->repo = std::move(repo);
    if (const auto* spec = plan_.repository(name)) slot->url = spec->url;
    slot->name = name;
    e = slot.get();
  }
  return Lease(e->repo.get(), std::unique_lock<std::mutex>(e->use), &e->name);
}

Result<std::unique_ptr<repo::Repository>> RepositorySet::separate_handle(const std::string& name) {
  LB_ASSIGN_OR_RETURN(Entry * e, entry(name));
  crypto::KeySecrets secrets;
  std::string key_name;
  {
    std::lock_guard use(e->use);
    secrets = e->repo->secrets();
    key_name = e->repo->key_name();
  }
  LB_ASSIGN_OR_RETURN(auto backend, storage::open_backend(e->url));
  return repo::Repository::open_with_secrets(std::move(backend), secrets, key_name);
}

}  // namespace lifeboat::ops
