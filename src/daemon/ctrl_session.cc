#include "daemon/ctrl_session.h"

#include <algorithm>

#include "state/blob.h"

namespace vtpm::daemon {

using wire::CtrlCmd;
using wire::CtrlResponse;

namespace {

uint32_t ResultFor(const Error& e) {
  switch (e.code) {
    case Errc::kTpm:
      return e.tpm_rc != 0 ? e.tpm_rc : wire::kPtmResFail;
    case Errc::kFailedPrecondition:
      return wire::kPtmResBadOrdinal;
    case Errc::kInvalidArgument:
      return wire::kPtmResBadParameter;
    default:
      return wire::kPtmResFail;
  }
}

std::optional<engine::StateType> BlobType(uint32_t ptm_type) {
  switch (ptm_type) {
    case wire::kPtmBlobTypePermanent:
      return engine::StateType::kPermanent;
    case wire::kPtmBlobTypeVolatile:
      return engine::StateType::kVolatile;
    case wire::kPtmBlobTypeSaveState:
      return engine::StateType::kSaveState;
    default:
      return std::nullopt;
  }
}

CtrlResponse Result(uint32_t result) { return CtrlResponse{result, {}}; }

// Commands without a body that swtpm 0.7.1 refuses (0x03, not run) when more bytes came with them
// in the same read -- after its "not running" check. GET_CAPABILITY and SET_DATAFD ignore them.
bool RefusesSurplus(CtrlCmd cmd) {
  return wire::CtrlFixedBodySize(static_cast<uint32_t>(cmd)) == 0u &&
         cmd != CtrlCmd::kGetCapability && cmd != CtrlCmd::kSetDatafd;
}

bool NeedsRunning(CtrlCmd cmd) {
  switch (cmd) {
    case CtrlCmd::kGetTpmEstablished:
    case CtrlCmd::kHashStart:
    case CtrlCmd::kHashEnd:
    case CtrlCmd::kCancelTpmCmd:
    case CtrlCmd::kStoreVolatile:
    case CtrlCmd::kResetTpmEstablished:
    case CtrlCmd::kGetStateBlob:
      return true;
    default:
      return false;
  }
}

}  // namespace

CtrlSession::CtrlSession(TpmService* service, bool fd_passing)
    : service_(service), fd_passing_(fd_passing) {}

void CtrlSession::Reply(const CtrlResponse& response, Bytes& out) {
  const Bytes b = wire::EncodeCtrlResponse(response);
  out.insert(out.end(), b.begin(), b.end());
}

bool CtrlSession::TakeFixed(std::span<uint8_t> chunk, size_t& pos) {
  const size_t n = std::min<size_t>(need_, chunk.size() - pos);
  head_.insert(head_.end(), chunk.begin() + static_cast<ptrdiff_t>(pos),
               chunk.begin() + static_cast<ptrdiff_t>(pos + n));
  pos += n;
  need_ -= static_cast<uint32_t>(n);
  return need_ == 0;
}

void CtrlSession::OnChunk(std::span<uint8_t> chunk, Bytes& out) {
  size_t pos = 0;
  while (pos < chunk.size() && !close_) {
    if (phase_ == Phase::kIdle) {
      head_.clear();
      need_ = 4;
      phase_ = Phase::kFixed;
    }
    if (phase_ == Phase::kFixed) {
      if (!TakeFixed(chunk, pos)) return;  // wait for the rest in the next read
      if (head_.size() == 4) {
        code_ = LoadBe32(head_.data());
        auto body = wire::CtrlFixedBodySize(code_);
        if (!body) {
          service_->log()->debug("ctrl: unknown command 0x{:x}", code_);
          Reply(Result(wire::kPtmResBadOrdinal), out);
          phase_ = Phase::kIdle;
          return;  // like swtpm, the rest of this read belongs to the bad message
        }
        need_ = *body;
        if (need_ > 0) continue;
      }
      OnFixedComplete(chunk.size() - pos, out);
      if (phase_ == Phase::kIdle) return;  // surplus bytes of this read are ignored, as swtpm
      continue;
    }
    const size_t n = std::min<size_t>(need_, chunk.size() - pos);
    TakePayload(ByteSpan(chunk.data() + pos, n));
    pos += n;
    if (need_ == 0) {
      FinishPayload(out);
      return;
    }
  }
}

void CtrlSession::OnFixedComplete(size_t surplus, Bytes& out) {
  // The size was checked against the code, so decoding cannot fail.
  auto req = wire::DecodeCtrlRequest(code_, ByteSpan(head_).subspan(4));
  if (!req) {
    Reply(Result(wire::kPtmResBadParameter), out);
    phase_ = Phase::kIdle;
    return;
  }
  if (req->cmd == CtrlCmd::kHashData || req->cmd == CtrlCmd::kSetStateBlob) {
    StartPayload(*req, out);
    return;
  }
  const size_t before = out.size();
  Reply(Handle(*req, surplus), out);
  if (passed_fd_.valid() && req->cmd != CtrlCmd::kSetDatafd) {
    passed_fd_.reset();  // an fd may only come with CMD_SET_DATAFD
  }
  service_->log()->debug("ctrl: {} -> 0x{:x}", wire::CtrlCmdName(code_),
                         LoadBe32(out.data() + before));
  phase_ = Phase::kIdle;
}

void CtrlSession::StartPayload(const wire::CtrlRequest& req, Bytes& out) {
  request_ = req;
  const bool set_blob = req.cmd == CtrlCmd::kSetStateBlob;
  const uint32_t len = set_blob ? std::get<wire::CtrlStateBlobBody>(req.body).offset_or_length
                                : std::get<wire::CtrlU32Body>(req.body).value;
  payload_.clear();
  payload_error_ = 0;
  need_ = len;
  phase_ = Phase::kPayload;
  if (set_blob) {
    if (len > wire::kMaxStateBlobSize) {
      service_->log()->warn("ctrl: CMD_SET_STATEBLOB of {} bytes refused (limit {})", len,
                            wire::kMaxStateBlobSize);
      Reply(Result(wire::kPtmResFail), out);
      close_ = true;  // the stream cannot be resynchronised
      return;
    }
    if (service_->engine().running()) payload_error_ = wire::kPtmResBadOrdinal;
    payload_.reserve(len);
  } else if (!service_->engine().running()) {
    payload_error_ = wire::kPtmResBadOrdinal;
  }
  if (need_ == 0) FinishPayload(out);
}

void CtrlSession::TakePayload(ByteSpan part) {
  need_ -= static_cast<uint32_t>(part.size());
  if (payload_error_ != 0) return;
  if (request_.cmd == CtrlCmd::kHashData) {
    // Streamed straight into the TPM: no buffering, whatever the length.
    if (auto st = service_->engine().HashData(part); !st) payload_error_ = ResultFor(st.error());
  } else {
    payload_.insert(payload_.end(), part.begin(), part.end());
  }
}

void CtrlSession::FinishPayload(Bytes& out) {
  phase_ = Phase::kIdle;
  if (request_.cmd == CtrlCmd::kHashData) {
    service_->log()->debug("ctrl: CMD_HASH_DATA -> 0x{:x}", payload_error_);
    Reply(Result(payload_error_), out);
    return;
  }
  const auto& body = std::get<wire::CtrlStateBlobBody>(request_.body);
  const uint32_t type = body.type;
  const CtrlResponse r = payload_error_ != 0 ? Result(payload_error_) : SetStateBlob(body);
  service_->log()->debug("ctrl: CMD_SET_STATEBLOB type {} ({} bytes) -> 0x{:x}", type,
                         payload_.size(), r.result);
  payload_.clear();
  payload_.shrink_to_fit();
  Reply(r, out);
}

CtrlResponse CtrlSession::SetStateBlob(const wire::CtrlStateBlobBody& body) {
  auto& log = service_->log();
  auto st_type = BlobType(body.type);
  if (!st_type) return Result(wire::kPtmResBadParameter);
  Bytes raw;
  if (!payload_.empty()) {
    const ServiceOptions& o = service_->options();
    auto decoded = state::DecodeStateBlob(payload_, o.state_key.get(), o.migration_key.get(),
                                          (body.state_flags & wire::kPtmStateFlagEncrypted) != 0);
    if (!decoded) {
      log->warn("ctrl: CMD_SET_STATEBLOB: {}", decoded.error().message);
      switch (decoded.error().code) {
        case Errc::kNotFound:
          return Result(wire::kPtmResKeyNotFound);
        case Errc::kWrongKey:
          return Result(wire::kPtmResDecryptError);
        default:
          return Result(wire::kPtmResBadParameter);
      }
    }
    raw = std::move(*decoded);
  }
  if (auto st = service_->engine().SetState(*st_type, raw); !st) {
    log->error("ctrl: CMD_SET_STATEBLOB: {}", st.error().message);
    return Result(st.error().code == Errc::kBusy ? wire::kPtmResIoError : ResultFor(st.error()));
  }
  return Result(wire::kPtmResSuccess);
}

CtrlResponse CtrlSession::Handle(const wire::CtrlRequest& req, size_t surplus) {
  engine::Engine& eng = service_->engine();
  // Commands that need a running TPM answer BAD_ORDINAL (4 bytes) when it is not, as swtpm;
  // then bodiless commands with bytes after them answer BAD_PARAMETER and do nothing.
  if (NeedsRunning(req.cmd) && !eng.running()) return Result(wire::kPtmResBadOrdinal);
  if (surplus != 0 && RefusesSurplus(req.cmd)) {
    service_->log()->debug("ctrl: {} with {} unexpected bytes after it refused",
                           wire::CtrlCmdName(code_), surplus);
    return Result(wire::kPtmResBadParameter);
  }
  auto status = [&](const Status& st) {
    if (!st) service_->log()->warn("ctrl: {}: {}", wire::CtrlCmdName(code_), st.error().message);
    return Result(st ? wire::kPtmResSuccess : ResultFor(st.error()));
  };
  switch (req.cmd) {
    case CtrlCmd::kGetCapability:
      return GetCapability();
    case CtrlCmd::kInit:
      return Init(req, surplus);
    case CtrlCmd::kShutdown:
      return Shutdown();
    case CtrlCmd::kGetTpmEstablished:
      return GetTpmEstablished();
    case CtrlCmd::kSetLocality:
      return SetLocality(std::get<wire::CtrlU8Body>(req.body).value);
    case CtrlCmd::kHashStart:
      return status(eng.HashStart());
    case CtrlCmd::kHashEnd:
      return status(eng.HashEnd());
    case CtrlCmd::kCancelTpmCmd:
      eng.Cancel();
      return Result(wire::kPtmResSuccess);
    case CtrlCmd::kStoreVolatile:
      return status(eng.StoreVolatile());
    case CtrlCmd::kResetTpmEstablished:
      return ResetTpmEstablished(std::get<wire::CtrlU8Body>(req.body).value);
    case CtrlCmd::kGetStateBlob:
      return GetStateBlob(std::get<wire::CtrlStateBlobBody>(req.body));
    case CtrlCmd::kStop:
      eng.Stop();
      return Result(wire::kPtmResSuccess);
    case CtrlCmd::kGetConfig:
      return CtrlResponse{wire::kPtmResSuccess, wire::CtrlU32Reply{ConfigFlags()}};
    case CtrlCmd::kSetDatafd:
      return SetDatafd();
    case CtrlCmd::kSetBufferSize:
      return SetBufferSize(std::get<wire::CtrlU32Body>(req.body).value);
    case CtrlCmd::kGetInfo:
      return GetInfo(std::get<wire::CtrlGetInfoBody>(req.body));
    case CtrlCmd::kLockStorage: {
      const uint32_t retries =
          std::min<uint32_t>(std::get<wire::CtrlU32Body>(req.body).value, 1000);
      return Result(service_->Relock(retries) ? wire::kPtmResSuccess : wire::kPtmResFail);
    }
    case CtrlCmd::kHashData:
    case CtrlCmd::kSetStateBlob:
      break;  // payload commands: FinishPayload()
  }
  return Result(wire::kPtmResBadOrdinal);
}

CtrlResponse CtrlSession::GetCapability() {
  // Every PTM_CAP_* bit. Like swtpm, SET_DATAFD is advertised on TCP too (where it fails at run
  // time): clients test the bit set, not the transport.
  uint32_t caps = 0x1ffff;
  if (!service_->engine().tpm2()) caps &= ~wire::kPtmCapSendCommandHeader;
  return CtrlResponse{wire::kPtmResSuccess, wire::CtrlU32Reply{caps}};
}

CtrlResponse CtrlSession::Init(const wire::CtrlRequest& req, size_t surplus) {
  if (surplus != 0) return Result(wire::kPtmResBadParameter);  // swtpm: exactly 4 body bytes
  const uint32_t flags = std::get<wire::CtrlU32Body>(req.body).value;
  auto st = service_->Start((flags & wire::kPtmInitFlagDeleteVolatile) != 0);
  if (!st) {
    service_->log()->error("ctrl: CMD_INIT failed: {}", st.error().message);
    return Result(st.error().code == Errc::kTpm ? ResultFor(st.error()) : wire::kPtmResFail);
  }
  return Result(wire::kPtmResSuccess);
}

CtrlResponse CtrlSession::Shutdown() {
  service_->engine().Stop();
  close_ = true;
  if (service_->hooks()) service_->hooks()->RequestExit();
  return Result(wire::kPtmResSuccess);
}

CtrlResponse CtrlSession::GetTpmEstablished() {
  auto est = service_->engine().GetEstablished();
  if (!est) return Result(ResultFor(est.error()));
  return CtrlResponse{wire::kPtmResSuccess,
                      wire::CtrlEstablishedReply{static_cast<uint8_t>(*est ? 1 : 0)}};
}

CtrlResponse CtrlSession::SetLocality(uint8_t locality) {
  return Result(service_->engine().SetLocality(locality) ? wire::kPtmResSuccess
                                                         : wire::kPtmResBadLocality);
}

CtrlResponse CtrlSession::ResetTpmEstablished(uint8_t locality) {
  if (locality > 4) return Result(wire::kPtmResBadLocality);
  auto st = service_->engine().ResetEstablished(locality);
  if (!st) service_->log()->warn("ctrl: CMD_RESET_TPMESTABLISHED: {}", st.error().message);
  return Result(st ? wire::kPtmResSuccess : ResultFor(st.error()));
}

CtrlResponse CtrlSession::GetStateBlob(const wire::CtrlStateBlobBody& body) {
  // On a running TPM the reply always carries its header, whatever the result (as swtpm 0.7.1,
  // which answers an unknown blob type with TPM_RETRY and empty lengths). With a (CBC) state key
  // the blob inside is encrypted with it unless the caller asked for it DECRYPTED (QEMU does);
  // with a migration key the whole is encrypted with that.
  wire::CtrlStateBlobReply reply;
  auto st_type = BlobType(body.type);
  if (!st_type) return CtrlResponse{wire::kPtmResRetry, std::move(reply)};
  auto raw = service_->engine().GetState(*st_type);
  uint32_t res = wire::kPtmResSuccess;
  Bytes blob;
  if (!raw) {
    res = raw.error().code == Errc::kNotFound ? wire::kPtmResRetry : ResultFor(raw.error());
  } else {
    const ServiceOptions& o = service_->options();
    const bool decrypted = (body.state_flags & wire::kPtmStateFlagDecrypted) != 0;
    const state::StateKey* state_key =
        !decrypted && o.state_key && o.state_key->cipher() != state::StateCipher::kAes256Gcm
            ? o.state_key.get()
            : nullptr;
    blob = state::EncodeMigrationBlob(*raw, state_key, o.migration_key.get());
    if (state_key != nullptr) reply.state_flags = wire::kPtmStateFlagEncrypted;
  }
  const size_t start = std::min<size_t>(body.offset_or_length, blob.size());
  reply.data.assign(blob.begin() + static_cast<ptrdiff_t>(start), blob.end());
  reply.total_length = static_cast<uint32_t>(reply.data.size());
  if (*st_type == engine::StateType::kSaveState) service_->ReleaseLockForMigration();
  return CtrlResponse{res, std::move(reply)};
}

uint32_t CtrlSession::ConfigFlags() const {
  const ServiceOptions& o = service_->options();
  return (o.state_key ? wire::kPtmConfigFlagFileKey : 0u) |
         (o.migration_key ? wire::kPtmConfigFlagMigrationKey : 0u);
}

CtrlResponse CtrlSession::SetDatafd() {
  // No usable fd (none came, or a TCP control channel): TPM_IOERROR, as swtpm 0.7.1.
  if (!fd_passing_ || !passed_fd_.valid() || service_->hooks() == nullptr) {
    return Result(wire::kPtmResIoError);
  }
  const bool adopted = service_->hooks()->AdoptDataFd(std::move(passed_fd_));
  return Result(adopted ? wire::kPtmResSuccess : wire::kPtmResIoError);
}

CtrlResponse CtrlSession::SetBufferSize(uint32_t wanted) {
  auto sizes = service_->engine().SetBufferSize(wanted);
  if (!sizes) return Result(ResultFor(sizes.error()));
  return CtrlResponse{wire::kPtmResSuccess,
                      wire::CtrlBufferSizeReply{sizes->current, sizes->min, sizes->max}};
}

CtrlResponse CtrlSession::GetInfo(const wire::CtrlGetInfoBody& body) {
  auto info = service_->engine().GetInfo(body.flags);
  if (!info) return Result(wire::kPtmResSize);
  const size_t total = info->size() + 1;  // the trailing NUL counts
  if (body.offset >= total) return Result(wire::kPtmResBadParameter);
  const size_t len = std::min<size_t>(wire::kGetInfoChunk, total - body.offset);
  wire::CtrlInfoReply reply;
  reply.total_length = static_cast<uint32_t>(total);
  const char* p = info->c_str() + body.offset;
  reply.data.assign(p, p + len);
  return CtrlResponse{wire::kPtmResSuccess, std::move(reply)};
}

}  // namespace vtpm::daemon
