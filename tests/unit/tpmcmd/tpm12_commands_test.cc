// Golden bytes captured from Debian's swtpm_setup 0.7.1 provisioning a TPM 1.2
// (`--createek --create-ek-cert --create-platform-cert --lock-nvram --take-ownership`).
#include "tpmcmd/tpm12_commands.h"

#include <gtest/gtest.h>

namespace vtpm::tpmcmd::tpm12 {
namespace {

Bytes Hex(std::string_view h) {
  auto b = FromHex(h);
  EXPECT_TRUE(b.has_value()) << h;
  return b ? *b : Bytes{};
}

TEST(Tpm12Commands, PhysicalPresenceSequenceMatchesSwtpmSetup) {
  EXPECT_EQ(ToHex(TscPhysicalPresence(kPhysicalPresenceCmdEnable)), "00c10000000c4000000a0020");
  EXPECT_EQ(ToHex(TscPhysicalPresence(kPhysicalPresencePresent)), "00c10000000c4000000a0008");
  EXPECT_EQ(ToHex(PhysicalEnable()), "00c10000000a0000006f");
  EXPECT_EQ(ToHex(PhysicalSetDeactivated(false)), "00c10000000b0000007200");
}

TEST(Tpm12Commands, CreateEndorsementKeyPairMatchesSwtpmSetup) {
  Digest nonce;
  Bytes n = Hex("38f03081072b0ca9109808c04b0511c9502352c4");
  std::copy(n.begin(), n.end(), nonce.begin());
  EXPECT_EQ(ToHex(CreateEndorsementKeyPair(nonce)),
            "00c1000000360000007838f03081072b0ca9109808c04b0511c9502352c40000000100030002000000"
            "0c000008000000000200000000");
}

TEST(Tpm12Commands, CreateEndorsementKeyPairResponseParses) {
  std::string mod(512, 'c');
  Bytes resp =
      Hex("00c40000013a00000000"
          "00000001000300010000000c000008000000000200000000"
          "00000100" +
          mod + std::string(40, 'd'));
  auto ek = ParseCreateEndorsementKeyPair(resp);
  ASSERT_TRUE(ek.has_value()) << ek.error().message;
  EXPECT_EQ(ToHex(ek->modulus), mod);
  EXPECT_EQ(ek->checksum[19], 0xdd);
  // Truncated: refused.
  Bytes cut(resp.begin(), resp.end() - 21);
  StoreBe32(cut.data() + 2, static_cast<uint32_t>(cut.size()));
  EXPECT_FALSE(ParseCreateEndorsementKeyPair(cut).has_value());
}

TEST(Tpm12Commands, OiapRoundTrip) {
  EXPECT_EQ(ToHex(Oiap()), "00c10000000a0000000a");
  auto s = ParseOiap(Hex("00c40000002200000000d7691cf916a0d468c672a7ec2bbc7596e48f1f3adb087d92"));
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->auth_handle, 0xd7691cf9u);
  EXPECT_EQ(s->nonce_even[0], 0x16);
}

TEST(Tpm12Commands, TakeOwnershipLayoutMatchesSwtpmSetup) {
  TakeOwnership t;
  t.enc_owner_auth = Bytes(256, 0x11);
  t.enc_srk_auth = Bytes(256, 0x22);
  t.auth_handle = 0xd7691cf9;
  t.nonce_odd = {1, 2, 3, 4, 5, 6};
  Digest hmac{};
  hmac.fill(0x33);
  Bytes cmd = t.Marshal(hmac);
  // Header, protocol id, sizes; swtpm_setup's command is 624 bytes as well.
  EXPECT_EQ(cmd.size(), 624u);
  EXPECT_EQ(ToHex(ByteSpan(cmd).first(16)), "00c2000002700000000d000500000100");
  // srkParams (TPM_KEY12) followed by the auth trailer, as in swtpm_setup's command.
  EXPECT_EQ(ToHex(ByteSpan(cmd).subspan(532)),
            "0028000000110000000001"                            // TPM_KEY12 head
            "00000001000300010000000c000008000000000200000000"  // TPM_KEY_PARMS
            "000000000000000000000000"                          // PCR info, pubkey, enc
            "d7691cf9"
            "0102030405060000000000000000000000000000"
            "00"                                          // session
            "3333333333333333333333333333333333333333");  // ownerAuth HMAC
  // The parameter digest input starts with the ordinal and ends with srkParams.
  Bytes in = t.ParamDigestInput();
  EXPECT_EQ(ToHex(ByteSpan(in).first(4)), "0000000d");
  EXPECT_EQ(in.size(), 4u + 2u + 4u + 256u + 4u + 256u + 47u);
}

TEST(Tpm12Commands, NvDefineAndWriteMatchSwtpmSetup) {
  EXPECT_EQ(ToHex(NvDefineSpace(kNvIndexEkCert | kNvIndexDBit, kNvPerOwnerRead | kNvPerOwnerWrite,
                                0x3ec)),
            "00c100000065000000cc00181000f00000030000001f0000000000000000000000000000000000000000"
            "00030000001f0000000000000000000000000000000000000000001700020002000000000003ec000000"
            "0000000000000000000000000000000000");
  EXPECT_EQ(ToHex(NvDefineSpace(kNvIndexLock, 0, 0)),
            "00c100000065000000cc0018ffffffff00030000001f000000000000000000000000000000000000000000"
            "030000001f000000000000000000000000000000000000000000170000000000000000000000000000000"
            "0000000000000000000000000000000");
  Bytes data = Hex("abcdef");
  EXPECT_EQ(ToHex(NvWriteValue(kNvIndexEkCert | kNvIndexDBit, 0, data)),
            "00c100000019000000cd1000f0000000000000000003abcdef");
}

TEST(Tpm12Commands, StoredCertHeaderMatchesSwtpmCert) {
  // swtpm's 997-byte EK certificate was stored as 10 01 00 03 e7 10 02 <DER>.
  EXPECT_EQ(ToHex(StoredCertHeader(997)), "10010003e71002");
}

TEST(Tpm12Commands, ErrorsCarryTheReturnCode) {
  auto r = CheckResponse(Hex("00c40000000a00000014"), "TPM_TakeOwnership");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().tpm_rc, 0x14u);
  EXPECT_EQ(r.error().message, "TPM_TakeOwnership failed: TPM_OWNER_SET (0x14)");
  EXPECT_FALSE(CheckResponse(Hex("00c40000000b00000000"), "x").has_value());
  EXPECT_FALSE(CheckResponse(Hex("80010000000a00000000"), "x").has_value());
}

}  // namespace
}  // namespace vtpm::tpmcmd::tpm12
