// TIS/PTP FIFO model driven through its registers with a fake backend (inline or deferred
// completion) and a recording IRQ line.
#include "device/tis.h"

#include <gtest/gtest.h>

#include "device/regs.h"
#include "fakes/fake_backend.h"
#include "fakes/guest_drivers.h"

namespace vtpm::device {
namespace {

using testing::DeviceBus;
using testing::EchoResponse;
using testing::FakeBackend;
using testing::LoadLe;
using testing::RecordingIrqLine;
using testing::TestCommand;

constexpr uint64_t L(int loc, uint16_t reg) { return uint64_t(loc) * 0x1000 + reg; }

class TisTest : public ::testing::Test {
 protected:
  void Make(TpmFamily family = TpmFamily::kTpm20) {
    TisConfig cfg;
    cfg.family = family;
    cfg.irq_vector = 10;
    auto t = Tis::Create(cfg, TisDeps{&backend, &irq, nullptr});
    ASSERT_TRUE(t) << t.error().message;
    tis = std::move(*t);
    bus = std::make_unique<DeviceBus>(*tis);
  }
  void SetUp() override { Make(); }
  void Acquire(int loc) {
    bus->Write8(L(loc, tis::kAccess), tis::kAccessRequestUse);
    ASSERT_EQ(bus->Read8(L(loc, tis::kAccess)) & 0x22, 0x20);
  }
  // Ready -> all command bytes -> (not yet tpmGo).
  void Load(int loc, const Bytes& cmd) {
    bus->Write8(L(loc, tis::kSts), 0x40);
    for (uint8_t b : cmd) bus->Write8(L(loc, tis::kDataFifo), b);
  }
  uint8_t Sts(int loc = 0) { return bus->Read8(L(loc, tis::kSts)); }

  FakeBackend backend;
  RecordingIrqLine irq;
  std::unique_ptr<Tis> tis;
  std::unique_ptr<DeviceBus> bus;
};

TEST_F(TisTest, ResetValues) {
  EXPECT_EQ(bus->Read32(L(0, tis::kAccess)), 0x81u);  // valid, not established
  backend.established = true;
  EXPECT_EQ(bus->Read8(L(0, tis::kAccess)), 0x80);
  EXPECT_EQ(bus->Read32(L(0, tis::kSts)), 0xFFFFFFFFu);  // no active locality
  EXPECT_EQ(bus->Read32(L(0, tis::kIntEnable)), 0x08u);
  EXPECT_EQ(bus->Read32(L(0, tis::kIntVector)), 10u);
  EXPECT_EQ(bus->Read32(L(0, tis::kIntStatus)), 0u);
  EXPECT_EQ(bus->Read32(L(0, tis::kIntfCapability)), 0x30000697u);
  EXPECT_EQ(bus->Read32(L(0, tis::kInterfaceId)), 0x00002100u);
  EXPECT_EQ(bus->Read32(L(3, tis::kDidVid)), 0x00011014u);
  EXPECT_EQ(bus->Read32(L(0, tis::kRid)), 0x01u);
  EXPECT_EQ(bus->Read32(L(0, 0x04)), 0xFFFFFFFFu);  // hole
  EXPECT_EQ(bus->Read32(L(0, 0x28)), 0xFFFFFFFFu);  // HASH_START is write-only
  EXPECT_EQ(bus->Read(L(0, 0xF90), 8), ~uint64_t{0});
}

TEST_F(TisTest, Tpm12Personality) {
  Make(TpmFamily::kTpm12);
  Acquire(0);
  EXPECT_EQ(bus->Read32(L(0, tis::kIntfCapability)), 0x20000697u);
  EXPECT_EQ(bus->Read32(L(0, tis::kInterfaceId)), 0xFFFFFFFFu);
  EXPECT_EQ(bus->Read32(L(0, tis::kSts)) >> 26, 0u);  // family 1.2
  backend.auto_complete = false;
  Load(0, TestCommand(12));
  bus->Write8(L(0, tis::kSts), 0x20);
  bus->Write32(L(0, tis::kSts), tis::kStsCommandCancel);  // TPM 2.0 only: ignored
  EXPECT_EQ(backend.cancels, 0);
}

TEST_F(TisTest, LinuxDriverRoundTripsCommands) {
  testing::LinuxTis drv(*bus);
  ASSERT_TRUE(drv.Probe());
  EXPECT_EQ(drv.vendor(), 0x00011014u);
  for (size_t size : {10u, 12u, 300u, 1500u, 4096u}) {
    Bytes cmd = TestCommand(size, static_cast<uint8_t>(size));
    auto rsp = drv.Transmit(cmd);
    ASSERT_TRUE(rsp) << size << ": " << rsp.error().message;
    EXPECT_EQ(*rsp, EchoResponse(cmd));
    EXPECT_EQ(backend.commands.back(), cmd);
  }
  EXPECT_EQ(tis->stats().bad_accesses, 0u);
  EXPECT_EQ(bus->Read8(L(0, tis::kAccess)) & 0x20, 0);  // relinquished
}

TEST_F(TisTest, Edk2DriverRoundTripsCommands) {
  testing::Edk2Tis drv(*bus);
  ASSERT_TRUE(drv.RequestUseTpm());
  for (size_t size : {10u, 255u, 256u, 257u, 2000u}) {
    Bytes cmd = TestCommand(size, 3);
    auto rsp = drv.Command(cmd);
    ASSERT_TRUE(rsp) << size << ": " << rsp.error().message;
    EXPECT_EQ(*rsp, EchoResponse(cmd));
  }
  EXPECT_EQ(tis->stats().bad_accesses, 0u);
}

TEST_F(TisTest, StsNeverShowsMustBeZeroBitsAndNot0x40WhileExecuting) {
  Acquire(0);
  backend.auto_complete = false;
  Bytes cmd = TestCommand(20);
  bus->Write8(L(0, tis::kSts), 0x40);
  EXPECT_EQ(Sts() & 0x23, 0);
  for (uint8_t b : cmd) {
    bus->Write8(L(0, tis::kDataFifo), b);
    EXPECT_EQ(Sts() & 0x23, 0);
  }
  EXPECT_EQ(Sts(), 0x80);  // stsValid, Expect clear
  bus->Write8(L(0, tis::kSts), 0x20);
  EXPECT_EQ(Sts(), 0x80);                                     // executing: not 0x40, no dataAvail
  EXPECT_EQ(bus->Read32(L(0, tis::kSts)) >> 8 & 0xFFFF, 0u);  // no transfer possible
  backend.CompleteNext();
  EXPECT_EQ(Sts(), 0x90);
}

TEST_F(TisTest, ExpectAndBurstCountFollowTheCommand) {
  Acquire(0);
  bus->Write8(L(0, tis::kSts), 0x40);
  uint32_t sts = bus->Read32(L(0, tis::kSts));
  EXPECT_EQ(sts & 0xFF, 0x40u);
  EXPECT_EQ((sts >> 8) & 0xFFFF, 4095u);  // 4096 made 4095: low byte lane non-zero
  EXPECT_EQ(bus->Read8(L(0, 0x19)), 0xFF);
  EXPECT_EQ(bus->Read8(L(0, 0x1A)), 0x0F);
  Bytes cmd = TestCommand(300);
  for (size_t i = 0; i < 6; ++i) bus->Write8(L(0, tis::kDataFifo), cmd[i]);
  EXPECT_EQ(Sts(), 0x88);
  EXPECT_EQ((bus->Read32(L(0, tis::kSts)) >> 8) & 0xFFFF, 4090u);
  for (size_t i = 6; i < 300; ++i) bus->Write8(L(0, tis::kDataFifo), cmd[i]);
  EXPECT_EQ(Sts(), 0x80);
  EXPECT_EQ(bus->Read32(L(0, tis::kSts)), 0x04000080u);
  bus->Write8(L(0, tis::kDataFifo), 0xAA);  // past the end: dropped and counted
  EXPECT_EQ(tis->stats().bad_accesses, 1u);
  bus->Write8(L(0, tis::kSts), 0x20);
  ASSERT_EQ(backend.commands.size(), 1u);
  EXPECT_EQ(backend.commands[0], cmd);
  // Completion: burstCount = remaining response bytes.
  uint32_t s = bus->Read32(L(0, tis::kSts));
  EXPECT_EQ(s & 0xFF, 0x90u);
  EXPECT_EQ((s >> 8) & 0xFFFF, 300u);
  for (int i = 0; i < 299; ++i) bus->Read8(L(0, tis::kDataFifo));
  EXPECT_EQ(Sts(), 0x90);
  bus->Read8(L(0, tis::kDataFifo));
  EXPECT_EQ(Sts(), 0x80);
  EXPECT_EQ(bus->Read8(L(0, tis::kDataFifo)), 0xFF);  // nothing left
}

TEST_F(TisTest, TpmGoWithIncompleteCommandIsIgnored) {
  Acquire(0);
  Bytes cmd = TestCommand(20);
  bus->Write8(L(0, tis::kSts), 0x40);
  for (size_t i = 0; i < 15; ++i) bus->Write8(L(0, tis::kDataFifo), cmd[i]);
  bus->Write8(L(0, tis::kSts), 0x20);
  EXPECT_TRUE(backend.commands.empty());
  EXPECT_EQ(Sts(), 0x88);
}

TEST_F(TisTest, WideAndXDataFifoAccesses) {
  Acquire(0);
  Bytes cmd = TestCommand(37, 9);
  bus->Write8(L(0, tis::kSts), 0x40);
  size_t i = 0;
  // 4-byte writes to DATA_FIFO, 8-byte writes to XDATA_FIFO, then a 2-byte one straddling
  // nothing but FIFO bytes.
  for (; i + 4 <= 16; i += 4)
    bus->Write32(L(0, tis::kDataFifo), static_cast<uint32_t>(LoadLe(cmd, i, 4)));
  for (; i + 8 <= 32; i += 8) bus->Write(L(0, tis::kXDataFifo + 8), 8, LoadLe(cmd, i, 8));
  for (; i < cmd.size(); ++i) bus->Write8(L(0, tis::kXDataFifo + 0x3F), cmd[i]);
  EXPECT_EQ(Sts(), 0x80);
  bus->Write8(L(0, tis::kSts), 0x20);
  ASSERT_EQ(backend.commands.size(), 1u);
  EXPECT_EQ(backend.commands[0], cmd);
  Bytes expect = EchoResponse(cmd);
  Bytes got;
  while (got.size() + 8 <= expect.size()) {
    uint64_t v = bus->Read(L(0, tis::kXDataFifo), 8);
    for (int k = 0; k < 8; ++k) got.push_back(static_cast<uint8_t>(v >> (8 * k)));
  }
  while (got.size() < expect.size()) got.push_back(bus->Read8(L(0, tis::kDataFifo + 3)));
  EXPECT_EQ(got, expect);
  EXPECT_EQ(tis->stats().bad_accesses, 0u);
}

TEST_F(TisTest, ByteLanesMatchWideReadsAtEveryAlignment) {
  Acquire(0);
  bus->Write8(L(0, tis::kSts), 0x40);
  bus->Write32(L(0, tis::kIntEnable), 0x80000087);
  // Every side-effect-free byte of the first 0x40 bytes (FIFO 0x24..0x27 excluded) and of
  // DID_VID/RID, read with every width at every alignment, equals the byte-wise read.
  auto byte_at = [&](uint64_t off) { return bus->Read8(off); };
  auto fifo = [](uint64_t off) { return (off & 0xFFF) >= 0x24 && (off & 0xFFF) < 0x28; };
  for (uint64_t base : {L(0, 0), L(0, 0xEF8)}) {
    for (uint64_t off = base; off < base + 0x40; ++off) {
      for (unsigned width : {1u, 2u, 4u, 8u}) {
        bool touches_fifo = false;
        for (unsigned k = 0; k < width; ++k) touches_fifo |= fifo(off + k);
        if (touches_fifo) continue;
        uint64_t wide = bus->Read(off, width);
        for (unsigned k = 0; k < width; ++k) {
          ASSERT_EQ(static_cast<uint8_t>(wide >> (8 * k)), byte_at(off + k))
              << "offset 0x" << std::hex << off << " width " << width << " lane " << k;
        }
      }
    }
  }
  EXPECT_EQ(tis->stats().bad_accesses, 0u);
}

TEST_F(TisTest, StraddlingWriteHitsBothRegisters) {
  Acquire(0);
  bus->Write32(L(0, tis::kIntEnable), 0x80000000);
  // 8 bytes at 0x14: INTF_CAPABILITY (read-only, counted) + STS byte 0 = commandReady.
  bus->Write(L(0, 0x14), 8, uint64_t{0x40} << 32);
  EXPECT_EQ(Sts() & 0x40, 0x40);
  EXPECT_EQ(tis->stats().bad_accesses, 1u);
  // 2 bytes at 0x17: last byte of INTF_CAP + STS byte 0 again (Ready -> Ready).
  bus->Write(L(0, 0x17), 2, 0x4000);
  EXPECT_EQ(Sts() & 0x40, 0x40);
}

TEST_F(TisTest, AccessesOutsideTheRangeOrOddWidthsAreSafe) {
  uint8_t buf[16];
  tis->Read({0x4FFE, 0, 0}, std::span<uint8_t>(buf, 4));  // straddles the end
  EXPECT_EQ(buf[2], 0xFF);
  tis->Read({~uint64_t{0} - 1, 0, 0}, std::span<uint8_t>(buf, 8));
  tis->Write({0x9000, 0, 0}, std::span<const uint8_t>(buf, 4));
  tis->Read({0, 0, 0}, std::span<uint8_t>(buf, 16));
  tis->Read({0, 0, 0}, std::span<uint8_t>(buf, 0));
  EXPECT_GE(tis->stats().bad_accesses, 4u);
  EXPECT_EQ(bus->Read8(L(0, tis::kAccess)), 0x81);
}

TEST_F(TisTest, ArbitrationRequestPendingRelinquish) {
  Acquire(0);
  bus->Write8(L(2, tis::kAccess), tis::kAccessRequestUse);
  EXPECT_EQ(bus->Read8(L(2, tis::kAccess)), 0x83);  // requestUse, not active
  EXPECT_EQ(bus->Read8(L(0, tis::kAccess)), 0xA5);  // active + pendingRequest
  EXPECT_EQ(bus->Read32(L(2, tis::kSts)), 0xFFFFFFFFu);
  bus->Write8(L(0, tis::kAccess), tis::kAccessActiveLocality);  // relinquish
  EXPECT_EQ(bus->Read8(L(2, tis::kAccess)), 0xA1);
  EXPECT_EQ(bus->Read8(L(0, tis::kAccess)), 0x81);
  // A non-owner writing activeLocality withdraws its request.
  bus->Write8(L(1, tis::kAccess), tis::kAccessRequestUse);
  bus->Write8(L(1, tis::kAccess), tis::kAccessActiveLocality);
  EXPECT_EQ(bus->Read8(L(1, tis::kAccess)), 0x81);
  // Highest requester wins.
  bus->Write8(L(0, tis::kAccess), tis::kAccessRequestUse);
  bus->Write8(L(3, tis::kAccess), tis::kAccessRequestUse);
  bus->Write8(L(2, tis::kAccess), tis::kAccessActiveLocality);
  EXPECT_EQ(bus->Read8(L(3, tis::kAccess)) & 0x20, 0x20);
  EXPECT_EQ(bus->Read8(L(0, tis::kAccess)), 0x83);
}

TEST_F(TisTest, CommandStateBelongsToItsLocality) {
  Acquire(0);
  bus->Write8(L(0, tis::kSts), 0x40);
  bus->Write8(L(0, tis::kAccess), 0x20);
  Acquire(0);
  EXPECT_EQ(Sts(0), 0x40);  // same locality again: still Ready (as QEMU)
  bus->Write8(L(0, tis::kAccess), 0x20);
  Acquire(1);
  EXPECT_EQ(Sts(1), 0x00);  // another locality starts from Idle
}

TEST_F(TisTest, SeizeByHigherLocality) {
  Acquire(1);
  bus->Write8(L(0, tis::kAccess), tis::kAccessSeize);  // lower: refused
  EXPECT_EQ(bus->Read8(L(1, tis::kAccess)) & 0x20, 0x20);
  bus->Write8(L(3, tis::kAccess), tis::kAccessSeize);
  EXPECT_EQ(bus->Read8(L(3, tis::kAccess)), 0xA1);  // Seize bit never reads 1
  EXPECT_EQ(bus->Read8(L(1, tis::kAccess)), 0x91);  // beenSeized
  bus->Write8(L(1, tis::kAccess), tis::kAccessBeenSeized);
  EXPECT_EQ(bus->Read8(L(1, tis::kAccess)), 0x81);
}

TEST_F(TisTest, SeizeDuringExecutionAbortsAndSwitchesOnCompletion) {
  backend.auto_complete = false;
  Acquire(0);
  Load(0, TestCommand(10));
  bus->Write8(L(0, tis::kSts), 0x20);
  bus->Write8(L(4, tis::kAccess), tis::kAccessSeize);
  EXPECT_EQ(backend.cancels, 1);
  EXPECT_EQ(bus->Read8(L(0, tis::kAccess)) & 0x20, 0x20);  // until the TPM let go
  backend.CompleteNext();
  EXPECT_EQ(bus->Read8(L(4, tis::kAccess)) & 0x20, 0x20);
  EXPECT_EQ(bus->Read8(L(0, tis::kAccess)), 0x91);
  EXPECT_EQ(Sts(4), 0x00);  // the response was discarded
}

TEST_F(TisTest, ResponseOfARelinquishedCommandNeverReachesTheNextOwner) {
  backend.auto_complete = false;
  Acquire(0);
  Load(0, TestCommand(10));
  bus->Write8(L(0, tis::kSts), 0x20);
  bus->Write8(L(0, tis::kAccess), 0x20);  // relinquish while executing, nobody waiting
  Acquire(1);
  EXPECT_EQ(backend.cancels, 1);
  EXPECT_FALSE(tis->Busy());
  // Locality 1 runs its own command; the orphan completes first and is ignored.
  Load(1, TestCommand(12, 7));
  bus->Write8(L(1, tis::kSts), 0x20);
  backend.CompleteNext();
  EXPECT_EQ(Sts(1), 0x80);  // still executing its own
  backend.CompleteNext();
  EXPECT_EQ(Sts(1), 0x90);
  Bytes got(12);
  for (auto& b : got) b = bus->Read8(L(1, tis::kDataFifo));
  EXPECT_EQ(got, EchoResponse(TestCommand(12, 7)));
}

TEST_F(TisTest, CommandCancelDuringExecution) {
  backend.auto_complete = false;
  Acquire(0);
  Load(0, TestCommand(10));
  bus->Write32(L(0, tis::kSts), tis::kStsCommandCancel);  // not executing: ignored
  EXPECT_EQ(backend.cancels, 0);
  bus->Write8(L(0, tis::kSts), 0x20);
  bus->Write8(L(0, 0x1B), 0x01);  // commandCancel through its own byte lane
  EXPECT_EQ(backend.cancels, 1);
  Bytes cancelled = {0x80, 0x01, 0, 0, 0, 10, 0, 0, 0x09, 0x09};  // TPM_RC_CANCELED
  backend.CompleteNext(cancelled);
  EXPECT_EQ(Sts(), 0x90);
  Bytes got(10);
  for (auto& b : got) b = bus->Read8(L(0, tis::kDataFifo));
  EXPECT_EQ(got, cancelled);
}

TEST_F(TisTest, ResponseRetryRereadsTheResponse) {
  Acquire(0);
  Load(0, TestCommand(40));
  bus->Write8(L(0, tis::kSts), 0x20);
  Bytes first(40), second(40);
  for (int i = 0; i < 17; ++i) bus->Read8(L(0, tis::kDataFifo));
  bus->Write8(L(0, tis::kSts), tis::kStsResponseRetry);
  for (auto& b : first) b = bus->Read8(L(0, tis::kDataFifo));
  EXPECT_EQ(Sts(), 0x80);
  bus->Write8(L(0, tis::kSts), tis::kStsResponseRetry);
  EXPECT_EQ(Sts(), 0x90);
  for (auto& b : second) b = bus->Read8(L(0, tis::kDataFifo));
  EXPECT_EQ(first, EchoResponse(TestCommand(40)));
  EXPECT_EQ(first, second);
}

TEST_F(TisTest, CommandReadyAbortsReceptionAndExecution) {
  backend.auto_complete = false;
  Acquire(0);
  bus->Write8(L(0, tis::kSts), 0x40);
  for (int i = 0; i < 8; ++i) bus->Write8(L(0, tis::kDataFifo), 0x80);
  bus->Write8(L(0, tis::kSts), 0x40);  // abort reception
  EXPECT_EQ(Sts(), 0x40);
  Load(0, TestCommand(10));
  bus->Write8(L(0, tis::kSts), 0x20);
  bus->Write8(L(0, tis::kSts), 0x40);  // abort execution: cancel, wait for the TPM
  EXPECT_EQ(backend.cancels, 1);
  EXPECT_EQ(Sts(), 0x80);
  backend.CompleteNext();
  EXPECT_EQ(Sts(), 0x40);  // Ready, response dropped
  EXPECT_EQ(bus->Read8(L(0, tis::kDataFifo)), 0xFF);
}

TEST_F(TisTest, InterruptsEnableLatchW1cAndLevel) {
  Acquire(0);
  // Disabled: nothing latches.
  Load(0, TestCommand(10));
  bus->Write8(L(0, tis::kSts), 0x20);
  EXPECT_EQ(bus->Read32(L(0, tis::kIntStatus)), 0u);
  EXPECT_FALSE(irq.level);
  bus->Write8(L(0, tis::kSts), 0x40);
  // Enabled without global: latched nowhere either (as QEMU).
  bus->Write32(L(0, tis::kIntEnable), tis::kIntDataAvail | tis::kIntStsValid);
  Load(0, TestCommand(10));
  bus->Write8(L(0, tis::kSts), 0x20);
  EXPECT_FALSE(irq.level);
  bus->Write8(L(0, tis::kSts), 0x40);
  // Global on: dataAvail|stsValid at completion raise the line.
  bus->Write32(L(0, tis::kIntEnable), 0x80000000 | tis::kIntDataAvail);
  EXPECT_EQ(bus->Read32(L(0, tis::kIntEnable)), 0x80000001u);
  Load(0, TestCommand(10));
  bus->Write8(L(0, tis::kSts), 0x20);
  EXPECT_TRUE(irq.level);
  EXPECT_EQ(bus->Read32(L(0, tis::kIntStatus)), 0x3u);
  bus->Write32(L(0, tis::kIntStatus), 0x2);  // clears only stsValid: dataAvail still pending
  EXPECT_TRUE(irq.level);
  bus->Write32(L(2, tis::kIntStatus), 0x1);  // not the active locality: ignored
  EXPECT_TRUE(irq.level);
  bus->Write32(L(0, tis::kIntStatus), 0x1);
  EXPECT_FALSE(irq.level);
  EXPECT_EQ(bus->Read32(L(0, tis::kIntStatus)), 0u);
  // Disabling globally lowers a pending line.
  bus->Write8(L(0, tis::kSts), 0x40);
  Load(0, TestCommand(10));
  bus->Write8(L(0, tis::kSts), 0x20);
  EXPECT_TRUE(irq.level);
  bus->Write32(L(0, tis::kIntEnable), tis::kIntDataAvail);
  EXPECT_FALSE(irq.level);
  EXPECT_EQ(irq.changes, (std::vector<bool>{true, false, true, false}));
}

TEST_F(TisTest, LinuxInterruptTestSequence) {
  // tpm_tis_probe_irq_single (docs/DEVICES.md §3.4): take locality 0, write INT_VECTOR, clear
  // INT_STATUS by writing back what it reads, enable intmask|global, send a command in polling
  // mode, expect the handler to have run (line asserted, INT_STATUS non-zero), handler writes it
  // back.
  testing::LinuxTis drv(*bus);
  ASSERT_TRUE(drv.Probe());
  ASSERT_TRUE(drv.RequestLocality());
  uint8_t vector = bus->Read8(L(0, tis::kIntVector));
  EXPECT_EQ(vector, 10);
  bus->Write8(L(0, tis::kIntVector), vector);
  bus->Write32(L(0, tis::kIntStatus), bus->Read32(L(0, tis::kIntStatus)));
  bus->Write32(L(0, tis::kIntEnable), drv.intmask() | 0x80000000u);
  std::vector<bool> seen;
  irq.changes.clear();
  auto rsp = drv.Transmit(TestCommand(14));  // Linux keeps the locality ref-counted; ours too
  ASSERT_TRUE(rsp) << rsp.error().message;
  ASSERT_FALSE(irq.changes.empty());
  EXPECT_TRUE(irq.changes.front());
  // The handler: read INT_STATUS (non-zero), take locality 0, write it back.
  ASSERT_TRUE(drv.RequestLocality());
  uint32_t status = bus->Read32(L(0, tis::kIntStatus));
  EXPECT_NE(status, 0u);
  bus->Write32(L(0, tis::kIntStatus), status);
  EXPECT_FALSE(irq.level);
}

TEST_F(TisTest, LocalityChangeInterrupt) {
  Acquire(0);
  bus->Write32(L(0, tis::kIntEnable), 0x80000000 | tis::kIntLocalityChange);
  bus->Write8(L(0, tis::kAccess), 0x20);
  Acquire(0);
  EXPECT_TRUE(irq.level);
  EXPECT_EQ(bus->Read32(L(0, tis::kIntStatus)), tis::kIntLocalityChange);
}

TEST_F(TisTest, Locality4HashSequenceGoesToTheBackendInOrder) {
  bus->Write32(L(4, tis::kHashStart), 0);
  Bytes data(2500);
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>(i);
  for (size_t i = 0; i < 2000; ++i) bus->Write8(L(4, tis::kDataFifo), data[i]);
  for (size_t i = 2000; i < 2500; i += 4)
    bus->Write32(L(4, tis::kDataFifo), static_cast<uint32_t>(LoadLe(data, i, 4)));
  EXPECT_TRUE(tis->Busy());
  bus->Write32(L(4, tis::kHashEnd), 0);
  EXPECT_FALSE(tis->Busy());
  EXPECT_EQ(backend.ops, (std::vector<std::string>{"hash_start", "hash_data:1024", "hash_data:1024",
                                                   "hash_data:452", "hash_end"}));
  EXPECT_EQ(backend.hashed, data);
  // Not at other localities; HASH_END without START is refused.
  bus->Write32(L(0, tis::kHashStart), 0);
  bus->Write32(L(4, tis::kHashEnd), 0);
  EXPECT_EQ(backend.ops.size(), 5u);
  EXPECT_EQ(tis->stats().bad_accesses, 2u);
}

TEST_F(TisTest, ResetEstablishmentOnlyFromLocality3And4) {
  Acquire(0);
  bus->Write32(L(0, tis::kSts), tis::kStsResetEstablishment);
  bus->Write8(L(0, tis::kAccess), 0x20);
  Acquire(3);
  bus->Write8(L(3, 0x1B), 0x02);
  EXPECT_EQ(backend.ops, (std::vector<std::string>{"reset_established:3"}));
}

TEST_F(TisTest, SelfTestDoneLatchesAfterSuccessfulSelfTest) {
  Acquire(0);
  Bytes selftest = {0x80, 0x01, 0, 0, 0, 11, 0, 0, 0x01, 0x43, 0x00};
  backend.responder = [](const Bytes&) { return Bytes{0x80, 0x01, 0, 0, 0, 10, 0, 0, 0, 0}; };
  Load(0, selftest);
  EXPECT_EQ(Sts() & 0x04, 0);
  bus->Write8(L(0, tis::kSts), 0x20);
  EXPECT_EQ(Sts() & 0x04, 0x04);
}

TEST_F(TisTest, MalformedBackendResponseBecomesTpmFailure) {
  Acquire(0);
  backend.responder = [](const Bytes&) { return Bytes{1, 2, 3}; };
  Load(0, TestCommand(10));
  bus->Write8(L(0, tis::kSts), 0x20);
  Bytes got(10);
  for (auto& b : got) b = bus->Read8(L(0, tis::kDataFifo));
  EXPECT_EQ(got, (Bytes{0x80, 0x01, 0, 0, 0, 10, 0, 0, 0x01, 0x01}));
}

TEST_F(TisTest, SaveRestoreRoundTripMidResponse) {
  Acquire(2);
  bus->Write32(L(2, tis::kIntEnable), 0x80000001);
  Load(2, TestCommand(100, 5));
  bus->Write8(L(2, tis::kSts), 0x20);
  Bytes expect = EchoResponse(TestCommand(100, 5));
  for (int i = 0; i < 33; ++i) bus->Read8(L(2, tis::kDataFifo));
  auto saved = tis->SaveState();
  ASSERT_TRUE(saved) << saved.error().message;
  // A second device (fresh backend) continues where the first stopped.
  FakeBackend backend2;
  RecordingIrqLine irq2;
  TisConfig cfg;
  cfg.irq_vector = 10;
  auto t2 = Tis::Create(cfg, TisDeps{&backend2, &irq2, nullptr});
  ASSERT_TRUE(t2);
  ASSERT_TRUE((*t2)->RestoreState(*saved));
  EXPECT_TRUE(irq2.level);  // the pending dataAvail interrupt is re-derived
  DeviceBus bus2(**t2);
  Bytes rest;
  for (int i = 33; i < 100; ++i) rest.push_back(bus2.Read8(L(2, tis::kDataFifo)));
  EXPECT_EQ(rest, Bytes(expect.begin() + 33, expect.end()));
  // save -> restore -> save is byte-identical.
  auto again = tis->SaveState();
  ASSERT_TRUE(again);
  ASSERT_TRUE((*t2)->RestoreState(*again));
  EXPECT_EQ((*t2)->SaveState().value(), *again);
}

TEST_F(TisTest, SaveRefusedMidCommandAndBadBlobsRejected) {
  backend.auto_complete = false;
  Acquire(0);
  Load(0, TestCommand(10));
  bus->Write8(L(0, tis::kSts), 0x20);
  EXPECT_FALSE(tis->SaveState());
  backend.CompleteNext();
  auto saved = tis->SaveState();
  ASSERT_TRUE(saved);
  Bytes corrupt = *saved;
  corrupt[corrupt.size() / 2] ^= 1;
  EXPECT_FALSE(tis->RestoreState(corrupt));
  EXPECT_FALSE(tis->RestoreState(Bytes(saved->begin(), saved->end() - 1)));
  EXPECT_FALSE(tis->RestoreState(Bytes{}));
  Make(TpmFamily::kTpm12);
  EXPECT_FALSE(tis->RestoreState(*saved));  // other family
}

TEST_F(TisTest, LateCompletionAfterDestructionIsHarmless) {
  backend.auto_complete = false;
  Acquire(0);
  Load(0, TestCommand(10));
  bus->Write8(L(0, tis::kSts), 0x20);
  bus.reset();
  tis.reset();
  EXPECT_EQ(backend.cancels, 1);
  backend.CompleteNext();  // must not touch freed memory (ASan)
}

TEST_F(TisTest, ResetDiscardsARunningCommand) {
  backend.auto_complete = false;
  Acquire(0);
  bus->Write32(L(0, tis::kIntEnable), 0x80000081);
  Load(0, TestCommand(10));
  bus->Write8(L(0, tis::kSts), 0x20);
  tis->Reset();
  EXPECT_EQ(backend.cancels, 1);
  backend.CompleteNext();
  EXPECT_EQ(bus->Read8(L(0, tis::kAccess)), 0x81);
  EXPECT_EQ(bus->Read32(L(0, tis::kIntEnable)), 0x08u);
  EXPECT_FALSE(irq.level);
}

}  // namespace
}  // namespace vtpm::device
