// The Microsoft TPM 2.0 simulator TCP protocol (TCG reference code, TPMCmd/Simulator/include/
// TpmTcpProtocol.h), as spoken by tpm2-tss's `mssim` TCTI and the IBM TSS; docs/PROTOCOLS.md §4.
//
// Two TCP ports: the command port (default 2321) carries TPM_SEND_COMMAND
// {u8 locality, u32 size, command} -> {u32 size, response, u32 0}; the platform port (command
// port + 1) carries power/NV/cancel signals. Every signal is a u32 code; all but SESSION_END and
// STOP are acknowledged with a u32 0. All integers big-endian.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "base/bytes.h"
#include "base/result.h"

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

// A TPM_SEND_COMMAND frame found at the front of a byte stream.
struct MssimSendCommand {
  uint8_t locality = 0;
  ByteSpan command;     // points into the parsed bytes
  size_t consumed = 0;  // prefix + command
};
// Parses TPM_SEND_COMMAND {u32 8, u8 locality, u32 size, command} at the front of |avail|
// (the server side, shared by the MS-sim ports and the data channel's MS-sim framing).
// nullopt: more bytes are needed. Errors (Errc::kInvalidArgument): the frame is not a
// TPM_SEND_COMMAND, or its size is outside [10, |max_command|] -- the stream cannot be trusted
// after that.
Result<std::optional<MssimSendCommand>> ParseSendCommand(ByteSpan avail, size_t max_command);
// The frame a client sends for |command| at |locality|.
Bytes EncodeSendCommand(uint8_t locality, ByteSpan command);

// Appends TPM_SEND_COMMAND's reply: {u32 size, response, u32 0}.
void AppendSendCommandResponse(Bytes& out, ByteSpan response);
// The client side of that reply: the response at the front of |avail| and how many bytes the
// reply took; nullopt while incomplete. Errors: a size above |max_response|, or a non-zero
// trailer.
struct MssimSendCommandReply {
  ByteSpan response;
  size_t consumed = 0;
};
Result<std::optional<MssimSendCommandReply>> ParseSendCommandReply(ByteSpan avail,
                                                                   size_t max_response);

inline constexpr uint32_t kMssimServerVersion = 1;
// Endpoint info bits returned by REMOTE_HANDSHAKE: platform available, uses TBS=0,
// in-RAM/permanent... (tpmPlatformAvailable | tpmUsesTbs(0) | tpmInRawMode(0) | tpmSupportsPP).
inline constexpr uint32_t kMssimEndpointPlatformAvailable = 0x01;
inline constexpr uint32_t kMssimEndpointSupportsPp = 0x08;

}  // namespace vtpm::wire
