// State encryption: key options and material (state_key.h), the encrypted file and migration
// forms of the blob codec (blob.h), and DirStore with a key. Byte compatibility with swtpm itself
// is tested live in tests/integration/test_state_encryption.sh.
#include <fcntl.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include "state/blob.h"
#include "state/dir_store.h"
#include "state/state_key.h"
#include "test_util.h"

namespace vtpm::state {
namespace {

using testing::Pattern;
using testing::ReadFileOrDie;
using testing::TempDir;
using testing::WriteFileOrDie;

StateKey Key(StateCipher c, uint8_t seed) {
  return StateKey::FromBytes(Pattern(CipherKeySize(c), seed), c).value();
}

Bytes Str(std::string_view s) { return Bytes(s.begin(), s.end()); }

struct Tlvs {
  uint16_t flags = 0;
  std::vector<std::pair<uint16_t, Bytes>> records;
};
Tlvs Parse(const Bytes& b) {
  Tlvs t;
  ByteReader r(b);
  r.Take(4).value();
  t.flags = r.U16().value();
  r.U32().value();
  while (!r.empty()) {
    const uint16_t tag = r.U16().value();
    const uint32_t len = r.U32().value();
    const ByteSpan v = r.Take(len).value();
    t.records.emplace_back(tag, Bytes(v.begin(), v.end()));
  }
  return t;
}

TEST(StateKeyTest, ParsesSwtpmOptionForms) {
  auto k = ParseKeyOption("file=/k,format=binary,mode=aes-256-cbc,remove", "--key").value();
  EXPECT_EQ(k.kind, KeySpec::Kind::kKey);
  EXPECT_EQ(k.path, "/k");
  EXPECT_TRUE(k.binary);
  EXPECT_TRUE(k.remove);
  EXPECT_EQ(k.cipher, StateCipher::kAes256Cbc);
  auto p = ParseKeyOption("pwdfd=7,kdf=sha512", "--key").value();
  EXPECT_EQ(p.kind, KeySpec::Kind::kPassphrase);
  EXPECT_EQ(p.fd, 7);
  EXPECT_FALSE(p.pbkdf2);
  EXPECT_EQ(p.cipher, StateCipher::kAes128Cbc);  // swtpm's default
  for (const char* bad :
       {"", "mode=aes-cbc", "file=/a,fd=3", "file=/a,mode=des", "file=/a,format=base64",
        "pwdfile=/a,format=binary", "file=/a,foo=1", "fd=x", "pwdfile=/a,kdf=md5", "file="}) {
    auto r = ParseKeyOption(bad, "--key");
    EXPECT_FALSE(r.has_value()) << bad;
    if (!r) {
      EXPECT_NE(r.error().message.find("--key"), std::string::npos) << bad;
    }
  }
}

TEST(StateKeyTest, LoadsKeyFilesAsSwtpmDoes) {
  TempDir dir;
  const std::string f = dir / "key";
  auto load = [&](std::string_view text, std::string_view opts) {
    WriteFileOrDie(f, Str(text));
    return LoadKeyOption(fmt::format("file={}{}", f, opts), "--key");
  };
  EXPECT_EQ(ToHex((*load("000102030405060708090a0b0c0d0e0f\n", ""))->bytes()),
            "000102030405060708090a0b0c0d0e0f");
  EXPECT_EQ((*load("0x000102030405060708090A0B0C0D0E0F", ""))->bytes()[15], 0x0f);
  EXPECT_EQ((*load(std::string(64, 'a') + " trailing", ",mode=aes-256-cbc"))->size(), 32u);
  EXPECT_FALSE(load(std::string(64, 'a'), ""));                // 256-bit key, 128-bit mode
  EXPECT_FALSE(load("00010203", ""));                          // too short
  EXPECT_FALSE(load("zz0102030405060708090a0b0c0d0e0f", ""));  // not hex
  EXPECT_FALSE(load(std::string(31, '0'), ""));                // odd digit count
  EXPECT_EQ((*load(std::string(16, 'x'), ",format=binary"))->bytes()[0], 'x');
  EXPECT_FALSE(load(std::string(17, 'x'), ",format=binary"));
  EXPECT_FALSE(LoadKeyOption("file=" + (dir / "absent"), "--key"));
  // remove=true: gone after reading.
  ASSERT_TRUE(load("000102030405060708090a0b0c0d0e0f", ",remove=true"));
  EXPECT_FALSE(testing::Exists(f));
}

TEST(StateKeyTest, PassphrasesDeriveSwtpmsKeys) {
  // Expected keys computed independently (Python hashlib) for the passphrase "secret-pass\n":
  //   pbkdf2_hmac('sha512', pw, b'swtpm', 1000, 32) and sha512(pw)[:16].
  TempDir dir;
  const std::string f = dir / "pwd";
  WriteFileOrDie(f, Str("secret-pass\n"));
  auto pb = LoadKeyOption("pwdfile=" + f + ",mode=aes-256-cbc", "--key").value();
  auto sha = LoadKeyOption("pwdfile=" + f + ",kdf=sha512", "--key").value();
  EXPECT_EQ(ToHex(pb->bytes()), "1cd6f3a56ef58d6bc0ad2e51dcd78040c590dc6c9e20e10c962953fa09f3ed42");
  EXPECT_EQ(ToHex(sha->bytes()), "61216305bc9bdd94fb7d997e02624e2e");
  // An fd is read to its end and closed.
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  ASSERT_EQ(write(p[1], "secret-pass\n", 12), 12);
  close(p[1]);
  auto viafd = LoadKeyOption(fmt::format("pwdfd={},kdf=sha512", p[0]), "--key").value();
  EXPECT_EQ(ToHex(viafd->bytes()), "61216305bc9bdd94fb7d997e02624e2e");
  EXPECT_EQ(fcntl(p[0], F_GETFD), -1) << "the passphrase fd is still open";
}

TEST(EncryptedBlobTest, CbcFileRoundTripsInSwtpmsLayout) {
  for (StateCipher c : {StateCipher::kAes128Cbc, StateCipher::kAes256Cbc}) {
    const StateKey key = Key(c, 1);
    for (size_t n : {0u, 1u, 15u, 16u, 17u, 31u, 32u, 33u, 1299u}) {
      const Bytes plain = Pattern(n, 2);
      const Bytes file = EncodeSealedFileBlob(plain, 7, &key, "permall");
      const Tlvs t = Parse(file);
      const size_t ks = key.size();
      EXPECT_EQ(t.flags, ks == 32 ? 0x09 : 0x01);
      ASSERT_EQ(t.records.size(), 4u);
      EXPECT_EQ(t.records[0].first, kTagEncryptedData);
      EXPECT_EQ(t.records[0].second.size(), (n / ks + 1) * ks) << "padded to the key size";
      EXPECT_EQ(t.records[1].first, kTagHmac);
      EXPECT_EQ(t.records[1].second.size(), 32u);
      EXPECT_EQ(t.records[2].first, kTagIvecEncryptedData);
      EXPECT_EQ(t.records[2].second.size(), ks) << "IV as long as the key";
      EXPECT_EQ(t.records[3].first, kTagVtpmSeal);
      auto back = DecodeStateFile(file, &key, "permall").value();
      EXPECT_EQ(back.blob, plain) << n;
      EXPECT_EQ(back.generation, 7u);
      EXPECT_EQ(back.cipher, c);
      EXPECT_FALSE(back.locked);
      // Without the key: the seal is still checked, nothing decrypted.
      auto locked = DecodeStateFile(file).value();
      EXPECT_TRUE(locked.locked);
      EXPECT_EQ(locked.generation, 7u);
    }
  }
}

TEST(EncryptedBlobTest, WrongKeyIsToldApartFromDamage) {
  const StateKey key = Key(StateCipher::kAes128Cbc, 1);
  const StateKey other = Key(StateCipher::kAes128Cbc, 9);
  const StateKey big = Key(StateCipher::kAes256Cbc, 1);
  const Bytes file = EncodeSealedFileBlob(Pattern(100, 3), 1, &key, "permall");
  EXPECT_EQ(DecodeStateFile(file, &other, "permall").error().code, Errc::kWrongKey);
  EXPECT_EQ(DecodeStateFile(file, &big, "permall").error().code, Errc::kWrongKey);
  Bytes flipped = file;
  flipped[30] ^= 0x01;  // inside the ciphertext: the seal catches it
  auto r = DecodeStateFile(flipped, &key, "permall");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::kCorrupt) << r.error().message;
  // Plain state opens whatever the key (turning encryption on for existing state).
  EXPECT_EQ(DecodeStateFile(EncodeSealedFileBlob(Pattern(9, 4), 1), &key).value().blob,
            Pattern(9, 4));
}

TEST(EncryptedBlobTest, AeadBindsNameGenerationAndHeader) {
  const StateKey key = Key(StateCipher::kAes256Gcm, 5);
  const Bytes plain = Pattern(500, 6);
  const Bytes file = EncodeSealedFileBlob(plain, 3, &key, "permall");
  EXPECT_EQ(Parse(file).flags, 0x09) << "flagged encrypted so swtpm refuses it";
  EXPECT_EQ(DecodeStateFile(file, &key, "permall").value().blob, plain);
  EXPECT_EQ(DecodeStateFile(file, &key, "volatilestate").error().code, Errc::kWrongKey)
      << "moved to another blob's name";
  const StateKey cbc = Key(StateCipher::kAes256Cbc, 5);
  EXPECT_EQ(DecodeStateFile(file, &cbc, "permall").error().code, Errc::kWrongKey);
  Bytes reheaded = file;
  reheaded[1] = 2;  // min_version: part of the authenticated header
  EXPECT_FALSE(DecodeStateFile(reheaded, &key, "permall"));
  // The generation lives in the AEAD record and the seal; a rewritten seal with another
  // generation does not match the record.
  Bytes regen = file;
  const Tlvs t = Parse(file);
  ASSERT_EQ(t.records.back().first, kTagVtpmSeal);
  regen[regen.size() - 44 + 4 + 7] ^= 1;  // the seal's generation (u64 at offset 4)
  EXPECT_FALSE(DecodeStateFile(regen, &key, "permall"));
}

TEST(EncryptedBlobTest, MigrationBlobsUnderBothKeys) {
  const StateKey state_key = Key(StateCipher::kAes128Cbc, 1);
  const StateKey mig = Key(StateCipher::kAes256Cbc, 2);
  const Bytes plain = Pattern(700, 3);
  // Layouts as swtpm 0.7.1 answers GET_STATEBLOB (SWTPM.md 3.2): flags 0x16 decrypted, 0x17 not.
  const Bytes both = EncodeMigrationBlob(plain, &state_key, &mig);
  const Bytes mig_only = EncodeMigrationBlob(plain, nullptr, &mig);
  EXPECT_EQ(Parse(both).flags, 0x17);
  EXPECT_EQ(Parse(mig_only).flags, 0x16);
  const Tlvs t = Parse(mig_only);
  ASSERT_EQ(t.records.size(), 3u);
  EXPECT_EQ(t.records[0].first, kTagEncryptedMigrationData);
  EXPECT_EQ(t.records[2].first, kTagIvecEncryptedMigrationData);
  EXPECT_EQ(t.records[2].second.size(), 32u);
  EXPECT_EQ(DecodeStateBlob(both, &state_key, &mig).value(), plain);
  EXPECT_EQ(DecodeStateBlob(mig_only, nullptr, &mig).value(), plain);
  EXPECT_EQ(DecodeStateBlob(both, nullptr, &mig).error().code, Errc::kNotFound);
  EXPECT_EQ(DecodeStateBlob(both, &state_key, nullptr).error().code, Errc::kNotFound);
  const StateKey wrong = Key(StateCipher::kAes256Cbc, 7);
  EXPECT_EQ(DecodeStateBlob(both, &state_key, &wrong).error().code, Errc::kWrongKey);
  // Plain blobs are taken even when keys are configured ("upgrade to encryption", as swtpm).
  EXPECT_EQ(DecodeStateBlob(EncodeMigrationBlob(plain), &state_key, &mig).value(), plain);
}

TEST(EncryptedDirStoreTest, WritesEncryptedAndEncryptsPlainFilesWhenLocked) {
  TempDir dir;
  auto key = std::make_shared<const StateKey>(Key(StateCipher::kAes256Cbc, 4));
  DirStoreOptions plain_opts;
  plain_opts.directory = dir.path();
  plain_opts.tpm_version = TpmVersion::kTpm20;
  {
    auto s = DirStore::Open(plain_opts, NullLogger()).value();
    ASSERT_TRUE(s->Lock());
    ASSERT_TRUE(s->Store("permall", Pattern(300, 1)));
    ASSERT_TRUE(s->Store("permall", Pattern(300, 2)));  // a .bak now
  }
  EXPECT_EQ(Parse(ReadFileOrDie(dir / "tpm2-00.permall")).flags, 0);
  DirStoreOptions enc_opts = plain_opts;
  enc_opts.key = key;
  auto s = DirStore::Open(enc_opts, NullLogger()).value();
  ASSERT_TRUE(s->Lock());
  for (const char* f : {"tpm2-00.permall", "tpm2-00.permall.bak"}) {
    EXPECT_EQ(Parse(ReadFileOrDie(dir / f)).flags, 0x09) << f;
  }
  EXPECT_EQ(s->Load("permall").value(), Pattern(300, 2));
  ASSERT_TRUE(s->Store("permall", Pattern(300, 3)));
  EXPECT_EQ(s->Load("permall").value(), Pattern(300, 3));
  s.reset();
  // Without the key the store refuses to start, as a key problem (not damage).
  auto nokey = DirStore::Open(plain_opts, NullLogger()).value();
  auto st = nokey->CheckStartable();
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code, Errc::kWrongKey) << st.error().message;
}

}  // namespace
}  // namespace vtpm::state
