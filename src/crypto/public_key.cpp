// X25519 capsules and Ed25519 signatures on OpenSSL 3's EVP_PKEY interface.
#include "crypto/public_key.h"

#include <openssl/evp.h>

#include <cstring>
#include <memory>
#include <stdexcept>

namespace lifeboat::crypto {
namespace {

struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct PkeyCtxFree {
  void operator()(EVP_PKEY_CTX* p) const { EVP_PKEY_CTX_free(p); }
};
struct MdCtxFree {
  void operator()(EVP_MD_CTX* p) const { EVP_MD_CTX_free(p); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;

Pkey private_pkey(int type, const Key& k) {
  Pkey p(EVP_PKEY_new_raw_private_key(type, nullptr, k.data(), k.size()));
  if (!p) throw std::runtime_error("OpenSSL refused a raw private key");
  return p;
}

PublicKey raw_public(EVP_PKEY* p) {
  PublicKey out{};
  size_t len = out.size();
  if (EVP_PKEY_get_raw_public_key(p, out.data(), &len) != 1 || len != out.size())
    throw std::runtime_error("OpenSSL could not export a public key");
  return out;
}

// X25519(private, peer): fails for a peer point of small order (an all-zero shared secret).
Result<Key> x25519(const Key& private_key, const PublicKey& peer) {
  Pkey mine = private_pkey(EVP_PKEY_X25519, private_key);
  Pkey theirs(EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, nullptr, peer.data(), peer.size()));
  if (!theirs) return Error(Code::kCorrupt, "not an X25519 public key");
  std::unique_ptr<EVP_PKEY_CTX, PkeyCtxFree> ctx(EVP_PKEY_CTX_new(mine.get(), nullptr));
  Key secret{};
  size_t len = secret.size();
  if (!ctx || EVP_PKEY_derive_init(ctx.get()) != 1 || EVP_PKEY_derive_set_peer(ctx.get(), theirs.get()) != 1 ||
      EVP_PKEY_derive(ctx.get(), secret.data(), &len) != 1 || len != secret.size())
    return Error(Code::kCorrupt, "X25519 key agreement failed (a degenerate public key)");
  return secret;
}

Key capsule_key(const Key& shared, const PublicKey& ephemeral, const PublicKey& recipient) {
  std::string salt(reinterpret_cast<const char*>(ephemeral.data()), ephemeral.size());
  salt.append(reinterpret_cast<const char*>(recipient.data()), recipient.size());
  Bytes b = hkdf_sha256({shared.data(), shared.size()}, salt, "lifeboat-capsule-v1", kKeySize);
  Key k;
  memcpy(k.data(), b.data(), kKeySize);
  return k;
}

}  // namespace

PublicKey x25519_public(const Key& private_key) { return raw_public(private_pkey(EVP_PKEY_X25519, private_key).get()); }

void Capsule::append_to(Bytes& out) const {
  out.push_back(generation);
  out.insert(out.end(), ephemeral.begin(), ephemeral.end());
}

Result<Capsule> Capsule::parse(ByteView bytes) {
  if (bytes.size() != kSize) return Error(Code::kCorrupt, "capsule has the wrong length");
  Capsule c;
  c.generation = bytes[0];
  memcpy(c.ephemeral.data(), bytes.data() + 1, c.ephemeral.size());
  return c;
}

std::pair<Capsule, Key> make_capsule(const PublicKey& recipient, uint8_t generation) {
  Key eph = random_key();
  Capsule c;
  c.generation = generation;
  c.ephemeral = x25519_public(eph);
  auto shared = x25519(eph, recipient);
  if (!shared) throw std::runtime_error("X25519 with the repository's public key failed");
  Key k = capsule_key(*shared, c.ephemeral, recipient);
  eph.fill(0);
  return {c, k};
}

Result<Key> open_capsule(const Capsule& capsule, const Key& recipient_private) {
  LB_ASSIGN_OR_RETURN(Key shared, x25519(recipient_private, capsule.ephemeral));
  return capsule_key(shared, capsule.ephemeral, x25519_public(recipient_private));
}

Bytes seal_to(const PublicKey& recipient, uint8_t generation, ByteView payload) {
  auto [capsule, key] = make_capsule(recipient, generation);
  Bytes out(kCapsuleMagic, kCapsuleMagic + 4);
  capsule.append_to(out);
  Aead(key).seal_append(payload, out);
  return out;
}

bool has_capsule_magic(ByteView sealed) {
  return sealed.size() >= 4 + Capsule::kSize + kSealOverhead && memcmp(sealed.data(), kCapsuleMagic, 4) == 0;
}

Result<std::pair<Capsule, ByteView>> split_capsule_file(ByteView sealed) {
  if (!has_capsule_magic(sealed)) return Error(Code::kCorrupt, "not a file sealed to the repository's public key");
  LB_ASSIGN_OR_RETURN(Capsule c, Capsule::parse(sealed.subspan(4, Capsule::kSize)));
  return std::pair<Capsule, ByteView>{c, sealed.subspan(4 + Capsule::kSize)};
}

PublicKey ed25519_public(const Key& seed) { return raw_public(private_pkey(EVP_PKEY_ED25519, seed).get()); }

Signature ed25519_sign(const Key& seed, ByteView message) {
  Pkey k = private_pkey(EVP_PKEY_ED25519, seed);
  std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
  Signature sig{};
  size_t len = sig.size();
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, k.get()) != 1 ||
      EVP_DigestSign(ctx.get(), sig.data(), &len, message.data(), message.size()) != 1 || len != sig.size())
    throw std::runtime_error("Ed25519 signing failed");
  return sig;
}

bool ed25519_verify(const PublicKey& public_key, ByteView message, ByteView signature) {
  if (signature.size() != 64) return false;
  Pkey k(EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, public_key.data(), public_key.size()));
  if (!k) return false;
  std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
  return ctx && EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, k.get()) == 1 &&
         EVP_DigestVerify(ctx.get(), signature.data(), signature.size(), message.data(), message.size()) == 1;
}

}  // namespace lifeboat::crypto
