// libFuzzer target: random sequences of guest reads and writes (any offset, width, value),
// backend completions (well-formed, malformed, oversized, late), save/restore and resets against
// the TIS model (FUZZ_CRB undefined) or the CRB model. Checks, besides "no crash, hang, leak or
// UB" (ASan/UBSan): the guest-visible invariants of the PTP, and save -> restore -> save
// byte-equality.
//
// Input: byte 0 picks the configuration, then records of
//   op(1) offset(2) width(1) value(8)
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "device/crb.h"
#include "device/regs.h"
#include "device/tis.h"
#include "fakes/fake_backend.h"

namespace {

using vtpm::Bytes;
using vtpm::testing::FakeBackend;
using vtpm::testing::RecordingIrqLine;

#define FUZZ_CHECK(cond)                                     \
  do {                                                       \
    if (!(cond)) {                                           \
      std::fprintf(stderr, "invariant failed: %s\n", #cond); \
      std::abort();                                          \
    }                                                        \
  } while (0)

struct Reader {
  const uint8_t* p;
  size_t n;
  bool Take(void* out, size_t k) {
    if (n < k) return false;
    std::memcpy(out, p, k);
    p += k;
    n -= k;
    return true;
  }
};

#ifndef FUZZ_CRB
using Device = vtpm::device::Tis;
std::unique_ptr<Device> Make(uint8_t cfg, FakeBackend& b, RecordingIrqLine& irq) {
  vtpm::device::TisConfig c;
  c.family = (cfg & 1) ? vtpm::device::TpmFamily::kTpm12 : vtpm::device::TpmFamily::kTpm20;
  c.irq_vector = 5;
  return std::move(*Device::Create(c, vtpm::device::TisDeps{&b, &irq, {}}));
}
void CheckInvariants(Device& d) {
  uint8_t b[4];
  for (uint64_t l = 0; l < 5; ++l) {
    d.Read({l * 0x1000, 0, 0}, std::span<uint8_t>(b, 1));
    const uint8_t access = b[0];
    FUZZ_CHECK(access & 0x80);         // tpmRegValidSts
    FUZZ_CHECK((access & 0x08) == 0);  // Seize never reads 1
    if (access & 0x20) {
      FUZZ_CHECK((access & 0x02) == 0);  // requestUse reads 0 once granted
      d.Read({l * 0x1000 + 0x18, 0, 0}, std::span<uint8_t>(b, 4));
      const uint32_t sts =
          b[0] | (uint32_t{b[1]} << 8) | (uint32_t{b[2]} << 16) | (uint32_t{b[3]} << 24);
      FUZZ_CHECK((sts & 0x23) == 0);  // must-read-zero bits
      const uint32_t burst = (sts >> 8) & 0xFFFF;
      if (sts & 0x10) FUZZ_CHECK(burst != 0);  // dataAvail -> something to read
      if (sts & 0x40) FUZZ_CHECK(burst != 0);  // Ready -> room to write
    }
  }
}
#else
using Device = vtpm::device::Crb;
std::unique_ptr<Device> Make(uint8_t cfg, FakeBackend& b, RecordingIrqLine& irq) {
  vtpm::device::CrbConfig c;
  c.localities = (cfg & 1) ? 5 : 1;
  return std::move(*Device::Create(c, vtpm::device::CrbDeps{&b, &irq, {}}));
}
void CheckInvariants(Device& d) {
  uint8_t b[4];
  d.Read({0x40, 0, 0}, std::span<uint8_t>(b, 4));
  FUZZ_CHECK(b[0] == 0 && b[1] == 0);  // CTRL_REQ bits self-clear at once
  d.Read({0x00, 0, 0}, std::span<uint8_t>(b, 4));
  FUZZ_CHECK(b[0] & 0x80);  // tpmRegValidSts
  d.Read({0x58, 0, 0}, std::span<uint8_t>(b, 4));
  FUZZ_CHECK((b[0] | (b[1] << 8)) == 0xF80);  // CMD_SIZE unchanged by guest writes
}
#endif

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  Reader in{data + 1, size - 1};
  FakeBackend backend;
  backend.auto_complete = false;
  RecordingIrqLine irq;
  auto dev = Make(data[0], backend, irq);
  const uint64_t span = dev->size() + 0x100;  // a little beyond the end, too
  for (int i = 0; i < 4096; ++i) {
    uint8_t op;
    uint16_t off;
    uint8_t width;
    uint64_t value;
    if (!in.Take(&op, 1) || !in.Take(&off, 2) || !in.Take(&width, 1) || !in.Take(&value, 8)) {
      break;
    }
    const uint64_t offset = off % span;
    uint8_t buf[16];
    const size_t w = (width & 0x80) ? (width & 0x0F) : (size_t{1} << (width & 3));
    std::memcpy(buf, &value, 8);
    std::memcpy(buf + 8, &value, 8);
    switch (op % 8) {
      case 0:
      case 1:
        dev->Read({offset, 0, 0}, std::span<uint8_t>(buf, w));
        break;
      case 2:
      case 3:
        dev->Write({offset, 0, 0}, std::span<const uint8_t>(buf, w));
        break;
      case 4:  // complete the oldest command
        if (!backend.pending.empty()) {
          switch (value & 3) {
            case 0:
              backend.CompleteNext();
              break;
            case 1:
              backend.CompleteNext(Bytes(buf, buf + (value >> 8) % 16));
              break;  // malformed
            case 2: {
              Bytes big =
                  vtpm::testing::EchoResponse(vtpm::testing::TestCommand(10 + (value >> 8) % 5000));
              backend.CompleteNext(big);
              break;
            }
            default: {
              Bytes r = {0x80, 0x01, 0, 0, 0, 10, 0, 0, 0, 0};
              r[9] = static_cast<uint8_t>(value >> 8);
              backend.CompleteNext(r);
            }
          }
        }
        break;
      case 5: {  // save -> restore into a fresh device -> save again: identical
        auto saved = dev->SaveState();
        if (saved) {
          FakeBackend b2;
          RecordingIrqLine irq2;
          auto d2 = Make(data[0], b2, irq2);
          FUZZ_CHECK(d2->RestoreState(*saved));
          auto again = d2->SaveState();
          FUZZ_CHECK(again && *again == *saved);
          FUZZ_CHECK(irq2.level == irq.level);
          // Restore into the live device too, and corrupt blobs must be refused whole.
          FUZZ_CHECK(dev->RestoreState(*saved));
          Bytes bad = *saved;
          bad[(value >> 8) % bad.size()] ^= static_cast<uint8_t>(1 | value);
          FUZZ_CHECK(!dev->RestoreState(bad));
        } else {
          FUZZ_CHECK(dev->Busy());
        }
        break;
      }
      case 6:
        if ((value & 0xFF) == 0) dev->Reset();
        break;
      case 7:
        CheckInvariants(*dev);
        break;
    }
  }
  CheckInvariants(*dev);
  // Complete whatever is left after the device is gone: must be harmless.
  dev.reset();
  while (!backend.pending.empty()) backend.CompleteNext();
  return 0;
}
