#include "daemon/mssim_session.h"

#include <gtest/gtest.h>

#include "session_fixture.h"
#include "wire/tpm_header.h"

namespace vtpm::daemon {
namespace {

using testing::Hex;

TEST(MssimSession, PowerOnStartsTheTpmAndSignalsAreAcknowledged) {
  SessionFixture f;
  MssimSession s(&f.service);
  EXPECT_EQ(f.Feed(s, {"00000001"}), Hex("00000000"));  // POWER_ON
  EXPECT_TRUE(f.eng->running());
  EXPECT_EQ(f.Feed(s, {"0000000b"}), Hex("00000000"));                    // NV_ON
  EXPECT_EQ(f.Feed(s, {"00000001 0000000b"}), Hex("00000000 00000000"));  // idempotent, batched
}

TEST(MssimSession, SendCommandIsFramedWithSizeAndTrailingZero) {
  SessionFixture f;
  MssimSession s(&f.service);
  f.Feed(s, {"00000001"});
  // TPM2_Startup(CLEAR) at locality 0.
  EXPECT_EQ(f.Feed(s, {"00000008 00 0000000c 8001 0000000c 00000144 0000"}),
            Hex("0000000a 8001 0000000a 00000000 00000000"));
}

TEST(MssimSession, SendCommandSplitAcrossReads) {
  SessionFixture f;
  MssimSession s(&f.service);
  f.Feed(s, {"00000001"});
  EXPECT_EQ(f.Feed(s, {"000000", "08 00 0000", "000c 8001 0000000c 00000144", "0000"}),
            Hex("0000000a 8001 0000000a 00000000 00000000"));
}

TEST(MssimSession, PowerOffIsAbruptSoStartupStateFails) {
  SessionFixture f;
  MssimSession s(&f.service);
  f.Feed(s, {"00000001", "00000008 00 0000000c 8001 0000000c 00000144 0000"});
  EXPECT_EQ(f.Feed(s, {"00000002"}), Hex("00000000"));  // POWER_OFF
  EXPECT_FALSE(f.eng->running());
  f.Feed(s, {"00000001"});
  Bytes out = f.Feed(s, {"00000008 00 0000000c 8001 0000000c 00000144 0001"});
  ASSERT_EQ(out.size(), 18u);
  EXPECT_NE(wire::ResponseCode(ByteSpan(out).subspan(4, 10)), 0u);
}

TEST(MssimSession, SessionEndClosesWithoutReply) {
  SessionFixture f;
  MssimSession s(&f.service);
  EXPECT_EQ(f.Feed(s, {"00000014"}), Bytes{});
  EXPECT_TRUE(s.wants_close());
}

TEST(MssimSession, UnknownCommandClosesTheConnection) {
  SessionFixture f;
  MssimSession s(&f.service);
  EXPECT_EQ(f.Feed(s, {"000000ff"}), Bytes{});
  EXPECT_TRUE(s.wants_close());
}

TEST(MssimSession, OversizedSendCommandClosesTheConnection) {
  SessionFixture f;
  MssimSession s(&f.service);
  f.Feed(s, {"00000001"});
  EXPECT_EQ(f.Feed(s, {"00000008 00 00100000"}), Bytes{});
  EXPECT_TRUE(s.wants_close());
}

TEST(MssimSession, RemoteHandshakeReportsVersionAndEndpoint) {
  SessionFixture f;
  MssimSession s(&f.service);
  EXPECT_EQ(f.Feed(s, {"0000000f 00000001"}), Hex("00000001 00000009 00000000"));
}

TEST(MssimSession, HashSignalsDriveTheHcrtmSequence) {
  SessionFixture f;
  MssimSession s(&f.service);
  f.Feed(s, {"00000001"});
  EXPECT_EQ(f.Feed(s, {"00000005", "00000006 00000003 616263", "00000007"}),
            Hex("00000000 00000000 00000000"));
  EXPECT_TRUE(f.eng->GetEstablished().value());
}

TEST(MssimSession, CancelAndKeyCacheAndPhysicalPresenceAreAcknowledged) {
  SessionFixture f;
  MssimSession s(&f.service);
  f.Feed(s, {"00000001"});
  EXPECT_EQ(f.Feed(s, {"00000009 0000000a 0000000d 0000000e 00000003 00000004 0000000c"}),
            Hex("00000000 00000000 00000000 00000000 00000000 00000000 00000000"));
}

TEST(MssimSession, ResetRestartsTheTpmSoItNeedsStartupAgain) {
  SessionFixture f;
  MssimSession s(&f.service);
  f.Feed(s, {"00000001", "00000008 00 0000000c 8001 0000000c 00000144 0000"});
  EXPECT_EQ(f.Feed(s, {"00000011"}), Hex("00000000"));  // TPM_SIGNAL_RESET
  EXPECT_TRUE(f.eng->running());
  // GetRandom now fails with TPM_RC_INITIALIZE: the reset took effect.
  EXPECT_EQ(f.Feed(s, {"00000008 00 0000000c 8001 0000000c 0000017b 0008"}),
            Hex("0000000a 8001 0000000a 00000100 00000000"));
}

TEST(MssimSession, StopAsksTheServerToExit) {
  SessionFixture f;
  MssimSession s(&f.service);
  f.Feed(s, {"00000001"});
  f.Feed(s, {"00000015"});
  EXPECT_TRUE(f.hooks.exit_requested);
  EXPECT_FALSE(f.eng->running());
}

// --mssim ...,locked: what the TCTI sends at connect and end works; what only hardware does is
// answered 1 and not done; the connection stays usable.
TEST(MssimSession, LockedEndpointRefusesWhatOnlyHardwareDoes) {
  SessionFixture f;
  MssimSession s(&f.service, /*locked=*/true);
  EXPECT_EQ(f.Feed(s, {"00000001 0000000b"}), Hex("00000000 00000000"));  // POWER_ON, NV_ON
  EXPECT_EQ(f.Feed(s, {"00000008 00 0000000c 8001 0000000c 00000144 0000"}),
            Hex("0000000a 8001 0000000a 00000000 00000000"));  // Startup(CLEAR)
  // POWER_OFF, RESET, RESTART, HASH_START, HASH_DATA("abc"), HASH_END, PP on/off, NV_OFF, STOP.
  EXPECT_EQ(f.Feed(s, {"00000002", "00000011", "00000012", "00000005", "00000006 00000003 616263",
                       "00000007", "00000003", "00000004", "0000000c", "00000015"}),
            Hex("00000001 00000001 00000001 00000001 00000001 00000001 00000001 00000001 "
                "00000001 00000001"));
  EXPECT_TRUE(f.eng->running());
  EXPECT_FALSE(f.hooks.exit_requested);
  EXPECT_FALSE(s.wants_close());
  EXPECT_FALSE(f.eng->GetEstablished().value()) << "no H-CRTM sequence ran";
  // A command at locality 4 is refused with TPM_RC_LOCALITY; locality 3 still runs.
  EXPECT_EQ(f.Feed(s, {"00000008 04 0000000c 8001 0000000c 0000017b 0008"}),
            Hex("0000000a 8001 0000000a 00000907 00000000"));
  Bytes ok = f.Feed(s, {"00000008 03 0000000c 8001 0000000c 0000017b 0008"});
  ASSERT_EQ(ok.size(), 4u + 20u + 4u);
  EXPECT_EQ(wire::ResponseCode(ByteSpan(ok).subspan(4, 20)), 0u);
  // A second Startup fails (TPM_RC_INITIALIZE): no reset or power cycle happened.
  EXPECT_EQ(f.Feed(s, {"00000008 00 0000000c 8001 0000000c 00000144 0000"}),
            Hex("0000000a 8001 0000000a 00000100 00000000"));
  EXPECT_EQ(f.Feed(s, {"00000014"}), Bytes{});  // SESSION_END
  EXPECT_TRUE(s.wants_close());
}

}  // namespace
}  // namespace vtpm::daemon
