#include "wire/swtpm_ctrl.h"

namespace vtpm::wire {

std::string_view CtrlCmdName(uint32_t code) {
  switch (static_cast<CtrlCmd>(code)) {
    case CtrlCmd::kGetCapability:
      return "CMD_GET_CAPABILITY";
    case CtrlCmd::kInit:
      return "CMD_INIT";
    case CtrlCmd::kShutdown:
      return "CMD_SHUTDOWN";
    case CtrlCmd::kGetTpmEstablished:
      return "CMD_GET_TPMESTABLISHED";
    case CtrlCmd::kSetLocality:
      return "CMD_SET_LOCALITY";
    case CtrlCmd::kHashStart:
      return "CMD_HASH_START";
    case CtrlCmd::kHashData:
      return "CMD_HASH_DATA";
    case CtrlCmd::kHashEnd:
      return "CMD_HASH_END";
    case CtrlCmd::kCancelTpmCmd:
      return "CMD_CANCEL_TPM_CMD";
    case CtrlCmd::kStoreVolatile:
      return "CMD_STORE_VOLATILE";
    case CtrlCmd::kResetTpmEstablished:
      return "CMD_RESET_TPMESTABLISHED";
    case CtrlCmd::kGetStateBlob:
      return "CMD_GET_STATEBLOB";
    case CtrlCmd::kSetStateBlob:
      return "CMD_SET_STATEBLOB";
    case CtrlCmd::kStop:
      return "CMD_STOP";
    case CtrlCmd::kGetConfig:
      return "CMD_GET_CONFIG";
    case CtrlCmd::kSetDatafd:
      return "CMD_SET_DATAFD";
    case CtrlCmd::kSetBufferSize:
      return "CMD_SET_BUFFERSIZE";
    case CtrlCmd::kGetInfo:
      return "CMD_GET_INFO";
    case CtrlCmd::kLockStorage:
      return "CMD_LOCK_STORAGE";
  }
  return "CMD_UNKNOWN";
}

std::optional<uint32_t> CtrlFixedBodySize(uint32_t code) {
  switch (static_cast<CtrlCmd>(code)) {
    case CtrlCmd::kGetCapability:
    case CtrlCmd::kShutdown:
    case CtrlCmd::kGetTpmEstablished:
    case CtrlCmd::kHashStart:
    case CtrlCmd::kHashEnd:
    case CtrlCmd::kCancelTpmCmd:
    case CtrlCmd::kStoreVolatile:
    case CtrlCmd::kStop:
    case CtrlCmd::kGetConfig:
    case CtrlCmd::kSetDatafd:
      return 0;
    case CtrlCmd::kSetLocality:
    case CtrlCmd::kResetTpmEstablished:
      return 1;  // u8 locality (QEMU sends 3 more zero bytes; ignored)
    case CtrlCmd::kInit:
    case CtrlCmd::kHashData:  // u32 length, then the data
    case CtrlCmd::kSetBufferSize:
    case CtrlCmd::kLockStorage:
      return 4;
    case CtrlCmd::kGetStateBlob:  // u32 state_flags, u32 type, u32 offset
    case CtrlCmd::kSetStateBlob:  // u32 state_flags, u32 type, u32 length, then the blob
      return 12;
    case CtrlCmd::kGetInfo:  // u64 flags, u32 offset, u32 pad
      return 16;
  }
  return std::nullopt;
}

}  // namespace vtpm::wire
