// Golden certificates. testdata/swtpm-0.7.1 holds what Debian's swtpm_setup 0.7.1 made on
// this project's reference machine (its local CA's RSA-3072 key and issuer certificate, and
// the EK/platform certificates it stored in NV). Given the same CA key, EK public key, serial
// number and time, our issuer must produce exactly the same DER bytes: every field, every
// extension, their order and string types. RSA PKCS#1 v1.5 signatures are deterministic, so
// the signatures match too.
#include "provision/cert.h"

#include <gtest/gtest.h>
#include <openssl/x509.h>

#include <fstream>
#include <iterator>

#include "provision/ca.h"

namespace vtpm::provision {
namespace {

const std::string kData = std::string(VTPM_PROVISION_TESTDATA) + "/swtpm-0.7.1/";
const std::string kVmId = "testvm:11111111-2222-3333-4444-555555555555";

Bytes ReadFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  EXPECT_TRUE(f.good()) << path;
  return Bytes(std::istreambuf_iterator<char>(f), {});
}

std::time_t Utc(int y, int mo, int d, int h, int mi, int s) {
  std::tm tm{};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = s;
  return timegm(&tm);
}

class SwtpmGolden : public ::testing::Test {
 protected:
  void SetUp() override {
    auto ca = Ca::Load(kData + "signkey.pem", kData + "issuercert.pem",
                       kData + "swtpm-localca-rootca-cert.pem", "");
    ASSERT_TRUE(ca.has_value()) << ca.error().message;
    ca_.emplace(std::move(*ca));
  }
  // The EK public key, taken from swtpm's certificate (it is the TPM's key).
  EvpPkeyPtr KeyOf(const Bytes& der) {
    auto cert = CertFromDer(der);
    EXPECT_TRUE(cert.has_value());
    EVP_PKEY* k = X509_get_pubkey(cert->get());
    return EvpPkeyPtr(k);
  }
  std::optional<Ca> ca_;
};

TEST_F(SwtpmGolden, RsaEkCertificateIsByteIdentical) {
  Bytes golden = ReadFile(kData + "ek-rsa2048.der");
  EvpPkeyPtr ek = KeyOf(golden);
  CertFields f{kVmId, Bytes{0x02}, Utc(2026, 11, 26, 23, 59, 4)};
  auto der = IssueEkCertificate(ca_->issuer(), ek.get(), TpmInfo{}, f);
  ASSERT_TRUE(der.has_value()) << der.error().message;
  EXPECT_EQ(ToHex(*der), ToHex(golden));
}

TEST_F(SwtpmGolden, EccEkCertificateIsByteIdentical) {
  Bytes golden = ReadFile(kData + "ek-secp384r1.der");
  EvpPkeyPtr ek = KeyOf(golden);
  CertFields f{kVmId, Bytes{0x04}, Utc(2026, 11, 26, 23, 59, 4)};
  auto der = IssueEkCertificate(ca_->issuer(), ek.get(), TpmInfo{}, f);
  ASSERT_TRUE(der.has_value()) << der.error().message;
  EXPECT_EQ(ToHex(*der), ToHex(golden));
}

TEST_F(SwtpmGolden, PlatformCertificateIsByteIdentical) {
  Bytes golden = ReadFile(kData + "platform.der");
  EvpPkeyPtr ek = KeyOf(golden);
  CertFields f{kVmId, Bytes{0x03}, Utc(2026, 11, 26, 23, 59, 4)};
  PlatformInfo platform{"Fedora", "QEMU", "2.1"};  // Debian's /etc/swtpm-localca.options
  auto der = IssuePlatformCertificate(ca_->issuer(), ek.get(), platform, TpmInfo{}, true, f);
  ASSERT_TRUE(der.has_value()) << der.error().message;
  EXPECT_EQ(ToHex(*der), ToHex(golden));
}

// swtpm signs TPM 1.2 certificates with SHA-1; with that digest injected, ours is identical.
// (vtpm itself signs with the CA's SHA-2 digest: SHA-1 signatures are no longer acceptable.)
TEST_F(SwtpmGolden, Tpm12EkCertificateIsByteIdenticalWithSha1) {
  Bytes golden = ReadFile(kData + "tpm12-ek.der");
  EvpPkeyPtr ek = KeyOf(golden);
  Issuer issuer = ca_->issuer();
  issuer.digest = EVP_sha1();
  TpmInfo tpm12{"1.2", 2, 116, "id:00001014", "swtpm", "id:00740001"};
  CertFields f{"", Bytes{0x0b}, Utc(2026, 11, 27, 0, 0, 25)};
  auto der = IssueEkCertificate(issuer, ek.get(), tpm12, f);
  ASSERT_TRUE(der.has_value()) << der.error().message;
  EXPECT_EQ(ToHex(*der), ToHex(golden));
}

// Fields checked one by one through OpenSSL's parser, with an ECDSA CA (whose signatures are
// randomized, so no byte comparison) and a UTF-8 common name.
TEST(Cert, EcdsaSignedEkCertificateFields) {
  auto key = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-384");
  ASSERT_NE(key, nullptr);
  EvpPkeyPtr ca_key(key);
  // A self-signed CA certificate to issue from.
  X509Ptr ca_cert(X509_new());
  X509_set_version(ca_cert.get(), X509_VERSION_3);
  X509_NAME_add_entry_by_txt(X509_get_subject_name(ca_cert.get()), "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("test CA"), -1, -1, 0);
  X509_set_issuer_name(ca_cert.get(), X509_get_subject_name(ca_cert.get()));
  X509_set_pubkey(ca_cert.get(), ca_key.get());
  ASN1_TIME_set(X509_getm_notBefore(ca_cert.get()), 0);
  ASN1_TIME_set(X509_getm_notAfter(ca_cert.get()), 4102444800);
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, ca_cert.get(), ca_cert.get(), nullptr, nullptr, 0);
  X509_EXTENSION* ski = X509V3_EXT_conf_nid(nullptr, &ctx, NID_subject_key_identifier, "hash");
  X509_add_ext(ca_cert.get(), ski, -1);
  X509_EXTENSION_free(ski);
  ASSERT_GT(X509_sign(ca_cert.get(), ca_key.get(), EVP_sha384()), 0);

  auto ek_key = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
  EvpPkeyPtr ek(ek_key);
  Issuer issuer{ca_key.get(), ca_cert.get(), EVP_sha384()};
  CertFields f{"vm\xc3\xa9", Bytes{0x40, 0x01}, 1700000000};
  TpmInfo tpm;
  auto der = IssueEkCertificate(issuer, ek.get(), tpm, f);
  ASSERT_TRUE(der.has_value()) << der.error().message;
  auto cert = CertFromDer(*der);
  ASSERT_TRUE(cert.has_value());
  X509* c = cert->get();
  EXPECT_EQ(X509_verify(c, ca_key.get()), 1);
  EXPECT_EQ(X509_get_signature_nid(c), NID_ecdsa_with_SHA384);
  EXPECT_EQ(ASN1_INTEGER_get(X509_get0_serialNumber(c)), 0x4001);
  EXPECT_EQ(EVP_PKEY_eq(X509_get0_pubkey(c), ek.get()), 1);
  // Subject CN as UTF8String (not printable).
  X509_NAME_ENTRY* cn = X509_NAME_get_entry(X509_get_subject_name(c), 0);
  EXPECT_EQ(ASN1_STRING_type(X509_NAME_ENTRY_get_data(cn)), V_ASN1_UTF8STRING);
  // Validity.
  EXPECT_EQ(ASN1_TIME_cmp_time_t(X509_get0_notBefore(c), 1700000000), 0);
  EXPECT_EQ(
      std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(X509_get0_notAfter(c)))),
      "99991231235959Z");
  // Extensions: order, criticality.
  const int expected_nids[] = {NID_ext_key_usage,
                               NID_subject_alt_name,
                               NID_basic_constraints,
                               NID_subject_directory_attributes,
                               NID_authority_key_identifier,
                               NID_key_usage};
  const int expected_crit[] = {0, 1, 1, 0, 0, 1};
  ASSERT_EQ(X509_get_ext_count(c), 6);
  for (int i = 0; i < 6; ++i) {
    X509_EXTENSION* ext = X509_get_ext(c, i);
    EXPECT_EQ(OBJ_obj2nid(X509_EXTENSION_get_object(ext)), expected_nids[i]) << i;
    EXPECT_EQ(X509_EXTENSION_get_critical(ext), expected_crit[i]) << i;
  }
  // keyAgreement for an EC EK.
  EXPECT_EQ(X509_get_key_usage(c), static_cast<uint32_t>(KU_KEY_AGREEMENT));
  // AKI = the CA's SKI.
  EXPECT_EQ(
      ASN1_OCTET_STRING_cmp(X509_get0_authority_key_id(c), X509_get0_subject_key_id(ca_cert.get())),
      0);
  // tpmSpecification DER.
  X509_EXTENSION* sda = X509_get_ext(c, 3);
  const ASN1_OCTET_STRING* v = X509_EXTENSION_get_data(sda);
  EXPECT_EQ(ToHex(ByteSpan(ASN1_STRING_get0_data(v), static_cast<size_t>(ASN1_STRING_length(v)))),
            "3019301706056781050210310e300c0c03322e30020100020200a4");
}

TEST(Cert, RejectsBadInputs) {
  Issuer none;
  CertFields f{"vm", Bytes{1}, 0};
  EXPECT_FALSE(IssueEkCertificate(none, nullptr, TpmInfo{}, f).has_value());
  auto ca = Ca::Load(kData + "signkey.pem", kData + "issuercert.pem", "", "");
  ASSERT_TRUE(ca.has_value()) << ca.error().message;
  Bytes golden = ReadFile(kData + "ek-rsa2048.der");
  auto cert = CertFromDer(golden);
  ASSERT_TRUE(cert.has_value());
  EVP_PKEY* ek = X509_get0_pubkey(cert->get());
  // Negative / oversized serials.
  EXPECT_FALSE(IssueEkCertificate(ca->issuer(), ek, TpmInfo{}, {"vm", Bytes{0x80}, 0}));
  EXPECT_FALSE(IssueEkCertificate(ca->issuer(), ek, TpmInfo{}, {"vm", Bytes(21, 1), 0}));
  // Control characters in a name; an over-long platform string.
  EXPECT_FALSE(IssueEkCertificate(ca->issuer(), ek, TpmInfo{}, {"vm\nx", Bytes{1}, 0}));
  PlatformInfo p{std::string(300, 'a'), "m", "v"};
  EXPECT_FALSE(IssuePlatformCertificate(ca->issuer(), ek, p, TpmInfo{}, true, f));
  // A TPM specification that would not be a number.
  TpmInfo bad;
  bad.family = "2.0\nx = y";
  auto r = IssueEkCertificate(ca->issuer(), ek, bad, f);
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message.find("specification"), std::string::npos);
}

TEST(Cert, NewSerialIsPositiveSixteenBytes) {
  for (int i = 0; i < 32; ++i) {
    auto s = NewSerial(SystemRandom());
    ASSERT_TRUE(s.has_value());
    EXPECT_EQ(s->size(), 16u);
    EXPECT_EQ((*s)[0] & 0xc0, 0x40);
  }
  auto fixed = NewSerial([](std::span<uint8_t> b) {
    std::fill(b.begin(), b.end(), 0xff);
    return Ok();
  });
  EXPECT_EQ(ToHex(*fixed), "7fffffffffffffffffffffffffffffff");
}

TEST(Cert, ParseTpmInfoFromLibtpmsJson) {
  auto info = ParseTpmInfo(
      R"({"TPMSpecification":{"family":"2.0","level":0,"revision":164},)"
      R"("TPMAttributes":{"manufacturer":"id:00001014","version":"id:20191023","model":"swtpm"}})");
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->revision, 164);
  EXPECT_EQ(info->version, "id:20191023");
  EXPECT_FALSE(ParseTpmInfo("{").has_value());
  EXPECT_FALSE(ParseTpmInfo(R"({"TPMSpecification":{}})").has_value());
}

TEST(Cert, PublicKeyFromTpmRejectsMismatchedSizes) {
  tpmcmd::Public p;
  p.type = tpmcmd::kAlgRsa;
  p.parameters = tpmcmd::RsaParms{{}, {}, 2048, 0};
  p.unique = Bytes(100, 1);
  EXPECT_FALSE(PublicKeyFromTpm(p).has_value());
  p.type = tpmcmd::kAlgEcc;
  p.parameters = tpmcmd::EccParms{{}, {}, tpmcmd::kEccNistP256, {}};
  p.unique = tpmcmd::EccPoint{Bytes(33, 1), Bytes(32, 1)};
  EXPECT_FALSE(PublicKeyFromTpm(p).has_value());
  // A point not on the curve.
  p.unique = tpmcmd::EccPoint{Bytes(32, 1), Bytes(32, 1)};
  EXPECT_FALSE(PublicKeyFromTpm(p).has_value());
}

}  // namespace
}  // namespace vtpm::provision
