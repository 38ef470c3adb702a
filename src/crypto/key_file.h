// Key files: a key's secrets wrapped by an Argon2id-derived key, one file per password, each with a role.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/bytes.h"
#include "core/status.h"
#include "crypto/crypto.h"
#include "crypto/public_key.h"

namespace lifeboat::crypto {

// What a key may do (docs/security.md, "Roles"):
// - admin: everything (every key file written before roles existed is one);
// - restore: list, read, restore, check; never forget, prune, repair, or change keys;
// - append: add data and snapshots; it holds no key that opens stored data, and deletes nothing.
enum class Role { kAdmin, kRestore, kAppend };
const char* role_name(Role r);
Result<Role> parse_role(std::string_view name);

// What a key file wraps.
struct KeySecrets {
  Role role = Role::kAdmin;
  Key master{};  // admin and restore: the repository's master secret
  // append: enough to chunk, name, deduplicate and seal new data, nothing that opens stored data
  Key content_id{}, chunker{};
  PublicKey seal_public{};
  uint8_t seal_generation = 0;
  Key cache_key{};     // seals the writer's own cache on its host (what it needs for incremental backups)
  std::string config;  // the repository's config JSON (the config file is sealed with the AEAD key)
  // Signs the snapshots this key writes (Ed25519 seed); absent in key files older than roles.
  std::optional<Key> signing_seed;
};

struct KeyFile {
  int version = 2;  // 1: before roles (an admin key wrapping the master secret alone)
  Role role = Role::kAdmin;
  KdfParams kdf;
  Bytes salt;
  Bytes wrapped;  // version 1: Aead(kek).seal(master); 2: Aead(kek).seal(JSON of KeySecrets)
  std::optional<PublicKey> signing_public;
  std::string host;  // the host this key is bound to ("": any); its snapshots claiming another are flagged
  std::string created;   // RFC 3339
  std::string hostname;  // where it was created
  std::string username;
  // HMAC-SHA256 by an admin key (a key derived from the master secret) over endorsement_message():
  // readers trust a signing key only from an endorsed key file, so whoever can write to storage
  // cannot slip in a key of their own. Absent in version 1.
  Bytes endorsement;
  // A removed append key: its password opens nothing (wrapped is empty), and only the snapshots it
  // signed before removal, listed here, are still trusted.
  struct Revocation {
    std::string key;   // the name of the key file it replaces (the name its snapshots carry)
    std::string time;  // RFC 3339
    std::vector<std::string> trusted_snapshots;
  };
  std::optional<Revocation> revoked;

  // Wraps `secrets` under `password` with a fresh salt; gives the key a signing key if it has none.
  static Result<KeyFile> create(KeySecrets secrets, std::string_view password, const KdfParams& kdf,
                                std::string host = "");
  // Unwraps the secrets; kWrongPassword when the password does not open them.
  Result<KeySecrets> unwrap(std::string_view password) const;

  // What the endorsement covers: role, host binding, signing key, creation time, revocation.
  std::string endorsement_message() const;

  std::string to_json() const;
  static Result<KeyFile> from_json(std::string_view text);
};

}  // namespace lifeboat::crypto
