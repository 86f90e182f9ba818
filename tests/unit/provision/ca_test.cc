#include "provision/ca.h"

#include <gtest/gtest.h>
#include <openssl/pem.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "fakes/tpm_fixture.h"

namespace vtpm::provision {
namespace {

using vtpm::testing::TempDir;

const std::string kData = std::string(VTPM_PROVISION_TESTDATA) + "/swtpm-0.7.1/";

mode_t ModeOf(const std::string& p) {
  struct stat st;
  EXPECT_EQ(stat(p.c_str(), &st), 0) << p;
  return st.st_mode & 07777;
}

void WriteText(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary);
  f << text;
}

// Issues an EK certificate with |ca| and verifies it against the CA's chain with OpenSSL.
void ExpectChainVerifies(const Ca& ca) {
  auto ek_raw = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-384");
  EvpPkeyPtr ek(ek_raw);
  CertFields f{"vm", Bytes{0x11}, std::time(nullptr) - 60};
  auto der = IssueEkCertificate(ca.issuer(), ek.get(), TpmInfo{}, f);
  ASSERT_TRUE(der.has_value()) << der.error().message;
  auto cert = CertFromDer(*der);
  ASSERT_TRUE(cert.has_value());
  X509_STORE* store = X509_STORE_new();
  STACK_OF(X509)* untrusted = sk_X509_new_null();
  if (ca.chain().empty()) {
    X509_STORE_add_cert(store, ca.cert());
  } else {
    sk_X509_push(untrusted, ca.cert());
    for (size_t i = 0; i + 1 < ca.chain().size(); ++i) sk_X509_push(untrusted, ca.chain()[i].get());
    X509_STORE_add_cert(store, ca.chain().back().get());
  }
  X509_STORE_CTX* ctx = X509_STORE_CTX_new();
  X509_STORE_CTX_init(ctx, store, cert->get(), untrusted);
  int ok = X509_verify_cert(ctx);
  EXPECT_EQ(ok, 1) << X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx));
  X509_STORE_CTX_free(ctx);
  sk_X509_free(untrusted);
  X509_STORE_free(store);
}

TEST(LocalCa, CreatedOnFirstUseWithPrivateKeysThenReloaded) {
  TempDir tmp;
  std::string dir = tmp.path() + "/a/b/localca";
  auto ca = Ca::OpenLocal(dir, CaKeyType::kEcdsaP384, SystemClock(), SystemRandom(), NullLogger());
  ASSERT_TRUE(ca.has_value()) << ca.error().message;
  EXPECT_EQ(ModeOf(dir), 0700u);
  EXPECT_EQ(ModeOf(dir + "/root-key.pem"), 0600u);
  EXPECT_EQ(ModeOf(dir + "/issuer-key.pem"), 0600u);
  EXPECT_EQ(ModeOf(dir + "/root-cert.pem"), 0644u);
  EXPECT_EQ(ModeOf(dir + "/issuer-cert.pem"), 0644u);
  ASSERT_EQ(ca->chain().size(), 1u);
  EXPECT_EQ(EVP_PKEY_base_id(X509_get0_pubkey(ca->cert())), EVP_PKEY_EC);
  ExpectChainVerifies(*ca);

  auto again = Ca::OpenLocal(dir, CaKeyType::kRsa3072, SystemClock(), SystemRandom(), NullLogger());
  ASSERT_TRUE(again.has_value()) << again.error().message;
  // Same CA (the key type argument only matters on creation).
  EXPECT_EQ(X509_cmp(again->cert(), ca->cert()), 0);
  ExpectChainVerifies(*again);
}

TEST(LocalCa, IncompleteCaIsAnErrorNamingTheFiles) {
  TempDir tmp;
  std::string dir = tmp.path() + "/ca";
  ASSERT_TRUE(
      Ca::OpenLocal(dir, CaKeyType::kEcdsaP256, SystemClock(), SystemRandom(), NullLogger()));
  std::filesystem::remove(dir + "/issuer-key.pem");
  auto ca = Ca::OpenLocal(dir, CaKeyType::kEcdsaP256, SystemClock(), SystemRandom(), NullLogger());
  ASSERT_FALSE(ca.has_value());
  EXPECT_NE(ca.error().message.find("incomplete"), std::string::npos) << ca.error().message;
  EXPECT_NE(ca.error().message.find("issuer-key.pem"), std::string::npos);
}

// Creation interrupted before the issuer certificate (written last): no certificate can have
// been issued, so the CA is made anew.
TEST(LocalCa, InterruptedCreationIsRedone) {
  TempDir tmp;
  std::string dir = tmp.path() + "/ca";
  ASSERT_TRUE(
      Ca::OpenLocal(dir, CaKeyType::kEcdsaP256, SystemClock(), SystemRandom(), NullLogger()));
  std::filesystem::remove(dir + "/issuer-cert.pem");
  std::filesystem::remove(dir + "/issuer-key.pem");
  auto ca = Ca::OpenLocal(dir, CaKeyType::kEcdsaP256, SystemClock(), SystemRandom(), NullLogger());
  ASSERT_TRUE(ca.has_value()) << ca.error().message;
  ExpectChainVerifies(*ca);
  EXPECT_TRUE(std::filesystem::exists(dir + "/issuer-cert.pem"));
}

TEST(LocalCa, RsaCaWorks) {
  TempDir tmp;
  auto ca = Ca::OpenLocal(tmp.path() + "/ca", CaKeyType::kRsa2048, SystemClock(), SystemRandom(),
                          NullLogger());
  ASSERT_TRUE(ca.has_value()) << ca.error().message;
  ExpectChainVerifies(*ca);
}

TEST(UserCa, SwtpmLocalCaLoads) {
  auto ca = Ca::Load(kData + "signkey.pem", kData + "issuercert.pem",
                     kData + "swtpm-localca-rootca-cert.pem", "");
  ASSERT_TRUE(ca.has_value()) << ca.error().message;
  EXPECT_EQ(ca->chain().size(), 1u);
}

TEST(UserCa, MissingKeyUnparsableKeyAndMismatchAreClearErrors) {
  TempDir tmp;
  auto missing = Ca::Load(tmp.path() + "/nope.pem", kData + "issuercert.pem", "", "");
  ASSERT_FALSE(missing.has_value());
  EXPECT_NE(missing.error().message.find("does not exist"), std::string::npos);

  WriteText(tmp.path() + "/garbage.pem", "not a key\n");
  auto garbage = Ca::Load(tmp.path() + "/garbage.pem", kData + "issuercert.pem", "", "");
  ASSERT_FALSE(garbage.has_value());
  EXPECT_NE(garbage.error().message.find("cannot load the CA signing key"), std::string::npos);

  auto dir_as_key = Ca::Load(tmp.path(), kData + "issuercert.pem", "", "");
  ASSERT_FALSE(dir_as_key.has_value());
  EXPECT_NE(dir_as_key.error().message.find("not a regular file"), std::string::npos);

  // The swtpm key with the swtpm root certificate: a different key.
  auto mismatch = Ca::Load(kData + "signkey.pem", kData + "swtpm-localca-rootca-cert.pem", "", "");
  ASSERT_FALSE(mismatch.has_value());
  EXPECT_NE(mismatch.error().message.find("does not belong"), std::string::npos);
}

TEST(UserCa, EncryptedKeyNeedsItsPasswordAndNeverPrompts) {
  TempDir tmp;
  auto ca = Ca::OpenLocal(tmp.path() + "/ca", CaKeyType::kEcdsaP256, SystemClock(), SystemRandom(),
                          NullLogger());
  ASSERT_TRUE(ca.has_value());
  // Re-encrypt the issuer key with a password.
  FILE* in = fopen((tmp.path() + "/ca/issuer-key.pem").c_str(), "r");
  ASSERT_NE(in, nullptr);
  EVP_PKEY* key = PEM_read_PrivateKey(in, nullptr, nullptr, nullptr);
  fclose(in);
  ASSERT_NE(key, nullptr);
  std::string enc = tmp.path() + "/enc.pem";
  FILE* out = fopen(enc.c_str(), "w");
  char pw[] = "s3cret";
  ASSERT_EQ(PEM_write_PKCS8PrivateKey(out, key, EVP_aes_256_cbc(), pw, 6, nullptr, nullptr), 1);
  fclose(out);
  EVP_PKEY_free(key);
  std::string cert = tmp.path() + "/ca/issuer-cert.pem";
  EXPECT_FALSE(Ca::Load(enc, cert, "", "").has_value());
  EXPECT_FALSE(Ca::Load(enc, cert, "", "wrong").has_value());
  EXPECT_TRUE(Ca::Load(enc, cert, "", "s3cret").has_value());
}

TEST(UserCa, LeafCertificateIsNotAcceptedAsCa) {
  TempDir tmp;
  auto key = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
  EvpPkeyPtr k(key);
  X509Ptr c(X509_new());
  X509_set_version(c.get(), X509_VERSION_3);
  X509_set_pubkey(c.get(), k.get());
  ASN1_TIME_set(X509_getm_notBefore(c.get()), 0);
  ASN1_TIME_set(X509_getm_notAfter(c.get()), 4102444800);
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, c.get(), c.get(), nullptr, nullptr, 0);
  X509_EXTENSION* bc = X509V3_EXT_conf_nid(nullptr, &ctx, NID_basic_constraints, "CA:FALSE");
  X509_add_ext(c.get(), bc, -1);
  X509_EXTENSION_free(bc);
  X509_sign(c.get(), k.get(), EVP_sha256());
  FILE* f = fopen((tmp.path() + "/k.pem").c_str(), "w");
  PEM_write_PrivateKey(f, k.get(), nullptr, nullptr, 0, nullptr, nullptr);
  fclose(f);
  f = fopen((tmp.path() + "/c.pem").c_str(), "w");
  PEM_write_X509(f, c.get());
  fclose(f);
  auto ca = Ca::Load(tmp.path() + "/k.pem", tmp.path() + "/c.pem", "", "");
  ASSERT_FALSE(ca.has_value());
  EXPECT_NE(ca.error().message.find("not a CA certificate"), std::string::npos);
}

TEST(LocalCa, DefaultDirectory) {
  EXPECT_EQ(DefaultLocalCaDir(0, "/x", "/root"), "/var/lib/vtpm-localca");
  EXPECT_EQ(DefaultLocalCaDir(1000, "/home/u/.cfg", "/home/u"), "/home/u/.cfg/vtpm/localca");
  EXPECT_EQ(DefaultLocalCaDir(1000, nullptr, "/home/u"), "/home/u/.config/vtpm/localca");
  EXPECT_EQ(DefaultLocalCaDir(1000, "relative", "/home/u"), "/home/u/.config/vtpm/localca");
}

TEST(LocalCa, KeyTypeNames) {
  EXPECT_EQ(*ParseCaKeyType("ecdsa-p384"), CaKeyType::kEcdsaP384);
  EXPECT_EQ(*ParseCaKeyType("rsa3072"), CaKeyType::kRsa3072);
  EXPECT_FALSE(ParseCaKeyType("dsa").has_value());
}

}  // namespace
}  // namespace vtpm::provision
