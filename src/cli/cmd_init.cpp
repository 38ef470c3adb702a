// lifeboat init: create an encrypted repository.
#include <fmt/format.h>

#include "cli/context.h"
#include "core/names.h"
#include "core/time.h"
#include "ops/repository_set.h"
#include "storage/backend.h"

namespace lifeboat::cli {

namespace {

// `init` with a plan and no -r: every repository the plan names that does not exist yet is created,
// each with its own password (the plan's password_env / password_file); a copy (copy_of) shares its
// primary's keys and chunker, so copies move sealed blobs without decrypting. Existing ones are left.
Status init_plan_repositories(const GlobalOptions& g, repo::InitOptions defaults) {
  LB_ASSIGN_OR_RETURN(auto plan, plan::load_plan(*plan_mode(g)));
  std::vector<const plan::RepositorySpec*> order;  // primaries first: a copy takes its primary's keys
  for (const auto& r : plan.repositories)
    if (r.copy_of.empty()) order.push_back(&r);
  for (const auto& r : plan.repositories)
    if (!r.copy_of.empty()) order.push_back(&r);
  nlohmann::json results = nlohmann::json::array();
  for (const auto* r : order) {
    LB_ASSIGN_OR_RETURN(std::string password, ops::repository_password(*r));
    LB_ASSIGN_OR_RETURN(auto probe, storage::open_backend(r->url));
    auto existing = repo::Repository::open(std::move(probe), password);
    if (existing || existing.status().code() != Code::kRepoMissing) {
      if (!existing) return existing.status().with_context(fmt::format("repository {} ({})", r->name, redact_url(r->url)));
      results.push_back({{"repository", r->name}, {"location", redact_url(r->url)}, {"created", false}});
      if (!g.json && !g.quiet) fmt::print("repository {} at {}: exists, left as it is\n", r->name, redact_url(r->url));
      continue;
    }
    repo::InitOptions o = defaults;
    if (!r->object_lock.empty()) {
      LB_ASSIGN_OR_RETURN(o.object_lock_ns, parse_duration(r->object_lock));
    }
    if (!r->copy_of.empty()) {
      const auto* primary = plan.repository(r->copy_of);
      if (!primary) return Error(Code::kInvalidArgument, fmt::format("repository {}: copy_of {} is not in the plan", r->name, r->copy_of));
      LB_ASSIGN_OR_RETURN(std::string primary_password, ops::repository_password(*primary));
      LB_ASSIGN_OR_RETURN(auto pb, storage::open_backend(primary->url));
      LB_ASSIGN_OR_RETURN(auto other, repo::Repository::open(std::move(pb), primary_password));
      LB_RETURN_IF_ERROR(other->require_admin("sharing the keys of " + r->copy_of));
      o.master = other->master_key();
      o.chunker = other->config().chunker;
      o.pack_size_bytes = other->config().pack_size_bytes;
    }
    LB_ASSIGN_OR_RETURN(auto backend, storage::open_backend(r->url));
    LB_ASSIGN_OR_RETURN(auto repo, repo::Repository::init(std::move(backend), password, o));
    results.push_back({{"repository", r->name}, {"location", redact_url(r->url)}, {"created", true}, {"id", repo->config().id},
                       {"keys_from", r->copy_of}});
    if (!g.json && !g.quiet)
      fmt::print("created repository {} ({}) at {}{}\n", r->name, repo->config().id.substr(0, 10), redact_url(r->url),
                 r->copy_of.empty() ? "" : fmt::format(", sharing the keys of {}", r->copy_of));
  }
  if (g.json) print_json({{"plan", plan.file}, {"repositories", results}});
  return Status::ok();
}

}  // namespace

void register_init(CommandSet c) {
  auto* cmd = c.app.add_subcommand("init", "create a new repository");
  auto opts = std::make_shared<repo::InitOptions>();
  cmd->add_option("--kdf-memory-kib", opts->kdf.memory_kib, "Argon2id memory for the key file (KiB)")->capture_default_str();
  cmd->add_option("--kdf-iterations", opts->kdf.iterations, "Argon2id passes")->capture_default_str();
  cmd->add_option("--compression-level", opts->compression_level, "zstd level for new blobs (1-19)")
      ->check(CLI::Range(1, 19))->capture_default_str();
  cmd->add_option("--pack-size-mib", [opts](const std::vector<std::string>& v) {
        opts->pack_size_bytes = static_cast<uint32_t>(std::stoul(v.at(0))) * 1024 * 1024;
        return true;
      }, "target pack size in MiB (default 16)")->check(CLI::Range(1, 128));
  auto retention = std::make_shared<std::string>();
  auto keys_from = std::make_shared<std::string>();
  auto from_pw = std::make_shared<std::string>();
  cmd->add_option("--retention", *retention,
                  "object lock: packs, index, snapshots and keys cannot be deleted or replaced for this long "
                  "(e.g. 30d; s3:/gs: only; prune extends it for live data)");
  cmd->add_option("--copy-keys-from", *keys_from,
                  "share the keys and chunker of this repository, so `copy` moves sealed blobs without decrypting");
  cmd->add_option("--from-password-file", *from_pw, "password of --copy-keys-from (or LIFEBOAT_FROM_PASSWORD)");
  auto append_pw = std::make_shared<std::string>();
  auto append_host = std::make_shared<std::string>();
  cmd->add_option("--append-password-file", *append_pw,
                  "also add an append key with this password, for backup hosts: it adds backups and can neither read "
                  "nor delete them (or LIFEBOAT_APPEND_PASSWORD)");
  cmd->add_option("--append-host", *append_host, "bind that append key to this host name");
  cmd->callback([c, opts, retention, keys_from, from_pw, append_pw, append_host] {
    c.action = [c, opts, retention, keys_from, from_pw, append_pw, append_host]() -> Status {
      if (!retention->empty()) {
        LB_ASSIGN_OR_RETURN(opts->object_lock_ns, parse_duration(*retention));
      }
      if (!keys_from->empty()) {
        LB_ASSIGN_OR_RETURN(auto other, open_other_repository(c.global, *keys_from, *from_pw, "LIFEBOAT_FROM_PASSWORD"));
        LB_RETURN_IF_ERROR(other->require_admin("--copy-keys-from"));
        opts->master = other->master_key();
        opts->chunker = other->config().chunker;
        opts->pack_size_bytes = other->config().pack_size_bytes;
      }
      if (repository_url(c.global).empty() && plan_mode(c.global)) return init_plan_repositories(c.global, *opts);
      LB_ASSIGN_OR_RETURN(auto chosen, choose_repository(c.global));
      LB_ASSIGN_OR_RETURN(auto backend, storage::open_backend(chosen.url));
      std::string location = backend->location();
      std::string password;
      if (chosen.spec && c.global.password_file.empty()) {  // -r NAME of the plan: its password
        LB_ASSIGN_OR_RETURN(password, ops::repository_password(*chosen.spec));
      } else {
        LB_ASSIGN_OR_RETURN(password, read_initial_password(c.global));
      }
      std::string append_password;
      if (!append_pw->empty()) {
        LB_ASSIGN_OR_RETURN(append_password, read_password_file(*append_pw));
      } else if (const char* p = getenv("LIFEBOAT_APPEND_PASSWORD"); p && *p) {
        append_password = p;
      }
      if (!append_password.empty() && append_password == password)
        return Error(Code::kInvalidArgument, "the append key's password must differ from the admin password");
      LB_ASSIGN_OR_RETURN(auto repo, repo::Repository::init(std::move(backend), password, *opts));
      std::string append_key;
      if (!append_password.empty()) {
        LB_ASSIGN_OR_RETURN(append_key, repo->add_key(append_password, opts->kdf, crypto::Role::kAppend, *append_host));
      }
      if (c.global.json) {
        nlohmann::json j = {{"id", repo->config().id}, {"location", location}, {"key", repo->key_name()}};
        if (!append_key.empty()) j["append_key"] = append_key;
        print_json(j);
      } else if (!c.global.quiet) {
        fmt::print("created repository {} at {}\n\nKeep the password safe: without it the data cannot be read.\n",
                   repo->config().id.substr(0, 10), location);
        if (!append_key.empty())
          fmt::print("\nadded append key {}{} for backup hosts: it adds backups, and can neither read nor delete them.\n",
                     append_key.substr(0, 8), append_host->empty() ? "" : " bound to " + *append_host);
      }
      return Status::ok();
    };
  });
}

}  // namespace lifeboat::cli
