// Register-level emulations of the guest drivers that matter, written from their sources as
// summarised in docs/DEVICES.md §3: Linux 6.1 tpm_tis (tpm_tis_core.c) and tpm_crb, and
// edk2's Tpm2Tis.c / Tpm2Ptp.c. Each performs the same accesses, widths and checks as the
// original, and fails (Result error) where the original would give up, so a device that passes
// them behaves as those guests need. They run over an MmioBus, so the same sequences drive our
// models and QEMU's (differential tests).
#pragma once

#include <chrono>
#include <thread>

#include "base/bytes.h"
#include "base/result.h"
#include "mmio_bus.h"

namespace vtpm::testing {

// Polls |cond| until true or |timeout| passes (real time: backends complete on other threads).
inline bool WaitFor(const std::function<bool()>& cond,
                    std::chrono::milliseconds timeout = std::chrono::milliseconds(30000)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    if (cond()) return true;
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
}

inline Error DriverError(std::string what) { return Error{Errc::kIo, std::move(what)}; }

// ----------------------------------------------------------------------------------------------
// Linux 6.1 tpm_tis (polling mode: no IRQ declared, as on QEMU).
class LinuxTis {
 public:
  static constexpr uint8_t kValid = 0x80, kActive = 0x20, kRequestUse = 0x02;
  static constexpr uint8_t kStsValid = 0x80, kCommandReady = 0x40, kGo = 0x20, kDataAvail = 0x10,
                           kExpect = 0x08, kReadZero = 0x23;

  explicit LinuxTis(MmioBus& bus, uint8_t locality = 0) : bus_(bus), loc_(locality) {}
  uint64_t Reg(uint16_t off) const { return uint64_t{loc_} * 0x1000 + off; }

  // tpm_tis_core_init, up to the first command (steps 1-4 of docs/DEVICES.md §3.2).
  Status Probe() {
    vendor_ = bus_.Read32(Reg(0xF00));
    if (!WaitFor([&] { return (bus_.Read8(Reg(0)) & kValid) != 0; })) {
      return tl::unexpected(DriverError("wait_startup: tpmRegValidSts never set"));
    }
    uint32_t inten = bus_.Read32(Reg(0x08));
    uint32_t caps = bus_.Read32(Reg(0x14));
    intmask_ = 0x80 | 0x04 | 0x02 | 0x01;  // cmdReady|locChange|stsValid|dataAvail
    intmask_ &= caps | 0xFFFFFF00u;
    (void)inten;
    VTPM_RETURN_IF_ERROR(RequestLocality());
    bus_.Write32(Reg(0x08), intmask_ & ~0x80000000u);
    Relinquish();
    return Ok();
  }

  bool CheckLocality() {
    uint8_t a = bus_.Read8(Reg(0));
    return (a & (kActive | kValid | kRequestUse)) == (kActive | kValid);
  }
  Status RequestLocality() {
    if (CheckLocality()) return Ok();
    bus_.Write8(Reg(0), kRequestUse);
    if (!WaitFor([&] { return CheckLocality(); }, std::chrono::milliseconds(750))) {
      return tl::unexpected(DriverError("request_locality: not granted within TIMEOUT_A"));
    }
    return Ok();
  }
  void Relinquish() { bus_.Write8(Reg(0), kActive); }

  // tpm_tis_status(): the STS byte; bits 0x23 must read 0.
  Result<uint8_t> Status8() {
    uint8_t s = bus_.Read8(Reg(0x18));
    if (s & kReadZero) {
      return tl::unexpected(DriverError(fmt::format("STS 0x{:02x} has must-be-zero bits", s)));
    }
    return s;
  }
  Status WaitStat(uint8_t mask, std::chrono::milliseconds timeout) {
    Status err = Ok();
    bool ok = WaitFor(
        [&] {
          auto s = Status8();
          if (!s) {
            err = tl::unexpected(s.error());
            return true;
          }
          return (*s & mask) == mask;
        },
        timeout);
    if (!err) return err;
    if (!ok) return tl::unexpected(DriverError(fmt::format("wait_for_tpm_stat 0x{:x}", mask)));
    return Ok();
  }
  Result<uint32_t> BurstCount() {
    uint32_t burst = 0;
    bool ok = WaitFor(
        [&] {
          burst = (bus_.Read32(Reg(0x18)) >> 8) & 0xFFFF;
          return burst != 0;
        },
        std::chrono::milliseconds(4000));
    if (!ok) return tl::unexpected(DriverError("get_burstcount: stays 0"));
    return burst;
  }

  // tpm_tis_send_data + tpm_tis_send_main + tpm_try_transmit polling + tpm_tis_recv.
  Result<Bytes> Transmit(const Bytes& cmd) {
    VTPM_RETURN_IF_ERROR(RequestLocality());
    VTPM_ASSIGN_OR_RETURN(uint8_t status, Status8());
    if ((status & kCommandReady) == 0) {
      bus_.Write8(Reg(0x18), kCommandReady);
      VTPM_RETURN_IF_ERROR(WaitStat(kCommandReady, std::chrono::milliseconds(4000)));
    }
    size_t count = 0;
    const size_t len = cmd.size();
    while (count < len - 1) {
      VTPM_ASSIGN_OR_RETURN(uint32_t burst, BurstCount());
      size_t n = std::min<size_t>(burst, len - count - 1);
      for (size_t i = 0; i < n; ++i) bus_.Write8(Reg(0x24), cmd[count++]);
      VTPM_RETURN_IF_ERROR(WaitStat(kStsValid, std::chrono::milliseconds(200)));
      VTPM_ASSIGN_OR_RETURN(status, Status8());
      if ((status & kExpect) == 0) {
        return tl::unexpected(DriverError("TPM_STS_DATA_EXPECT should be set"));
      }
    }
    bus_.Write8(Reg(0x24), cmd[count]);
    VTPM_RETURN_IF_ERROR(WaitStat(kStsValid, std::chrono::milliseconds(200)));
    VTPM_ASSIGN_OR_RETURN(status, Status8());
    if (status & kExpect) return tl::unexpected(DriverError("TPM_STS_DATA_EXPECT still set"));
    bus_.Write8(Reg(0x18), kGo);
    // Polling for completion: status == commandReady means "canceled".
    Status err = Ok();
    bool done = WaitFor([&] {
      auto s = Status8();
      if (!s) {
        err = tl::unexpected(s.error());
        return true;
      }
      if (*s == kCommandReady) {
        err = tl::unexpected(DriverError("status reads exactly 0x40 while executing: canceled"));
        return true;
      }
      polls_ += 1;
      return (*s & (kDataAvail | kStsValid)) == (kDataAvail | kStsValid);
    });
    if (!err) return tl::unexpected(err.error());
    if (!done) {
      bus_.Write8(Reg(0x18), kCommandReady);  // ops->cancel
      return tl::unexpected(DriverError("command timed out"));
    }
    Bytes rsp(10);
    VTPM_RETURN_IF_ERROR(RecvData(rsp, 0, 10));
    const uint32_t expected = LoadBe32(rsp.data() + 2);
    if (expected < 10 || expected > 4096) return tl::unexpected(DriverError("bad length"));
    rsp.resize(expected);
    VTPM_RETURN_IF_ERROR(RecvData(rsp, 10, expected));
    VTPM_RETURN_IF_ERROR(WaitStat(kStsValid, std::chrono::milliseconds(200)));
    VTPM_ASSIGN_OR_RETURN(status, Status8());
    if (status & kDataAvail) return tl::unexpected(DriverError("Error left over data"));
    bus_.Write8(Reg(0x18), kCommandReady);  // tpm_tis_ready
    Relinquish();
    return rsp;
  }

  Status RecvData(Bytes& buf, size_t from, size_t to) {
    size_t size = from;
    while (size < to) {
      VTPM_RETURN_IF_ERROR(WaitStat(kDataAvail | kStsValid, std::chrono::milliseconds(2000)));
      VTPM_ASSIGN_OR_RETURN(uint32_t burst, BurstCount());
      size_t n = std::min<size_t>(burst, to - size);
      for (size_t i = 0; i < n; ++i) buf[size++] = bus_.Read8(Reg(0x24));
    }
    return Ok();
  }

  uint32_t vendor() const { return vendor_; }
  uint32_t intmask() const { return intmask_; }
  uint64_t polls() const { return polls_; }

 private:
  MmioBus& bus_;
  uint8_t loc_;
  uint32_t vendor_ = 0;
  uint32_t intmask_ = 0;
  uint64_t polls_ = 0;
};

// ----------------------------------------------------------------------------------------------
// edk2 SecurityPkg/Library/Tpm2DeviceLibDTpm/Tpm2Tis.c.
class Edk2Tis {
 public:
  explicit Edk2Tis(MmioBus& bus) : bus_(bus) {}

  Status RequestUseTpm() {
    if (bus_.Read8(0) == 0xFF) return tl::unexpected(DriverError("TPM not present"));
    bus_.Write8(0, 0x02);
    if (!WaitFor([&] { return (bus_.Read8(0) & 0xA0) == 0xA0; }, std::chrono::seconds(1))) {
      return tl::unexpected(DriverError("locality not granted"));
    }
    return Ok();
  }
  // TisPcReadBurstCount: two byte reads at 0x19 and 0x1A.
  Result<uint32_t> BurstCount() {
    uint32_t burst = 0;
    bool ok = WaitFor(
        [&] {
          burst = bus_.Read8(0x19) | (uint32_t{bus_.Read8(0x1A)} << 8);
          return burst != 0;
        },
        std::chrono::seconds(1));
    if (!ok) return tl::unexpected(DriverError("burst count stays 0"));
    return burst;
  }
  Status WaitBits(uint8_t set, uint8_t clear, std::chrono::milliseconds t) {
    if (!WaitFor(
            [&] {
              uint8_t s = bus_.Read8(0x18);
              return (s & set) == set && (s & clear) == 0;
            },
            t)) {
      return tl::unexpected(
          DriverError(fmt::format("STS wait set 0x{:x} clear 0x{:x}", set, clear)));
    }
    return Ok();
  }

  Result<Bytes> Command(const Bytes& cmd) {
    bus_.Write8(0x18, 0x40);
    VTPM_RETURN_IF_ERROR(WaitBits(0x40, 0, std::chrono::seconds(2)));
    size_t index = 0;
    while (index < cmd.size()) {
      VTPM_ASSIGN_OR_RETURN(uint32_t burst, BurstCount());
      for (; burst > 0 && index < cmd.size(); --burst) bus_.Write8(0x24, cmd[index++]);
    }
    VTPM_RETURN_IF_ERROR(WaitBits(0x80, 0x08, std::chrono::seconds(1)));
    bus_.Write8(0x18, 0x20);
    VTPM_RETURN_IF_ERROR(WaitBits(0x90, 0, std::chrono::seconds(90)));
    Bytes rsp(10);
    index = 0;
    while (index < 10) {
      VTPM_ASSIGN_OR_RETURN(uint32_t burst, BurstCount());
      for (; burst > 0 && index < 10; --burst) rsp[index++] = bus_.Read8(0x24);
    }
    if (LoadBe16(rsp.data()) == 0x00C4) return tl::unexpected(DriverError("TPM 1.2 response"));
    const uint32_t size = LoadBe32(rsp.data() + 2);
    if (size < 10 || size > 4096) return tl::unexpected(DriverError("bad response size"));
    rsp.resize(size);
    while (index < size) {
      VTPM_ASSIGN_OR_RETURN(uint32_t burst, BurstCount());
      for (; burst > 0 && index < size; --burst) rsp[index++] = bus_.Read8(0x24);
    }
    bus_.Write8(0x18, 0x40);
    return rsp;
  }

 private:
  MmioBus& bus_;
};

// ----------------------------------------------------------------------------------------------
// Linux 6.1 tpm_crb (ACPI start method 7, control area at base + 0x40 so locality handling is on).
class LinuxCrb {
 public:
  // |qword|: 8-byte accesses for RSP_ADDR and memcpy_toio, as on x86-64; false splits them into
  // dwords (QEMU's CRB registers accept at most 4 bytes).
  LinuxCrb(MmioBus& bus, uint64_t base_gpa, bool qword = true)
      : bus_(bus), base_(base_gpa), qword_(qword) {}

  Status RequestLocality() {
    bus_.Write32(0x08, 1);
    if (!WaitFor([&] { return (bus_.Read32(0x00) & 0x82) == 0x82; },
                 std::chrono::milliseconds(200))) {
      return tl::unexpected(DriverError("CRB locality not assigned"));
    }
    return Ok();
  }
  Status Relinquish() {
    bus_.Write32(0x08, 2);
    if (!WaitFor([&] { return (bus_.Read32(0x00) & 0x02) == 0; }, std::chrono::milliseconds(200))) {
      return tl::unexpected(DriverError("CRB locality not released"));
    }
    return Ok();
  }
  Status CmdReady() {
    bus_.Write32(0x40, 1);
    if (!WaitFor([&] { return (bus_.Read32(0x40) & 1) == 0; }, std::chrono::milliseconds(200))) {
      return tl::unexpected(DriverError("cmdReady not acknowledged"));
    }
    return Ok();
  }
  Status GoIdle() {
    bus_.Write32(0x40, 2);
    if (!WaitFor([&] { return (bus_.Read32(0x40) & 2) == 0; }, std::chrono::milliseconds(200))) {
      return tl::unexpected(DriverError("goIdle not acknowledged"));
    }
    return Ok();
  }

  // crb_map_io.
  Status Probe() {
    VTPM_RETURN_IF_ERROR(RequestLocality());
    VTPM_RETURN_IF_ERROR(CmdReady());
    const uint64_t cmd_pa = (uint64_t{bus_.Read32(0x60)} << 32) | bus_.Read32(0x5C);
    cmd_size_ = bus_.Read32(0x58);
    const uint64_t rsp_pa =
        qword_ ? bus_.Read(0x68, 8) : (bus_.Read32(0x68) | (uint64_t{bus_.Read32(0x6C)} << 32));
    rsp_size_ = bus_.Read32(0x64);
    if (cmd_pa != rsp_pa || cmd_size_ != rsp_size_) {
      return tl::unexpected(
          DriverError("overlapping command and response buffer sizes are not "
                      "identical"));
    }
    if (cmd_pa < base_ || cmd_pa + cmd_size_ > base_ + 0x1000) {
      external_ = true;  // outside the _CRS page: the VMM put it in reserved RAM
    }
    cmd_pa_ = cmd_pa;
    VTPM_RETURN_IF_ERROR(GoIdle());
    return Relinquish();
  }

  // tpm_chip_start (locality + cmd_ready), crb_send, poll, crb_recv, tpm_chip_stop.
  // |buffer| is where the data buffer is written (the bus at +0x80, or external RAM).
  Result<Bytes> Transmit(const Bytes& cmd, std::function<void(const Bytes&)> write_buffer = {},
                         std::function<Bytes(size_t, size_t)> read_buffer = {}) {
    VTPM_RETURN_IF_ERROR(RequestLocality());
    VTPM_RETURN_IF_ERROR(CmdReady());
    if (cmd.size() > cmd_size_) return tl::unexpected(DriverError("command too large"));
    bus_.Write32(0x48, 0);
    if (write_buffer) {
      write_buffer(cmd);
    } else {
      // memcpy_toio: 8-byte stores, then the tail.
      size_t i = 0;
      const unsigned w = qword_ ? 8 : 4;
      for (; i + w <= cmd.size(); i += w) {
        uint64_t v = 0;
        for (unsigned k = 0; k < w; ++k) v |= uint64_t{cmd[i + k]} << (8 * k);
        bus_.Write(0x80 + i, w, v);
      }
      for (; i < cmd.size(); ++i) bus_.Write8(0x80 + i, cmd[i]);
    }
    bus_.Write32(0x4C, 1);
    if (!WaitFor([&] { return (bus_.Read32(0x4C) & 1) == 0; })) {
      bus_.Write32(0x48, 1);
      return tl::unexpected(DriverError("command timed out"));
    }
    if (bus_.Read32(0x44) & 1) return tl::unexpected(DriverError("CRB tpmSts: fatal error"));
    auto read = [&](size_t off, size_t n) {
      if (read_buffer) return read_buffer(off, n);
      Bytes b(n);
      for (size_t i = 0; i < n; ++i) b[i] = bus_.Read8(0x80 + off + i);
      return b;
    };
    Bytes rsp = read(0, 8);
    Bytes more = read(8, 2);
    rsp.insert(rsp.end(), more.begin(), more.end());
    const uint32_t expected = LoadBe32(rsp.data() + 2);
    if (expected < 10 || expected > rsp_size_) return tl::unexpected(DriverError("bad length"));
    Bytes rest = read(10, expected - 10);
    rsp.insert(rsp.end(), rest.begin(), rest.end());
    VTPM_RETURN_IF_ERROR(GoIdle());
    VTPM_RETURN_IF_ERROR(Relinquish());
    return rsp;
  }

  uint32_t cmd_size() const { return cmd_size_; }
  uint64_t cmd_pa() const { return cmd_pa_; }

 private:
  MmioBus& bus_;
  uint64_t base_;
  bool qword_;
  uint32_t cmd_size_ = 0, rsp_size_ = 0;
  uint64_t cmd_pa_ = 0;
  bool external_ = false;
};

// ----------------------------------------------------------------------------------------------
// edk2 Tpm2Ptp.c PtpCrbRequestUseTpm / PtpCrbTpmCommand.
class Edk2Crb {
 public:
  Edk2Crb(MmioBus& bus, uint64_t base_gpa) : bus_(bus), base_(base_gpa) {}

  Result<Bytes> Command(const Bytes& cmd) {
    bus_.Write32(0x08, 1);  // requestAccess
    if (!WaitFor([&] { return (bus_.Read32(0x0C) & 1) != 0; }, std::chrono::milliseconds(750))) {
      return tl::unexpected(DriverError("LOC_STS.Granted never set"));
    }
    bus_.Write32(0x40, 1);  // cmdReady
    if (!WaitFor([&] { return (bus_.Read32(0x40) & 1) == 0 && (bus_.Read32(0x44) & 2) == 0; },
                 std::chrono::seconds(1))) {
      return tl::unexpected(DriverError("cmdReady/tpmIdle did not clear"));
    }
    for (size_t i = 0; i < cmd.size(); ++i) bus_.Write8(0x80 + i, cmd[i]);
    const uint64_t buf = base_ + 0x80;
    bus_.Write32(0x60, static_cast<uint32_t>(buf >> 32));
    bus_.Write32(0x5C, static_cast<uint32_t>(buf));
    bus_.Write32(0x58, 0xF80);
    bus_.Write32(0x68, static_cast<uint32_t>(buf));
    bus_.Write32(0x64, 0xF80);
    bus_.Write32(0x4C, 1);  // start
    if (!WaitFor([&] { return (bus_.Read32(0x4C) & 1) == 0; }, std::chrono::seconds(90))) {
      return tl::unexpected(DriverError("CTRL_START never cleared"));
    }
    Bytes rsp(10);
    for (size_t i = 0; i < 10; ++i) rsp[i] = bus_.Read8(0x80 + i);
    if (LoadBe16(rsp.data()) == 0x00C4) return tl::unexpected(DriverError("TPM 1.2 tag"));
    const uint32_t size = LoadBe32(rsp.data() + 2);
    if (size < 10 || size > 0xF80) return tl::unexpected(DriverError("bad response size"));
    rsp.resize(size);
    for (size_t i = 10; i < size; ++i) rsp[i] = bus_.Read8(0x80 + i);
    bus_.Write32(0x40, 2);  // goIdle
    return rsp;
  }

 private:
  MmioBus& bus_;
  uint64_t base_;
};

}  // namespace vtpm::testing
