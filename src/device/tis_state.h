// The saved state of a TIS device as a plain struct, and its codec: pure functions, no device.
// The payload goes inside the envelope of mmio.h (magic "VTPMTIS", version 1); big-endian:
//   family(1) active(1) owner(1) command_state(1) selftest_done(1) intf_sel_lock(1) irq_level(1)
//   5 x [flags(1: 1 requestUse, 2 beenSeized) int_enable(4) int_status(4)]
//   last_command_code(4) command_len(4) command response_len(4) response response_pos(4)
// A saved device never executes a command, so the command state is never Execution.
#pragma once

#include <array>
#include <cstdint>

#include "base/bytes.h"
#include "base/result.h"
#include "device/regs.h"
#include "wire/tpm_constants.h"

namespace vtpm::device {

using TpmFamily = tpm::Version;  // the one TPM family enum (wire/tpm_constants.h)

// The command state machine of the PTP FIFO interface (TPM_STS).
enum class TisCommandState : uint8_t { kIdle, kReady, kReception, kExecution, kCompletion };

struct TisLocalityState {
  bool request_use = false;
  bool been_seized = false;
  uint32_t int_enable = 0;
  uint32_t int_status = 0;
  bool operator==(const TisLocalityState&) const = default;
};

// The registers and command state a TIS device saves. The live device keeps them in this form
// (Tis::regs_); what it keeps beside them is transient (an abort or hash sequence in progress)
// and is never saved: a device is saved between commands.
struct TisRegisters {
  uint8_t active = kNoLocality;
  uint8_t owner = kNoLocality;  // the locality the command state belongs to
  TisCommandState state = TisCommandState::kIdle;
  bool selftest_done = false;
  bool intf_sel_lock = false;
  std::array<TisLocalityState, kNumLocalities> localities{};
  uint32_t last_command_code = 0;
  Bytes command;   // bytes received so far
  Bytes response;  // response being read
  uint32_t response_pos = 0;
  bool operator==(const TisRegisters&) const = default;
};

struct TisState {
  TpmFamily family = TpmFamily::kTpm20;  // the device's configuration: must match on restore
  bool irq_level = false;  // informational: a restore derives the line from the registers
  TisRegisters regs;
  bool operator==(const TisState&) const = default;
};

inline constexpr uint32_t kTisMaxBuffer = 4096;  // the largest buffer a TIS model offers

Bytes EncodeTisState(const TisState& state);
// Reads exactly one state and checks every field on its own: known enum values, 0/1 booleans,
// localities 0..4 or none, only the interrupt bits the model implements, buffers of at most
// kTisMaxBuffer bytes, a read position inside the response. Whether the state fits a given
// device (family, buffer size) is the device's check.
Result<TisState> DecodeTisState(ByteSpan payload);

}  // namespace vtpm::device
