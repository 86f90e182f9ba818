#include "wire/mssim.h"

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

void AppendSendCommandResponse(Bytes& out, ByteSpan response) {
  AppendBe32(out, static_cast<uint32_t>(response.size()));
  out.insert(out.end(), response.begin(), response.end());
  AppendBe32(out, 0);
}

}  // namespace vtpm::wire
