// Public-key pieces of the repository format: X25519 capsules that seal data to the repository's
// public key (append keys write what they cannot read back), and Ed25519 signatures on snapshots.
// docs/security.md, "The construction".
#pragma once

#include <array>
#include <cstdint>

#include "core/bytes.h"
#include "core/status.h"
#include "crypto/crypto.h"

namespace lifeboat::crypto {

using PublicKey = std::array<uint8_t, 32>;
using Signature = std::array<uint8_t, 64>;

// The X25519 public key of a private scalar (32 random bytes; clamping is X25519's own).
PublicKey x25519_public(const Key& private_key);

// A capsule: what a writer stores beside data sealed to the repository's public key, so that a
// holder of the private key can derive the same content key.
//   content key = HKDF-SHA256(secret = X25519(ephemeral, recipient),
//                             salt = ephemeral_public || recipient_public,
//                             info = "lifeboat-capsule-v1", 32 bytes)
// `generation` names which of the repository's seal key pairs it was made for (key rotation).
struct Capsule {
  static constexpr size_t kSize = 1 + 32;
  uint8_t generation = 0;
  PublicKey ephemeral{};

  void append_to(Bytes& out) const;
  static Result<Capsule> parse(ByteView bytes);  // exactly kSize bytes
  bool operator==(const Capsule&) const = default;
};

// A fresh capsule for `recipient` and the content key it stands for. The ephemeral private key is
// dropped when this returns, so the writer cannot derive the key again.
std::pair<Capsule, Key> make_capsule(const PublicKey& recipient, uint8_t generation);
// The content key of `capsule`, for the holder of the recipient's private key.
Result<Key> open_capsule(const Capsule& capsule, const Key& recipient_private);

// Whole sealed files an append key writes (index, snapshot, lock):
//   "LBX1" | capsule | Seal(content key, payload)
inline constexpr char kCapsuleMagic[4] = {'L', 'B', 'X', '1'};
Bytes seal_to(const PublicKey& recipient, uint8_t generation, ByteView payload);
bool has_capsule_magic(ByteView sealed);
// The capsule of such a file and the sealed payload after it.
Result<std::pair<Capsule, ByteView>> split_capsule_file(ByteView sealed);

// Ed25519 (RFC 8032) from a 32-byte seed.
PublicKey ed25519_public(const Key& seed);
Signature ed25519_sign(const Key& seed, ByteView message);
bool ed25519_verify(const PublicKey& public_key, ByteView message, ByteView signature);

}  // namespace lifeboat::crypto
