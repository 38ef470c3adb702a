// Key file JSON encoding and wrapping.
#include "crypto/key_file.h"

#include <nlohmann/json.hpp>

#include "core/json_int.h"
#include "core/time.h"
#include "core/platform_user.h"

namespace lifeboat::crypto {

Result<KeyFile> KeyFile::create(const Key& master, std::string_view password, const KdfParams& kdf) {
  KeyFile kf;
  kf.kdf = kdf;
  kf.salt = random_bytes(32);
  LB_ASSIGN_OR_RETURN(Key kek, argon2id(password, kf.salt, kdf));
  kf.wrapped_master = Aead(kek).seal({master.data(), master.size()});
  kf.created = format_rfc3339(now_unix_ns());
  kf.hostname = platform::hostname();
  kf.username = platform::username();
  return kf;
}

Result<Key> KeyFile::unwrap(std::string_view password) const {
  LB_ASSIGN_OR_RETURN(Key kek, argon2id(password, salt, kdf));
  auto plain = Aead(kek).open(wrapped_master);
  if (!plain || plain->size() != kKeySize) return Error(Code::kWrongPassword, "wrong password");
  Key k;
  std::copy(plain->begin(), plain->end(), k.begin());
  return k;
}

std::string KeyFile::to_json() const {
  nlohmann::json j = {{"version", 1},
                      {"kdf", "argon2id"},
                      {"memory_kib", kdf.memory_kib},
                      {"iterations", kdf.iterations},
                      {"parallelism", kdf.parallelism},
                      {"salt", base64_encode(salt)},
                      {"wrapped_master", base64_encode(wrapped_master)},
                      {"created", created},
                      {"hostname", hostname},
                      {"username", username}};
  return j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace);
}

Result<KeyFile> KeyFile::from_json(std::string_view text) {
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return Error(Code::kCorrupt, "key file is not valid JSON");
  try {
    if (json_int<int>(j.at("version")) != 1 || j.at("kdf").get<std::string>() != "argon2id")
      return Error(Code::kCorrupt, "key file has an unknown version or KDF");
    KeyFile kf;
    kf.kdf.memory_kib = json_int<uint32_t>(j.at("memory_kib"));
    kf.kdf.iterations = json_int<uint32_t>(j.at("iterations"));
    kf.kdf.parallelism = json_int<uint32_t>(j.at("parallelism"));
    if (kf.kdf.memory_kib < 8 || kf.kdf.memory_kib > (4u << 20) || kf.kdf.iterations < 1 || kf.kdf.iterations > 64 ||
        kf.kdf.parallelism < 1 || kf.kdf.parallelism > 64)
      return Error(Code::kCorrupt, "key file has out-of-range KDF parameters");
    auto salt = base64_decode(j.at("salt").get<std::string>());
    auto wrapped = base64_decode(j.at("wrapped_master").get<std::string>());
    if (!salt || !wrapped) return Error(Code::kCorrupt, "key file has invalid base64");
    kf.salt = std::move(*salt);
    kf.wrapped_master = std::move(*wrapped);
    kf.created = j.value("created", "");
    kf.hostname = j.value("hostname", "");
    kf.username = j.value("username", "");
    return kf;
  } catch (const nlohmann::json::exception& e) {
    return Error(Code::kCorrupt, std::string("key file is missing a field: ") + e.what());
  }
}

}  // namespace lifeboat::crypto
