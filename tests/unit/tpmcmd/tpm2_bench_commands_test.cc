// The commands the benchmarks (bench/tpm_commands.h) and the test fakes (tests/fakes/
// tpm_commands.h) send. Golden bytes: what their hand-encoded builders produced before they were
// built with tpmcmd (those bytes ran against libtpms, swtpm and vtpm in the device tests and in
// vtpm_compare), so the commands on the wire are unchanged. Responses: libtpms 0.9's answers,
// captured through the in-process engine, and hand-made malformed ones.
#include <gtest/gtest.h>

#include "tpmcmd/tpm2_commands.h"

namespace vtpm::tpmcmd {
namespace {

Bytes Hex(std::string_view h) {
  auto b = FromHex(h);
  EXPECT_TRUE(b.has_value()) << h;
  return b ? *b : Bytes{};
}

// 32 bytes first, first + 1, ...
Bytes Counting(uint8_t first) {
  Bytes b(32);
  for (size_t i = 0; i < b.size(); ++i) b[i] = static_cast<uint8_t>(first + i);
  return b;
}
std::string CountingHex(uint8_t first) { return ToHex(Counting(first)); }

// The benchmarks' unrestricted signing keys: RSASSA-2048 / ECDSA P-256, SHA-256.
Public SigningKey(bool rsa) {
  Public p;
  p.type = rsa ? kAlgRsa : kAlgEcc;
  p.object_attributes =
      kObjFixedTpm | kObjFixedParent | kObjSensitiveDataOrigin | kObjUserWithAuth | kObjSign;
  EXPECT_EQ(p.object_attributes, 0x00040072u);
  if (rsa) {
    p.parameters = RsaParms{SymDef{}, Scheme{kAlgRsassa, kAlgSha256}, 2048, 0};
    p.unique = Bytes{};
  } else {
    p.parameters = EccParms{SymDef{}, Scheme{kAlgEcdsa, kAlgSha256}, kEccNistP256, Scheme{}};
    p.unique = EccPoint{};
  }
  return p;
}

// A response of TPM_RC_SUCCESS with |params| (hex); with |sessions|, the parameter size and that
// many password sessions' TPMS_AUTH_RESPONSE (empty nonce, continueSession, empty hmac) around it.
Bytes TpmResponse(std::string_view params, int sessions = 0) {
  ByteWriter w;
  w.U16(sessions > 0 ? kStSessions : kStNoSessions);
  w.U32(0);
  w.U32(0);
  const Bytes p = Hex(params);
  if (sessions > 0) w.U32(static_cast<uint32_t>(p.size()));
  w.Append(p);
  for (int i = 0; i < sessions; ++i) w.Append(Hex("0000010000"));
  w.PatchU32(2, static_cast<uint32_t>(w.size()));
  return std::move(w).Take();
}

// Every proper prefix of |response| (with its size field fixed up) must be refused.
template <class Cmd>
void ExpectTruncationsRefused(const Bytes& response) {
  ASSERT_TRUE(ParseResponse<Cmd>(response).has_value());
  for (size_t n = 10; n < response.size(); ++n) {
    Bytes cut(response.begin(), response.begin() + static_cast<ptrdiff_t>(n));
    StoreBe32(cut.data() + 2, static_cast<uint32_t>(n));
    EXPECT_FALSE(ParseResponse<Cmd>(cut).has_value()) << n;
  }
  Bytes longer = response;
  longer.push_back(0);
  StoreBe32(longer.data() + 2, static_cast<uint32_t>(longer.size()));
  EXPECT_FALSE(ParseResponse<Cmd>(longer).has_value());
}

TEST(Tpm2BenchCommands, StartupSelfTestGetRandomFlushContext) {
  EXPECT_EQ(ToHex(Marshal(Startup{kSuClear})), "80010000000c000001440000");
  EXPECT_EQ(ToHex(Marshal(Startup{kSuState})), "80010000000c000001440001");
  EXPECT_EQ(ToHex(Marshal(SelfTest{})), "80010000000b0000014301");
  EXPECT_EQ(ToHex(Marshal(SelfTest{false})), "80010000000b0000014300");
  EXPECT_EQ(ToHex(Marshal(GetRandom{32})), "80010000000c0000017b0020");
  EXPECT_EQ(ToHex(Marshal(GetRandom{48})), "80010000000c0000017b0030");
  EXPECT_EQ(ToHex(Marshal(FlushContext{0x80000000})), "80010000000e0000016580000000");
  EXPECT_EQ(ToHex(Marshal(GetCapability{kCapTpmProperties, kPtFixed, 8})),
            "8001000000160000017a000000060000010000000008");
}

TEST(Tpm2BenchCommands, PcrReadSelectsOneSha256Pcr) {
  EXPECT_EQ(ToHex(Marshal(PcrRead{{SelectPcrs(kAlgSha256, {0})}})),
            "8001000000140000017e00000001000b03010000");
  EXPECT_EQ(ToHex(Marshal(PcrRead{{SelectPcrs(kAlgSha256, {16})}})),
            "8001000000140000017e00000001000b03000001");
  EXPECT_EQ(ToHex(Marshal(PcrRead{{SelectPcrs(kAlgSha256, {17})}})),
            "8001000000140000017e00000001000b03000002");
  EXPECT_EQ(ToHex(Marshal(PcrRead{{SelectPcrs(kAlgSha256, {23})}})),
            "8001000000140000017e00000001000b03000080");
  // TPML_PCR_SELECTION with two banks; a PCR above 23 widens sizeofSelect.
  EXPECT_EQ(ToHex(Marshal(PcrRead{{SelectPcrs(kAlgSha256, {0, 16}), SelectPcrs(kAlgSha1, {24})}})),
            "80010000001b0000017e00000002000b0301000100040400000001");
}

TEST(Tpm2BenchCommands, PcrExtendOfOneSha256Digest) {
  PcrExtend cmd;
  cmd.pcr_handle = 16;
  cmd.digests = {{kAlgSha256, Counting(0x00)}};
  EXPECT_EQ(
      ToHex(Marshal(cmd)),
      "80020000004100000182000000100000000940000009000000000000000001000b" + CountingHex(0x00));
}

TEST(Tpm2BenchCommands, CreatePrimarySigningKeysAndStoragePrimary) {
  CreatePrimary ecc;
  ecc.primary_handle = kRhOwner;
  ecc.in_public = SigningKey(false);
  EXPECT_EQ(ToHex(Marshal(ecc)),
            "80020000004100000131400000010000000940000009000000000000040000000000180023000b0004"
            "0072000000100018000b0003001000000000000000000000");
  CreatePrimary rsa;
  rsa.primary_handle = kRhOwner;
  rsa.in_public = SigningKey(true);
  EXPECT_EQ(ToHex(Marshal(rsa)),
            "80020000004100000131400000010000000940000009000000000000040000000000180001000b0004"
            "0072000000100014000b0800000000000000000000000000");
  // tests/fakes: an ECC P-256 storage primary (restricted decryption key, AES-128-CFB).
  CreatePrimary storage;
  storage.primary_handle = kRhOwner;
  storage.in_public.type = kAlgEcc;
  storage.in_public.object_attributes = kObjFixedTpm | kObjFixedParent | kObjSensitiveDataOrigin |
                                        kObjUserWithAuth | kObjRestricted | kObjDecrypt;
  storage.in_public.parameters =
      EccParms{SymDef{kAlgAes, 128, kAlgCfb}, Scheme{}, kEccNistP256, Scheme{}};
  storage.in_public.unique = EccPoint{};
  EXPECT_EQ(ToHex(Marshal(storage)),
            "800200000043000001314000000100000009400000090000000000000400000000001a0023000b0003"
            "0072000000060080004300100003001000000000000000000000");
}

TEST(Tpm2BenchCommands, SignWithTheKeysSchemeAndTheNullTicket) {
  Sign cmd;
  cmd.key_handle = 0x80000000;
  cmd.digest = Counting(0xa0);
  EXPECT_EQ(ToHex(Marshal(cmd)), "8002000000470000015d80000000000000094000000900000000000020" +
                                     CountingHex(0xa0) + "00108024400000070000");
  cmd.in_scheme = {kAlgEcdsa, kAlgSha256};
  cmd.validation.hierarchy = kRhOwner;
  cmd.validation.digest = Hex("0102");
  EXPECT_EQ(ToHex(Marshal(cmd)), "80020000004b0000015d80000000000000094000000900000000000020" +
                                     CountingHex(0xa0) + "0018000b80244000000100020102");
}

TEST(Tpm2BenchCommands, NvDefineIncrementWriteRead) {
  NvDefineSpace counter;
  counter.auth_handle = kRhOwner;
  counter.public_info = {
      0x01500030, kAlgSha256, kNvCounter | kNvAuthWrite | kNvAuthRead | kNvNoDa, {}, 8};
  EXPECT_EQ(ToHex(Marshal(counter)),
            "80020000002d0000012a40000001000000094000000900000000000000000e01500030000b02040014"
            "00000008");
  EXPECT_EQ(ToHex(Marshal(NvIncrement{0x01500030, 0x01500030})),
            "80020000001f00000134015000300150003000000009400000090000000000");
  NvDefineSpace ordinary;  // tests/fakes
  ordinary.auth_handle = kRhOwner;
  ordinary.public_info = {0x01500042,
                          kAlgSha256,
                          kNvOwnerWrite | kNvAuthWrite | kNvOwnerRead | kNvAuthRead | kNvNoDa,
                          {},
                          1024};
  EXPECT_EQ(ToHex(Marshal(ordinary)),
            "80020000002d0000012a40000001000000094000000900000000000000000e01500042000b02060006"
            "00000400");
  EXPECT_EQ(ToHex(Marshal(NvWrite{0x01500042, 0x01500042, Hex("01020304"), 0x10})),
            "800200000027000001370150004201500042000000094000000900000000000004010203040010");
  EXPECT_EQ(ToHex(Marshal(NvRead{0x01500042, 0x01500042, 4, 2})),
            "8002000000230000014e01500042015000420000000940000009000000000000040002");
}

// An AuthHandle's password is the hmac of its TPM_RS_PW session; the handle alone converts to an
// AuthHandle with the empty password.
TEST(Tpm2BenchCommands, AuthHandlePasswordGoesIntoItsSession) {
  NvIncrement cmd{{0x01500030, Hex("0102")}, 0x01500030};
  EXPECT_EQ(ToHex(Marshal(cmd)),
            "800200000021000001340150003001500030"  // header, authHandle, nvIndex
            "0000000b4000000900000000020102");      // TPM_RS_PW session, hmac: the password
  cmd.auth_handle = kRhOwner;
  EXPECT_EQ(ToHex(Marshal(cmd)), "80020000001f00000134400000010150003000000009400000090000000000");
}

TEST(Tpm2BenchCommands, GetRandomResponse) {
  const Bytes ok = Hex("800100000014000000000008a69f1d8bf459f272");
  auto r = ParseResponse<GetRandom>(ok);
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(ToHex(r->random_bytes), "a69f1d8bf459f272");
  ExpectTruncationsRefused<GetRandom>(ok);
  // More than a SHA-512 digest is not a TPM2B_DIGEST.
  Bytes big = Hex("80010000004d000000000041");
  big.resize(0x4d, 0xee);
  EXPECT_FALSE(ParseResponse<GetRandom>(big).has_value());
}

TEST(Tpm2BenchCommands, PcrReadResponseOfTwoBanks) {
  // sha256 PCRs 0 and 16 after one PCR_Extend of PCR 16, sha1 PCR 16.
  const Bytes ok =
      Hex("80010000007c000000000000001400000002000b0301000100040300000100000003002000000000000000"
          "000000000000000000000000000000000000000000000000000020bb2275c49f28ad52cae6d55e34a974a5"
          "8c7a3ba26f976e8ecbbe7a536918dc7300140000000000000000000000000000000000000000");
  auto r = ParseResponse<PcrRead>(ok);
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->pcr_update_counter, 0x14u);
  ASSERT_EQ(r->pcr_selection_out.size(), 2u);
  EXPECT_EQ(r->pcr_selection_out[0], SelectPcrs(kAlgSha256, {0, 16}));
  EXPECT_EQ(r->pcr_selection_out[1], SelectPcrs(kAlgSha1, {16}));
  ASSERT_EQ(r->pcr_values.size(), 3u);
  EXPECT_EQ(r->pcr_values[0], Bytes(32, 0));
  EXPECT_EQ(ToHex(r->pcr_values[1]),
            "bb2275c49f28ad52cae6d55e34a974a58c7a3ba26f976e8ecbbe7a536918dc73");
  EXPECT_EQ(r->pcr_values[2], Bytes(20, 0));
  ExpectTruncationsRefused<PcrRead>(ok);
  // A TPML_DIGEST of more than 8 digests is refused before anything is allocated.
  EXPECT_FALSE(ParseResponse<PcrRead>(TpmResponse("00000001"
                                                  "00000000"
                                                  "00000009"))
                   .has_value());
}

TEST(Tpm2BenchCommands, SignResponsesEcdsaAndRsassa) {
  const Bytes ecdsa =
      Hex("80020000005b00000000000000480018000b0020c898de1ee30cebebeb840bf0196848e09c91f6c4e8a4e2"
          "18ab9ae72aff4526cb002087df79ec07f417ed222f3a4d1dcef1d580d92dd88e963c6b6c46aee57bbcfcb9"
          "0000010000");
  auto r = ParseResponse<Sign>(ecdsa);
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->signature.sig_alg, kAlgEcdsa);
  EXPECT_EQ(r->signature.hash_alg, kAlgSha256);
  const auto* ecc = std::get_if<EccSignature>(&r->signature.signature);
  ASSERT_NE(ecc, nullptr);
  EXPECT_EQ(ToHex(ecc->r), "c898de1ee30cebebeb840bf0196848e09c91f6c4e8a4e218ab9ae72aff4526cb");
  EXPECT_EQ(ecc->s.size(), 32u);
  ExpectTruncationsRefused<Sign>(ecdsa);

  // RSASSA: sigAlg, hash and a 256-byte signature.
  const Bytes rsassa = TpmResponse("0014000b0100" + std::string(512, 'a'), 1);
  auto rsa = ParseResponse<Sign>(rsassa);
  ASSERT_TRUE(rsa.has_value()) << rsa.error().message;
  EXPECT_EQ(rsa->signature.sig_alg, kAlgRsassa);
  EXPECT_EQ(std::get<Bytes>(rsa->signature.signature), Bytes(256, 0xaa));

  // An HMAC signature is not one vtpm asks for: refused as unsupported.
  auto hmac = ParseResponse<Sign>(TpmResponse("00050004" + std::string(40, '0'), 1));
  ASSERT_FALSE(hmac.has_value());
  EXPECT_EQ(hmac.error().code, Errc::kUnsupported);
}

TEST(Tpm2BenchCommands, ResponsesWithoutParameters) {
  // PCR_Extend, NV_DefineSpace, NV_Increment: no parameters, one password session's response.
  const Bytes session = TpmResponse("", 1);
  EXPECT_EQ(ToHex(session), "80020000001300000000000000000000010000");
  EXPECT_TRUE(ParseResponse<PcrExtend>(session).has_value());
  EXPECT_TRUE(ParseResponse<NvIncrement>(session).has_value());
  ExpectTruncationsRefused<NvIncrement>(session);
  EXPECT_FALSE(ParseResponse<NvIncrement>(TpmResponse("ff", 1)).has_value());  // a parameter
  // SelfTest, Startup, FlushContext: the header alone.
  const Bytes plain = TpmResponse("");
  EXPECT_EQ(ToHex(plain), "80010000000a00000000");
  EXPECT_TRUE(ParseResponse<SelfTest>(plain).has_value());
  EXPECT_FALSE(ParseResponse<SelfTest>(TpmResponse("00")).has_value());
  // A TPM error names the command.
  auto err = ParseResponse<NvIncrement>(Hex("80010000000a0000014a"));
  ASSERT_FALSE(err.has_value());
  EXPECT_EQ(err.error().tpm_rc, 0x14au);
  EXPECT_EQ(err.error().message, "TPM2_NV_Increment failed: TPM_RC_NV_UNINITIALIZED (0x14a)");
}

}  // namespace
}  // namespace vtpm::tpmcmd
