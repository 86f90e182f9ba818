#include "engine/engine.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>

#include "fakes/tpm_commands.h"
#include "fakes/tpm_fixture.h"
#include "tpmcmd/tpm2_commands.h"
#include "wire/tpm_header.h"

namespace vtpm::engine {
namespace {

using testing::Hex;
namespace cmd = testing::cmd;
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
  EXPECT_EQ(f.Run(tpmcmd::Marshal(tpmcmd::Startup{tpm::kSuClear})), Hex("8001 0000000a 00000000"));
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
  ASSERT_EQ(wire::ResponseCode(f.Run(tpmcmd::Marshal(tpmcmd::Startup{tpm::kSuClear}))), kRcSuccess);
  f.eng->Stop();
  ASSERT_TRUE(f.eng->Start(false).has_value());
  EXPECT_EQ(wire::ResponseCode(f.Run(tpmcmd::Marshal(tpmcmd::Startup{tpm::kSuState}))), kRcSuccess);
}

TEST(Engine, WithoutAutoShutdownStartupStateIsRefused) {
  TpmFixture f(TpmVersion::kTpm20, /*auto_shutdown=*/false);
  ASSERT_TRUE(f.eng->Start(false).has_value());
  ASSERT_EQ(wire::ResponseCode(f.Run(tpmcmd::Marshal(tpmcmd::Startup{tpm::kSuClear}))), kRcSuccess);
  f.eng->Stop();
  ASSERT_TRUE(f.eng->Start(false).has_value());
  EXPECT_NE(wire::ResponseCode(f.Run(tpmcmd::Marshal(tpmcmd::Startup{tpm::kSuState}))), kRcSuccess);
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

// ---- State given and state refused --------------------------------------------------------

constexpr uint32_t kIndex = 0x01500001;

// Starts the TPM, defines a 4-byte NV index and writes |value| into it.
void StartAndWrite(TpmFixture& f, std::string_view value, bool define) {
  ASSERT_TRUE(f.eng->Start(false).has_value());
  ASSERT_EQ(wire::ResponseCode(f.Run(tpmcmd::Marshal(tpmcmd::Startup{tpm::kSuClear}))), kRcSuccess);
  if (define) {
    ASSERT_EQ(cmd::Rc(f.Run(cmd::NvDefine(kIndex, 4))), kRcSuccess);
  }
  const Bytes data(value.begin(), value.end());
  ASSERT_EQ(cmd::Rc(f.Run(cmd::NvWrite(kIndex, data))), kRcSuccess);
}

// The NV index's 4 bytes, read from a started TPM (after TPM2_Startup).
std::string ReadIndex(TpmFixture& f) {
  EXPECT_EQ(wire::ResponseCode(f.Run(tpmcmd::Marshal(tpmcmd::Startup{tpm::kSuClear}))), kRcSuccess);
  const Bytes r = f.Run(cmd::NvRead(kIndex, 4));
  if (cmd::Rc(r) != kRcSuccess || r.size() < 20) return "rc " + std::to_string(cmd::Rc(r));
  return std::string(r.begin() + 16, r.begin() + 20);  // header, parameterSize, TPM2B size
}

std::map<std::string, Bytes> DirContents(const std::string& dir) {
  std::map<std::string, Bytes> out;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    std::ifstream in(e.path(), std::ios::binary);
    out[e.path().filename()] = Bytes(std::istreambuf_iterator<char>(in), {});
  }
  return out;
}

// A newest permall that libtpms cannot use (framing and seal fine, garbage inside -- e.g. state
// from a newer libtpms) stops the TPM: without the user's consent there is no fallback.
TEST(Engine, StartRefusesAnUnusableNewestStateWithoutConsent) {
  TpmFixture f(TpmVersion::kTpm20, /*auto_shutdown=*/false);
  StartAndWrite(f, "AAAA", true);
  StartAndWrite(f, "BBBB", false);
  f.eng->Stop();
  const Bytes garbage(1400, 0x5a);
  ASSERT_TRUE(f.store->Store("permall", garbage).has_value());  // newest garbage, .bak has BBBB
  const auto before = DirContents(f.dir.path());

  auto st = f.eng->Start(false);
  ASSERT_FALSE(st.has_value());
  EXPECT_EQ(st.error().code, Errc::kTpm);
  EXPECT_FALSE(f.eng->running());
  EXPECT_EQ(DirContents(f.dir.path()), before);
}

// With consent (`--tpmstate ...,backup`) it starts from the previous generation: the NV index
// holds what it held then.
TEST(Engine, StartFallsBackToThePreviousGenerationWithConsent) {
  TpmFixture f(TpmVersion::kTpm20, /*auto_shutdown=*/false);
  StartAndWrite(f, "AAAA", true);
  StartAndWrite(f, "BBBB", false);
  f.eng->Stop();
  ASSERT_TRUE(f.store->Store("permall", Bytes(1400, 0x5a)).has_value());
  f.Open(TpmVersion::kTpm20, /*auto_shutdown=*/false, /*use_previous_on_damage=*/true);
  ASSERT_TRUE(f.eng->Start(false).has_value());
  EXPECT_EQ(ReadIndex(f), "BBBB");
}

// CMD_SET_STATEBLOB with bytes libtpms cannot load: the error swtpm answers (libtpms' code,
// TPM_RC_BAD_TAG 0x1e for a blob without the permanent state's magic), and nothing changes --
// not the store, not the TPM that starts next.
TEST(Engine, RefusedStateBlobChangesNothing) {
  TpmFixture f(TpmVersion::kTpm20, /*auto_shutdown=*/false);
  StartAndWrite(f, "AAAA", true);
  f.eng->Stop();
  const auto before = DirContents(f.dir.path());
  for (int i = 0; i < 2; ++i) {  // twice: the second must not push the first anywhere
    auto st = f.eng->SetState(StateType::kPermanent, Bytes(1299, static_cast<uint8_t>(0x11 + i)));
    ASSERT_FALSE(st.has_value());
    EXPECT_EQ(st.error().code, Errc::kTpm);
    EXPECT_EQ(st.error().tpm_rc, 0x1eu) << st.error().message;
  }
  EXPECT_EQ(DirContents(f.dir.path()), before);
  ASSERT_TRUE(f.eng->Start(false).has_value());
  EXPECT_EQ(ReadIndex(f), "AAAA");
}

// An accepted blob waits in memory until the TPM started from it; only then is it stored, with
// the replaced state as the previous generation. A blob refused after it (here the volatile
// state) leaves it in place.
TEST(Engine, GivenStateIsStoredOnlyOnceTheTpmStartedFromIt) {
  TpmFixture f(TpmVersion::kTpm20, /*auto_shutdown=*/false);
  StartAndWrite(f, "AAAA", true);
  auto aaaa = f.eng->GetState(StateType::kPermanent);
  ASSERT_TRUE(aaaa.has_value());
  StartAndWrite(f, "BBBB", false);
  f.eng->Stop();
  const auto before = DirContents(f.dir.path());

  ASSERT_TRUE(f.eng->SetState(StateType::kPermanent, *aaaa).has_value());
  EXPECT_EQ(f.eng->GetState(StateType::kPermanent).value(), *aaaa);  // what the next start uses
  auto vol = f.eng->SetState(StateType::kVolatile, Bytes(600, 0x22));
  ASSERT_FALSE(vol.has_value());
  EXPECT_NE(vol.error().tpm_rc, 0u);
  EXPECT_EQ(DirContents(f.dir.path()), before);  // nothing stored yet

  ASSERT_TRUE(f.eng->Start(false).has_value());
  EXPECT_EQ(f.store->Load("permall").value(), *aaaa);
  EXPECT_EQ(DirContents(f.dir.path())["tpm2-00.permall.bak"],
            before.at("tpm2-00.permall"));  // the replaced BBBB state
  EXPECT_EQ(ReadIndex(f), "AAAA");
}

TEST(Engine, Tpm12RefusesAGarbageStateBlob) {
  TpmFixture f(TpmVersion::kTpm12);
  auto st = f.eng->SetState(StateType::kPermanent, Bytes(900, 0x33));
  ASSERT_FALSE(st.has_value());
  EXPECT_EQ(st.error().code, Errc::kTpm);
  EXPECT_NE(st.error().tpm_rc, 0u);
  EXPECT_TRUE(f.eng->Start(false).has_value());  // a fresh TPM 1.2, as before the blob
}

}  // namespace
}  // namespace vtpm::engine
