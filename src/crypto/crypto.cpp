// OpenSSL 3 and libargon2 behind the small crypto interface.
#include "crypto/crypto.h"
#include "crypto/public_key.h"

#include <argon2.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <cstring>
#include <memory>
#include <stdexcept>

namespace lifeboat::crypto {

Bytes random_bytes(size_t n) {
  Bytes out(n);
  if (n && RAND_bytes(out.data(), static_cast<int>(n)) != 1) throw std::runtime_error("RAND_bytes failed");
  return out;
}

Key random_key() {
  Key k;
  if (RAND_bytes(k.data(), static_cast<int>(k.size())) != 1) throw std::runtime_error("RAND_bytes failed");
  return k;
}

Digest sha256(ByteView data) {
  Digest d;
  SHA256(data.data(), data.size(), d.data());
  return d;
}

Sha256Stream::Sha256Stream() : ctx_(EVP_MD_CTX_new()) { EVP_DigestInit_ex(static_cast<EVP_MD_CTX*>(ctx_), EVP_sha256(), nullptr); }
Sha256Stream::~Sha256Stream() { EVP_MD_CTX_free(static_cast<EVP_MD_CTX*>(ctx_)); }
void Sha256Stream::update(ByteView data) { EVP_DigestUpdate(static_cast<EVP_MD_CTX*>(ctx_), data.data(), data.size()); }
Digest Sha256Stream::finish() {
  Digest d;
  unsigned int len = 0;
  EVP_DigestFinal_ex(static_cast<EVP_MD_CTX*>(ctx_), d.data(), &len);
  return d;
}
std::string Sha256Stream::finish_hex() {
  Digest d = finish();
  return hex_encode({d.data(), d.size()});
}

namespace {

// OpenSSL 3 looks an algorithm up in its provider tables (under a lock) whenever a one-shot call or a fresh
// context names it, which cost more than hashing or sealing a small blob itself (5 µs per HMAC, 3 µs per
// GCM context: a restore does three per blob). So the algorithms are fetched once, and every thread keeps
// one HMAC and one GCM context that it re-keys only when the key changes.
EVP_MAC* hmac_algorithm() {
  static EVP_MAC* const mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
  return mac;
}

const EVP_CIPHER* gcm_algorithm() {
  static EVP_CIPHER* const cipher = EVP_CIPHER_fetch(nullptr, "AES-256-GCM", nullptr);
  return cipher;
}

class ThreadHmac {
 public:
  ~ThreadHmac() { EVP_MAC_CTX_free(ctx_); }
  Digest compute(const Key& key, ByteView data) {
    if (!ctx_) ctx_ = EVP_MAC_CTX_new(hmac_algorithm());
    bool ok = ctx_ != nullptr;
    if (ok && keyed_ && key == key_) {
      ok = EVP_MAC_init(ctx_, nullptr, 0, nullptr) == 1;  // same key: reset only
    } else if (ok) {
      char digest[] = "SHA256";
      OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0), OSSL_PARAM_construct_end()};
      keyed_ = ok = EVP_MAC_init(ctx_, key.data(), key.size(), params) == 1;
      key_ = key;
    }
    Digest d;
    size_t len = 0;
    ok = ok && EVP_MAC_update(ctx_, data.data(), data.size()) == 1 && EVP_MAC_final(ctx_, d.data(), &len, d.size()) == 1 &&
         len == d.size();
    if (!ok) {
      keyed_ = false;
      throw std::runtime_error("HMAC-SHA256 failed");
    }
    return d;
  }

 private:
  EVP_MAC_CTX* ctx_ = nullptr;
  Key key_{};
  bool keyed_ = false;
};

struct ThreadCipher {
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  ~ThreadCipher() { EVP_CIPHER_CTX_free(ctx); }
};

EVP_CIPHER_CTX* thread_gcm() {
  thread_local ThreadCipher c;
  if (!c.ctx) throw std::runtime_error("out of memory for a cipher context");
  return c.ctx;
}

}  // namespace

Digest hmac_sha256(const Key& key, ByteView data) {
  thread_local ThreadHmac hmac;
  return hmac.compute(key, data);
}

Bytes hkdf_sha256(ByteView secret, std::string_view salt, std::string_view info, size_t length) {
  std::unique_ptr<EVP_KDF, decltype(&EVP_KDF_free)> kdf(EVP_KDF_fetch(nullptr, "HKDF", nullptr), EVP_KDF_free);
  std::unique_ptr<EVP_KDF_CTX, decltype(&EVP_KDF_CTX_free)> ctx(EVP_KDF_CTX_new(kdf.get()), EVP_KDF_CTX_free);
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest, 0),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, const_cast<uint8_t*>(secret.data()), secret.size()),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, const_cast<char*>(salt.data()), salt.size()),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, const_cast<char*>(info.data()), info.size()),
      OSSL_PARAM_construct_end()};
  Bytes out(length);
  if (!ctx || EVP_KDF_derive(ctx.get(), out.data(), out.size(), params) != 1)
    throw std::runtime_error("HKDF derivation failed");
  return out;
}

Result<Key> argon2id(std::string_view password, ByteView salt, const KdfParams& p) {
  Key out;
  int rc = argon2id_hash_raw(p.iterations, p.memory_kib, p.parallelism, password.data(), password.size(),
                             salt.data(), salt.size(), out.data(), out.size());
  if (rc != ARGON2_OK)
    return Error(Code::kFatal, std::string("argon2id key derivation failed: ") + argon2_error_message(rc));
  return out;
}

namespace {

Key subkey(const Key& key, const uint8_t* nonce_prefix) {
  uint8_t msg[20 + 12];
  memcpy(msg, "lifeboat-aead-subkey", 20);
  memcpy(msg + 20, nonce_prefix, 12);
  return hmac_sha256(key, {msg, sizeof msg});
}

}  // namespace

Bytes Aead::seal(ByteView plaintext) const {
  Bytes out;
  seal_append(plaintext, out);
  return out;
}

void Aead::seal_append(ByteView plaintext, Bytes& out) const {
  size_t base = out.size();
  out.resize(base + kNonceSize + plaintext.size() + kTagSize);
  uint8_t* nonce = out.data() + base;
  if (RAND_bytes(nonce, kNonceSize) != 1) throw std::runtime_error("RAND_bytes failed");
  Key k = subkey(key_, nonce);
  EVP_CIPHER_CTX* c = thread_gcm();
  int len = 0;
  uint8_t* ct = nonce + kNonceSize;
  if (EVP_EncryptInit_ex2(c, gcm_algorithm(), k.data(), nonce + 12, nullptr) != 1 ||
      (!plaintext.empty() && EVP_EncryptUpdate(c, ct, &len, plaintext.data(), static_cast<int>(plaintext.size())) != 1) ||
      EVP_EncryptFinal_ex(c, ct + len, &len) != 1 ||
      EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, kTagSize, ct + plaintext.size()) != 1)
    throw std::runtime_error("AES-256-GCM encryption failed");
}

Result<Bytes> Aead::open(ByteView sealed) const {
  if (sealed.size() < kSealOverhead)
    return Error(Code::kCorrupt, "encrypted object is shorter than its nonce and tag (truncated?)");
  const uint8_t* nonce = sealed.data();
  size_t ct_len = sealed.size() - kSealOverhead;
  const uint8_t* ct = nonce + kNonceSize;
  Key k = subkey(key_, nonce);
  Bytes out(ct_len);
  EVP_CIPHER_CTX* c = thread_gcm();
  int len = 0;
  uint8_t tag[kTagSize];
  memcpy(tag, ct + ct_len, kTagSize);
  bool ok = EVP_DecryptInit_ex2(c, gcm_algorithm(), k.data(), nonce + 12, nullptr) == 1 &&
            (ct_len == 0 || EVP_DecryptUpdate(c, out.data(), &len, ct, static_cast<int>(ct_len)) == 1) &&
            EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, kTagSize, tag) == 1 &&
            EVP_DecryptFinal_ex(c, out.data() + len, &len) == 1;
  if (!ok) return Error(Code::kCorrupt, "authentication failed: the object was modified or truncated");
  return out;
}

RepoKeys RepoKeys::derive(const Key& master) {
  RepoKeys k;
  k.master = master;
  auto fill = [&](Key& dst, const char* info) {
    Bytes b = hkdf_sha256({master.data(), master.size()}, "lifeboat-v1", info, kKeySize);
    memcpy(dst.data(), b.data(), kKeySize);
  };
  fill(k.aead, "aead");
  fill(k.content_id, "content-id");
  fill(k.chunker, "chunker");
  fill(k.seal_private, "seal-x25519-0");
  k.seal_public = x25519_public(k.seal_private);
  return k;
}

}  // namespace lifeboat::crypto
