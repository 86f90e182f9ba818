// The device models driven with the Linux 6.1 and edk2 register sequences, running real TPM 2.0
// commands against a real TPM: the in-process engine, Debian's swtpm and vtpm's own daemon
// through the swtpm socket backend. Label "devices".
#include <gtest/gtest.h>

#include <atomic>
#include <future>

#include "backend/in_process_backend.h"
#include "backend/swtpm_socket_backend.h"
#include "device/crb.h"
#include "device/regs.h"
#include "device/tis.h"
#include "fakes/bounded_wait.h"
#include "fakes/guest_drivers.h"
#include "fakes/tpm_commands.h"
#include "fakes/tpm_fixture.h"
#include "fakes/tpm_process.h"
#include "state/dir_store.h"
#include "wire/tpm_header.h"

namespace vtpm {
namespace {

using device::kTpmMmioBase;
using testing::DeviceBus;
using testing::kWaitLimit;
namespace cmd = testing::cmd;

enum class BackendKind { kInProcess, kSwtpm, kVtpmDaemon };
enum class Driver { kLinuxTis, kEdk2Tis, kLinuxCrb, kEdk2Crb };

std::string Name(BackendKind b) {
  switch (b) {
    case BackendKind::kInProcess:
      return "InProcess";
    case BackendKind::kSwtpm:
      return "Swtpm";
    case BackendKind::kVtpmDaemon:
      return "VtpmDaemon";
  }
  return "?";
}
std::string Name(Driver d) {
  switch (d) {
    case Driver::kLinuxTis:
      return "LinuxTis";
    case Driver::kEdk2Tis:
      return "Edk2Tis";
    case Driver::kLinuxCrb:
      return "LinuxCrb";
    case Driver::kEdk2Crb:
      return "Edk2Crb";
  }
  return "?";
}

class AtomicIrq : public device::IrqLine {
 public:
  void SetLevel(bool asserted) override {
    level = asserted;
    if (asserted) ++raised;
  }
  std::atomic<bool> level{false};
  std::atomic<int> raised{0};
};

// A TPM behind one of the backends.
class TpmUnderTest {
 public:
  explicit TpmUnderTest(BackendKind kind, bool crb, bool tpm2 = true) {
    const uint32_t buffer = crb ? device::crb::kDataBufferSize : 0;
    if (kind == BackendKind::kInProcess) {
      state::DirStoreOptions so;
      so.directory = dir_.path();
      so.fsync = false;
      so.tpm_version = tpm2 ? state::TpmVersion::kTpm20 : state::TpmVersion::kTpm12;
      auto store = state::DirStore::Open(so, NullLogger());
      if (!store) return;
      backend::InProcessOptions o;
      o.buffer_size = buffer;
      o.engine.version = tpm2 ? engine::TpmVersion::kTpm20 : engine::TpmVersion::kTpm12;
      auto b = backend::InProcessBackend::Create(std::move(*store), o, NullLogger());
      if (!b) {
        error_ = b.error().message;
        return;
      }
      backend_ = std::move(*b);
      return;
    }
    process_ = std::make_unique<testing::TpmProcess>(
        kind == BackendKind::kSwtpm ? std::string("swtpm") : std::string(VTPM_BINARY), tpm2);
    if (!process_->started()) {
      error_ = "the TPM process did not create its control socket";
      return;
    }
    backend::SwtpmSocketOptions o;
    o.ctrl_path = process_->ctrl_path();
    o.buffer_size = buffer;
    o.tpm2 = tpm2;
    o.io_timeout = kWaitLimit;  // a TPM process that stops answering fails the test in time
    auto b = backend::SwtpmSocketBackend::Create(o, NullLogger());
    if (!b) {
      error_ = b.error().message;
      return;
    }
    backend_ = std::move(*b);
  }
  ~TpmUnderTest() { backend_.reset(); }  // before the process goes away
  device::TpmBackend* get() { return backend_.get(); }
  const std::string& error() const { return error_; }

 private:
  testing::TempDir dir_;
  std::unique_ptr<testing::TpmProcess> process_;
  std::unique_ptr<device::TpmBackend> backend_;
  std::string error_;
};

bool HaveSwtpm() { return ::system("command -v swtpm >/dev/null 2>&1") == 0; }

class DeviceTpmTest : public ::testing::TestWithParam<std::tuple<BackendKind, Driver>> {
 protected:
  void SetUp() override {
    kind_ = std::get<0>(GetParam());
    driver_ = std::get<1>(GetParam());
    if (kind_ == BackendKind::kSwtpm && !HaveSwtpm()) GTEST_SKIP() << "swtpm is not installed";
    crb_ = driver_ == Driver::kLinuxCrb || driver_ == Driver::kEdk2Crb;
    tpm_ = std::make_unique<TpmUnderTest>(kind_, crb_);
    ASSERT_NE(tpm_->get(), nullptr) << tpm_->error();
    if (crb_) {
      auto c = device::Crb::Create(device::CrbConfig{}, device::CrbDeps{tpm_->get(), &irq_, {}});
      ASSERT_TRUE(c) << c.error().message;
      dev_ = std::move(*c);
    } else {
      device::TisConfig cfg;
      cfg.irq_vector = 5;
      auto t = device::Tis::Create(cfg, device::TisDeps{tpm_->get(), &irq_, {}});
      ASSERT_TRUE(t) << t.error().message;
      dev_ = std::move(*t);
    }
    bus_ = std::make_unique<DeviceBus>(*dev_);
    switch (driver_) {
      case Driver::kLinuxTis: {
        auto d = std::make_unique<testing::LinuxTis>(*bus_);
        ASSERT_TRUE(d->Probe());
        linux_tis_ = std::move(d);
        break;
      }
      case Driver::kLinuxCrb: {
        auto d = std::make_unique<testing::LinuxCrb>(*bus_, kTpmMmioBase);
        ASSERT_TRUE(d->Probe());
        linux_crb_ = std::move(d);
        break;
      }
      case Driver::kEdk2Tis: {
        edk2_tis_ = std::make_unique<testing::Edk2Tis>(*bus_);
        ASSERT_TRUE(edk2_tis_->RequestUseTpm());
        break;
      }
      case Driver::kEdk2Crb:
        edk2_crb_ = std::make_unique<testing::Edk2Crb>(*bus_, kTpmMmioBase);
        break;
    }
  }
  void TearDown() override {
    bus_.reset();
    dev_.reset();
    tpm_.reset();
  }

  Bytes Run(const Bytes& c) {
    Result<Bytes> r = Fail(Errc::kIo, "no driver");
    if (linux_tis_) r = linux_tis_->Transmit(c);
    if (edk2_tis_) r = edk2_tis_->Command(c);
    if (linux_crb_) r = linux_crb_->Transmit(c);
    if (edk2_crb_) r = edk2_crb_->Command(c);
    EXPECT_TRUE(r) << r.error().message;
    return r ? *r : Bytes{};
  }

  BackendKind kind_;
  Driver driver_;
  bool crb_ = false;
  AtomicIrq irq_;
  std::unique_ptr<TpmUnderTest> tpm_;
  std::unique_ptr<device::BusDevice> dev_;
  std::unique_ptr<DeviceBus> bus_;
  std::unique_ptr<testing::LinuxTis> linux_tis_;
  std::unique_ptr<testing::Edk2Tis> edk2_tis_;
  std::unique_ptr<testing::LinuxCrb> linux_crb_;
  std::unique_ptr<testing::Edk2Crb> edk2_crb_;
};

TEST_P(DeviceTpmTest, RealCommandsThroughTheRegisters) {
  ASSERT_EQ(cmd::Rc(Run(cmd::Startup())), 0u);
  EXPECT_EQ(cmd::Rc(Run(cmd::SelfTest())), 0u);

  Bytes r = Run(cmd::GetRandom(32));
  ASSERT_EQ(cmd::Rc(r), 0u);
  ASSERT_EQ(r.size(), 10u + 2 + 32);
  EXPECT_EQ(LoadBe16(r.data() + 10), 32);

  const Bytes digest = cmd::Sha256(Bytes{'v', 't', 'p', 'm'});
  ASSERT_EQ(cmd::Rc(Run(cmd::PcrExtend(16, digest))), 0u);
  r = Run(cmd::PcrRead(16));
  ASSERT_EQ(cmd::Rc(r), 0u);
  EXPECT_EQ(cmd::PcrValue(r), cmd::Sha256(Bytes(32, 0), digest));

  r = Run(cmd::CreatePrimaryEcc());
  ASSERT_EQ(cmd::Rc(r), 0u);
  const uint32_t handle = LoadBe32(r.data() + 10);
  EXPECT_EQ(handle >> 24, 0x80u);
  EXPECT_EQ(cmd::Rc(Run(cmd::FlushContext(handle))), 0u);

  // A command and a response over 1 KiB: NV_Write/NV_Read of 1024 bytes.
  const uint32_t index = 0x01500020;
  ASSERT_EQ(cmd::Rc(Run(cmd::NvDefine(index, 1024))), 0u);
  Bytes data(1024);
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>(i * 13 + 1);
  Bytes w = cmd::NvWrite(index, data);
  EXPECT_GT(w.size(), 1024u);
  ASSERT_EQ(cmd::Rc(Run(w)), 0u);
  r = Run(cmd::NvRead(index, 1024));
  ASSERT_EQ(cmd::Rc(r), 0u);
  EXPECT_GT(r.size(), 1024u);
  ASSERT_GE(r.size(), 10u + 4 + 2 + 1024);
  EXPECT_EQ(Bytes(r.begin() + 16, r.begin() + 16 + 1024), data);
}

INSTANTIATE_TEST_SUITE_P(
    All, DeviceTpmTest,
    ::testing::Combine(::testing::Values(BackendKind::kInProcess, BackendKind::kSwtpm,
                                         BackendKind::kVtpmDaemon),
                       ::testing::Values(Driver::kLinuxTis, Driver::kEdk2Tis, Driver::kLinuxCrb,
                                         Driver::kEdk2Crb)),
    [](const auto& p) { return Name(std::get<0>(p.param)) + "_" + Name(std::get<1>(p.param)); });

// --- TIS-specific behaviour against a real TPM ------------------------------------------------

class TisTpmTest : public ::testing::TestWithParam<BackendKind> {
 protected:
  void SetUp() override {
    if (GetParam() == BackendKind::kSwtpm && !HaveSwtpm()) GTEST_SKIP() << "no swtpm";
    tpm_ = std::make_unique<TpmUnderTest>(GetParam(), false);
    ASSERT_NE(tpm_->get(), nullptr) << tpm_->error();
    device::TisConfig cfg;
    cfg.irq_vector = 5;
    auto t = device::Tis::Create(cfg, device::TisDeps{tpm_->get(), &irq_, {}});
    ASSERT_TRUE(t);
    tis_ = std::move(*t);
    bus_ = std::make_unique<DeviceBus>(*tis_);
    drv_ = std::make_unique<testing::LinuxTis>(*bus_);
    ASSERT_TRUE(drv_->Probe());
  }
  void TearDown() override {
    drv_.reset();
    bus_.reset();
    tis_.reset();
    tpm_.reset();
  }
  Bytes Run(const Bytes& c) {
    auto r = drv_->Transmit(c);
    EXPECT_TRUE(r) << r.error().message;
    return r ? *r : Bytes{};
  }
  void Hash(ByteSpan data) {
    bus_->Write32(0x4000 + device::tis::kHashStart, 0);
    for (uint8_t b : data) bus_->Write8(0x4000 + device::tis::kDataFifo, b);
    bus_->Write32(0x4000 + device::tis::kHashEnd, 0);
  }
  bool Established() { return (bus_->Read8(0) & 1) == 0; }

  AtomicIrq irq_;
  std::unique_ptr<TpmUnderTest> tpm_;
  std::unique_ptr<device::Tis> tis_;
  std::unique_ptr<DeviceBus> bus_;
  std::unique_ptr<testing::LinuxTis> drv_;
};

// H-CRTM: a locality-4 hash sequence before TPM2_Startup. The TPM resets PCR[0] to 0...04 and
// extends the digest of the data (TPM 2.0 Part 4 _TPM_Hash_End: "reset the H-CRTM register
// (PCR[0]) to 0...04, and then extend the H-CRTM data"); Startup keeps that value.
TEST_P(TisTpmTest, Locality4HashBeforeStartupIsTheHcrtmEventInPcr0) {
  const Bytes data = {'h', '-', 'c', 'r', 't', 'm', ' ', 'b', 'l', 'o', 'b'};
  EXPECT_FALSE(Established());
  Hash(data);
  ASSERT_TRUE(testing::WaitFor([&] { return Established(); }))
      << "tpmEstablishment did not reach ACCESS after _TPM_Hash_End";
  ASSERT_EQ(cmd::Rc(Run(cmd::Startup())), 0u);
  Bytes r = Run(cmd::PcrRead(0));
  ASSERT_EQ(cmd::Rc(r), 0u);
  Bytes init(32, 0);
  init[31] = 4;
  EXPECT_EQ(cmd::PcrValue(r), cmd::Sha256(init, cmd::Sha256(data)));
  // resetEstablishment from locality 3 clears the flag again.
  ASSERT_TRUE(drv_->RequestLocality());
  drv_->Relinquish();
  bus_->Write8(0x3000, 0x02);
  ASSERT_TRUE(testing::WaitFor([&] { return (bus_->Read8(0x3000) & 0x20) != 0; }));
  bus_->Write32(0x3000 + device::tis::kSts, device::tis::kStsResetEstablishment);
  EXPECT_TRUE(testing::WaitFor([&] { return !Established(); }));
  bus_->Write8(0x3000, 0x20);
}

// DRTM: the same sequence after Startup resets PCR 17 and extends the digest there.
TEST_P(TisTpmTest, Locality4HashAfterStartupIsTheDrtmEventInPcr17) {
  ASSERT_EQ(cmd::Rc(Run(cmd::Startup())), 0u);
  const Bytes data(3000, 0x5A);  // more than one hash chunk
  Hash(data);
  Bytes r = Run(cmd::PcrRead(17));
  ASSERT_EQ(cmd::Rc(r), 0u);
  EXPECT_EQ(cmd::PcrValue(r), cmd::Sha256(Bytes(32, 0), cmd::Sha256(data)));
  r = Run(cmd::PcrRead(0));
  EXPECT_EQ(cmd::PcrValue(r), Bytes(32, 0));
}

// Linux's interrupt test (docs/DEVICES.md §3.4) with completions arriving on the backend's thread.
TEST_P(TisTpmTest, LinuxInterruptTestPassesWithARealTpm) {
  ASSERT_EQ(cmd::Rc(Run(cmd::Startup())), 0u);
  ASSERT_TRUE(drv_->RequestLocality());
  bus_->Write8(device::tis::kIntVector, bus_->Read8(device::tis::kIntVector));
  bus_->Write32(device::tis::kIntStatus, bus_->Read32(device::tis::kIntStatus));
  bus_->Write32(device::tis::kIntEnable, drv_->intmask() | 0x80000000u);
  const int before = irq_.raised;
  Bytes r = Run(cmd::GetRandom(8));  // tpm2_get_tpm_pt in the original; any command will do
  EXPECT_EQ(cmd::Rc(r), 0u);
  EXPECT_GT(irq_.raised.load(), before);
  ASSERT_TRUE(drv_->RequestLocality());
  uint32_t status = bus_->Read32(device::tis::kIntStatus);
  EXPECT_NE(status & device::tis::kIntDataAvail, 0u);
  bus_->Write32(device::tis::kIntStatus, status);
  EXPECT_FALSE(irq_.level.load());
  drv_->Relinquish();
}

// Save in the middle of reading a response, restore into a fresh device on the same TPM, finish.
TEST_P(TisTpmTest, SaveRestoreMidResponse) {
  ASSERT_EQ(cmd::Rc(Run(cmd::Startup())), 0u);
  ASSERT_TRUE(drv_->RequestLocality());
  bus_->Write8(device::tis::kSts, 0x40);
  for (uint8_t b : cmd::GetRandom(48)) bus_->Write8(device::tis::kDataFifo, b);
  bus_->Write8(device::tis::kSts, 0x20);
  EXPECT_FALSE(tis_->SaveState() && tis_->Busy());  // either done already or refused
  ASSERT_TRUE(testing::WaitFor([&] { return (bus_->Read8(device::tis::kSts) & 0x90) == 0x90; }));
  Bytes head(20);
  for (auto& b : head) b = bus_->Read8(device::tis::kDataFifo);
  auto saved = tis_->SaveState();
  ASSERT_TRUE(saved) << saved.error().message;
  auto t2 = device::Tis::Create(device::TisConfig{}, device::TisDeps{tpm_->get(), nullptr, {}});
  ASSERT_TRUE(t2);
  ASSERT_TRUE((*t2)->RestoreState(*saved));
  DeviceBus bus2(**t2);
  Bytes rsp = head;
  // bounded: a dataAvail that never clears ends the loop after more than any response holds
  while ((bus2.Read8(device::tis::kSts) & 0x10) && rsp.size() <= 4096) {
    rsp.push_back(bus2.Read8(device::tis::kDataFifo));
  }
  ASSERT_EQ(rsp.size(), 10u + 2 + 48);
  EXPECT_EQ(cmd::Rc(rsp), 0u);
  EXPECT_EQ(LoadBe16(rsp.data() + 10), 48);
}

INSTANTIATE_TEST_SUITE_P(All, TisTpmTest,
                         ::testing::Values(BackendKind::kInProcess, BackendKind::kSwtpm,
                                           BackendKind::kVtpmDaemon),
                         [](const auto& p) { return Name(p.param); });

// --- The TPM 1.2 personality (TIS 1.3) against a TPM 1.2 ------------------------------------

class Tpm12Test : public ::testing::TestWithParam<BackendKind> {};

TEST_P(Tpm12Test, LinuxDriverRunsTpm12Commands) {
  if (GetParam() == BackendKind::kSwtpm && !HaveSwtpm()) GTEST_SKIP() << "no swtpm";
  TpmUnderTest tpm(GetParam(), /*crb=*/false, /*tpm2=*/false);
  ASSERT_NE(tpm.get(), nullptr) << tpm.error();
  device::TisConfig cfg;
  cfg.family = device::TpmFamily::kTpm12;
  auto tis = device::Tis::Create(cfg, device::TisDeps{tpm.get(), nullptr, {}});
  ASSERT_TRUE(tis);
  DeviceBus bus(**tis);
  EXPECT_EQ(bus.Read32(device::tis::kIntfCapability), 0x20000697u);
  testing::LinuxTis drv(bus);
  ASSERT_TRUE(drv.Probe());
  auto run = [&](const Bytes& c) {
    auto r = drv.Transmit(c);
    EXPECT_TRUE(r) << r.error().message;
    return r ? *r : Bytes{};
  };
  // TPM 1.2 Part 3: TPM_Startup(ST_CLEAR), TPM_ContinueSelfTest, TPM_GetRandom, TPM_Extend.
  Bytes r = run(testing::Hex("00c1 0000000c 00000099 0001"));
  ASSERT_EQ(r, testing::Hex("00c4 0000000a 00000000"));
  r = run(testing::Hex("00c1 0000000a 00000053"));
  EXPECT_EQ(cmd::Rc(r), 0u);
  ASSERT_TRUE(drv.RequestLocality());
  EXPECT_EQ(bus.Read8(device::tis::kSts) & device::tis::kStsSelfTestDone,
            device::tis::kStsSelfTestDone);
  EXPECT_EQ(bus.Read32(device::tis::kSts) >> 26, 0u);  // tpmFamily 1.2
  drv.Relinquish();
  r = run(testing::Hex("00c1 0000000e 00000046 00000010"));
  ASSERT_EQ(cmd::Rc(r), 0u);
  EXPECT_EQ(r.size(), 14u + 16);
  Bytes digest(20, 0xAB);
  Bytes extend = testing::Hex("00c1 00000022 00000014 00000010");
  extend.insert(extend.end(), digest.begin(), digest.end());
  r = run(extend);
  ASSERT_EQ(cmd::Rc(r), 0u);
  ASSERT_EQ(r.size(), 30u);
  Bytes expect(20);
  unsigned len = 0;
  Bytes in(20, 0);
  in.insert(in.end(), digest.begin(), digest.end());
  EVP_Digest(in.data(), in.size(), expect.data(), &len, EVP_sha1(), nullptr);
  EXPECT_EQ(Bytes(r.begin() + 10, r.end()), expect);  // PCR 16 = SHA1(0^20 || digest)
}

INSTANTIATE_TEST_SUITE_P(All, Tpm12Test,
                         ::testing::Values(BackendKind::kInProcess, BackendKind::kSwtpm,
                                           BackendKind::kVtpmDaemon),
                         [](const auto& p) { return Name(p.param); });

// --- Backend behaviour -------------------------------------------------------------------------

TEST(SwtpmSocketBackendTest, TransportFailureBecomesTpmRcFailure) {
  if (!HaveSwtpm()) GTEST_SKIP() << "no swtpm";
  auto proc = std::make_unique<testing::TpmProcess>("swtpm");
  ASSERT_TRUE(proc->started());
  backend::SwtpmSocketOptions o;
  o.ctrl_path = proc->ctrl_path();
  o.io_timeout = kWaitLimit;
  auto b = backend::SwtpmSocketBackend::Create(o, NullLogger());
  ASSERT_TRUE(b) << b.error().message;
  proc.reset();  // the TPM process dies
  auto r = testing::SubmitAndWait(**b, 0, cmd::GetRandom(8));
  ASSERT_TRUE(r) << "the backend did not complete the command within " << kWaitLimit.count()
                 << " s after its TPM process died";
  EXPECT_EQ(*r, (Bytes{0x80, 0x01, 0, 0, 0, 0x0a, 0, 0, 0x01, 0x01}));
  EXPECT_TRUE((*b)->broken());
}

TEST(SwtpmSocketBackendTest, MissingSocketIsAClearError) {
  backend::SwtpmSocketOptions o;
  o.ctrl_path = "/nonexistent/vtpm-ctrl";
  auto b = backend::SwtpmSocketBackend::Create(o, NullLogger());
  ASSERT_FALSE(b);
  EXPECT_NE(b.error().message.find("/nonexistent/vtpm-ctrl"), std::string::npos);
}

// An in-process backend in a fresh state directory, options as given.
std::unique_ptr<backend::InProcessBackend> MakeInProcess(const testing::TempDir& dir,
                                                         const backend::InProcessOptions& o) {
  state::DirStoreOptions so;
  so.directory = dir.path();
  so.fsync = false;
  auto store = state::DirStore::Open(so, NullLogger());
  if (!store) return nullptr;
  auto b = backend::InProcessBackend::Create(std::move(*store), o, NullLogger());
  if (!b) return nullptr;
  return std::move(*b);
}

Status SetLocalityOnEngine(backend::InProcessBackend& b, uint8_t locality) {
  return testing::CallWithin<Status>(
      "RunOnEngine(SetLocality(" + std::to_string(locality) + "))", [&b, locality] {
        return b.RunOnEngine([=](engine::Engine& e) { return e.SetLocality(locality); });
      });
}

TEST(InProcessBackendTest, CompletesOnTheWorkerThreadAndNeverBlocksTheCaller) {
  testing::TempDir dir;
  auto b = MakeInProcess(dir, {});
  ASSERT_NE(b, nullptr);
  auto got = std::make_shared<std::promise<std::pair<Bytes, std::thread::id>>>();
  auto fut = got->get_future();
  b->Submit(0, cmd::Startup(), [got](Bytes r) {
    got->set_value({std::move(r), std::this_thread::get_id()});
  });
  ASSERT_EQ(fut.wait_for(kWaitLimit), std::future_status::ready)
      << "TPM2_Startup did not complete within " << kWaitLimit.count() << " s";
  auto [rsp, tid] = fut.get();
  EXPECT_EQ(cmd::Rc(rsp), 0u);
  EXPECT_NE(tid, std::this_thread::get_id());
  // By default every locality 0-4 is accepted: the engine takes locality 2 and 4, and commands
  // submitted at them execute.
  EXPECT_TRUE(SetLocalityOnEngine(*b, 2));
  EXPECT_TRUE(SetLocalityOnEngine(*b, 4));
  for (uint8_t loc : {uint8_t{2}, uint8_t{4}}) {
    auto r = testing::SubmitAndWait(*b, loc, cmd::GetRandom(8));
    ASSERT_TRUE(r) << "no completion within " << kWaitLimit.count() << " s";
    EXPECT_EQ(cmd::Rc(*r), 0u) << "locality " << int{loc};
  }
}

// With reject_locality_4 (swtpm --locality reject-locality-4) the engine refuses locality 4 and
// the backend answers a command submitted there with TPM_RC_LOCALITY without running it; the
// other localities work. Through the TIS, a guest driver that takes locality 4 and sends a
// command reads that answer.
TEST(InProcessBackendTest, Locality4IsRefusedWhenConfiguredToRejectIt) {
  testing::TempDir dir;
  backend::InProcessOptions o;
  o.engine.reject_locality_4 = true;
  auto b = MakeInProcess(dir, o);
  ASSERT_NE(b, nullptr);
  const Bytes refused = wire::ErrorResponse(tpm::kStNoSessions, 0x907);  // TPM_RC_LOCALITY
  ASSERT_EQ(refused, testing::Hex("8001 0000000a 00000907"));

  auto r = testing::SubmitAndWait(*b, 0, cmd::Startup());
  ASSERT_TRUE(r) << "no completion within " << kWaitLimit.count() << " s";
  ASSERT_EQ(cmd::Rc(*r), 0u);
  r = testing::SubmitAndWait(*b, 4, cmd::GetRandom(8));
  ASSERT_TRUE(r) << "no completion within " << kWaitLimit.count() << " s";
  EXPECT_EQ(ToHex(*r), ToHex(refused));  // hex: readable on failure
  for (uint8_t loc : {uint8_t{0}, uint8_t{2}, uint8_t{3}}) {
    r = testing::SubmitAndWait(*b, loc, cmd::GetRandom(8));
    ASSERT_TRUE(r) << "no completion within " << kWaitLimit.count() << " s";
    EXPECT_EQ(cmd::Rc(*r), 0u) << "locality " << int{loc};
  }
  EXPECT_FALSE(SetLocalityOnEngine(*b, 4));
  EXPECT_TRUE(SetLocalityOnEngine(*b, 2));

  // The same through the device model: locality 4's FIFO carries the command to the backend.
  auto tis = device::Tis::Create(device::TisConfig{}, device::TisDeps{b.get(), nullptr, {}});
  ASSERT_TRUE(tis) << tis.error().message;
  DeviceBus bus(**tis);
  testing::LinuxTis at4(bus, 4), at0(bus, 0);
  auto rsp = at4.Transmit(cmd::GetRandom(8));
  ASSERT_TRUE(rsp) << rsp.error().message;
  EXPECT_EQ(ToHex(*rsp), ToHex(refused));
  rsp = at0.Transmit(cmd::GetRandom(8));
  ASSERT_TRUE(rsp) << rsp.error().message;
  EXPECT_EQ(cmd::Rc(*rsp), 0u);
}

}  // namespace
}  // namespace vtpm
