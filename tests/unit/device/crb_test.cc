// CRB model driven through its registers with a fake backend.
#include "device/crb.h"

#include <gtest/gtest.h>

#include "fakes/fake_backend.h"
#include "fakes/guest_drivers.h"

namespace vtpm::device {
namespace {

using testing::DeviceBus;
using testing::EchoResponse;
using testing::FakeBackend;
using testing::RecordingIrqLine;
using testing::TestCommand;

class CrbTest : public ::testing::Test {
 protected:
  void Make(uint8_t localities = 1, std::optional<CrbExternalBuffer> ext = std::nullopt) {
    CrbConfig cfg;
    cfg.localities = localities;
    cfg.external_buffer = ext;
    auto c = Crb::Create(cfg, CrbDeps{&backend, &irq, nullptr});
    ASSERT_TRUE(c) << c.error().message;
    crb = std::move(*c);
    bus = std::make_unique<DeviceBus>(*crb);
  }
  void SetUp() override { Make(); }
  void Put(const Bytes& cmd) {
    for (size_t i = 0; i < cmd.size(); ++i) bus->Write8(0x80 + i, cmd[i]);
  }
  Bytes Get(size_t n) {
    Bytes b(n);
    for (size_t i = 0; i < n; ++i) b[i] = bus->Read8(0x80 + i);
    return b;
  }

  FakeBackend backend;
  RecordingIrqLine irq;
  std::unique_ptr<Crb> crb;
  std::unique_ptr<DeviceBus> bus;
};

TEST_F(CrbTest, ResetValues) {
  EXPECT_EQ(bus->Read32(crb::kLocState), 0x81u);
  EXPECT_EQ(bus->Read32(crb::kLocSts), 0u);
  EXPECT_EQ(bus->Read(crb::kIntfId, 8), 0x0000101400025811u);
  EXPECT_EQ(bus->Read32(crb::kCtrlReq), 0u);
  EXPECT_EQ(bus->Read32(crb::kCtrlSts), 2u);  // tpmIdle
  EXPECT_EQ(bus->Read32(crb::kCtrlStart), 0u);
  EXPECT_EQ(bus->Read32(crb::kCmdSize), 0xF80u);
  EXPECT_EQ(bus->Read32(crb::kCmdLaddr), 0xFED40080u);
  EXPECT_EQ(bus->Read32(crb::kCmdHaddr), 0u);
  EXPECT_EQ(bus->Read(crb::kRspAddr, 8), 0xFED40080u);
  EXPECT_EQ(bus->Read32(crb::kRspSize), 0xF80u);
  EXPECT_EQ(bus->Read32(0x04), 0u);  // reserved
  EXPECT_EQ(crb->size(), 0x1000u);
}

TEST_F(CrbTest, LinuxDriverRoundTripsCommands) {
  testing::LinuxCrb drv(*bus, 0xFED40000);
  ASSERT_TRUE(drv.Probe());
  EXPECT_EQ(drv.cmd_size(), 0xF80u);
  for (size_t size : {10u, 11u, 1500u, 3968u}) {
    Bytes cmd = TestCommand(size, 1);
    auto rsp = drv.Transmit(cmd);
    ASSERT_TRUE(rsp) << size << ": " << rsp.error().message;
    EXPECT_EQ(*rsp, EchoResponse(cmd));
  }
  EXPECT_EQ(crb->stats().bad_accesses, 0u);
  EXPECT_EQ(bus->Read32(crb::kCtrlSts), 2u);  // idle again
}

TEST_F(CrbTest, Edk2DriverRoundTripsAndItsAddressWritesAreTolerated) {
  testing::Edk2Crb drv(*bus, 0xFED40000);
  for (size_t size : {10u, 700u}) {
    Bytes cmd = TestCommand(size, 2);
    auto rsp = drv.Command(cmd);
    ASSERT_TRUE(rsp) << rsp.error().message;
    EXPECT_EQ(*rsp, EchoResponse(cmd));
  }
  EXPECT_EQ(crb->stats().bad_accesses, 0u);
  bus->Write32(crb::kCmdLaddr, 0x12345678);
  EXPECT_EQ(bus->Read32(crb::kCmdLaddr), 0xFED40080u);
}

TEST_F(CrbTest, StartNeedsTheLocalityAndSelfClears) {
  backend.auto_complete = false;
  Put(TestCommand(10));
  bus->Write32(crb::kCtrlStart, 1);
  EXPECT_TRUE(backend.pending.empty());
  EXPECT_EQ(crb->stats().bad_accesses, 1u);
  bus->Write32(crb::kLocCtrl, 1);
  EXPECT_EQ(bus->Read32(crb::kLocSts), 1u);
  EXPECT_EQ(bus->Read32(crb::kLocState), 0x83u);
  bus->Write32(crb::kCtrlReq, 1);
  EXPECT_EQ(bus->Read32(crb::kCtrlReq), 0u);
  EXPECT_EQ(bus->Read32(crb::kCtrlSts), 0u);
  bus->Write8(crb::kCtrlStart, 1);
  EXPECT_EQ(bus->Read32(crb::kCtrlStart), 1u);
  EXPECT_TRUE(crb->Busy());
  EXPECT_FALSE(crb->SaveState());
  bus->Write32(crb::kCtrlStart, 1);  // again while running: ignored
  EXPECT_EQ(backend.pending.size(), 1u);
  bus->Write32(crb::kCtrlReq, 2);  // goIdle while running: ignored
  EXPECT_EQ(bus->Read32(crb::kCtrlSts), 0u);
  backend.CompleteNext();
  EXPECT_EQ(bus->Read32(crb::kCtrlStart), 0u);
  EXPECT_EQ(Get(10), EchoResponse(TestCommand(10)));
}

TEST_F(CrbTest, CancelIsStoredAndReachesTheBackendOnlyWhileExecuting) {
  backend.auto_complete = false;
  bus->Write32(crb::kLocCtrl, 1);
  bus->Write32(crb::kCtrlCancel, 1);
  EXPECT_EQ(backend.cancels, 0);
  EXPECT_EQ(bus->Read32(crb::kCtrlCancel), 1u);
  bus->Write32(crb::kCtrlCancel, 0);
  Put(TestCommand(10));
  bus->Write32(crb::kCtrlStart, 1);
  bus->Write32(crb::kCtrlCancel, 1);
  EXPECT_EQ(backend.cancels, 1);
  backend.CompleteNext(Bytes{0x80, 0x01, 0, 0, 0, 10, 0, 0, 0x09, 0x09});
  EXPECT_EQ(bus->Read32(crb::kCtrlStart), 0u);
  EXPECT_EQ(Get(10), (Bytes{0x80, 0x01, 0, 0, 0, 10, 0, 0, 0x09, 0x09}));
}

TEST_F(CrbTest, OversizedResponseSetsFatalStatus) {
  bus->Write32(crb::kLocCtrl, 1);
  backend.responder = [](const Bytes&) { return testing::EchoResponse(TestCommand(4000)); };
  Put(TestCommand(10));
  bus->Write32(crb::kCtrlStart, 1);
  EXPECT_EQ(bus->Read32(crb::kCtrlSts) & 1, 1u);
  EXPECT_EQ(bus->Read32(crb::kCtrlStart), 0u);
}

TEST_F(CrbTest, FiveLocalitiesArbitrationAndSeize) {
  Make(5);
  EXPECT_EQ(bus->Read32(crb::kIntfId) & 0x100, 0x100u);  // CapLocality
  EXPECT_EQ(bus->Read32(0x2000 + crb::kCmdLaddr), 0xFED42080u);
  bus->Write32(0x1000 + crb::kLocCtrl, 1);
  EXPECT_EQ(bus->Read32(crb::kLocState), 0x80u | 0x02 | (1 << 2) | 1);
  bus->Write32(0x0000 + crb::kLocCtrl, 1);  // pending
  EXPECT_EQ(bus->Read32(0x0000 + crb::kLocSts), 0u);
  bus->Write32(0x0000 + crb::kLocCtrl, 4);  // seize from below: refused
  EXPECT_EQ(bus->Read32(0x1000 + crb::kLocSts), 1u);
  bus->Write32(0x3000 + crb::kLocCtrl, 4);  // seize from above
  EXPECT_EQ(bus->Read32(0x3000 + crb::kLocSts), 1u);
  EXPECT_EQ(bus->Read32(0x1000 + crb::kLocSts), 2u);  // beenSeized
  bus->Write32(0x3000 + crb::kLocCtrl, 2);            // relinquish: pending locality 0 gets it
  EXPECT_EQ(bus->Read32(0x0000 + crb::kLocSts), 1u);
  EXPECT_EQ(bus->Read32(crb::kLocState) & 0x1E, 0x02u);
  bus->Write32(0x1000 + crb::kLocCtrl, 1);
  bus->Write32(0x0000 + crb::kLocCtrl, 2);
  EXPECT_EQ(bus->Read32(0x1000 + crb::kLocSts), 1u);  // granted clears beenSeized
  bus->Write32(0x3000 + crb::kLocCtrl, 8);            // resetEstablishment from locality 3
  bus->Write32(0x0000 + crb::kLocCtrl, 8);            // ... and from 0: refused
  EXPECT_EQ(backend.ops, (std::vector<std::string>{"reset_established:3"}));
}

TEST_F(CrbTest, SeizeDuringExecutionDropsTheResponse) {
  Make(5);
  backend.auto_complete = false;
  bus->Write32(crb::kLocCtrl, 1);
  Put(TestCommand(30));
  bus->Write32(crb::kCtrlStart, 1);
  bus->Write32(0x4000 + crb::kLocCtrl, 4);
  EXPECT_EQ(backend.cancels, 1);
  backend.CompleteNext();
  EXPECT_EQ(Get(30), TestCommand(30));  // buffer untouched
}

TEST_F(CrbTest, ResponseOfARelinquishedCommandNeverReachesTheNextOwner) {
  Make(5);
  backend.auto_complete = false;
  bus->Write32(crb::kLocCtrl, 1);
  Put(TestCommand(30));
  bus->Write32(crb::kCtrlStart, 1);
  bus->Write32(crb::kLocCtrl, 2);           // relinquish while executing
  bus->Write32(0x2000 + crb::kLocCtrl, 1);  // locality 2 takes over
  EXPECT_EQ(backend.cancels, 1);
  backend.CompleteNext();
  EXPECT_EQ(Get(30), TestCommand(30));  // buffer untouched
  // The same locality coming back gets its response.
  bus->Write32(0x2000 + crb::kLocCtrl, 2);
  bus->Write32(crb::kLocCtrl, 1);
  bus->Write32(crb::kCtrlStart, 1);
  bus->Write32(crb::kLocCtrl, 2);
  bus->Write32(crb::kLocCtrl, 1);
  backend.CompleteNext();
  EXPECT_EQ(Get(30), EchoResponse(TestCommand(30)));
}

TEST_F(CrbTest, InterruptsFollowEnableAndW1c) {
  bus->Write32(crb::kIntEnable, 0x80000001);
  bus->Write32(crb::kLocCtrl, 1);
  Put(TestCommand(10));
  bus->Write32(crb::kCtrlStart, 1);
  EXPECT_TRUE(irq.level);
  EXPECT_EQ(bus->Read32(crb::kIntSts), 1u);
  bus->Write32(crb::kIntSts, 1);
  EXPECT_FALSE(irq.level);
}

TEST_F(CrbTest, ExternalBufferInGuestRam) {
  std::vector<uint8_t> ram(4096, 0);
  Make(1, CrbExternalBuffer{0x7F000000, std::span<uint8_t>(ram)});
  EXPECT_EQ(bus->Read32(crb::kCmdLaddr), 0x7F000000u);
  EXPECT_EQ(bus->Read32(crb::kCmdSize), 4096u);
  testing::LinuxCrb drv(*bus, 0xFED40000);
  ASSERT_TRUE(drv.Probe());
  Bytes cmd = TestCommand(2222, 4);
  auto rsp = drv.Transmit(
      cmd, [&](const Bytes& c) { std::copy(c.begin(), c.end(), ram.begin()); },
      [&](size_t off, size_t n) {
        return Bytes(ram.begin() + static_cast<ptrdiff_t>(off),
                     ram.begin() + static_cast<ptrdiff_t>(off + n));
      });
  ASSERT_TRUE(rsp) << rsp.error().message;
  EXPECT_EQ(*rsp, EchoResponse(cmd));
  // The MMIO window has no buffer then.
  EXPECT_EQ(bus->Read32(0x80), 0u);
}

TEST_F(CrbTest, HostileHeaderLengthsAreClamped) {
  bus->Write32(crb::kLocCtrl, 1);
  Bytes cmd = TestCommand(10);
  StoreBe32(cmd.data() + 2, 0xFFFFFFFF);
  Put(cmd);
  bus->Write32(crb::kCtrlStart, 1);
  ASSERT_EQ(backend.commands.size(), 1u);
  EXPECT_EQ(backend.commands[0].size(), 0xF80u);
  StoreBe32(cmd.data() + 2, 3);
  Put(cmd);
  bus->Write32(crb::kCtrlStart, 1);
  EXPECT_EQ(backend.commands[1].size(), 10u);
}

TEST_F(CrbTest, ByteLanesMatchWideReads) {
  bus->Write32(crb::kLocCtrl, 1);
  for (uint64_t off = 0; off < 0x80; ++off) {
    for (unsigned width : {1u, 2u, 4u, 8u}) {
      uint64_t wide = bus->Read(off, width);
      for (unsigned k = 0; k < width; ++k) {
        ASSERT_EQ(static_cast<uint8_t>(wide >> (8 * k)), bus->Read8(off + k))
            << std::hex << off << " " << width;
      }
    }
  }
}

TEST_F(CrbTest, SaveRestoreRoundTrip) {
  bus->Write32(crb::kLocCtrl, 1);
  bus->Write32(crb::kIntEnable, 0x80000002);
  bus->Write32(crb::kCtrlReq, 1);
  Put(TestCommand(64, 8));
  bus->Write32(crb::kCtrlStart, 1);
  auto saved = crb->SaveState();
  ASSERT_TRUE(saved) << saved.error().message;
  FakeBackend b2;
  RecordingIrqLine irq2;
  auto c2 = Crb::Create(CrbConfig{}, CrbDeps{&b2, &irq2, nullptr});
  ASSERT_TRUE(c2);
  ASSERT_TRUE((*c2)->RestoreState(*saved));
  DeviceBus bus2(**c2);
  EXPECT_TRUE(irq2.level);  // cmdReady interrupt pending
  EXPECT_EQ(bus2.Read32(crb::kLocState), 0x83u);
  for (size_t i = 0; i < 64; ++i)
    ASSERT_EQ(bus2.Read8(0x80 + i), EchoResponse(TestCommand(64, 8))[i]);
  EXPECT_EQ((*c2)->SaveState().value(), *saved);
  CrbConfig five;
  five.localities = 5;
  auto c5 = Crb::Create(five, CrbDeps{&b2, nullptr, nullptr});
  EXPECT_FALSE((*c5)->RestoreState(*saved));
}

}  // namespace
}  // namespace vtpm::device
