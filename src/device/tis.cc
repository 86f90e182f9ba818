#include "device/tis.h"

#include <algorithm>
#include <bit>

#include "device/regs.h"
#include "wire/tpm_header.h"

namespace vtpm::device {

namespace {

enum RegId {
  kRegAccess,
  kRegIntEnable,
  kRegIntVector,
  kRegIntStatus,
  kRegIntfCap,
  kRegSts,
  kRegHashEnd,
  kRegDataFifo,
  kRegHashStart,
  kRegInterfaceId,
  kRegXDataFifo,
  kRegDidVid,
  kRegRid,
};

// ACCESS, INT_VECTOR and RID are one byte wide; they are decoded as dwords whose upper bytes
// read 0, which is what QEMU returns for a dword read of them. Holes read 0xFF.
constexpr RegDef kRegs[] = {
    {tis::kAccess, 4, kRegAccess},
    {tis::kIntEnable, 4, kRegIntEnable},
    {tis::kIntVector, 4, kRegIntVector},
    {tis::kIntStatus, 4, kRegIntStatus},
    {tis::kIntfCapability, 4, kRegIntfCap},
    {tis::kSts, 4, kRegSts},
    {tis::kHashEnd, 4, kRegHashEnd},
    {tis::kDataFifo, 4, kRegDataFifo},
    {tis::kHashStart, 4, kRegHashStart},
    {tis::kInterfaceId, 4, kRegInterfaceId},
    {tis::kXDataFifo, tis::kXDataFifoSize, kRegXDataFifo},
    {tis::kDidVid, 4, kRegDidVid},
    {tis::kRid, 4, kRegRid},
};

constexpr uint8_t kNoDataByte = 0xFF;
constexpr size_t kHashChunk = 1024;
constexpr uint32_t kTpm2CcSelfTest = 0x143;
constexpr uint32_t kTpm12OrdContinueSelfTest = 0x53;

bool ValidLocality(uint8_t l) { return l < kNumLocalities; }

}  // namespace

Result<std::unique_ptr<Tis>> Tis::Create(const TisConfig& config, TisDeps deps) {
  if (deps.backend == nullptr) {
    return Fail(Errc::kInvalidArgument, "a TIS device needs a TPM backend");
  }
  if (config.irq_vector > 15) {
    return Fail(Errc::kInvalidArgument, "TPM_INT_VECTOR must be 0..15 (the PTP allows 1..15)");
  }
  VTPM_ASSIGN_OR_RETURN(uint32_t size,
                        NegotiateBufferSize(std::min<uint32_t>(config.buffer_size, 4096),
                                            deps.backend->BufferSize()));
  if (!deps.log) deps.log = NullLogger();
  return std::unique_ptr<Tis>(new Tis(config, std::move(deps), size));
}

Tis::Tis(const TisConfig& config, TisDeps deps, uint32_t buffer_size)
    : config_(config),
      backend_(deps.backend),
      irq_(deps.irq),
      log_(std::move(deps.log)),
      buffer_size_(buffer_size),
      anchor_(std::make_shared<internal::Anchor<Tis>>()),
      bad_(log_, config.label) {
  anchor_->device = this;
  cmd_.reserve(buffer_size_);
  hash_buf_.reserve(kHashChunk);
  std::lock_guard lock(anchor_->mu);
  ResetLocked();
}

Tis::~Tis() {
  std::vector<internal::BackendOp> ops;
  {
    std::lock_guard lock(anchor_->mu);
    anchor_->device = nullptr;
    if (Executing()) ops.push_back({internal::BackendOp::kCancel});
  }
  internal::RunBackendOps(ops, backend_, anchor_);
}

void Tis::ResetLocked() {
  if (Executing()) {
    ops_.push_back({internal::BackendOp::kCancel});
    ++stats_.cancels;
  }
  if (hashing_) {
    // Close the sequence so the engine is not left with an open hash object.
    FlushHash();
    ops_.push_back({internal::BackendOp::kHashEnd});
  }
  for (Locality& l : loc_) l = Locality{false, false, tis::kIntPolarityLowLevel, 0};
  active_ = kNoLocality;
  owner_ = kNoLocality;
  state_ = State::kIdle;
  cmd_.clear();
  rsp_.clear();
  rsp_pos_ = 0;
  inflight_seq_ = 0;
  after_abort_ = AfterAbort::kNone;
  next_locality_ = kNoLocality;
  next_is_seize_ = false;
  selftest_done_ = false;
  intf_sel_lock_ = false;
  hashing_ = false;
  hash_buf_.clear();
  last_command_code_ = 0;
  UpdateIrqLocked();
}

void Tis::Reset() {
  std::vector<internal::BackendOp> ops;
  {
    std::lock_guard lock(anchor_->mu);
    ResetLocked();
    ops.swap(ops_);
  }
  internal::RunBackendOps(ops, backend_, anchor_);
}

// ---------------------------------------------------------------------------------------------
// Access dispatch

void Tis::Read(const BusAccess& access, std::span<uint8_t> data) {
  std::lock_guard lock(anchor_->mu);
  if (data.size() == 0 || data.size() > 8) bad_.Record("access width is not 1..8", access.offset);
  SplitAccess(access.offset, data.size(), kLocalityWindow, kNumLocalities, kRegs,
              [&](const AccessPiece& p) {
                std::span<uint8_t> out = data.subspan(p.pos, p.count);
                if (p.window >= kNumLocalities) {
                  bad_.Record("read beyond the TIS range", access.offset + p.pos);
                  std::fill(out.begin(), out.end(), kNoDataByte);
                  return;
                }
                ReadPiece(static_cast<uint8_t>(p.window), p.reg, p.byte_offset, out);
              });
  UpdateIrqLocked();
}

void Tis::Write(const BusAccess& access, std::span<const uint8_t> data) {
  std::vector<internal::BackendOp> ops;
  {
    std::lock_guard lock(anchor_->mu);
    if (data.size() == 0 || data.size() > 8) {
      bad_.Record("access width is not 1..8", access.offset);
    }
    SplitAccess(access.offset, data.size(), kLocalityWindow, kNumLocalities, kRegs,
                [&](const AccessPiece& p) {
                  const uint64_t at = access.offset + p.pos;
                  if (p.window >= kNumLocalities) {
                    bad_.Record("write beyond the TIS range", at);
                    return;
                  }
                  WritePiece(static_cast<uint8_t>(p.window), p.reg, p.byte_offset,
                             data.subspan(p.pos, p.count), at);
                });
    UpdateIrqLocked();
    ops.swap(ops_);
  }
  internal::RunBackendOps(ops, backend_, anchor_);
}

void Tis::ReadPiece(uint8_t loc, const RegDef* reg, uint32_t byte_offset, std::span<uint8_t> out) {
  if (reg == nullptr) {
    std::fill(out.begin(), out.end(), kNoDataByte);
    return;
  }
  if (reg->id == kRegDataFifo || reg->id == kRegXDataFifo) {
    for (uint8_t& b : out) b = ReadFifoByte(loc);
    return;
  }
  const uint32_t v = ReadReg32(loc, reg->id);
  for (size_t i = 0; i < out.size(); ++i) {
    out[i] = LaneByte(v, byte_offset + static_cast<uint32_t>(i));
  }
}

uint32_t Tis::ReadReg32(uint8_t loc, int id) {
  const bool tpm2 = config_.family == TpmFamily::kTpm20;
  switch (id) {
    case kRegAccess:
      return AccessValue(loc);
    case kRegIntEnable:
      return loc_[loc].int_enable;
    case kRegIntVector:
      return config_.irq_vector;
    case kRegIntStatus:
      return loc_[loc].int_status;
    case kRegIntfCap:
      return tpm2 ? tis::kIntfCapTpm20 : tis::kIntfCapTpm12;
    case kRegSts:
      return active_ == loc ? StsValue() : 0xFFFFFFFF;
    case kRegInterfaceId:
      if (!tpm2) return tis::kInterfaceIdTpm12;
      return tis::kInterfaceIdTpm20 | (intf_sel_lock_ ? tis::kInterfaceIdIntfSelLock : 0);
    case kRegDidVid:
      return (uint32_t{config_.device_id} << 16) | config_.vendor_id;
    case kRegRid:
      return config_.revision_id;
    default:
      return 0xFFFFFFFF;  // HASH_START/HASH_END are write-only
  }
}

void Tis::WritePiece(uint8_t loc, const RegDef* reg, uint32_t byte_offset,
                     std::span<const uint8_t> in, uint64_t offset) {
  if (reg == nullptr) {
    bad_.Record("write to an unimplemented TIS register", offset);
    return;
  }
  if (reg->id == kRegDataFifo || reg->id == kRegXDataFifo) {
    for (uint8_t b : in) WriteFifoByte(loc, b, offset);
    return;
  }
  uint32_t value = 0;
  uint32_t mask = 0;
  for (size_t i = 0; i < in.size(); ++i) {
    const uint32_t shift = 8 * (byte_offset + static_cast<uint32_t>(i));
    value |= uint32_t{in[i]} << shift;
    mask |= 0xFFu << shift;
  }
  Locality& l = loc_[loc];
  switch (reg->id) {
    case kRegAccess:
      if (mask & 0xFF) WriteAccess(loc, static_cast<uint8_t>(value), offset);
      break;
    case kRegIntEnable:
      if (active_ != loc) {
        bad_.Record("INT_ENABLE written by a locality that is not active", offset);
        break;
      }
      l.int_enable = ((l.int_enable & ~mask) | (value & mask)) &
                     (tis::kIntGlobalEnable | tis::kIntPolarityMask | tis::kIntSupported);
      break;
    case kRegIntVector:
      break;  // hard-wired by the VMM (Linux writes the vector it already read)
    case kRegIntStatus:
      if (active_ != loc) {
        bad_.Record("INT_STATUS written by a locality that is not active", offset);
        break;
      }
      l.int_status &= ~(value & mask & tis::kIntSupported);
      break;
    case kRegSts:
      if (active_ != loc) {
        bad_.Record("STS written by a locality that is not active", offset);
        break;
      }
      WriteSts(loc, value & mask, offset);
      break;
    case kRegHashStart:
    case kRegHashEnd:
      if (loc != 4) {
        bad_.Record("HASH_START/HASH_END exist at locality 4 only", offset);
        break;
      }
      // One event per access: only a write that covers the register's first byte triggers.
      if (byte_offset != 0) break;
      if (reg->id == kRegHashStart) {
        if (Executing()) Abort(AfterAbort::kIdle, owner_);
        if (hashing_) {
          FlushHash();
          ops_.push_back({internal::BackendOp::kHashEnd});
        }
        hashing_ = true;
        hash_buf_.clear();
        ops_.push_back({internal::BackendOp::kHashStart});
      } else {
        if (!hashing_) {
          bad_.Record("HASH_END without HASH_START", offset);
          break;
        }
        FlushHash();
        ops_.push_back({internal::BackendOp::kHashEnd});
        hashing_ = false;
      }
      break;
    case kRegInterfaceId:
      if (config_.family == TpmFamily::kTpm20 && (value & mask & tis::kInterfaceIdIntfSelLock)) {
        intf_sel_lock_ = true;  // selector writes are ignored: this device is FIFO only
      }
      break;
    default:
      bad_.Record("write to a read-only TIS register", offset);
      break;
  }
}

// ---------------------------------------------------------------------------------------------
// Registers

uint8_t Tis::AccessValue(uint8_t loc) {
  uint8_t v = tis::kAccessValid;
  if (active_ == loc) v |= tis::kAccessActiveLocality;
  if (loc_[loc].been_seized) v |= tis::kAccessBeenSeized;
  if (loc_[loc].request_use) v |= tis::kAccessRequestUse;
  for (uint8_t l = 0; l < kNumLocalities; ++l) {
    if (l != loc && loc_[l].request_use) v |= tis::kAccessPendingRequest;
  }
  if (!backend_->TpmEstablished()) v |= tis::kAccessEstablishment;
  return v;
}

uint32_t Tis::StsValue() const {
  uint32_t sts = config_.family == TpmFamily::kTpm20 ? tis::kStsFamilyTpm20 : 0;
  if (selftest_done_) sts |= tis::kStsSelfTestDone;
  uint32_t burst = 0;
  switch (state_) {
    case State::kIdle:
      break;
    case State::kReady:
      sts |= tis::kStsCommandReady;
      burst = buffer_size_;
      break;
    case State::kReception: {
      const bool expect = cmd_.size() < ExpectedLength();
      sts |= tis::kStsValid | (expect ? tis::kStsExpect : 0);
      if (expect) burst = buffer_size_ - static_cast<uint32_t>(cmd_.size());
      break;
    }
    case State::kExecution:
      sts |= tis::kStsValid;
      break;
    case State::kCompletion:
      sts |= tis::kStsValid;
      if (rsp_pos_ < rsp_.size()) {
        sts |= tis::kStsDataAvail;
        burst = static_cast<uint32_t>(rsp_.size()) - rsp_pos_;
      }
      break;
  }
  // burstCount spans two byte lanes (0x19, 0x1A) that guests read separately (edk2). Keep the
  // low byte non-zero so that a lone read of 0x19 never says "wait", and keep the value at or
  // below what is really available so that the two bytes combined never overstate it.
  if (burst > 0xFF && (burst & 0xFF) == 0) burst -= 1;
  burst = std::min<uint32_t>(burst, 0xFFFF);
  return sts | (burst << 8);
}

uint32_t Tis::ExpectedLength() const {
  if (cmd_.size() < 6) return UINT32_MAX;
  return LoadBe32(cmd_.data() + 2);
}

void Tis::WriteAccess(uint8_t loc, uint8_t v, uint64_t offset) {
  if (std::popcount(static_cast<unsigned>(v & 0x3A)) > 1) {
    // "More than one bit set is vendor specific": QEMU processes the combination; so do we.
    bad_.Record("ACCESS written with several request bits", offset);
  }
  if (v & tis::kAccessSeize)
    v &= static_cast<uint8_t>(~(tis::kAccessRequestUse | tis::kAccessActiveLocality));
  if (v & tis::kAccessActiveLocality) {
    if (active_ == loc) {
      uint8_t next = kNoLocality;
      for (uint8_t c = kNumLocalities; c-- > 0;) {
        if (loc_[c].request_use) {
          next = c;
          break;
        }
      }
      if (ValidLocality(next)) {
        if (Executing()) {
          Abort(AfterAbort::kSwitch, next);
        } else {
          SetActive(next, false);
        }
      } else {
        SetActive(kNoLocality, false);
      }
    } else {
      loc_[loc].request_use = false;  // not the owner: withdraw a pending request
    }
  }
  if (v & tis::kAccessBeenSeized) loc_[loc].been_seized = false;
  if (v & tis::kAccessSeize) {
    const bool allowed = !ValidLocality(active_) || loc > active_;
    const bool higher_pending =
        after_abort_ == AfterAbort::kSwitch && next_is_seize_ && next_locality_ >= loc;
    if (!allowed || higher_pending) {
      bad_.Record("Seize from a locality not above the active one", offset);
    } else if (Executing()) {
      Abort(AfterAbort::kSwitch, loc);
      next_is_seize_ = true;
    } else {
      SetActive(loc, true);
    }
  }
  if ((v & tis::kAccessRequestUse) && active_ != loc) {
    if (ValidLocality(active_)) {
      loc_[loc].request_use = true;
    } else {
      SetActive(loc, false);  // nobody active: granted at once
    }
  }
}

void Tis::SetActive(uint8_t loc, bool seize) {
  const bool change = active_ != loc;
  if (change && ValidLocality(active_)) {
    if (seize) loc_[active_].been_seized = true;
  }
  active_ = loc;
  if (ValidLocality(loc)) {
    loc_[loc].request_use = false;
    if (owner_ != loc) {
      // The command state belongs to a locality; a new owner starts from Idle. A command the
      // old owner left running (relinquished without waiting) is cancelled and its response
      // will be ignored: it must never appear as the new owner's.
      if (Executing()) {
        if (after_abort_ == AfterAbort::kNone) {
          ops_.push_back({internal::BackendOp::kCancel});
          ++stats_.cancels;
        }
        inflight_seq_ = 0;
        after_abort_ = AfterAbort::kNone;
      }
      owner_ = loc;
      state_ = State::kIdle;
      cmd_.clear();
      rsp_.clear();
      rsp_pos_ = 0;
    }
    if (change) Raise(loc, tis::kIntLocalityChange);
  }
}

void Tis::WriteSts(uint8_t loc, uint32_t v, uint64_t offset) {
  if (config_.family == TpmFamily::kTpm20) {
    if ((v & tis::kStsCommandCancel) && state_ == State::kExecution && Executing() &&
        after_abort_ == AfterAbort::kNone) {
      ops_.push_back({internal::BackendOp::kCancel});
      ++stats_.cancels;
    }
    if (v & tis::kStsResetEstablishment) {
      if (loc == 3 || loc == 4) {
        internal::BackendOp op{internal::BackendOp::kResetEstablished};
        op.locality = loc;
        ops_.push_back(std::move(op));
      } else {
        bad_.Record("resetEstablishment from a locality below 3", offset);
      }
    }
  }
  v &= tis::kStsCommandReady | tis::kStsGo | tis::kStsResponseRetry;
  if (v == 0) return;
  if (std::popcount(v) > 1) {
    bad_.Record("STS written with several of commandReady/tpmGo/responseRetry", offset);
    return;
  }
  if (v == tis::kStsCommandReady) {
    switch (state_) {
      case State::kIdle:
        state_ = State::kReady;
        cmd_.clear();
        Raise(loc, tis::kIntCommandReady);
        break;
      case State::kReady:
        cmd_.clear();
        break;
      case State::kReception:
        cmd_.clear();
        state_ = State::kReady;
        Raise(loc, tis::kIntCommandReady);
        break;
      case State::kExecution:
        if (after_abort_ == AfterAbort::kNone) Abort(AfterAbort::kReady, loc);
        break;
      case State::kCompletion:
        state_ = State::kReady;
        cmd_.clear();
        rsp_.clear();
        rsp_pos_ = 0;
        Raise(loc, tis::kIntCommandReady);
        break;
    }
  } else if (v == tis::kStsGo) {
    if (state_ == State::kReception && cmd_.size() >= ExpectedLength()) {
      StartCommand();
    } else {
      bad_.Record("tpmGo while the TPM does not hold a complete command", offset);
    }
  } else if (v == tis::kStsResponseRetry) {
    if (state_ == State::kCompletion) {
      rsp_pos_ = 0;
    } else {
      bad_.Record("responseRetry outside command completion", offset);
    }
  }
}

void Tis::WriteFifoByte(uint8_t loc, uint8_t b, uint64_t offset) {
  if (loc == 4 && hashing_) {
    hash_buf_.push_back(b);
    if (hash_buf_.size() >= kHashChunk) FlushHash();
    return;
  }
  if (active_ != loc) {
    bad_.Record("FIFO written by a locality that is not active", offset);
    return;
  }
  if (state_ == State::kReady) {
    state_ = State::kReception;
    cmd_.clear();
  }
  if (state_ != State::kReception) {
    bad_.Record("FIFO written while the TPM is not receiving a command", offset);
    return;
  }
  if (cmd_.size() >= ExpectedLength() || cmd_.size() >= buffer_size_) {
    bad_.Record("FIFO written past the end of the command", offset);
    return;
  }
  cmd_.push_back(b);
}

uint8_t Tis::ReadFifoByte(uint8_t loc) {
  if (active_ != loc || state_ != State::kCompletion || rsp_pos_ >= rsp_.size()) {
    return kNoDataByte;
  }
  const uint8_t b = rsp_[rsp_pos_++];
  if (rsp_pos_ == rsp_.size()) Raise(loc, tis::kIntStsValid);
  return b;
}

void Tis::FlushHash() {
  if (hash_buf_.empty()) return;
  internal::BackendOp op{internal::BackendOp::kHashData};
  op.data = hash_buf_;
  ops_.push_back(std::move(op));
  hash_buf_.clear();
}

// ---------------------------------------------------------------------------------------------
// Commands

void Tis::StartCommand() {
  state_ = State::kExecution;
  inflight_seq_ = next_seq_++;
  auto h = wire::ParseHeader(cmd_);
  last_command_code_ = h ? h->code : 0;
  internal::BackendOp op{internal::BackendOp::kSubmit};
  op.locality = owner_;
  op.seq = inflight_seq_;
  op.data.assign(cmd_.begin(), cmd_.end());
  ops_.push_back(std::move(op));
  ++stats_.commands;
}

void Tis::Abort(AfterAbort after, uint8_t next) {
  if (!Executing()) return;
  if (after_abort_ == AfterAbort::kNone) {
    ops_.push_back({internal::BackendOp::kCancel});
    ++stats_.cancels;
  }
  after_abort_ = after;
  next_locality_ = next;
  next_is_seize_ = false;
}

void Tis::OnCompletionLocked(uint64_t seq, Bytes response) {
  if (seq == 0 || seq != inflight_seq_) return;  // a command that was reset away
  inflight_seq_ = 0;
  const bool tpm2 = config_.family == TpmFamily::kTpm20;
  auto h = wire::ParseHeader(response);
  if (!h || h->size != response.size() || response.size() > buffer_size_) {
    bad_.Record("backend returned a malformed or oversized response; answering TPM failure", 0);
    response = wire::ErrorResponse(tpm2 ? wire::kTpmStNoSessions : wire::kTpm12TagRspCommand,
                                   tpm2 ? wire::kTpmRcFailure : wire::kTpm12Fail);
    h = wire::ParseHeader(response);
  }
  if (h->code == 0 &&
      (last_command_code_ == kTpm2CcSelfTest || last_command_code_ == kTpm12OrdContinueSelfTest)) {
    selftest_done_ = true;  // once set, only a reset clears it (as QEMU)
  }
  if (after_abort_ != AfterAbort::kNone) {
    FinishAbort();
  } else {
    rsp_ = std::move(response);
    rsp_pos_ = 0;
    state_ = State::kCompletion;
    Raise(owner_, tis::kIntDataAvail | tis::kIntStsValid);
  }
  UpdateIrqLocked();
}

void Tis::FinishAbort() {
  const AfterAbort after = after_abort_;
  after_abort_ = AfterAbort::kNone;
  const uint8_t next = next_locality_;
  const bool seize = next_is_seize_;
  next_locality_ = kNoLocality;
  next_is_seize_ = false;
  cmd_.clear();
  rsp_.clear();
  rsp_pos_ = 0;
  switch (after) {
    case AfterAbort::kNone:
      break;
    case AfterAbort::kReady:
      state_ = State::kReady;
      Raise(owner_, tis::kIntCommandReady);
      break;
    case AfterAbort::kIdle:
      state_ = State::kIdle;
      break;
    case AfterAbort::kSwitch:
      state_ = State::kIdle;
      // The requester may have withdrawn meanwhile; the old owner has given up either way.
      SetActive(seize || loc_[next].request_use ? next : kNoLocality, seize);
      break;
  }
}

// ---------------------------------------------------------------------------------------------
// Interrupts: the line is derived from state here and nowhere else.

void Tis::Raise(uint8_t loc, uint32_t bits) {
  if (!ValidLocality(loc)) return;
  Locality& l = loc_[loc];
  // As QEMU: an event is latched in INT_STATUS only while it is enabled (globally and itself).
  if ((l.int_enable & tis::kIntGlobalEnable) && (l.int_enable & bits)) l.int_status |= bits;
}

void Tis::UpdateIrqLocked() {
  bool level = false;
  for (const Locality& l : loc_) {
    if ((l.int_enable & tis::kIntGlobalEnable) &&
        (l.int_enable & l.int_status & tis::kIntSupported)) {
      level = true;
    }
  }
  if (level != irq_level_) {
    irq_level_ = level;
    if (irq_ != nullptr) irq_->SetLevel(level);
  }
}

// ---------------------------------------------------------------------------------------------
// State

bool Tis::Busy() {
  std::lock_guard lock(anchor_->mu);
  return Executing() || hashing_;
}

DeviceStats Tis::stats() {
  std::lock_guard lock(anchor_->mu);
  DeviceStats s = stats_;
  s.bad_accesses = bad_.count();
  return s;
}

Result<Bytes> Tis::SaveState() {
  std::lock_guard lock(anchor_->mu);
  if (Executing() || hashing_) {
    return Fail(Errc::kFailedPrecondition,
                "the TIS device is executing a command (or a locality-4 hash sequence is open); "
                "let it complete, then save");
  }
  ByteWriter w;
  w.U8(static_cast<uint8_t>(config_.family));
  w.U8(active_);
  w.U8(owner_);
  w.U8(static_cast<uint8_t>(state_));
  w.U8(selftest_done_ ? 1 : 0);
  w.U8(intf_sel_lock_ ? 1 : 0);
  w.U8(irq_level_ ? 1 : 0);
  for (const Locality& l : loc_) {
    w.U8(static_cast<uint8_t>((l.request_use ? 1 : 0) | (l.been_seized ? 2 : 0)));
    w.U32(l.int_enable);
    w.U32(l.int_status);
  }
  w.U32(last_command_code_);
  w.U32(static_cast<uint32_t>(cmd_.size()));
  w.Append(cmd_);
  w.U32(static_cast<uint32_t>(rsp_.size()));
  w.Append(rsp_);
  w.U32(rsp_pos_);
  return WrapState("VTPMTIS", kStateVersion, w.bytes());
}

Status Tis::RestoreState(ByteSpan blob) {
  VTPM_ASSIGN_OR_RETURN(ByteSpan payload, UnwrapState("VTPMTIS", kStateVersion, blob));
  ByteReader r(payload);
  auto bad = [](std::string what) { return Fail(Errc::kCorrupt, "TIS device state: " + what); };
  // Decode into locals first: a rejected blob leaves the device untouched.
  auto family = r.U8(), active = r.U8(), owner = r.U8(), state = r.U8(), selftest = r.U8(),
       lock = r.U8(), level = r.U8();
  if (!level) return bad("truncated header");
  if (*family != static_cast<uint8_t>(config_.family)) {
    return Fail(Errc::kInvalidArgument,
                "TIS device state is from a TPM of the other family (1.2 vs 2.0)");
  }
  if ((*active != kNoLocality && *active >= kNumLocalities) ||
      (*owner != kNoLocality && *owner >= kNumLocalities)) {
    return bad("locality out of range");
  }
  if (*state > static_cast<uint8_t>(State::kCompletion) ||
      *state == static_cast<uint8_t>(State::kExecution)) {
    return bad("invalid command state");
  }
  std::array<Locality, kNumLocalities> locs{};
  for (Locality& l : locs) {
    auto flags = r.U8();
    auto en = r.U32();
    auto st = r.U32();
    if (!st || *flags > 3) return bad("invalid locality record");
    l.request_use = (*flags & 1) != 0;
    l.been_seized = (*flags & 2) != 0;
    l.int_enable = *en & (tis::kIntGlobalEnable | tis::kIntPolarityMask | tis::kIntSupported);
    l.int_status = *st & tis::kIntSupported;
  }
  auto code = r.U32();
  auto cmd_len = r.U32();
  if (!cmd_len || *cmd_len > buffer_size_) return bad("command length out of range");
  auto cmd = r.Take(*cmd_len);
  auto rsp_len = r.U32();
  if (!rsp_len || *rsp_len > buffer_size_) return bad("response length out of range");
  auto rsp = r.Take(*rsp_len);
  auto rsp_pos = r.U32();
  if (!rsp_pos || *rsp_pos > *rsp_len || !r.empty()) return bad("invalid response position");
  std::vector<internal::BackendOp> ops;
  {
    std::lock_guard guard(anchor_->mu);
    if (Executing() || hashing_) {
      return Fail(Errc::kFailedPrecondition, "the TIS device is busy; restore into an idle one");
    }
    loc_ = locs;
    active_ = *active;
    owner_ = *owner;
    state_ = static_cast<State>(*state);
    selftest_done_ = *selftest != 0;
    intf_sel_lock_ = *lock != 0;
    last_command_code_ = *code;
    cmd_.assign(cmd->begin(), cmd->end());
    rsp_.assign(rsp->begin(), rsp->end());
    rsp_pos_ = *rsp_pos;
    after_abort_ = AfterAbort::kNone;
    UpdateIrqLocked();
    ops.swap(ops_);
  }
  internal::RunBackendOps(ops, backend_, anchor_);
  return Ok();
}

}  // namespace vtpm::device
