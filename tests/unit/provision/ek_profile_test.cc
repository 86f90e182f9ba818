#include "provision/ek_profile.h"

#include <gtest/gtest.h>

namespace vtpm::provision {
namespace {

// The templates as TPMT_PUBLIC bytes. rsa2048 and secp384r1 are byte-for-byte what
// swtpm_setup 0.7.1 sent in TPM2_CreatePrimary (captured with swtpm --log level=20).
TEST(EkProfile, Rsa2048TemplateMatchesSwtpmSetup) {
  EXPECT_EQ(ToHex(tpmcmd::MarshalPublic(EkTemplate(EkAlg::kRsa2048))),
            "0001000b000300b20020837197674484b3f81a90cc8d46a5d724fd52d76e06520b64f2a1da1b331469aa"
            "00060080004300100800000000000100" +
                std::string(512, '0'));
}

TEST(EkProfile, EccP384TemplateMatchesSwtpmSetup) {
  EXPECT_EQ(ToHex(tpmcmd::MarshalPublic(EkTemplate(EkAlg::kEccP384))),
            "0023000c000300f20030b26e7d28d11a50bc53d882bcf5fd3a1a074148bb35d3b4e4cb1c0ad9bde419"
            "cacb47ba09699646150f9fc000f3f80e1200060100004300100004001000000000");
}

// TCG EK Credential Profile 2.5 template L-2 (tpm2_createek -G ecc uses the same).
TEST(EkProfile, EccP256TemplateIsTcgL2) {
  EXPECT_EQ(ToHex(tpmcmd::MarshalPublic(EkTemplate(EkAlg::kEccP256))),
            "0023000b000300b20020837197674484b3f81a90cc8d46a5d724fd52d76e06520b64f2a1da1b331469aa"
            "000600800043001000030010"
            "0020" +
                std::string(64, '0') + "0020" + std::string(64, '0'));
}

// TCG template H-6, as swtpm_setup --rsa-keysize 3072.
TEST(EkProfile, Rsa3072TemplateIsTcgH6) {
  EXPECT_EQ(ToHex(tpmcmd::MarshalPublic(EkTemplate(EkAlg::kRsa3072))),
            "0001000c000300f20030b26e7d28d11a50bc53d882bcf5fd3a1a074148bb35d3b4e4cb1c0ad9bde419"
            "cacb47ba09699646150f9fc000f3f80e1200060100004300100c00000000000000");
}

TEST(EkProfile, SigningVariantsAsSwtpmAllowSigning) {
  EXPECT_EQ(EkTemplate(EkAlg::kRsa2048, EkUsage::kSign).object_attributes, 0x000400b2u);
  EXPECT_EQ(EkTemplate(EkAlg::kRsa2048, EkUsage::kSignAndDecrypt).object_attributes, 0x000600b2u);
  EXPECT_EQ(EkTemplate(EkAlg::kEccP384, EkUsage::kSignAndDecrypt).object_attributes, 0x000600f2u);
  EXPECT_EQ(EkTemplate(EkAlg::kEccP384, EkUsage::kSign).rsa(), nullptr);
}

TEST(EkProfile, HandlesAndNames) {
  EXPECT_EQ(GetEkProfile(EkAlg::kRsa2048).persistent_handle, 0x81010001u);
  EXPECT_EQ(GetEkProfile(EkAlg::kRsa2048).cert_index, 0x01c00002u);
  EXPECT_EQ(GetEkProfile(EkAlg::kEccP256).persistent_handle, 0x8101000au);
  EXPECT_EQ(GetEkProfile(EkAlg::kEccP256).cert_index, 0x01c0000au);
  EXPECT_EQ(GetEkProfile(EkAlg::kEccP384).persistent_handle, 0x81010016u);
  EXPECT_EQ(GetEkProfile(EkAlg::kEccP384).cert_index, 0x01c00016u);
  EXPECT_EQ(*ParseEkAlg("ecc_nist_p384"), EkAlg::kEccP384);
  EXPECT_EQ(*ParseEkAlg("secp256r1"), EkAlg::kEccP256);
  EXPECT_FALSE(ParseEkAlg("rsa1024").has_value());
}

}  // namespace
}  // namespace vtpm::provision
