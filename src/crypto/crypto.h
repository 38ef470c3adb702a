// Keys, AEAD sealing of stored objects, keyed content IDs, SHA-256 and password-based key derivation.
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "core/bytes.h"
#include "core/status.h"

namespace lifeboat::crypto {

constexpr size_t kKeySize = 32;
constexpr size_t kNonceSize = 24;  // 12 bytes select a per-object subkey, 12 are the GCM nonce
constexpr size_t kTagSize = 16;
constexpr size_t kSealOverhead = kNonceSize + kTagSize;

using Key = std::array<uint8_t, kKeySize>;
using Digest = std::array<uint8_t, 32>;

Bytes random_bytes(size_t n);
Key random_key();

Digest sha256(ByteView data);
// SHA-256 of data that arrives in pieces (a download as it streams, a file read in blocks).
class Sha256Stream {
 public:
  Sha256Stream();
  ~Sha256Stream();
  Sha256Stream(const Sha256Stream&) = delete;
  Sha256Stream& operator=(const Sha256Stream&) = delete;
  void update(ByteView data);
  Digest finish();  // once
  std::string finish_hex();

 private:
  void* ctx_;  // EVP_MD_CTX
};
Digest hmac_sha256(const Key& key, ByteView data);
// HKDF-SHA256 (RFC 5869) expanding `secret` into `length` bytes for the purpose named by `info`.
Bytes hkdf_sha256(ByteView secret, std::string_view salt, std::string_view info, size_t length);

// Argon2id (RFC 9106) stretching a password into a key-encryption key.
struct KdfParams {
  uint32_t memory_kib = 64 * 1024;
  uint32_t iterations = 3;
  // RFC 9106's second recommended setting (64 MiB, t = 3, p = 4): four lanes take half the time of
  // one on two cores (0.16 s against 0.28 s, paid by every command) for the same memory hardness.
  uint32_t parallelism = 4;
};
Result<Key> argon2id(std::string_view password, ByteView salt, const KdfParams& params);

// AES-256-GCM with a 192-bit random nonce: the first 96 bits pick a one-off subkey
// HMAC-SHA256(key, "lifeboat-aead-subkey" || n[0:12]), the last 96 bits are the GCM nonce. Random 192-bit
// nonces do not repeat in practice (2^-96 after 2^48 objects), so no counter state is shared between
// writers on different hosts. Layout: nonce(24) | ciphertext | tag(16).
class Aead {
 public:
  explicit Aead(const Key& key) : key_(key) {}
  Bytes seal(ByteView plaintext) const;
  void seal_append(ByteView plaintext, Bytes& out) const;
  Result<Bytes> open(ByteView sealed) const;

 private:
  Key key_;
};

// The repository's master secret and the subkeys derived from it. The secret is what key files wrap.
struct RepoKeys {
  Key master{};
  Key aead{};        // seals every stored object
  Key content_id{};  // HMAC key for blob IDs, so IDs do not reveal content
  Key chunker{};     // seeds the gear table, so chunk boundaries do not reveal content
  // The X25519 key pair append keys seal new data to (generation 0; docs/security.md). Append keys
  // hold the public half only.
  Key seal_private{};
  std::array<uint8_t, 32> seal_public{};
  static RepoKeys derive(const Key& master);
};

}  // namespace lifeboat::crypto
