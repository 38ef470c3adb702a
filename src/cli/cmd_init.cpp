// lifeboat init: create an encrypted repository.
#include <fmt/format.h>

#include "cli/context.h"
#include "core/time.h"

namespace lifeboat::cli {

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
  cmd->callback([c, opts, retention, keys_from, from_pw] {
    c.action = [c, opts, retention, keys_from, from_pw]() -> Status {
      if (!retention->empty()) {
        LB_ASSIGN_OR_RETURN(opts->object_lock_ns, parse_duration(*retention));
      }
      if (!keys_from->empty()) {
        LB_ASSIGN_OR_RETURN(auto other, open_other_repository(c.global, *keys_from, *from_pw, "LIFEBOAT_FROM_PASSWORD"));
        opts->master = other->master_key();
        opts->chunker = other->config().chunker;
        opts->pack_size_bytes = other->config().pack_size_bytes;
      }
      LB_ASSIGN_OR_RETURN(auto backend, storage::open_backend(repository_url(c.global)));
      std::string location = backend->location();
      LB_ASSIGN_OR_RETURN(std::string password, read_password(c.global, "new repository password: "));
      LB_ASSIGN_OR_RETURN(auto repo, repo::Repository::init(std::move(backend), password, *opts));
      if (c.global.json) {
        print_json({{"id", repo->config().id}, {"location", location}, {"key", repo->key_name()}});
      } else if (!c.global.quiet) {
        fmt::print("created repository {} at {}\n\nKeep the password safe: without it the data cannot be read.\n",
                   repo->config().id.substr(0, 10), location);
      }
      return Status::ok();
    };
  });
}

}  // namespace lifeboat::cli
