// A minimal TIS driver for the benchmarks (bench/device/device_bench.cc, vtpm_compare's "device"
// section): one TPM command through the FIFO registers the way Linux's tpm_tis does it with a
// byte-wide FIFO -- commandReady, the command byte by byte into DATA_FIFO, tpmGo, busy polling of
// STS until dataAvail, then the response byte by byte while dataAvail stays set.
#pragma once

#include <cstdint>
#include <span>

#include "base/bytes.h"
#include "device/tis.h"

namespace vtpm::bench {

class TisDriver {
 public:
  explicit TisDriver(device::Tis& tis) : tis_(tis) {}

  // ACCESS.requestUse for locality 0.
  void RequestLocality() { Write(kAccess, 0x02); }

  // Sends |cmd| and returns the response (busy-waits for it).
  Bytes Transact(const Bytes& cmd) {
    Write(kSts, 0x40);  // commandReady
    for (uint8_t x : cmd) Write(kFifo, x);
    Write(kSts, 0x20);  // tpmGo
    accesses_ += cmd.size() + 2;
    while ((Read(kSts) & 0x10) == 0) ++polls_;  // dataAvail
    Bytes rsp;
    while (Read(kSts) & 0x10) {
      rsp.push_back(Read(kFifo));
      accesses_ += 2;
    }
    ++commands_;
    return rsp;
  }

  // MMIO accesses per command (what a KVM guest pays in exits; the polls not included) and STS
  // polls per command while the TPM executes, averaged over the Transact()s since the last
  // ResetCounters().
  void ResetCounters() { accesses_ = polls_ = commands_ = 0; }
  double accesses_per_command() const { return Per(accesses_); }
  double polls_per_command() const { return Per(polls_); }

 private:
  static constexpr uint64_t kAccess = 0x00, kSts = 0x18, kFifo = 0x24;

  uint8_t Read(uint64_t off) {
    uint8_t v = 0;
    tis_.Read({off, 0, 0}, std::span<uint8_t>(&v, 1));
    return v;
  }
  void Write(uint64_t off, uint8_t v) { tis_.Write({off, 0, 0}, std::span<const uint8_t>(&v, 1)); }
  double Per(uint64_t n) const {
    return commands_ ? static_cast<double>(n) / static_cast<double>(commands_) : 0;
  }

  device::Tis& tis_;
  uint64_t accesses_ = 0, polls_ = 0, commands_ = 0;
};

}  // namespace vtpm::bench
