#include "engine/engine.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "fakes/tpm_fixture.h"
#include "wire/tpm_header.h"

namespace vtpm::engine {
namespace {

using testing::Hex;
using testing::TpmFixture;

constexpr uint32_t kRcSuccess = 0;

TEST(Engine, SecondEngineInProcessIsRefused) {
  TpmFixture f;
  EngineOptions o;
  auto second = Engine::Create(o, f.store.get(), NullLogger());
  ASSERT_FALSE(second.has_value());
  EXPECT_EQ(second.error().code, Errc::kAlreadyExists);
}

TEST(Engine, EngineCanBeCreatedAgainAfterTheFirstIsGone) {
  TpmFixture f;
  f.eng.reset();
  EngineOptions o;
  EXPECT_TRUE(Engine::Create(o, f.store.get(), NullLogger()).has_value());
}

TEST(Engine, BeforeStartEveryCommandGetsTheFatalErrorResponse) {
  TpmFixture f;
  EXPECT_EQ(f.Run(Hex("8001 0000000a 00000181")), Hex("8001 0000000a 00000101"));
}

TEST(Engine, Tpm12BeforeStartAnswersTagC4Fail) {
  TpmFixture f(TpmVersion::kTpm12);
  EXPECT_EQ(f.Run(Hex("00c1 0000000a 000000f1")), Hex("00c4 0000000a 00000009"));
}

TEST(Engine, StartupAndGetRandom) {
  TpmFixture f;
  ASSERT_TRUE(f.eng->Start(false).has_value());
  EXPECT_EQ(f.Run(wire::Tpm2StartupCommand(wire::kTpmSuClear)), Hex("8001 0000000a 00000000"));
  Bytes resp = f.Run(Hex("8001 0000000c 0000017b 0010"));  // GetRandom(16)
  ASSERT_EQ(resp.size(), 10u + 2u + 16u);
  EXPECT_EQ(wire::ResponseCode(resp), kRcSuccess);
  EXPECT_EQ(LoadBe16(resp.data() + 10), 16);
}

// Auto-shutdown: Stop() sends TPM2_Shutdown(SU_STATE), so the next boot may Startup(SU_STATE);
// without it, Startup(SU_STATE) is refused (the TPM saw no orderly shutdown).
TEST(Engine, StopSendsShutdownStateSoStartupStateSucceeds) {
  TpmFixture f;
  ASSERT_TRUE(f.eng->Start(false).has_value());
  ASSERT_EQ(wire::ResponseCode(f.Run(wire::Tpm2StartupCommand(wire::kTpmSuClear))), kRcSuccess);
  f.eng->Stop();
  ASSERT_TRUE(f.eng->Start(false).has_value());
  EXPECT_EQ(wire::ResponseCode(f.Run(wire::Tpm2StartupCommand(wire::kTpmSuState))), kRcSuccess);
}

TEST(Engine, WithoutAutoShutdownStartupStateIsRefused) {
  TpmFixture f(TpmVersion::kTpm20, /*auto_shutdown=*/false);
  ASSERT_TRUE(f.eng->Start(false).has_value());
  ASSERT_EQ(wire::ResponseCode(f.Run(wire::Tpm2StartupCommand(wire::kTpmSuClear))), kRcSuccess);
  f.eng->Stop();
  ASSERT_TRUE(f.eng->Start(false).has_value());
  EXPECT_NE(wire::ResponseCode(f.Run(wire::Tpm2StartupCommand(wire::kTpmSuState))), kRcSuccess);
}

TEST(Engine, HashSequenceSetsEstablishedAndLocality3ResetsIt) {
  TpmFixture f;
  ASSERT_TRUE(f.eng->Start(false).has_value());
  EXPECT_EQ(f.eng->GetEstablished().value(), false);
  ASSERT_TRUE(f.eng->HashStart().has_value());
  ASSERT_TRUE(f.eng->HashData(Hex("68656c6c6f")).has_value());
  ASSERT_TRUE(f.eng->HashEnd().has_value());
  EXPECT_EQ(f.eng->GetEstablished().value(), true);
  EXPECT_FALSE(f.eng->ResetEstablished(0).has_value());  // only localities 3 and 4 may
  EXPECT_TRUE(f.eng->GetEstablished().value());
  ASSERT_TRUE(f.eng->ResetEstablished(3).has_value());
  EXPECT_FALSE(f.eng->GetEstablished().value());
}

TEST(Engine, HashRequiresRunningTpm) {
  TpmFixture f;
  auto st = f.eng->HashStart();
  ASSERT_FALSE(st.has_value());
  EXPECT_EQ(st.error().code, Errc::kFailedPrecondition);
}

TEST(Engine, LocalityAboveFourIsRefused) {
  TpmFixture f;
  EXPECT_TRUE(f.eng->SetLocality(4).has_value());
  EXPECT_FALSE(f.eng->SetLocality(5).has_value());
  EXPECT_EQ(f.eng->locality(), 4);
}

TEST(Engine, BufferSizeCanOnlyBeSetWhileStopped) {
  TpmFixture f;
  auto q = f.eng->SetBufferSize(0);
  ASSERT_TRUE(q.has_value());
  EXPECT_EQ(q->current, 4096u);
  EXPECT_EQ(q->max, 4096u);
  ASSERT_TRUE(f.eng->SetBufferSize(3000).has_value());
  EXPECT_EQ(f.eng->buffer_size(), 3000u);
  ASSERT_TRUE(f.eng->Start(false).has_value());
  EXPECT_FALSE(f.eng->SetBufferSize(4000).has_value());
}

TEST(Engine, PermanentStateRoundTripsThroughSetState) {
  TpmFixture f;
  ASSERT_TRUE(f.eng->Start(false).has_value());
  auto perm = f.eng->GetState(StateType::kPermanent);
  ASSERT_TRUE(perm.has_value());
  EXPECT_GT(perm->size(), 1000u);
  EXPECT_FALSE(f.eng->SetState(StateType::kPermanent, *perm).has_value());  // running
  f.eng->Stop();
  ASSERT_TRUE(f.eng->SetState(StateType::kPermanent, *perm).has_value());
  ASSERT_TRUE(f.eng->Start(false).has_value());
  EXPECT_EQ(f.eng->GetState(StateType::kSaveState).error().code, Errc::kNotFound);
}

TEST(Engine, InfoJsonNamesTheSpecification) {
  TpmFixture f;
  auto info = f.eng->GetInfo(1);
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(*info, R"({"TPMSpecification":{"family":"2.0","level":0,"revision":164}})");
}

// A newest permall that libtpms cannot use (valid blob framing, garbage inside) makes Start()
// fall back to the previous generation instead of leaving the TPM dead (swtpm#642).
TEST(Engine, StartFallsBackToPreviousGenerationWhenNewestIsUnusable) {
  TpmFixture f;
  ASSERT_TRUE(f.eng->Start(false).has_value());
  ASSERT_EQ(wire::ResponseCode(f.Run(wire::Tpm2StartupCommand(wire::kTpmSuClear))), kRcSuccess);
  f.eng->Stop();
  ASSERT_TRUE(f.eng->Start(false).has_value());  // writes permall again: a .bak now exists
  f.eng->Stop();
  auto perm = f.store->Load("permall");
  ASSERT_TRUE(perm.has_value() && perm->has_value());
  Bytes garbage((*perm)->size(), 0x5a);
  ASSERT_TRUE(f.store->Store("permall", garbage).has_value());
  ASSERT_TRUE(f.eng->Start(false).has_value());
  EXPECT_EQ(wire::ResponseCode(f.Run(wire::Tpm2StartupCommand(wire::kTpmSuClear))), kRcSuccess);
  EXPECT_EQ(wire::ResponseCode(f.Run(Hex("8001 0000000c 0000017b 0008"))), kRcSuccess);
}

}  // namespace
}  // namespace vtpm::engine
