// lifeboat key add|list|remove|passwd: manage the key files that wrap the master key.
#include <fmt/format.h>

#include "cli/context.h"

namespace lifeboat::cli {

void register_key(CommandSet c) {
  auto* key = c.app.add_subcommand("key", "manage passwords (key files)");
  key->require_subcommand(1);
  auto new_password_file = std::make_shared<std::string>();
  auto kdf = std::make_shared<crypto::KdfParams>();
  auto add_kdf_flags = [&](CLI::App* cmd) {
    cmd->add_option("--new-password-file", *new_password_file, "file with the new password (or LIFEBOAT_NEW_PASSWORD)");
    cmd->add_option("--kdf-memory-kib", kdf->memory_kib, "Argon2id memory (KiB)")->capture_default_str();
    cmd->add_option("--kdf-iterations", kdf->iterations, "Argon2id passes")->capture_default_str();
  };

  auto* add = key->add_subcommand("add", "add a password (a key file with a role)");
  add_kdf_flags(add);
  auto role = std::make_shared<std::string>("admin");
  auto host = std::make_shared<std::string>();
  add->add_option("--role", *role,
                  "admin (everything), restore (read, restore, check; never delete) or append (add backups; never "
                  "read or delete)")
      ->capture_default_str()
      ->check(CLI::IsMember({"admin", "restore", "append"}));
  add->add_option("--host", *host, "bind the key to this host name: its snapshots naming another host are flagged");
  add->callback([c, new_password_file, kdf, role, host] {
    c.action = [c, new_password_file, kdf, role, host]() -> Status {
      LB_ASSIGN_OR_RETURN(auto repo, open_repository(c.global));
      LB_RETURN_IF_ERROR(repo->require_admin("key add"));
      LB_ASSIGN_OR_RETURN(crypto::Role r, crypto::parse_role(*role));
      LB_ASSIGN_OR_RETURN(std::string pw, read_new_password(*new_password_file));
      LB_ASSIGN_OR_RETURN(std::string name, repo->add_key(pw, *kdf, r, *host));
      if (c.global.json) print_json({{"key", name}, {"role", *role}, {"host", *host}});
      else if (!c.global.quiet) fmt::print("added {} key {}\n", *role, name.substr(0, 8));
      return Status::ok();
    };
  });

  auto* list = key->add_subcommand("list", "list key files");
  list->callback([c] {
    c.action = [c]() -> Status {
      LB_ASSIGN_OR_RETURN(auto repo, open_repository(c.global));
      LB_ASSIGN_OR_RETURN(auto keys, repo->list_keys());
      if (c.global.json) {
        nlohmann::json arr = nlohmann::json::array();
        for (const auto& k : keys)
          arr.push_back({{"id", k.name}, {"current", k.current}, {"role", crypto::role_name(k.file.role)},
                         {"host", k.file.host}, {"created", k.file.created},
                         {"hostname", k.file.hostname}, {"username", k.file.username},
                         {"kdf", {{"memory_kib", k.file.kdf.memory_kib}, {"iterations", k.file.kdf.iterations}}}});
        print_json(arr);
        return Status::ok();
      }
      fmt::print(" {:<8}  {:<7}  {:<12}  {:<12}  {:<12}  {}\n", "ID", "Role", "Bound to", "User", "Created on", "Created");
      for (const auto& k : keys)
        fmt::print("{}{:<8}  {:<7}  {:<12}  {:<12}  {:<12}  {}\n", k.current ? "*" : " ", k.name.substr(0, 8),
                   crypto::role_name(k.file.role), k.file.host.empty() ? "-" : k.file.host, k.file.username,
                   k.file.hostname, k.file.created);
      return Status::ok();
    };
  });

  auto* remove = key->add_subcommand("remove", "remove a key file");
  auto id = std::make_shared<std::string>();
  remove->add_option("id", *id, "key ID (or a unique prefix)")->required();
  remove->callback([c, id] {
    c.action = [c, id]() -> Status {
      LB_ASSIGN_OR_RETURN(auto repo, open_repository(c.global));
      LB_ASSIGN_OR_RETURN(auto keys, repo->list_keys());
      std::vector<std::string> hits;
      for (const auto& k : keys)
        if (k.name.rfind(*id, 0) == 0) hits.push_back(k.name);
      if (hits.empty()) return Error(Code::kNotFound, "no key " + *id);
      if (hits.size() > 1) return Error(Code::kInvalidArgument, "key ID prefix " + *id + " is ambiguous");
      LB_RETURN_IF_ERROR(repo->remove_key(hits[0]));
      if (c.global.json) print_json({{"removed", hits[0]}});
      else if (!c.global.quiet) fmt::print("removed key {}\n", hits[0].substr(0, 8));
      return Status::ok();
    };
  });

  auto* passwd = key->add_subcommand("passwd", "change the password of the key file in use");
  add_kdf_flags(passwd);
  passwd->callback([c, new_password_file, kdf] {
    c.action = [c, new_password_file, kdf]() -> Status {
      LB_ASSIGN_OR_RETURN(auto repo, open_repository(c.global));
      LB_ASSIGN_OR_RETURN(std::string pw, read_new_password(*new_password_file));
      std::string old = repo->key_name();
      LB_ASSIGN_OR_RETURN(std::string name, repo->replace_current_key(pw, *kdf));
      if (c.global.json) print_json({{"key", name}, {"removed", old}});
      else if (!c.global.quiet) fmt::print("password changed (key {} replaces {})\n", name.substr(0, 8), old.substr(0, 8));
      return Status::ok();
    };
  });
}

}  // namespace lifeboat::cli
