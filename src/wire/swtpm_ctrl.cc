#include "wire/swtpm_ctrl.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <type_traits>

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

namespace vtpm::wire {
namespace {

enum class RequestShape { kNone, kU8, kU32, kStateBlob, kGetInfo };
enum class ReplyShape { kNone, kU32, kEstablished, kBufferSize, kStateBlob, kInfo };

std::optional<RequestShape> RequestShapeOf(CtrlCmd cmd) {
  switch (cmd) {
    case CtrlCmd::kSetLocality:
    case CtrlCmd::kResetTpmEstablished:
      return RequestShape::kU8;
    case CtrlCmd::kInit:
    case CtrlCmd::kHashData:
    case CtrlCmd::kSetBufferSize:
    case CtrlCmd::kLockStorage:
      return RequestShape::kU32;
    case CtrlCmd::kGetStateBlob:
    case CtrlCmd::kSetStateBlob:
      return RequestShape::kStateBlob;
    case CtrlCmd::kGetInfo:
      return RequestShape::kGetInfo;
    default:
      if (CtrlFixedBodySize(static_cast<uint32_t>(cmd)) == 0u) return RequestShape::kNone;
      return std::nullopt;
  }
}

ReplyShape ReplyShapeOf(CtrlCmd cmd) {
  switch (cmd) {
    case CtrlCmd::kGetCapability:
    case CtrlCmd::kGetConfig:
      return ReplyShape::kU32;
    case CtrlCmd::kGetTpmEstablished:
      return ReplyShape::kEstablished;
    case CtrlCmd::kSetBufferSize:
      return ReplyShape::kBufferSize;
    case CtrlCmd::kGetStateBlob:
      return ReplyShape::kStateBlob;
    case CtrlCmd::kGetInfo:
      return ReplyShape::kInfo;
    default:
      return ReplyShape::kNone;
  }
}

// The request body variant index each shape uses (matches CtrlRequestBody's order).
size_t BodyIndex(RequestShape s) { return static_cast<size_t>(s); }

[[noreturn]] void WrongShape(CtrlCmd cmd) {
  std::fprintf(stderr, "vtpm: internal error: %s request with a body of the wrong shape\n",
               std::string(CtrlCmdName(static_cast<uint32_t>(cmd))).c_str());
  std::abort();
}

}  // namespace

Bytes EncodeCtrlRequest(const CtrlRequest& request) {
  const auto shape = RequestShapeOf(request.cmd);
  if (!shape || request.body.index() != BodyIndex(*shape)) WrongShape(request.cmd);
  ByteWriter w;
  w.U32(static_cast<uint32_t>(request.cmd));
  std::visit(
      [&](const auto& b) {
        using T = std::decay_t<decltype(b)>;
        if constexpr (std::is_same_v<T, CtrlU8Body>) {
          w.U8(b.value);
        } else if constexpr (std::is_same_v<T, CtrlU32Body>) {
          w.U32(b.value);
        } else if constexpr (std::is_same_v<T, CtrlStateBlobBody>) {
          w.U32(b.state_flags);
          w.U32(b.type);
          w.U32(b.offset_or_length);
        } else if constexpr (std::is_same_v<T, CtrlGetInfoBody>) {
          w.U64(b.flags);
          w.U32(b.offset);
          w.U32(b.pad);
        }
      },
      request.body);
  return std::move(w).Take();
}

Result<CtrlRequest> DecodeCtrlRequest(uint32_t code, ByteSpan fixed) {
  const auto size = CtrlFixedBodySize(code);
  const CtrlCmd cmd = static_cast<CtrlCmd>(code);
  const auto shape = size ? RequestShapeOf(cmd) : std::nullopt;
  if (!shape) {
    return Fail(Errc::kInvalidArgument, fmt::format("unknown control command 0x{:x}", code));
  }
  if (fixed.size() != *size) {
    return Fail(Errc::kInvalidArgument, fmt::format("{} takes {} body bytes, got {}",
                                                    CtrlCmdName(code), *size, fixed.size()));
  }
  ByteReader r(fixed);
  CtrlRequest req{cmd, {}};
  switch (*shape) {
    case RequestShape::kNone:
      break;
    case RequestShape::kU8: {
      VTPM_ASSIGN_OR_RETURN(const uint8_t v, r.U8());
      req.body = CtrlU8Body{v};
      break;
    }
    case RequestShape::kU32: {
      VTPM_ASSIGN_OR_RETURN(const uint32_t v, r.U32());
      req.body = CtrlU32Body{v};
      break;
    }
    case RequestShape::kStateBlob: {
      CtrlStateBlobBody b;
      VTPM_ASSIGN_OR_RETURN(b.state_flags, r.U32());
      VTPM_ASSIGN_OR_RETURN(b.type, r.U32());
      VTPM_ASSIGN_OR_RETURN(b.offset_or_length, r.U32());
      req.body = b;
      break;
    }
    case RequestShape::kGetInfo: {
      CtrlGetInfoBody b;
      VTPM_ASSIGN_OR_RETURN(b.flags, r.U64());
      VTPM_ASSIGN_OR_RETURN(b.offset, r.U32());
      VTPM_ASSIGN_OR_RETURN(b.pad, r.U32());
      req.body = b;
      break;
    }
  }
  return req;
}

Bytes EncodeCtrlResponse(const CtrlResponse& response) {
  ByteWriter w;
  w.U32(response.result);
  std::visit(
      [&](const auto& b) {
        using T = std::decay_t<decltype(b)>;
        if constexpr (std::is_same_v<T, CtrlU32Reply>) {
          w.U32(b.value);
        } else if constexpr (std::is_same_v<T, CtrlEstablishedReply>) {
          w.U8(b.bit);
          w.Append(b.padding);
        } else if constexpr (std::is_same_v<T, CtrlBufferSizeReply>) {
          w.U32(b.current);
          w.U32(b.min);
          w.U32(b.max);
        } else if constexpr (std::is_same_v<T, CtrlStateBlobReply>) {
          w.U32(b.state_flags);
          w.U32(b.total_length);
          w.U32(static_cast<uint32_t>(b.data.size()));
          w.Append(b.data);
        } else if constexpr (std::is_same_v<T, CtrlInfoReply>) {
          w.U32(b.total_length);
          w.U32(static_cast<uint32_t>(b.data.size()));
          w.Append(b.data);
        }
      },
      response.body);
  return std::move(w).Take();
}

size_t CtrlResponseSize(CtrlCmd cmd, ByteSpan prefix) {
  if (prefix.size() < 4) return 4;
  const uint32_t result = LoadBe32(prefix.data());
  switch (ReplyShapeOf(cmd)) {
    case ReplyShape::kNone:
      return 4;
    case ReplyShape::kU32:
    case ReplyShape::kEstablished:
      return result == kPtmResSuccess ? 8 : 4;
    case ReplyShape::kBufferSize:
      return result == kPtmResSuccess ? 16 : 4;
    case ReplyShape::kStateBlob:
      // The header comes on a running TPM whatever the result; "not running" is 4 bytes.
      if (result == kPtmResBadOrdinal) return 4;
      return prefix.size() < 16 ? 16 : 16 + size_t{LoadBe32(prefix.data() + 12)};
    case ReplyShape::kInfo:
      if (result != kPtmResSuccess) return 4;
      return prefix.size() < 12 ? 12 : 12 + size_t{LoadBe32(prefix.data() + 8)};
  }
  return 4;
}

namespace {

// The length-prefixed bytes of a state blob or info reply.
Result<Bytes> LengthPrefixed(ByteReader& r) {
  VTPM_ASSIGN_OR_RETURN(const uint32_t len, r.U32());
  VTPM_ASSIGN_OR_RETURN(const ByteSpan data, r.Take(len));
  return Bytes(data.begin(), data.end());
}

Result<CtrlResponseBody> DecodeReplyBody(ReplyShape shape, ByteReader& r) {
  switch (shape) {
    case ReplyShape::kNone:
      break;
    case ReplyShape::kU32: {
      VTPM_ASSIGN_OR_RETURN(const uint32_t v, r.U32());
      return CtrlU32Reply{v};
    }
    case ReplyShape::kEstablished: {
      CtrlEstablishedReply b;
      VTPM_ASSIGN_OR_RETURN(b.bit, r.U8());
      VTPM_ASSIGN_OR_RETURN(const ByteSpan pad, r.Take(b.padding.size()));
      std::copy(pad.begin(), pad.end(), b.padding.begin());
      return b;
    }
    case ReplyShape::kBufferSize: {
      CtrlBufferSizeReply b;
      VTPM_ASSIGN_OR_RETURN(b.current, r.U32());
      VTPM_ASSIGN_OR_RETURN(b.min, r.U32());
      VTPM_ASSIGN_OR_RETURN(b.max, r.U32());
      return b;
    }
    case ReplyShape::kStateBlob: {
      CtrlStateBlobReply b;
      VTPM_ASSIGN_OR_RETURN(b.state_flags, r.U32());
      VTPM_ASSIGN_OR_RETURN(b.total_length, r.U32());
      VTPM_ASSIGN_OR_RETURN(b.data, LengthPrefixed(r));
      return b;
    }
    case ReplyShape::kInfo: {
      CtrlInfoReply b;
      VTPM_ASSIGN_OR_RETURN(b.total_length, r.U32());
      VTPM_ASSIGN_OR_RETURN(b.data, LengthPrefixed(r));
      return b;
    }
  }
  return CtrlResponseBody{};
}

}  // namespace

Result<CtrlResponse> DecodeCtrlResponse(CtrlCmd cmd, ByteSpan bytes) {
  const size_t want = CtrlResponseSize(cmd, bytes);
  if (bytes.size() != want) {
    return Fail(Errc::kInvalidArgument,
                fmt::format("{}: a response of {} bytes is malformed (expected {})",
                            CtrlCmdName(static_cast<uint32_t>(cmd)), bytes.size(), want));
  }
  ByteReader r(bytes);
  CtrlResponse resp;
  VTPM_ASSIGN_OR_RETURN(resp.result, r.U32());
  if (!r.empty()) {
    VTPM_ASSIGN_OR_RETURN(resp.body, DecodeReplyBody(ReplyShapeOf(cmd), r));
  }
  if (!r.empty()) {  // every byte is a field: nothing is dropped between decode and encode
    return Fail(Errc::kInvalidArgument,
                fmt::format("{}: {} response bytes left undecoded",
                            CtrlCmdName(static_cast<uint32_t>(cmd)), r.remaining()));
  }
  return resp;
}

}  // namespace vtpm::wire
