#include "daemon/ctrl_session.h"

#include <algorithm>

#include "state/blob.h"
#include "wire/swtpm_ctrl.h"

namespace vtpm::daemon {

using wire::CtrlCmd;

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

}  // namespace

CtrlSession::CtrlSession(TpmService* service, bool fd_passing)
    : service_(service), fd_passing_(fd_passing) {}

void CtrlSession::Res(Bytes& out, uint32_t res) { AppendBe32(out, res); }

void CtrlSession::OnChunk(std::span<uint8_t> chunk, Bytes& out) {
  size_t pos = 0;
  while (pos < chunk.size() && !close_) {
    if (phase_ == Phase::kIdle) {
      head_.clear();
      need_ = 4;
      phase_ = Phase::kFixed;
    }
    if (phase_ == Phase::kFixed) {
      size_t n = std::min<size_t>(need_, chunk.size() - pos);
      head_.insert(head_.end(), chunk.begin() + static_cast<ptrdiff_t>(pos),
                   chunk.begin() + static_cast<ptrdiff_t>(pos + n));
      pos += n;
      need_ -= static_cast<uint32_t>(n);
      if (need_ > 0) return;  // wait for the rest in the next read
      if (head_.size() == 4) {
        code_ = LoadBe32(head_.data());
        auto body = wire::CtrlFixedBodySize(code_);
        if (!body) {
          service_->log()->debug("ctrl: unknown command 0x{:x}", code_);
          Res(out, wire::kPtmResBadOrdinal);
          phase_ = Phase::kIdle;
          return;  // like swtpm, the rest of this read belongs to the bad message
        }
        need_ = *body;
        if (need_ > 0) continue;
      }
      if (code_ == static_cast<uint32_t>(CtrlCmd::kHashData) ||
          code_ == static_cast<uint32_t>(CtrlCmd::kSetStateBlob)) {
        // The variable payload follows; its length is the fixed part's last u32.
        uint32_t len = LoadBe32(head_.data() + head_.size() - 4);
        payload_.clear();
        payload_error_ = 0;
        need_ = len;
        phase_ = Phase::kPayload;
        if (code_ == static_cast<uint32_t>(CtrlCmd::kSetStateBlob)) {
          if (len > wire::kMaxStateBlobSize) {
            service_->log()->warn("ctrl: CMD_SET_STATEBLOB of {} bytes refused (limit {})", len,
                                  wire::kMaxStateBlobSize);
            Res(out, wire::kPtmResFail);
            close_ = true;  // the stream cannot be resynchronised
            return;
          }
          if (service_->engine().running()) payload_error_ = wire::kPtmResBadOrdinal;
          payload_.reserve(len);
        } else if (!service_->engine().running()) {
          payload_error_ = wire::kPtmResBadOrdinal;
        }
        if (need_ == 0) {
          FinishPayload(out);
          return;
        }
        continue;
      }
      Execute(chunk.size() - pos, out);
      phase_ = Phase::kIdle;
      return;  // surplus bytes of this read are ignored, as swtpm does
    }
    if (phase_ == Phase::kPayload) {
      size_t n = std::min<size_t>(need_, chunk.size() - pos);
      ByteSpan part(chunk.data() + pos, n);
      pos += n;
      need_ -= static_cast<uint32_t>(n);
      if (payload_error_ == 0) {
        if (code_ == static_cast<uint32_t>(CtrlCmd::kHashData)) {
          // Streamed straight into the TPM: no buffering, whatever the length.
          if (auto st = service_->engine().HashData(part); !st) {
            payload_error_ = ResultFor(st.error());
          }
        } else {
          payload_.insert(payload_.end(), part.begin(), part.end());
        }
      }
      if (need_ == 0) {
        FinishPayload(out);
        return;
      }
    }
  }
}

void CtrlSession::FinishPayload(Bytes& out) {
  phase_ = Phase::kIdle;
  auto& log = service_->log();
  if (code_ == static_cast<uint32_t>(CtrlCmd::kHashData)) {
    log->debug("ctrl: CMD_HASH_DATA -> 0x{:x}", payload_error_);
    Res(out, payload_error_);
    return;
  }
  // CMD_SET_STATEBLOB: head_ = code, state_flags, type, length.
  uint32_t type = LoadBe32(head_.data() + 8);
  uint32_t res = payload_error_;
  auto st_type = BlobType(type);
  if (res == 0 && !st_type) res = wire::kPtmResBadParameter;
  if (res == 0) {
    Bytes raw;
    if (!payload_.empty()) {
      auto decoded = state::DecodeStateBlob(payload_);
      if (!decoded) {
        log->warn("ctrl: CMD_SET_STATEBLOB: {}", decoded.error().message);
        res = decoded.error().code == Errc::kUnsupported ? wire::kPtmResKeyNotFound
                                                         : wire::kPtmResBadParameter;
      } else {
        raw = std::move(*decoded);
      }
    }
    if (res == 0) {
      if (auto st = service_->engine().SetState(*st_type, raw); !st) {
        log->error("ctrl: CMD_SET_STATEBLOB: {}", st.error().message);
        res = st.error().code == Errc::kBusy ? wire::kPtmResIoError : ResultFor(st.error());
      }
    }
  }
  log->debug("ctrl: CMD_SET_STATEBLOB type {} ({} bytes) -> 0x{:x}", type, payload_.size(), res);
  payload_.clear();
  payload_.shrink_to_fit();
  Res(out, res);
}

void CtrlSession::Execute(size_t surplus, Bytes& out) {
  engine::Engine& eng = service_->engine();
  auto& log = service_->log();
  ByteReader body(ByteSpan(head_).subspan(4));
  const size_t before = out.size();
  auto need_running = [&]() {
    if (eng.running()) return true;
    Res(out, wire::kPtmResBadOrdinal);
    return false;
  };
  auto status_res = [&](const Status& st) {
    if (!st) log->warn("ctrl: {}: {}", wire::CtrlCmdName(code_), st.error().message);
    Res(out, st ? wire::kPtmResSuccess : ResultFor(st.error()));
  };

  switch (static_cast<CtrlCmd>(code_)) {
    case CtrlCmd::kGetCapability: {
      // Every PTM_CAP_* bit. Like swtpm, SET_DATAFD is advertised on TCP too (where it fails at
      // run time): clients test the bit set, not the transport.
      uint32_t caps = 0x1ffff;
      if (!eng.tpm2()) caps &= ~wire::kPtmCapSendCommandHeader;
      Res(out, wire::kPtmResSuccess);
      AppendBe32(out, caps);
      break;
    }
    case CtrlCmd::kInit: {
      if (surplus != 0) {
        Res(out, wire::kPtmResBadParameter);
        break;
      }
      uint32_t flags = *body.U32();
      auto st = service_->Start((flags & wire::kPtmInitFlagDeleteVolatile) != 0);
      if (!st) {
        log->error("ctrl: CMD_INIT failed: {}", st.error().message);
        Res(out, st.error().code == Errc::kTpm ? ResultFor(st.error()) : wire::kPtmResFail);
      } else {
        Res(out, wire::kPtmResSuccess);
      }
      break;
    }
    case CtrlCmd::kShutdown:
      eng.Stop();
      Res(out, wire::kPtmResSuccess);
      close_ = true;
      if (service_->hooks()) service_->hooks()->RequestExit();
      break;
    case CtrlCmd::kGetTpmEstablished: {
      if (!need_running()) break;
      auto est = eng.GetEstablished();
      if (!est) {
        Res(out, ResultFor(est.error()));
        break;
      }
      Res(out, wire::kPtmResSuccess);
      out.insert(out.end(), {static_cast<uint8_t>(*est ? 1 : 0), 0, 0, 0});
      break;
    }
    case CtrlCmd::kSetLocality: {
      uint8_t loc = *body.U8();
      Res(out, eng.SetLocality(loc) ? wire::kPtmResSuccess : wire::kPtmResBadLocality);
      break;
    }
    case CtrlCmd::kHashStart:
      if (need_running()) status_res(eng.HashStart());
      break;
    case CtrlCmd::kHashEnd:
      if (need_running()) status_res(eng.HashEnd());
      break;
    case CtrlCmd::kCancelTpmCmd:
      if (need_running()) {
        eng.Cancel();
        Res(out, wire::kPtmResSuccess);
      }
      break;
    case CtrlCmd::kStoreVolatile:
      if (need_running()) status_res(eng.StoreVolatile());
      break;
    case CtrlCmd::kResetTpmEstablished: {
      if (!need_running()) break;
      uint8_t loc = *body.U8();
      if (loc > 4) {
        Res(out, wire::kPtmResBadLocality);
        break;
      }
      status_res(eng.ResetEstablished(loc));
      break;
    }
    case CtrlCmd::kGetStateBlob: {
      if (!need_running()) break;
      uint32_t flags = *body.U32();
      (void)flags;  // DECRYPTED: we store no encrypted blobs yet, so all are plain
      uint32_t type = *body.U32();
      uint32_t offset = *body.U32();
      auto st_type = BlobType(type);
      if (!st_type) {
        Res(out, wire::kPtmResFail);
        break;
      }
      auto raw = eng.GetState(*st_type);
      Bytes blob;
      uint32_t res = wire::kPtmResSuccess;
      if (!raw) {
        res = raw.error().code == Errc::kNotFound ? wire::kPtmResRetry : ResultFor(raw.error());
      } else {
        blob = state::EncodeMigrationBlob(*raw);
      }
      size_t start = std::min<size_t>(offset, blob.size());
      uint32_t len = static_cast<uint32_t>(blob.size() - start);
      Res(out, res);
      AppendBe32(out, 0);  // state_flags: not encrypted
      AppendBe32(out, len);
      AppendBe32(out, len);
      out.insert(out.end(), blob.begin() + static_cast<ptrdiff_t>(start), blob.end());
      if (*st_type == engine::StateType::kSaveState) service_->ReleaseLockForMigration();
      break;
    }
    case CtrlCmd::kStop:
      eng.Stop();
      Res(out, wire::kPtmResSuccess);
      break;
    case CtrlCmd::kGetConfig:
      Res(out, wire::kPtmResSuccess);
      AppendBe32(out, 0);  // neither a file key nor a migration key
      break;
    case CtrlCmd::kSetDatafd: {
      if (!fd_passing_ || !passed_fd_.valid() || service_->hooks() == nullptr) {
        Res(out, wire::kPtmResFail);
        break;
      }
      bool adopted = service_->hooks()->AdoptDataFd(std::move(passed_fd_));
      Res(out, adopted ? wire::kPtmResSuccess : wire::kPtmResIoError);
      break;
    }
    case CtrlCmd::kSetBufferSize: {
      uint32_t wanted = *body.U32();
      auto sizes = eng.SetBufferSize(wanted);
      if (!sizes) {
        Res(out, ResultFor(sizes.error()));
        break;
      }
      Res(out, wire::kPtmResSuccess);
      AppendBe32(out, sizes->current);
      AppendBe32(out, sizes->min);
      AppendBe32(out, sizes->max);
      break;
    }
    case CtrlCmd::kGetInfo: {
      uint64_t flags = *body.U64();
      uint32_t offset = *body.U32();
      auto info = eng.GetInfo(flags);
      if (!info) {
        Res(out, wire::kPtmResSize);
        break;
      }
      size_t total = info->size() + 1;  // the trailing NUL counts
      if (offset >= total) {
        Res(out, wire::kPtmResBadParameter);
        break;
      }
      uint32_t len = static_cast<uint32_t>(std::min<size_t>(wire::kGetInfoChunk, total - offset));
      Res(out, wire::kPtmResSuccess);
      AppendBe32(out, static_cast<uint32_t>(total));
      AppendBe32(out, len);
      const char* p = info->c_str() + offset;
      out.insert(out.end(), p, p + len);
      break;
    }
    case CtrlCmd::kLockStorage: {
      uint32_t retries = std::min<uint32_t>(*body.U32(), 1000);
      auto st = service_->Relock(retries);
      Res(out, st ? wire::kPtmResSuccess : wire::kPtmResFail);
      break;
    }
    case CtrlCmd::kHashData:
    case CtrlCmd::kSetStateBlob:
      break;  // handled by FinishPayload()
  }
  if (passed_fd_.valid() && static_cast<CtrlCmd>(code_) != CtrlCmd::kSetDatafd) {
    passed_fd_.reset();  // an fd may only come with CMD_SET_DATAFD
  }
  log->debug("ctrl: {} -> 0x{:x}", wire::CtrlCmdName(code_),
             out.size() >= before + 4 ? LoadBe32(out.data() + before) : 0u);
}

}  // namespace vtpm::daemon
