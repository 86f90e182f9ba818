#include "wire/mssim.h"

#include <fmt/format.h>

#include "wire/tpm_header.h"

namespace vtpm::wire {

std::string_view MssimCmdName(uint32_t code) {
  switch (static_cast<MssimCmd>(code)) {
    case MssimCmd::kSignalPowerOn:
      return "TPM_SIGNAL_POWER_ON";
    case MssimCmd::kSignalPowerOff:
      return "TPM_SIGNAL_POWER_OFF";
    case MssimCmd::kSignalPhysPresOn:
      return "TPM_SIGNAL_PHYS_PRES_ON";
    case MssimCmd::kSignalPhysPresOff:
      return "TPM_SIGNAL_PHYS_PRES_OFF";
    case MssimCmd::kSignalHashStart:
      return "TPM_SIGNAL_HASH_START";
    case MssimCmd::kSignalHashData:
      return "TPM_SIGNAL_HASH_DATA";
    case MssimCmd::kSignalHashEnd:
      return "TPM_SIGNAL_HASH_END";
    case MssimCmd::kSendCommand:
      return "TPM_SEND_COMMAND";
    case MssimCmd::kSignalCancelOn:
      return "TPM_SIGNAL_CANCEL_ON";
    case MssimCmd::kSignalCancelOff:
      return "TPM_SIGNAL_CANCEL_OFF";
    case MssimCmd::kSignalNvOn:
      return "TPM_SIGNAL_NV_ON";
    case MssimCmd::kSignalNvOff:
      return "TPM_SIGNAL_NV_OFF";
    case MssimCmd::kSignalKeyCacheOn:
      return "TPM_SIGNAL_KEY_CACHE_ON";
    case MssimCmd::kSignalKeyCacheOff:
      return "TPM_SIGNAL_KEY_CACHE_OFF";
    case MssimCmd::kRemoteHandshake:
      return "TPM_REMOTE_HANDSHAKE";
    case MssimCmd::kSetAlternativeResult:
      return "TPM_SET_ALTERNATIVE_RESULT";
    case MssimCmd::kSignalReset:
      return "TPM_SIGNAL_RESET";
    case MssimCmd::kSignalRestart:
      return "TPM_SIGNAL_RESTART";
    case MssimCmd::kSessionEnd:
      return "TPM_SESSION_END";
    case MssimCmd::kStop:
      return "TPM_STOP";
    case MssimCmd::kGetCommandResponseSizes:
      return "TPM_GET_COMMAND_RESPONSE_SIZES";
    case MssimCmd::kTestFailureMode:
      return "TPM_TEST_FAILURE_MODE";
  }
  return "TPM_UNKNOWN";
}

Result<std::optional<MssimSendCommand>> ParseSendCommand(ByteSpan avail, size_t max_command) {
  if (avail.size() < kMssimSendCommandPrefix) return std::optional<MssimSendCommand>();
  const uint32_t code = LoadBe32(avail.data());
  if (code != static_cast<uint32_t>(MssimCmd::kSendCommand)) {
    return Fail(Errc::kInvalidArgument,
                fmt::format("expected TPM_SEND_COMMAND, got {} ({})", code, MssimCmdName(code)));
  }
  const uint32_t size = LoadBe32(avail.data() + 5);
  if (size < kTpmHeaderSize || size > max_command) {
    return Fail(Errc::kInvalidArgument, fmt::format("a command of {} bytes (allowed: {} to {})",
                                                    size, kTpmHeaderSize, max_command));
  }
  if (avail.size() - kMssimSendCommandPrefix < size) return std::optional<MssimSendCommand>();
  return MssimSendCommand{avail[4], avail.subspan(kMssimSendCommandPrefix, size),
                          kMssimSendCommandPrefix + size};
}

Bytes EncodeSendCommand(uint8_t locality, ByteSpan command) {
  ByteWriter w;
  w.U32(static_cast<uint32_t>(MssimCmd::kSendCommand));
  w.U8(locality);
  w.U32(static_cast<uint32_t>(command.size()));
  w.Append(command);
  return std::move(w).Take();
}

Result<std::optional<MssimSendCommandReply>> ParseSendCommandReply(ByteSpan avail,
                                                                   size_t max_response) {
  if (avail.size() < 4) return std::optional<MssimSendCommandReply>();
  const uint32_t size = LoadBe32(avail.data());
  if (size > max_response) {
    return Fail(Errc::kInvalidArgument,
                fmt::format("a response of {} bytes (at most {})", size, max_response));
  }
  if (avail.size() - 4 < size + size_t{4}) return std::optional<MssimSendCommandReply>();
  if (LoadBe32(avail.data() + 4 + size) != 0) {
    return Fail(Errc::kInvalidArgument, "TPM_SEND_COMMAND's reply does not end in a zero u32");
  }
  return MssimSendCommandReply{avail.subspan(4, size), 4 + size_t{size} + 4};
}

void AppendSendCommandResponse(Bytes& out, ByteSpan response) {
  AppendBe32(out, static_cast<uint32_t>(response.size()));
  out.insert(out.end(), response.begin(), response.end());
  AppendBe32(out, 0);
}

}  // namespace vtpm::wire
