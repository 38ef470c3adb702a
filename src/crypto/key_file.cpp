// Key file JSON encoding and wrapping.
#include "crypto/key_file.h"

#include <cstring>
#include <nlohmann/json.hpp>

#include "core/json_int.h"
#include "core/platform_user.h"
#include "core/time.h"

namespace lifeboat::crypto {

const char* role_name(Role r) {
  switch (r) {
    case Role::kAdmin: return "admin";
    case Role::kRestore: return "restore";
    case Role::kAppend: return "append";
  }
  return "?";
}

Result<Role> parse_role(std::string_view name) {
  for (Role r : {Role::kAdmin, Role::kRestore, Role::kAppend})
    if (name == role_name(r)) return r;
  return Error(Code::kInvalidArgument, "unknown key role '" + std::string(name) + "' (admin, restore or append)");
}

namespace {

template <size_t N>
std::string b64(const std::array<uint8_t, N>& a) {
  return base64_encode({a.data(), a.size()});
}

template <size_t N>
bool from_b64(const nlohmann::json& j, const char* field, std::array<uint8_t, N>& out) {
  if (!j.contains(field) || !j[field].is_string()) return false;
  auto b = base64_decode(j[field].get<std::string>());
  if (!b || b->size() != N) return false;
  memcpy(out.data(), b->data(), N);
  return true;
}

std::string encode_secrets(const KeySecrets& s) {
  nlohmann::json j = {{"role", role_name(s.role)}};
  if (s.role == Role::kAppend) {
    j["content_id"] = b64(s.content_id);
    j["chunker"] = b64(s.chunker);
    j["seal_public"] = b64(s.seal_public);
    j["seal_generation"] = s.seal_generation;
    j["cache_key"] = b64(s.cache_key);
    j["config"] = s.config;
  } else {
    j["master"] = b64(s.master);
  }
  if (s.signing_seed) j["signing_seed"] = b64(*s.signing_seed);
  return j.dump();
}

Result<KeySecrets> decode_secrets(std::string_view text, Role expected) {
  auto j = nlohmann::json::parse(text, nullptr, false);
  auto bad = [] { return Error(Code::kCorrupt, "key file's wrapped secrets are malformed"); };
  if (!j.is_object() || !j.contains("role") || !j["role"].is_string()) return bad();
  auto role = parse_role(j["role"].get<std::string>());
  // The role outside (what `key list` shows) must be the role inside (what the secrets allow).
  if (!role || *role != expected) return Error(Code::kCorrupt, "key file's role does not match its wrapped secrets");
  KeySecrets s;
  s.role = *role;
  if (s.role == Role::kAppend) {
    if (!from_b64(j, "content_id", s.content_id) || !from_b64(j, "chunker", s.chunker) ||
        !from_b64(j, "seal_public", s.seal_public) || !from_b64(j, "cache_key", s.cache_key) ||
        !j.contains("seal_generation") || !j["seal_generation"].is_number_unsigned() || !j.contains("config") ||
        !j["config"].is_string())
      return bad();
    s.seal_generation = static_cast<uint8_t>(j["seal_generation"].get<unsigned>());
    s.config = j["config"].get<std::string>();
  } else if (!from_b64(j, "master", s.master)) {
    return bad();
  }
  if (j.contains("signing_seed")) {
    Key seed;
    if (!from_b64(j, "signing_seed", seed)) return bad();
    s.signing_seed = seed;
  }
  return s;
}

}  // namespace

Result<KeyFile> KeyFile::create(KeySecrets secrets, std::string_view password, const KdfParams& kdf, std::string host) {
  if (!secrets.signing_seed) secrets.signing_seed = random_key();
  KeyFile kf;
  kf.role = secrets.role;
  kf.kdf = kdf;
  kf.salt = random_bytes(32);
  LB_ASSIGN_OR_RETURN(Key kek, argon2id(password, kf.salt, kdf));
  kf.wrapped = Aead(kek).seal(as_bytes(encode_secrets(secrets)));
  kf.signing_public = ed25519_public(*secrets.signing_seed);
  kf.host = std::move(host);
  kf.created = format_rfc3339(now_unix_ns());
  kf.hostname = platform::hostname();
  kf.username = platform::username();
  return kf;
}

Result<KeySecrets> KeyFile::unwrap(std::string_view password) const {
  if (revoked) return Error(Code::kWrongPassword, "this key was removed");
  LB_ASSIGN_OR_RETURN(Key kek, argon2id(password, salt, kdf));
  auto plain = Aead(kek).open(wrapped);
  if (!plain) return Error(Code::kWrongPassword, "wrong password");
  if (version == 1) {
    if (plain->size() != kKeySize) return Error(Code::kCorrupt, "key file's wrapped master secret has the wrong length");
    KeySecrets s;
    std::copy(plain->begin(), plain->end(), s.master.begin());
    return s;
  }
  LB_ASSIGN_OR_RETURN(KeySecrets s, decode_secrets(to_string(*plain), role));
  if (s.signing_seed && (!signing_public || ed25519_public(*s.signing_seed) != *signing_public))
    return Error(Code::kCorrupt, "key file's signing key does not match its public half");
  return s;
}

std::string KeyFile::endorsement_message() const {
  nlohmann::json j = {{"role", role_name(role)}, {"host", host}, {"created", created}};
  if (signing_public) j["signing_public"] = b64(*signing_public);
  if (revoked)
    j["revoked"] = {{"key", revoked->key}, {"time", revoked->time}, {"trusted_snapshots", revoked->trusted_snapshots}};
  return "lifeboat-key-endorsement-v1\n" + j.dump();
}

std::string KeyFile::to_json() const {
  nlohmann::json j = {{"version", version},
                      {"kdf", "argon2id"},
                      {"memory_kib", kdf.memory_kib},
                      {"iterations", kdf.iterations},
                      {"parallelism", kdf.parallelism},
                      {"salt", base64_encode(salt)}};
  if (version == 1) {
    j["wrapped_master"] = base64_encode(wrapped);
  } else {
    j["role"] = role_name(role);
    if (!revoked) j["wrapped"] = base64_encode(wrapped);
    if (signing_public) j["signing_public"] = b64(*signing_public);
    j["host"] = host;
    if (!endorsement.empty()) j["endorsement"] = base64_encode(endorsement);
    if (revoked)
      j["revoked"] = {{"key", revoked->key}, {"time", revoked->time}, {"trusted_snapshots", revoked->trusted_snapshots}};
  }
  j["created"] = created;
  j["hostname"] = hostname;
  j["username"] = username;
  return j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace);
}

Result<KeyFile> KeyFile::from_json(std::string_view text) {
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return Error(Code::kCorrupt, "key file is not valid JSON");
  try {
    KeyFile kf;
    kf.version = json_int<int>(j.at("version"));
    if ((kf.version != 1 && kf.version != 2) || j.at("kdf").get<std::string>() != "argon2id")
      return Error(Code::kCorrupt, "key file has an unknown version or KDF (written by a newer lifeboat?)");
    kf.kdf.memory_kib = json_int<uint32_t>(j.at("memory_kib"));
    kf.kdf.iterations = json_int<uint32_t>(j.at("iterations"));
    kf.kdf.parallelism = json_int<uint32_t>(j.at("parallelism"));
    if (kf.kdf.memory_kib < 8 || kf.kdf.memory_kib > (4u << 20) || kf.kdf.iterations < 1 || kf.kdf.iterations > 64 ||
        kf.kdf.parallelism < 1 || kf.kdf.parallelism > 64)
      return Error(Code::kCorrupt, "key file has out-of-range KDF parameters");
    auto salt = base64_decode(j.at("salt").get<std::string>());
    bool revoked = kf.version == 2 && j.contains("revoked");
    auto wrapped = revoked ? std::optional<Bytes>(Bytes())
                           : base64_decode(j.at(kf.version == 1 ? "wrapped_master" : "wrapped").get<std::string>());
    if (!salt || !wrapped) return Error(Code::kCorrupt, "key file has invalid base64");
    kf.salt = std::move(*salt);
    kf.wrapped = std::move(*wrapped);
    if (revoked) {
      const auto& r = j.at("revoked");
      kf.revoked = Revocation{r.at("key").get<std::string>(), r.at("time").get<std::string>(),
                              r.at("trusted_snapshots").get<std::vector<std::string>>()};
    }
    if (kf.version == 2) {
      if (j.contains("endorsement")) {
        auto e = base64_decode(j.at("endorsement").get<std::string>());
        if (!e) return Error(Code::kCorrupt, "key file has an invalid endorsement");
        kf.endorsement = std::move(*e);
      }
      auto role = parse_role(j.at("role").get<std::string>());
      if (!role) return Error(Code::kCorrupt, "key file has an unknown role (written by a newer lifeboat?)");
      kf.role = *role;
      if (j.contains("signing_public")) {
        PublicKey pk;
        if (!from_b64(j, "signing_public", pk)) return Error(Code::kCorrupt, "key file has an invalid signing key");
        kf.signing_public = pk;
      }
      kf.host = j.value("host", "");
    }
    kf.created = j.value("created", "");
    kf.hostname = j.value("hostname", "");
    kf.username = j.value("username", "");
    return kf;
  } catch (const nlohmann::json::exception& e) {
    return Error(Code::kCorrupt, std::string("key file is missing a field: ") + e.what());
  }
}

}  // namespace lifeboat::crypto
