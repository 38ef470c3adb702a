// AEAD sealing, key derivation and key files.
#include "crypto/crypto.h"

#include <gtest/gtest.h>

#include "crypto/key_file.h"
#include "crypto/public_key.h"

namespace lifeboat::crypto {

TEST(Aead, SealOpenRoundTripAndNonceIsFresh) {
  Aead aead(random_key());
  Bytes msg = random_bytes(1000);
  Bytes a = aead.seal(msg), b = aead.seal(msg);
  EXPECT_EQ(a.size(), msg.size() + kSealOverhead);
  EXPECT_NE(a, b);  // random nonces: same plaintext, different ciphertext
  auto opened = aead.open(a);
  ASSERT_TRUE(opened.is_ok());
  EXPECT_EQ(*opened, msg);
}

TEST(Aead, AnyFlippedByteOrTruncationIsDetected) {
  Aead aead(random_key());
  Bytes sealed = aead.seal(as_bytes("the quick brown fox"));
  for (size_t i = 0; i < sealed.size(); ++i) {
    Bytes bad = sealed;
    bad[i] ^= 0x01;
    auto r = aead.open(bad);
    ASSERT_FALSE(r.is_ok()) << "flip at " << i;
    EXPECT_EQ(r.status().code(), Code::kCorrupt);
  }
  EXPECT_FALSE(aead.open(ByteView(sealed).subspan(0, sealed.size() - 1)).is_ok());
  EXPECT_FALSE(aead.open(ByteView(sealed).subspan(0, 10)).is_ok());
}

TEST(Aead, EmptyPlaintext) {
  Aead aead(random_key());
  auto r = aead.open(aead.seal({}));
  ASSERT_TRUE(r.is_ok());
  EXPECT_TRUE(r->empty());
}

TEST(Aead, WrongKeyFails) {
  Bytes sealed = Aead(random_key()).seal(as_bytes("secret"));
  EXPECT_FALSE(Aead(random_key()).open(sealed).is_ok());
}

TEST(Kdf, Argon2idIsDeterministicAndSaltDependent) {
  KdfParams p{64, 1, 1};
  Bytes salt1(16, 1), salt2(16, 2);
  auto a = argon2id("pw", salt1, p), b = argon2id("pw", salt1, p), c = argon2id("pw", salt2, p);
  ASSERT_TRUE(a.is_ok() && b.is_ok() && c.is_ok());
  EXPECT_EQ(*a, *b);
  EXPECT_NE(*a, *c);
}

TEST(Kdf, Rfc5869HkdfVector) {
  // RFC 5869 test case 1.
  Bytes ikm(22, 0x0b);
  auto salt = hex_decode("000102030405060708090a0b0c");
  auto info = hex_decode("f0f1f2f3f4f5f6f7f8f9");
  Bytes okm = hkdf_sha256(ikm, to_string(*salt), to_string(*info), 42);
  EXPECT_EQ(hex_encode(okm),
            "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865");
}

TEST(RepoKeys, SubkeysDifferFromEachOtherAndAreStable) {
  Key master = random_key();
  auto a = RepoKeys::derive(master), b = RepoKeys::derive(master);
  EXPECT_EQ(a.aead, b.aead);
  EXPECT_NE(a.aead, a.content_id);
  EXPECT_NE(a.content_id, a.chunker);
}

TEST(KeyFile, WrapsAndUnwrapsOnlyWithThePassword) {
  Key master = random_key();
  KeySecrets in;
  in.master = master;
  auto kf = KeyFile::create(in, "correct horse", {64, 1, 1});
  ASSERT_TRUE(kf.is_ok());
  auto parsed = KeyFile::from_json(kf->to_json());
  ASSERT_TRUE(parsed.is_ok());
  EXPECT_EQ(parsed->role, Role::kAdmin);
  auto ok = parsed->unwrap("correct horse");
  ASSERT_TRUE(ok.is_ok());
  EXPECT_EQ(ok->master, master);
  EXPECT_EQ(ok->role, Role::kAdmin);
  ASSERT_TRUE(ok->signing_seed.has_value());
  EXPECT_EQ(ed25519_public(*ok->signing_seed), *parsed->signing_public);
  auto bad = parsed->unwrap("battery staple");
  ASSERT_FALSE(bad.is_ok());
  EXPECT_EQ(bad.status().code(), Code::kWrongPassword);
}

// A key file as lifeboat wrote it before roles existed (version 1): the master secret wrapped alone.
TEST(KeyFile, VersionOneStillOpensAsAnAdminKey) {
  Key master = random_key();
  Bytes salt = random_bytes(32);
  auto kek = argon2id("old password", salt, {64, 1, 1});
  ASSERT_TRUE(kek.is_ok());
  Bytes wrapped = Aead(*kek).seal({master.data(), master.size()});
  std::string json = std::string(R"({"version":1,"kdf":"argon2id","memory_kib":64,"iterations":1,"parallelism":1,"salt":")") +
                     base64_encode(salt) + R"(","wrapped_master":")" + base64_encode(wrapped) +
                     R"(","created":"2025-01-01T00:00:00Z","hostname":"h","username":"u"})";
  auto kf = KeyFile::from_json(json);
  ASSERT_TRUE(kf.is_ok()) << kf.status().message();
  EXPECT_EQ(kf->version, 1);
  EXPECT_EQ(kf->role, Role::kAdmin);
  auto s = kf->unwrap("old password");
  ASSERT_TRUE(s.is_ok());
  EXPECT_EQ(s->master, master);
  EXPECT_FALSE(s->signing_seed.has_value());
  EXPECT_EQ(KeyFile::from_json(kf->to_json())->to_json(), kf->to_json());
}

TEST(KeyFile, AppendKeyHoldsNoMaster) {
  RepoKeys repo = RepoKeys::derive(random_key());
  KeySecrets in;
  in.role = Role::kAppend;
  in.content_id = repo.content_id;
  in.chunker = repo.chunker;
  in.seal_public = repo.seal_public;
  in.cache_key = random_key();
  in.config = R"({"version":1})";
  auto kf = KeyFile::create(in, "pw", {64, 1, 1}, "backup-host-1");
  ASSERT_TRUE(kf.is_ok());
  auto parsed = KeyFile::from_json(kf->to_json());
  ASSERT_TRUE(parsed.is_ok());
  EXPECT_EQ(parsed->role, Role::kAppend);
  EXPECT_EQ(parsed->host, "backup-host-1");
  auto s = parsed->unwrap("pw");
  ASSERT_TRUE(s.is_ok()) << s.status().message();
  EXPECT_EQ(s->master, Key{});
  EXPECT_EQ(s->content_id, repo.content_id);
  EXPECT_EQ(s->seal_public, repo.seal_public);
  EXPECT_EQ(s->config, in.config);
  // The JSON names no secret: the role outside cannot be raised without the password.
  EXPECT_EQ(kf->to_json().find(base64_encode({repo.content_id.data(), 32})), std::string::npos);
  // Relabelling an append key file as admin is caught when it is opened.
  std::string relabelled = kf->to_json();
  relabelled.replace(relabelled.find("\"append\""), 8, "\"admin\"");
  auto forged = KeyFile::from_json(relabelled);
  ASSERT_TRUE(forged.is_ok());
  EXPECT_EQ(forged->unwrap("pw").status().code(), Code::kCorrupt);
}

TEST(PublicKey, CapsuleOpensOnlyWithThePrivateKey) {
  RepoKeys a = RepoKeys::derive(random_key()), b = RepoKeys::derive(random_key());
  EXPECT_EQ(x25519_public(a.seal_private), a.seal_public);
  auto [capsule, key] = make_capsule(a.seal_public, 0);
  auto opened = open_capsule(capsule, a.seal_private);
  ASSERT_TRUE(opened.is_ok());
  EXPECT_EQ(*opened, key);
  auto wrong = open_capsule(capsule, b.seal_private);
  ASSERT_TRUE(wrong.is_ok());
  EXPECT_NE(*wrong, key);
  // Two capsules for one recipient never share a key.
  EXPECT_NE(make_capsule(a.seal_public, 0).second, key);
  // A file sealed to the public key: magic, capsule, sealed payload.
  Bytes sealed = seal_to(a.seal_public, 0, as_bytes(std::string("payload")));
  ASSERT_TRUE(has_capsule_magic(sealed));
  auto parts = split_capsule_file(sealed);
  ASSERT_TRUE(parts.is_ok());
  auto k = open_capsule(parts->first, a.seal_private);
  auto plain = Aead(*k).open(parts->second);
  ASSERT_TRUE(plain.is_ok());
  EXPECT_EQ(to_string(*plain), "payload");
  EXPECT_FALSE(Aead(*open_capsule(parts->first, b.seal_private)).open(parts->second).is_ok());
  // A degenerate ephemeral key (the all-zero point) is refused, not turned into a known key.
  Capsule zero;
  EXPECT_FALSE(open_capsule(zero, a.seal_private).is_ok());
}

TEST(PublicKey, Ed25519SignaturesVerifyOnlyUnchanged) {
  Key seed = random_key();
  PublicKey pub = ed25519_public(seed);
  std::string msg = "snapshot 1";
  Signature sig = ed25519_sign(seed, as_bytes(msg));
  EXPECT_TRUE(ed25519_verify(pub, as_bytes(msg), {sig.data(), sig.size()}));
  EXPECT_FALSE(ed25519_verify(pub, as_bytes(std::string("snapshot 2")), {sig.data(), sig.size()}));
  sig[5] ^= 1;
  EXPECT_FALSE(ed25519_verify(pub, as_bytes(msg), {sig.data(), sig.size()}));
  EXPECT_FALSE(ed25519_verify(ed25519_public(random_key()), as_bytes(msg), {sig.data(), sig.size()}));
}

TEST(KeyFile, RejectsGarbage) {
  EXPECT_FALSE(KeyFile::from_json("not json").is_ok());
  EXPECT_FALSE(KeyFile::from_json("{}").is_ok());
  EXPECT_FALSE(KeyFile::from_json(R"({"version":1,"kdf":"argon2id","memory_kib":1,"iterations":1,
      "parallelism":1,"salt":"AAAA","wrapped_master":"AAAA"})").is_ok());
}

}  // namespace lifeboat::crypto

namespace lifeboat::crypto {
namespace {

// FIPS 180-2's "abc" vector and a million 'a's, fed in pieces of every awkward size.
TEST(Sha256Stream, PiecesHashLikeTheWholeAndTheStandardVectors) {
  Sha256Stream abc;
  abc.update(as_bytes("a"));
  abc.update(as_bytes(""));
  abc.update(as_bytes("bc"));
  EXPECT_EQ(abc.finish_hex(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  std::string million(1000000, 'a');
  Sha256Stream m;
  for (size_t at = 0; at < million.size(); at += 4093) m.update(as_bytes(std::string_view(million).substr(at, 4093)));
  EXPECT_EQ(m.finish_hex(), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  auto whole = sha256(as_bytes(million));
  EXPECT_EQ(hex_encode({whole.data(), whole.size()}), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

}  // namespace
}  // namespace lifeboat::crypto
