// Saved device state: the bytes SaveState() produces are a format (snapshots and migration streams
// outlive the build that wrote them), pinned here by golden blobs captured from the models, and a
// restore of any truncated or bit-flipped blob is refused without touching the device.
#include <gtest/gtest.h>

#include "device/crb.h"
#include "device/regs.h"
#include "device/tis.h"
#include "fakes/fake_backend.h"
#include "fakes/mmio_bus.h"

namespace vtpm::device {
namespace {

using testing::DeviceBus;
using testing::FakeBackend;
using testing::RecordingIrqLine;
using testing::TestCommand;

constexpr uint64_t L(int loc, uint16_t reg) { return uint64_t(loc) * 0x1000 + reg; }

Bytes Hex(std::string_view hex) { return FromHex(hex).value(); }

// TPM2_SelfTest(fullTest = NO): its successful completion sets STS.selfTestDone.
const Bytes kSelfTest = {0x80, 0x01, 0, 0, 0, 0x0B, 0, 0, 0x01, 0x43, 0x00};

// A TPM 2.0 TIS in the middle of reading a response, with a seize, a pending request, interrupts
// enabled and pending, the interface selector locked and selfTestDone set: every field non-zero
// somewhere.
Bytes SaveBusyTis() {
  FakeBackend backend;
  RecordingIrqLine irq;
  TisConfig cfg;
  cfg.irq_vector = 7;
  auto tis = std::move(*Tis::Create(cfg, TisDeps{&backend, &irq, nullptr}));
  DeviceBus bus(*tis);
  bus.Write8(L(0, tis::kAccess), tis::kAccessRequestUse);
  bus.Write8(L(2, tis::kAccess), tis::kAccessSeize);
  bus.Write8(L(1, tis::kAccess), tis::kAccessRequestUse);
  bus.Write32(L(2, tis::kIntEnable), 0x80000091);
  bus.Write32(L(2, tis::kInterfaceId), tis::kInterfaceIdIntfSelLock);
  bus.Write8(L(2, tis::kSts), tis::kStsCommandReady);
  for (uint8_t b : kSelfTest) bus.Write8(L(2, tis::kDataFifo), b);
  bus.Write8(L(2, tis::kSts), tis::kStsGo);
  for (int i = 0; i < 3; ++i) bus.Read8(L(2, tis::kDataFifo));
  return tis->SaveState().value();
}

Bytes SaveFreshTpm12Tis() {
  FakeBackend backend;
  TisConfig cfg;
  cfg.family = TpmFamily::kTpm12;
  auto tis = std::move(*Tis::Create(cfg, TisDeps{&backend, nullptr, nullptr}));
  return tis->SaveState().value();
}

// A five-locality CRB with its buffer in "guest RAM": locality 3 seized from 0, 1 waiting, a
// cancel written, interrupts pending and the fatal bit set by a malformed response.
Bytes SaveExternalBufferCrb() {
  FakeBackend backend;
  backend.responder = [](const Bytes&) { return Bytes{1, 2, 3}; };
  RecordingIrqLine irq;
  Bytes ram(4096, 0);
  CrbConfig cfg;
  cfg.localities = 5;
  cfg.external_buffer = CrbExternalBuffer{0x10000000, ram};
  auto crb = std::move(*Crb::Create(cfg, CrbDeps{&backend, &irq, nullptr}));
  DeviceBus bus(*crb);
  bus.Write32(L(0, crb::kLocCtrl), crb::kLocCtrlRequest);
  bus.Write32(L(3, crb::kLocCtrl), crb::kLocCtrlSeize);
  bus.Write32(L(1, crb::kLocCtrl), crb::kLocCtrlRequest);
  bus.Write32(L(3, crb::kIntEnable), 0x80000003);
  bus.Write32(L(3, crb::kCtrlReq), crb::kReqCmdReady);
  Bytes cmd = TestCommand(12);
  std::copy(cmd.begin(), cmd.end(), ram.begin());
  bus.Write32(L(3, crb::kCtrlStart), crb::kStartInvoke);
  bus.Write32(L(3, crb::kCtrlCancel), crb::kCancelInvoke);
  return crb->SaveState().value();
}

// One locality, internal buffer holding a response.
Bytes SaveInternalBufferCrb() {
  FakeBackend backend;
  auto crb = std::move(*Crb::Create(CrbConfig{}, CrbDeps{&backend, nullptr, nullptr}));
  DeviceBus bus(*crb);
  bus.Write32(crb::kLocCtrl, crb::kLocCtrlRequest);
  bus.Write32(crb::kCtrlReq, crb::kReqCmdReady);
  Bytes cmd = TestCommand(64, 8);
  for (size_t i = 0; i < cmd.size(); ++i) bus.Write8(crb::kDataBuffer + i, cmd[i]);
  bus.Write32(crb::kCtrlStart, crb::kStartInvoke);
  return crb->SaveState().value();
}

// Envelope: "VTPMTIS\0", version 1, payload length, then the payload and its CRC-32.
TEST(DeviceStateGolden, TisMidResponse) {
  EXPECT_EQ(ToHex(SaveBusyTis()),
            ToHex(Hex("5654504d54495300 00000001 0000005a"
                      // family 2.0, active 2, owner 2, Completion, selfTestDone, selector lock,
                      // IRQ asserted
                      "01 02 02 04 01 01 01"
                      // per locality: flags (1 requestUse, 2 beenSeized), INT_ENABLE, INT_STATUS
                      "02 00000008 00000000"
                      "01 00000008 00000000"
                      "00 80000091 00000083"
                      "00 00000008 00000000"
                      "00 00000008 00000000"
                      // last command code, command, response, response read position
                      "00000143"
                      "0000000b 80010000000b0000014300"
                      "0000000b 80010000000b0000000000"
                      "00000003"
                      "25220bdd")));
}

TEST(DeviceStateGolden, FreshTpm12Tis) {
  EXPECT_EQ(ToHex(SaveFreshTpm12Tis()), ToHex(Hex("5654504d54495300 00000001 00000044"
                                                  "00 ff ff 00 00 00 00"
                                                  "00 00000008 00000000"
                                                  "00 00000008 00000000"
                                                  "00 00000008 00000000"
                                                  "00 00000008 00000000"
                                                  "00 00000008 00000000"
                                                  "00000000 00000000 00000000 00000000"
                                                  "55694d85")));
}

// Envelope "VTPMCRB\0", version 1.
TEST(DeviceStateGolden, CrbWithExternalBuffer) {
  EXPECT_EQ(ToHex(SaveExternalBufferCrb()), ToHex(Hex("5654504d43524200 00000001 00000018"
                                                      // localities, active, flags (1 tpmIdle, 2
                                                      // tpmSts), CTRL_CANCEL, INT_ENABLE, INT_STS
                                                      "05 03 02 00000001 80000003 00000003"
                                                      // per locality: 1 pending, 2 beenSeized
                                                      "02 01 00 00 00"
                                                      // no buffer in the state: it is guest RAM
                                                      "00000000"
                                                      "33830a2c")));
}

TEST(DeviceStateGolden, CrbWithInternalBuffer) {
  Bytes want =
      Hex("5654504d43524200 00000001 00000f98"
          "01 00 00 00000000 00000000 00000000"
          "00 00 00 00 00"
          "00000f80");
  Bytes buffer = testing::EchoResponse(TestCommand(64, 8));
  buffer.resize(crb::kDataBufferSize, 0);
  want.insert(want.end(), buffer.begin(), buffer.end());
  AppendBe32(want, 0xd4cc2f04);
  EXPECT_EQ(ToHex(SaveInternalBufferCrb()), ToHex(want));
}

// Every proper prefix and every single-bit flip of |saved| is refused, and |device| (not busy)
// keeps the state it had.
template <class Device>
void ExpectEveryDamageRefused(Device& device, const Bytes& saved) {
  const Bytes before = device.SaveState().value();
  for (size_t n = 0; n < saved.size(); ++n) {
    ASSERT_FALSE(device.RestoreState(ByteSpan(saved).first(n))) << "prefix of " << n;
  }
  for (size_t bit = 0; bit < saved.size() * 8; ++bit) {
    Bytes damaged = saved;
    damaged[bit / 8] ^= static_cast<uint8_t>(1u << (bit % 8));
    ASSERT_FALSE(device.RestoreState(damaged)) << "bit " << bit;
  }
  EXPECT_EQ(device.SaveState().value(), before);
  ASSERT_TRUE(device.RestoreState(saved));
  EXPECT_EQ(device.SaveState().value(), saved);
}

TEST(DeviceStateDamage, TisRefusesEveryTruncationAndBitFlip) {
  FakeBackend backend;
  RecordingIrqLine irq;
  auto tis = std::move(*Tis::Create(TisConfig{}, TisDeps{&backend, &irq, nullptr}));
  ExpectEveryDamageRefused(*tis, SaveBusyTis());
  EXPECT_TRUE(irq.level);
}

TEST(DeviceStateDamage, CrbRefusesEveryTruncationAndBitFlip) {
  FakeBackend backend;
  Bytes ram(4096);
  CrbConfig five;
  five.localities = 5;
  five.external_buffer = CrbExternalBuffer{0x10000000, ram};
  auto external = std::move(*Crb::Create(five, CrbDeps{&backend, nullptr, nullptr}));
  ExpectEveryDamageRefused(*external, SaveExternalBufferCrb());
  auto internal = std::move(*Crb::Create(CrbConfig{}, CrbDeps{&backend, nullptr, nullptr}));
  ExpectEveryDamageRefused(*internal, SaveInternalBufferCrb());
}

// A well-formed state that does not fit the device it is restored into is refused whole.
TEST(DeviceStateFit, TisBufferLargerThanTheDevicesIsRefused) {
  FakeBackend backend;
  auto big = std::move(*Tis::Create(TisConfig{}, TisDeps{&backend, nullptr, nullptr}));
  DeviceBus bus(*big);
  bus.Write8(L(0, tis::kAccess), tis::kAccessRequestUse);
  bus.Write8(L(0, tis::kSts), tis::kStsCommandReady);
  for (uint8_t b : TestCommand(2000)) bus.Write8(L(0, tis::kDataFifo), b);
  const Bytes saved = big->SaveState().value();
  FakeBackend small_backend;
  small_backend.buffer_size = 1024;
  auto small = std::move(*Tis::Create(TisConfig{}, TisDeps{&small_backend, nullptr, nullptr}));
  const Bytes before = small->SaveState().value();
  auto restored = small->RestoreState(saved);
  ASSERT_FALSE(restored);
  EXPECT_EQ(restored.error().code, Errc::kCorrupt);
  EXPECT_EQ(small->SaveState().value(), before);
}

TEST(DeviceStateFit, CrbInternalAndExternalBuffersDoNotMix) {
  FakeBackend backend;
  Bytes ram(4096);
  CrbConfig external;
  external.external_buffer = CrbExternalBuffer{0x10000000, ram};
  auto ext = std::move(*Crb::Create(external, CrbDeps{&backend, nullptr, nullptr}));
  auto in = std::move(*Crb::Create(CrbConfig{}, CrbDeps{&backend, nullptr, nullptr}));
  EXPECT_FALSE(ext->RestoreState(in->SaveState().value()));
  EXPECT_FALSE(in->RestoreState(ext->SaveState().value()));
}

}  // namespace
}  // namespace vtpm::device
