// Golden bytes: every expected command below was captured from Debian's swtpm_setup 0.7.1
// (`swtpm_setup --tpm2 --createek --create-ek-cert --create-platform-cert --lock-nvram`, swtpm
// started with --log level=20), so these tests pin our encoding to what swtpm_setup sends.
#include "tpmcmd/tpm2_commands.h"

#include <gtest/gtest.h>

#include <deque>

namespace vtpm::tpmcmd {
namespace {

Bytes Hex(std::string_view h) {
  auto b = FromHex(h);
  EXPECT_TRUE(b.has_value()) << h;
  return b ? *b : Bytes{};
}

const Bytes kPolicyA = Hex("837197674484b3f81a90cc8d46a5d724fd52d76e06520b64f2a1da1b331469aa");
const Bytes kPolicyBSha384 = Hex(
    "b26e7d28d11a50bc53d882bcf5fd3a1a074148bb35d3b4e4cb1c0ad9bde419cacb47ba09699646150f9fc000f3f8"
    "0e12");

Public RsaEkTemplate() {
  Public p;
  p.type = kAlgRsa;
  p.name_alg = kAlgSha256;
  p.object_attributes = 0x000300b2;
  p.auth_policy = kPolicyA;
  p.parameters = RsaParms{SymDef{kAlgAes, 128, kAlgCfb}, Scheme{}, 2048, 0};
  p.unique = Bytes(256, 0);
  return p;
}

Public EccP384EkTemplate() {
  Public p;
  p.type = kAlgEcc;
  p.name_alg = kAlgSha384;
  p.object_attributes = 0x000300f2;
  p.auth_policy = kPolicyBSha384;
  p.parameters = EccParms{SymDef{kAlgAes, 256, kAlgCfb}, Scheme{}, kEccNistP384, Scheme{}};
  p.unique = EccPoint{};
  return p;
}

// A transport that answers from a script and records what it was sent.
class ScriptedTransport : public Transport {
 public:
  std::deque<Bytes> responses;
  std::vector<Bytes> sent;
  Result<Bytes> Transmit(ByteSpan command) override {
    sent.emplace_back(command.begin(), command.end());
    if (responses.empty()) return Fail(Errc::kIo, "no scripted response");
    Bytes r = std::move(responses.front());
    responses.pop_front();
    return r;
  }
};

TEST(Tpm2Commands, CreatePrimaryRsaEkMatchesSwtpmSetup) {
  CreatePrimary cmd;
  cmd.primary_handle = kRhEndorsement;
  cmd.in_public = RsaEkTemplate();
  std::string expected =
      "800200000163000001314000000b00000009400000090000000000000400000000013a0001000b000300b20020"
      "837197674484b3f81a90cc8d46a5d724fd52d76e06520b64f2a1da1b331469aa000600800043001008000000"
      "00000100" +
      std::string(512, '0') + "0000" + "00000000";
  EXPECT_EQ(ToHex(Marshal(cmd)), expected);
}

TEST(Tpm2Commands, CreatePrimaryEccP384EkMatchesSwtpmSetup) {
  CreatePrimary cmd;
  cmd.in_public = EccP384EkTemplate();
  EXPECT_EQ(ToHex(Marshal(cmd)),
            "800200000073000001314000000b00000009400000090000000000000400000000004a0023000c000300"
            "f20030b26e7d28d11a50bc53d882bcf5fd3a1a074148bb35d3b4e4cb1c0ad9bde419cacb47ba09699646"
            "150f9fc000f3f80e1200060100004300100004001000000000000000000000");
}

TEST(Tpm2Commands, CreatePrimaryResponseFromLibtpmsParses) {
  // libtpms' answer to the P-384 CreatePrimary above.
  Bytes resp = Hex(
      "8002000001ba0000000080000001000001a300aa0023000c000300f20030b26e7d28d11a50bc53d882bcf5fd3a"
      "1a074148bb35d3b4e4cb1c0ad9bde419cacb47ba09699646150f9fc000f3f80e12000601000043001000040010"
      "0030930f6b853ac0a3913bb6b03f116c7c18fb2c8f3658103555a495523230e09ef432cf76caee0d1b3f61e8b7"
      "cf4c9e38ed003085e1be377e97420f36bc0ce8033bd8008f7e641919d582129b4ee7af6aab2489b1e167672232"
      "58f09645fe861971702c004700000000003038b060a751ac96384cd9327eb1b1e36a21fdb71114be07434c0cc7"
      "bf63f6e1da274edebfe76f65fbd51ad2f14898b95b01001000044000000b00044000000b00000030476558f7d9"
      "cf1bfc16355c066a0f70d234e830f706ba19e44fe472ecf115956cc140c2734f1f139ca17079482f1a26c18021"
      "4000000b0040966b0b0c1ffe013b788729c13b0250a69be57c078707728536b9460a769765debee35fa092bb62"
      "fac41e07ce5f6e69c179048bea253efdf65f7b642866fd37e40032000cb3443dae02f8ea920e957a27038fde58"
      "0d9f3d9f324e3192b4a98d9cc263807e76456812a5711bdece79b673311d6a7f0000010000");
  ScriptedTransport t;
  t.responses.push_back(resp);
  CreatePrimary cmd;
  cmd.in_public = EccP384EkTemplate();
  auto r = Execute(t, cmd);
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->object_handle, 0x80000001u);
  const auto* pt = std::get_if<EccPoint>(&r->out_public.unique);
  ASSERT_NE(pt, nullptr);
  EXPECT_EQ(ToHex(pt->x),
            "930f6b853ac0a3913bb6b03f116c7c18fb2c8f3658103555a495523230e09ef432cf76caee0d1b3f61e8"
            "b7cf4c9e38ed");
  EXPECT_EQ(pt->y.size(), 48u);
  EXPECT_EQ(r->out_public.object_attributes, 0x000300f2u);
  EXPECT_EQ(r->out_public_area.size(), 0xaau);
  EXPECT_EQ(ToHex(r->name),
            "000cb3443dae02f8ea920e957a27038fde580d9f3d9f324e3192b4a98d9cc263807e76456812a5711bde"
            "ce79b673311d6a7f");
  // The template round-trips: same public area except the unique field.
  Public got = r->out_public;
  got.unique = EccPoint{};
  EXPECT_EQ(got, EccP384EkTemplate());
}

TEST(Tpm2Commands, EvictControlMatchesSwtpmSetup) {
  EvictControl cmd;
  cmd.auth_handle = kRhOwner;
  cmd.object_handle = 0x80000000;
  cmd.persistent_handle = 0x81010001;
  EXPECT_EQ(ToHex(Marshal(cmd)),
            "8002000000230000012040000001800000000000000940000009000000000081010001");
}

TEST(Tpm2Commands, NvDefineSpaceMatchesSwtpmSetup) {
  NvDefineSpace cmd;
  cmd.auth_handle = kRhPlatform;
  cmd.public_info.nv_index = 0x01c00002;
  cmd.public_info.name_alg = kAlgSha256;
  cmd.public_info.attributes = kNvPlatformCreate | kNvAuthRead | kNvOwnerRead | kNvPpRead |
                               kNvPpWrite | kNvNoDa | kNvWriteDefine;
  cmd.public_info.data_size = 0x041c;
  EXPECT_EQ(cmd.public_info.attributes, 0x42072001u);
  EXPECT_EQ(ToHex(Marshal(cmd)),
            "80020000002d0000012a4000000c000000094000000900000000000000000e01c00002000b4207200100"
            "00041c");
}

TEST(Tpm2Commands, NvWriteMatchesSwtpmSetup) {
  NvWrite cmd;
  cmd.nv_index = 0x01c00002;
  cmd.data = Hex("96dbd8e4300517ac41f3c8df47df0bfac784ca5343e656b5f423a21f");
  cmd.offset = 0x0400;
  EXPECT_EQ(ToHex(Marshal(cmd)),
            "80020000003f000001374000000c01c0000200000009400000090000000000001c96dbd8e4300517ac41"
            "f3c8df47df0bfac784ca5343e656b5f423a21f0400");
}

TEST(Tpm2Commands, NvWriteLockMatchesSwtpmSetup) {
  NvWriteLock cmd;
  cmd.nv_index = 0x01c00002;
  EXPECT_EQ(ToHex(Marshal(cmd)), "80020000001f000001384000000c01c0000200000009400000090000000000");
}

TEST(Tpm2Commands, GetCapabilityPcrsMatchesSwtpmSetupAndParses) {
  GetCapability cmd;
  cmd.capability = kCapPcrs;
  cmd.property = 0;
  cmd.property_count = 64;
  EXPECT_EQ(ToHex(Marshal(cmd)), "8001000000160000017a000000050000000000000040");
  ScriptedTransport t;
  t.responses.push_back(Hex(
      "80010000002b00000000000000000500000004000403ffffff000b03ffffff000c03ffffff000d03ffffff"));
  auto r = Execute(t, cmd);
  ASSERT_TRUE(r.has_value()) << r.error().message;
  auto banks = ParsePcrsCapability(*r);
  ASSERT_TRUE(banks.has_value());
  ASSERT_EQ(banks->size(), 4u);
  EXPECT_EQ((*banks)[0].hash, kAlgSha1);
  EXPECT_EQ((*banks)[3].hash, kAlgSha512);
  EXPECT_EQ(ToHex((*banks)[1].select), "ffffff");
}

TEST(Tpm2Commands, PcrAllocateMatchesSwtpmSetupAndParses) {
  PcrAllocate cmd;
  cmd.pcr_allocation = {{kAlgSha256, Hex("ffffff")},
                        {kAlgSha1, Hex("000000")},
                        {kAlgSha384, Hex("000000")},
                        {kAlgSha512, Hex("000000")}};
  EXPECT_EQ(ToHex(Marshal(cmd)),
            "8002000000370000012b4000000c0000000940000009000000000000000004000b03ffffff0004030000"
            "00000c03000000000d03000000");
  ScriptedTransport t;
  t.responses.push_back(Hex("800200000020000000000000000d01000000180000030000000f600000010000"));
  auto r = Execute(t, cmd);
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_TRUE(r->allocation_success);
  EXPECT_EQ(r->max_pcr, 24u);
  EXPECT_EQ(r->size_needed, 0x300u);
  EXPECT_EQ(r->size_available, 0xf60u);
}

TEST(Tpm2Commands, ShutdownMatchesSwtpmSetup) {
  Shutdown cmd;
  cmd.shutdown_type = kSuClear;
  EXPECT_EQ(ToHex(Marshal(cmd)), "80010000000c000001450000");
}

TEST(Tpm2Commands, TpmErrorBecomesErrorWithRcAndName) {
  ScriptedTransport t;
  t.responses.push_back(Hex("80010000000a00000148"));
  NvWrite cmd;
  cmd.nv_index = 0x01c00002;
  auto r = Execute(t, cmd);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, Errc::kTpm);
  EXPECT_EQ(r.error().tpm_rc, 0x148u);
  EXPECT_EQ(r.error().message, "TPM2_NV_Write failed: TPM_RC_NV_LOCKED (0x148)");
}

// One TPMS_AUTH_RESPONSE per session, each within bounds, nothing after them.
TEST(Tpm2Commands, SessionResponsesNeedAWellFormedAuthorizationArea) {
  const char* good[] = {
      "80020000001300000000000000000000010000",                      // one password session
      "80020000001500000000000000000001aa0100010a",                  // a nonce and an hmac
      "80020000001d0000000000000000000001000000000100000000010000",  // three sessions
  };
  for (const char* h : good) {
    EXPECT_TRUE(ParseResponse<NvWriteLock>(Hex(h)).has_value()) << h;
  }
  const char* bad[] = {
      "80020000000e0000000000000000",              // no authorization area
      "8002000000110000000000000000000001",        // no hmac
      "8002000000140000000000000000000001000001",  // a byte after the session
      "80020000002200000000000000000000010000000001000000000100000000010000",  // four sessions
      "800200000013000000000000000000ff010000",  // a nonce longer than a digest
  };
  for (const char* h : bad) {
    EXPECT_FALSE(ParseResponse<NvWriteLock>(Hex(h)).has_value()) << h;
  }
}

TEST(Tpm2Commands, DescribeRcFormatOne) {
  EXPECT_EQ(DescribeRc(0x1c4), "TPM_RC_VALUE (0x1c4, parameter 1)");
  EXPECT_EQ(DescribeRc(0x18b), "TPM_RC_HANDLE (0x18b, handle 1)");
  EXPECT_EQ(DescribeRc(0x98e), "TPM_RC_AUTH_FAIL (0x98e, session 1)");
  EXPECT_EQ(DescribeRc(0x921), "TPM_RC_LOCKOUT (0x921)");
  EXPECT_EQ(DescribeRc(0x7ff), "TPM_RC 0x7ff");
}

TEST(Tpm2Commands, MalformedResponsesAreRejectedNotCrashed) {
  const char* bad[] = {
      "",                      // empty
      "8001000000",            // short header
      "80010000000b00000000",  // size mismatch
      "c4c40000000a00000000",  // bad tag
      // ReadPublic with a TPM2B_PUBLIC size running past the end
      "80010000000e00000000"
      "00ff0001",
      // ReadPublic with an unsupported object type (keyedhash)
      "80010000001a00000000"
      "000e0008000b00000000000000100000",
  };
  for (const char* h : bad) {
    ScriptedTransport t;
    t.responses.push_back(Hex(h));
    ReadPublic cmd;
    cmd.object_handle = 0x81010001;
    auto r = Execute(t, cmd);
    EXPECT_FALSE(r.has_value()) << h;
  }
  // Truncations of a valid ReadPublic answer must all fail cleanly.
  ScriptedTransport t;
  Bytes ok = [] {
    ByteWriter w;
    w.U16(kStNoSessions);
    w.U32(0);
    w.U32(0);
    MarshalPublic2b(w, EccP384EkTemplate());
    Put2b(w, Bytes(34, 1));
    Put2b(w, Bytes(34, 2));
    Bytes b = std::move(w).Take();
    StoreBe32(b.data() + 2, static_cast<uint32_t>(b.size()));
    return b;
  }();
  t.responses.push_back(ok);
  ASSERT_TRUE(Execute(t, ReadPublic{0x81010016}).has_value());
  for (size_t n = 10; n < ok.size(); ++n) {
    Bytes cut(ok.begin(), ok.begin() + static_cast<ptrdiff_t>(n));
    StoreBe32(cut.data() + 2, static_cast<uint32_t>(n));
    t.responses.push_back(cut);
    EXPECT_FALSE(Execute(t, ReadPublic{0x81010016}).has_value()) << n;
  }
}

TEST(Tpm2Commands, NvReadPublicAndNvReadRoundTrip) {
  NvReadPublic rp;
  rp.nv_index = 0x01c00016;
  EXPECT_EQ(ToHex(Marshal(rp)), "80010000000e0000016901c00016");
  NvRead rd;
  rd.auth_handle = 0x01c00016;
  rd.nv_index = 0x01c00016;
  rd.size = 1024;
  rd.offset = 0;
  EXPECT_EQ(ToHex(Marshal(rd)),
            "800200000023000001"
            "4e01c0001601c000160000000940000009000000000004000000");

  ScriptedTransport t;
  t.responses.push_back(Hex(std::string("80010000003e00000000"
                                        "000e"
                                        "01c00016000b62072801"
                                        "0000036e"
                                        "0022000b") +
                            std::string(64, 'a')));
  auto r = Execute(t, rp);
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->nv_public.attributes, 0x62072801u);
  EXPECT_EQ(r->nv_public.data_size, 0x36eu);
}

}  // namespace
}  // namespace vtpm::tpmcmd
