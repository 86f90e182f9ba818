// The Microsoft TPM 2.0 simulator TCP protocol (TCG reference code, TPMCmd/Simulator/include/
// TpmTcpProtocol.h), as spoken by tpm2-tss's `mssim` TCTI and the IBM TSS.
//
// Two TCP ports: the command port (default 2321) carries TPM_SEND_COMMAND
// {u8 locality, u32 size, command} -> {u32 size, response, u32 0}; the platform port (command
// port + 1) carries power/NV/cancel signals. Every signal is a u32 code; all but SESSION_END and
// STOP are acknowledged with a u32 0. All integers big-endian.
#pragma once

#include <cstdint>
#include <string_view>

#include "base/bytes.h"

namespace vtpm::wire {

enum class MssimCmd : uint32_t {
  kSignalPowerOn = 1,
  kSignalPowerOff = 2,
  kSignalPhysPresOn = 3,
  kSignalPhysPresOff = 4,
  kSignalHashStart = 5,
  kSignalHashData = 6,  // {u32 size, data}
  kSignalHashEnd = 7,
  kSendCommand = 8,  // {u8 locality, u32 size, command}
  kSignalCancelOn = 9,
  kSignalCancelOff = 10,
  kSignalNvOn = 11,
  kSignalNvOff = 12,
  kSignalKeyCacheOn = 13,
  kSignalKeyCacheOff = 14,
  kRemoteHandshake = 15,  // {u32 client version} -> {u32 server version, u32 endpoint info}
  kSetAlternativeResult = 16,
  kSignalReset = 17,
  kSignalRestart = 18,
  kSessionEnd = 20,
  kStop = 21,
  kGetCommandResponseSizes = 25,  // -> {u32 max command size, u32 max response size}
  kTestFailureMode = 30,
};

std::string_view MssimCmdName(uint32_t code);

// TPM_SEND_COMMAND's request prefix: u32 command, u8 locality, u32 size.
inline constexpr size_t kMssimSendCommandPrefix = 9;
// Appends TPM_SEND_COMMAND's reply: {u32 size, response, u32 0}.
void AppendSendCommandResponse(Bytes& out, ByteSpan response);

inline constexpr uint32_t kMssimServerVersion = 1;
// Endpoint info bits returned by REMOTE_HANDSHAKE: platform available, uses TBS=0,
// in-RAM/permanent... (tpmPlatformAvailable | tpmUsesTbs(0) | tpmInRawMode(0) | tpmSupportsPP).
inline constexpr uint32_t kMssimEndpointPlatformAvailable = 0x01;
inline constexpr uint32_t kMssimEndpointSupportsPp = 0x08;

}  // namespace vtpm::wire
