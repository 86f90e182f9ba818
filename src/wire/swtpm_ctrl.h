// The swtpm control-channel protocol, socket form (swtpm man/man3/swtpm_ioctls.pod,
// include/swtpm/tpm_ioctl.h; byte layouts verified against Debian's swtpm 0.7.1, see
// docs/PROTOCOLS.md §1: commands §1.3, result codes §1.4, response sizes §1.5).
//
// A request is a 4-byte big-endian command code followed by the command's request body, with no
// length prefix: the server knows each body's size from the code. A response is the response body
// alone. Traps, all reproduced here because clients depend on them:
//  - an error response is only the 4-byte result code, even where success carries more;
//  - result codes use TPM 1.2 numbering even for a TPM 2.0;
//  - QEMU sends SET_LOCALITY/RESET_TPMESTABLISHED with a 4-byte body (the union), other clients
//    1 byte: swtpm treats one read() as one message and ignores the surplus, and so do we.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string_view>
#include <variant>

#include "base/bytes.h"
#include "base/result.h"

namespace vtpm::wire {

enum class CtrlCmd : uint32_t {
  kGetCapability = 0x01,
  kInit = 0x02,
  kShutdown = 0x03,
  kGetTpmEstablished = 0x04,
  kSetLocality = 0x05,
  kHashStart = 0x06,
  kHashData = 0x07,
  kHashEnd = 0x08,
  kCancelTpmCmd = 0x09,
  kStoreVolatile = 0x0a,
  kResetTpmEstablished = 0x0b,
  kGetStateBlob = 0x0c,
  kSetStateBlob = 0x0d,
  kStop = 0x0e,
  kGetConfig = 0x0f,
  kSetDatafd = 0x10,
  kSetBufferSize = 0x11,
  kGetInfo = 0x12,
  kLockStorage = 0x13,
};

// "CMD_INIT" etc.; "CMD_UNKNOWN" for codes outside the table.
std::string_view CtrlCmdName(uint32_t code);

// How many body bytes follow the code before the request is complete (for HASH_DATA and
// SET_STATEBLOB: the fixed part before the variable payload). nullopt: unknown command.
std::optional<uint32_t> CtrlFixedBodySize(uint32_t code);

// Result codes (TPM 1.2 numbering, libtpms tpm_error.h).
inline constexpr uint32_t kPtmResSuccess = 0x00;
inline constexpr uint32_t kPtmResBadParameter = 0x03;
inline constexpr uint32_t kPtmResFail = 0x09;
inline constexpr uint32_t kPtmResBadOrdinal = 0x0a;
inline constexpr uint32_t kPtmResKeyNotFound = 0x0d;
inline constexpr uint32_t kPtmResSize = 0x17;
inline constexpr uint32_t kPtmResIoError = 0x1f;
inline constexpr uint32_t kPtmResDecryptError = 0x21;  // a key does not open a blob
inline constexpr uint32_t kPtmResBadDataSize = 0x2b;
inline constexpr uint32_t kPtmResBadVersion = 0x2e;
inline constexpr uint32_t kPtmResBadLocality = 0x3d;
inline constexpr uint32_t kPtmResRetry = 0x800;

// Capability bits (PTM_CAP_*).
inline constexpr uint32_t kPtmCapInit = 1u << 0;
inline constexpr uint32_t kPtmCapShutdown = 1u << 1;
inline constexpr uint32_t kPtmCapGetTpmEstablished = 1u << 2;
inline constexpr uint32_t kPtmCapSetLocality = 1u << 3;
inline constexpr uint32_t kPtmCapHashing = 1u << 4;
inline constexpr uint32_t kPtmCapCancelTpmCmd = 1u << 5;
inline constexpr uint32_t kPtmCapStoreVolatile = 1u << 6;
inline constexpr uint32_t kPtmCapResetTpmEstablished = 1u << 7;
inline constexpr uint32_t kPtmCapGetStateBlob = 1u << 8;
inline constexpr uint32_t kPtmCapSetStateBlob = 1u << 9;
inline constexpr uint32_t kPtmCapStop = 1u << 10;
inline constexpr uint32_t kPtmCapGetConfig = 1u << 11;
inline constexpr uint32_t kPtmCapSetDatafd = 1u << 12;
inline constexpr uint32_t kPtmCapSetBufferSize = 1u << 13;
inline constexpr uint32_t kPtmCapGetInfo = 1u << 14;
inline constexpr uint32_t kPtmCapSendCommandHeader = 1u << 15;
inline constexpr uint32_t kPtmCapLockStorage = 1u << 16;

// PTM_INIT_FLAG_DELETE_VOLATILE.
inline constexpr uint32_t kPtmInitFlagDeleteVolatile = 1u << 0;
// state_flags.
inline constexpr uint32_t kPtmStateFlagDecrypted = 1u << 0;
inline constexpr uint32_t kPtmStateFlagEncrypted = 1u << 1;
// GET_CONFIG flags: a state (file) key, a migration key is configured.
inline constexpr uint32_t kPtmConfigFlagFileKey = 1u << 0;
inline constexpr uint32_t kPtmConfigFlagMigrationKey = 1u << 1;
// Blob types in GET/SET_STATEBLOB.
inline constexpr uint32_t kPtmBlobTypePermanent = 1;
inline constexpr uint32_t kPtmBlobTypeVolatile = 2;
inline constexpr uint32_t kPtmBlobTypeSaveState = 3;
// swtpm refuses SET_STATEBLOB payloads above this.
inline constexpr uint32_t kMaxStateBlobSize = 512 * 1024;
// GET_INFO returns at most this many bytes per response; clients page with |offset|.
inline constexpr uint32_t kGetInfoChunk = 3072;

// ---- Typed messages ---------------------------------------------------------------------------
// One codec for both ends: the daemon's CtrlSession decodes requests and encodes responses; the
// socket backend (and any other client) encodes requests and decodes responses.

// Request bodies, by shape (what follows the 4-byte code).
struct CtrlU8Body {  // SET_LOCALITY, RESET_TPMESTABLISHED: u8 locality
  uint8_t value = 0;
};
struct CtrlU32Body {  // INIT flags, SET_BUFFERSIZE size, LOCK_STORAGE retries, HASH_DATA length
  uint32_t value = 0;
};
struct CtrlStateBlobBody {  // GET_STATEBLOB {flags, type, offset}; SET_STATEBLOB {flags, type,
                            // length}
  uint32_t state_flags = 0;
  uint32_t type = 0;
  uint32_t offset_or_length = 0;
};
struct CtrlGetInfoBody {
  uint64_t flags = 0;
  uint32_t offset = 0;
  uint32_t pad = 0;
};
using CtrlRequestBody =
    std::variant<std::monostate, CtrlU8Body, CtrlU32Body, CtrlStateBlobBody, CtrlGetInfoBody>;

struct CtrlRequest {
  CtrlCmd cmd = CtrlCmd::kGetCapability;
  CtrlRequestBody body;
};

// The code and the fixed body (HASH_DATA and SET_STATEBLOB: up to their length field; the
// caller sends the payload after it). The body must have the command's shape (else aborts: a
// programming error, not input).
Bytes EncodeCtrlRequest(const CtrlRequest& request);
// |fixed| is exactly CtrlFixedBodySize(code) bytes, read after the code. Errors: an unknown code
// (the caller answers kPtmResBadOrdinal) or a body of the wrong size.
Result<CtrlRequest> DecodeCtrlRequest(uint32_t code, ByteSpan fixed);

// Response bodies, by shape (what follows the u32 result).
struct CtrlU32Reply {  // GET_CAPABILITY caps, GET_CONFIG flags
  uint32_t value = 0;
};
struct CtrlEstablishedReply {        // GET_TPMESTABLISHED: u8 bit + 3 bytes padding
  uint8_t bit = 0;                   // any non-zero value means "established" (QEMU tests bit != 0)
  std::array<uint8_t, 3> padding{};  // zero from us; kept as received so nothing is lost
  bool established() const { return bit != 0; }
};
struct CtrlBufferSizeReply {
  uint32_t current = 0, min = 0, max = 0;
};
struct CtrlStateBlobReply {  // u32 state_flags, u32 totlength, u32 length, the bytes
  uint32_t state_flags = 0;
  uint32_t total_length = 0;
  Bytes data;
};
struct CtrlInfoReply {  // u32 totlength (counting the trailing NUL), u32 length, the bytes
  uint32_t total_length = 0;
  Bytes data;
};
using CtrlResponseBody = std::variant<std::monostate, CtrlU32Reply, CtrlEstablishedReply,
                                      CtrlBufferSizeReply, CtrlStateBlobReply, CtrlInfoReply>;

// A response: the result, and the body when there is one. swtpm's trap: an error response is only
// the 4-byte result -- except GET_STATEBLOB on a running TPM, which always sends its header. So
// the encoder writes the body whenever it is present (the server leaves it out on errors, but for
// that one case), and only the result otherwise.
struct CtrlResponse {
  uint32_t result = kPtmResSuccess;
  CtrlResponseBody body;
};

Bytes EncodeCtrlResponse(const CtrlResponse& response);

// How many bytes the response to |cmd| has in total, given its first |prefix| bytes: call with
// what has arrived; read until that many bytes are there, and call again until it stops growing
// (variable bodies announce their length in their header). At least 4.
size_t CtrlResponseSize(CtrlCmd cmd, ByteSpan prefix);
// Decodes a complete response to |cmd| (exactly CtrlResponseSize bytes). Errors name the command.
Result<CtrlResponse> DecodeCtrlResponse(CtrlCmd cmd, ByteSpan bytes);

}  // namespace vtpm::wire
