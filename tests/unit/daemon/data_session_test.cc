#include "daemon/data_session.h"

#include <gtest/gtest.h>

#include "session_fixture.h"
#include "tpmcmd/tpm2_commands.h"
#include "wire/tpm_header.h"

namespace vtpm::daemon {
namespace {

using testing::Hex;

constexpr std::string_view kGetRandom8 = "8001 0000000c 0000017b 0008";

struct Data : SessionFixture {
  Data() {
    EXPECT_TRUE(service.engine().Start(false).has_value());
    Bytes startup = tpmcmd::Marshal(tpmcmd::Startup{tpm::kSuClear});
    service.Execute(startup);
  }
  DataSession s{&service};
  Bytes Do(std::initializer_list<std::string_view> chunks) { return Feed(s, chunks); }
};

void ExpectRandomResponse(ByteSpan r, size_t n) {
  ASSERT_EQ(r.size(), 12 + n);
  EXPECT_EQ(LoadBe16(r.data()), 0x8001);
  EXPECT_EQ(LoadBe32(r.data() + 2), 12 + n);  // size
  EXPECT_EQ(LoadBe32(r.data() + 6), 0u);      // TPM_RC_SUCCESS
  EXPECT_EQ(LoadBe16(r.data() + 10), n);
}

TEST(DataSession, BeforeInitTheTpmAnswersFailure) {
  SessionFixture f;
  DataSession s(&f.service);
  // QEMU's version probe: TPM2_ReadClock must get a TPM 2 tag back.
  EXPECT_EQ(f.Feed(s, {"8001 0000000a 00000181"}), Hex("8001 0000000a 00000101"));
}

TEST(DataSession, OneCommandOneResponse) {
  Data d;
  ExpectRandomResponse(d.Do({kGetRandom8}), 8);
}

TEST(DataSession, CommandSplitIntoSingleBytesIsReassembled) {
  Data d;
  Bytes cmd = Hex(kGetRandom8);
  Bytes out;
  for (size_t i = 0; i < cmd.size(); ++i) {
    Bytes one{cmd[i]};
    d.s.OnChunk(one, out);
    if (i + 1 < cmd.size()) {
      EXPECT_TRUE(out.empty());
      EXPECT_TRUE(d.s.mid_message());
    }
  }
  ExpectRandomResponse(out, 8);
  EXPECT_FALSE(d.s.mid_message());
}

TEST(DataSession, TwoCommandsInOneReadGetTwoResponses) {
  Data d;
  Bytes out = d.Do({"8001 0000000c 0000017b 0008 8001 0000000c 0000017b 0004 8001"});
  ASSERT_EQ(out.size(), 20u + 16u);
  ExpectRandomResponse(ByteSpan(out).subspan(0, 20), 8);
  EXPECT_TRUE(d.s.mid_message());  // the third command's first bytes wait
}

TEST(DataSession, MsSimulatorPrefixIsAnsweredInKind) {
  Data d;
  Bytes out = d.Do({"00000008 00 0000000c 8001 0000000c 0000017b 0004"});
  ASSERT_EQ(out.size(), 4u + 16u + 4u);
  EXPECT_EQ(LoadBe32(out.data()), 16u);
  ExpectRandomResponse(ByteSpan(out).subspan(4, 16), 4);
  EXPECT_EQ(Bytes(out.end() - 4, out.end()), Hex("00000000"));
}

TEST(DataSession, OversizedCommandGetsCommandSizeErrorAndClose) {
  Data d;
  EXPECT_EQ(d.Do({"8001 00100000 0000017b"}), Hex("8001 0000000a 00000142"));
  EXPECT_TRUE(d.s.wants_close());
}

TEST(DataSession, UndersizedCommandGetsCommandSizeErrorAndClose) {
  Data d;
  EXPECT_EQ(d.Do({"8001 00000004 0000017b"}), Hex("8001 0000000a 00000142"));
  EXPECT_TRUE(d.s.wants_close());
}

TEST(DataSession, GarbageThatIsNotACommandClosesTheConnection) {
  Data d;
  EXPECT_EQ(d.Do({"41414141 41414141 4141"}), Hex("8001 0000000a 00000142"));
  EXPECT_TRUE(d.s.wants_close());
}

// OVMF's TIS detection sends TPM_ORD_GetTicks (a TPM 1.2 command) first; a TPM 2 must answer
// it (swtpm 0.7 / libtpms: 8001 0000000a 00000084) and keep the connection for the TPM 2 probe.
TEST(DataSession, Tpm12CommandInTpm2ModeIsAnsweredAndTheConnectionStays) {
  Data d;
  EXPECT_EQ(d.Do({"00c1 0000000a 000000f1"}), Hex("8001 0000000a 00000084"));
  EXPECT_FALSE(d.s.wants_close());
  ExpectRandomResponse(d.Do({kGetRandom8}), 8);
}

TEST(DataSession, AllowSetLocalityVendorCommand) {
  ServiceOptions o;
  o.allow_set_locality = true;
  SessionFixture f(engine::TpmVersion::kTpm20, o);
  ASSERT_TRUE(f.service.engine().Start(false).has_value());
  DataSession s(&f.service);
  EXPECT_EQ(f.Feed(s, {"8001 0000000b 20001000 03"}), Hex("8001 0000000a 00000000"));
  EXPECT_EQ(f.eng->locality(), 3);
}

TEST(DataSession, VendorSetLocalityIsAnOrdinaryCommandWhenNotAllowed) {
  SessionFixture f;
  ASSERT_TRUE(f.service.engine().Start(false).has_value());
  DataSession s(&f.service);
  Bytes out = f.Feed(s, {"8001 0000000b 20001000 03"});
  EXPECT_NE(wire::ResponseCode(out), 0u);
  EXPECT_EQ(f.eng->locality(), 0);
}

}  // namespace
}  // namespace vtpm::daemon
