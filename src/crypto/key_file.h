// Key files: the repository master secret wrapped by an Argon2id-derived key, one file per password.
#pragma once

#include <string>

#include "core/bytes.h"
#include "core/status.h"
#include "crypto/crypto.h"

namespace lifeboat::crypto {

struct KeyFile {
  KdfParams kdf;
  Bytes salt;
  Bytes wrapped_master;  // Aead(kek).seal(master secret)
  std::string created;   // RFC 3339
  std::string hostname;
  std::string username;

  // Wraps `master` under `password` with a fresh salt.
  static Result<KeyFile> create(const Key& master, std::string_view password, const KdfParams& kdf);
  // Unwraps the master secret; kWrongPassword when the password does not open it.
  Result<Key> unwrap(std::string_view password) const;

  std::string to_json() const;
  static Result<KeyFile> from_json(std::string_view text);
};

}  // namespace lifeboat::crypto
