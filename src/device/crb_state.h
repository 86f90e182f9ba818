// The saved state of a CRB device as a plain struct, and its codec: pure functions, no device.
// The payload goes inside the envelope of mmio.h (magic "VTPMCRB", version 1); big-endian:
//   locality_count(1) active(1) flags(1: 1 tpmIdle, 2 tpmSts) cancel(4) int_enable(4) int_status(4)
//   5 x flags(1: 1 pending request, 2 beenSeized)
//   buffer_len(4) buffer (the data buffer when it is inside the device; 0 bytes when it is guest
//   RAM, which migrates with the guest)
// A saved device never executes a command (CTRL_START reads 0), so nothing of one is saved.
#pragma once

#include <array>
#include <cstdint>

#include "base/bytes.h"
#include "base/result.h"
#include "device/regs.h"

namespace vtpm::device {

struct CrbLocalityState {
  bool pending = false;
  bool been_seized = false;
  bool operator==(const CrbLocalityState&) const = default;
};

// The registers a CRB device saves. The live device keeps them in this form (Crb::regs_); what it
// keeps beside them belongs to a command in flight and is never saved.
struct CrbRegisters {
  uint8_t active = kNoLocality;
  bool idle = true;     // CTRL_STS.tpmIdle
  bool fatal = false;   // CTRL_STS.tpmSts
  uint32_t cancel = 0;  // CTRL_CANCEL as written
  uint32_t int_enable = 0;
  uint32_t int_status = 0;
  std::array<CrbLocalityState, kNumLocalities> localities{};  // five, whatever the count
  Bytes buffer;  // the data buffer inside the device (crb::kDataBufferSize), or empty
  bool operator==(const CrbRegisters&) const = default;
};

struct CrbState {
  uint8_t locality_count = 1;  // the device's configuration (1 or 5): must match on restore
  CrbRegisters regs;
  bool operator==(const CrbState&) const = default;
};

Bytes EncodeCrbState(const CrbState& state);
// Reads exactly one state and checks every field: 1 or 5 localities, the active one among them
// (or none), 0/1 flags, only the interrupt bits the model implements, no request or seizure
// recorded for a locality the device does not have, a buffer of 0 or crb::kDataBufferSize
// bytes. Whether the state fits a given device (locality count, internal or external buffer) is
// the device's check.
Result<CrbState> DecodeCrbState(ByteSpan payload);

}  // namespace vtpm::device
