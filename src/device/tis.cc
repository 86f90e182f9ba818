#include "device/tis.h"

#include <algorithm>
#include <bit>

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

constexpr DeviceLayout kLayout{
    .name = "TIS",
    .windows = kNumLocalities,
    .regs = kRegs,
    .state = {"VTPMTIS", 1},
    .busy = "a command executes or a locality-4 hash sequence is open",
};

constexpr uint8_t kNoDataByte = 0xFF;
constexpr size_t kHashChunk = 1024;
constexpr uint32_t kIntEnableBits =
    tis::kIntGlobalEnable | tis::kIntPolarityMask | tis::kIntSupported;

bool ValidLocality(uint8_t l) { return l < kNumLocalities; }

bool IsFifo(const RegDef* reg) { return reg->id == kRegDataFifo || reg->id == kRegXDataFifo; }

}  // namespace

Result<std::unique_ptr<Tis>> Tis::Create(const TisConfig& config, TisDeps deps) {
  VTPM_ASSIGN_OR_RETURN(
      uint32_t size,
      PrepareDeps(kLayout.name, deps, std::min<uint32_t>(config.buffer_size, kTisMaxBuffer)));
  if (config.irq_vector > 15) {
    return Fail(Errc::kInvalidArgument, "TPM_INT_VECTOR must be 0..15 (the PTP allows 1..15)");
  }
  return std::unique_ptr<Tis>(new Tis(config, std::move(deps), size));
}

Tis::Tis(const TisConfig& config, TisDeps deps, uint32_t buffer_size)
    : DeviceShell(kLayout, std::move(deps), config.label),
      config_(config),
      buffer_size_(buffer_size) {
  hash_buf_.reserve(kHashChunk);
  ResetRegisters();
}

Tis::~Tis() { Detach(); }

void Tis::ResetRegisters() {
  // Close an open sequence so the engine is not left with an open hash object.
  if (hashing_) CloseHash();
  hash_buf_.clear();
  after_abort_ = AfterAbort::kNone;
  next_locality_ = kNoLocality;
  next_is_seize_ = false;
  regs_ = TisRegisters{};
  for (TisLocalityState& l : regs_.localities) l.int_enable = tis::kIntPolarityLowLevel;
  regs_.command.reserve(buffer_size_);
}

// ---------------------------------------------------------------------------------------------
// Access dispatch

void Tis::ReadPiece(const AccessPiece& p, std::span<uint8_t> out) {
  const auto loc = static_cast<uint8_t>(p.window);
  if (p.reg == nullptr) {
    std::fill(out.begin(), out.end(), kNoDataByte);
  } else if (IsFifo(p.reg)) {
    for (uint8_t& b : out) b = ReadFifoByte(loc);
  } else {
    ReadLanes(ReadReg32(loc, p.reg->id), p.byte_offset, out);
  }
}

uint32_t Tis::ReadReg32(uint8_t loc, int id) {
  const bool tpm2 = config_.family == TpmFamily::kTpm20;
  switch (id) {
    case kRegAccess:
      return AccessValue(loc);
    case kRegIntEnable:
      return regs_.localities[loc].int_enable;
    case kRegIntVector:
      return config_.irq_vector;
    case kRegIntStatus:
      return regs_.localities[loc].int_status;
    case kRegIntfCap:
      return tpm2 ? tis::kIntfCapTpm20 : tis::kIntfCapTpm12;
    case kRegSts:
      return regs_.active == loc ? StsValue() : 0xFFFFFFFF;
    case kRegInterfaceId:
      if (!tpm2) return tis::kInterfaceIdTpm12;
      return tis::kInterfaceIdTpm20 | (regs_.intf_sel_lock ? tis::kInterfaceIdIntfSelLock : 0);
    case kRegDidVid:
      return (uint32_t{config_.device_id} << 16) | config_.vendor_id;
    case kRegRid:
      return config_.revision_id;
    default:
      return 0xFFFFFFFF;  // HASH_START/HASH_END are write-only
  }
}

void Tis::WritePiece(const AccessPiece& p, std::span<const uint8_t> in, uint64_t offset) {
  const auto loc = static_cast<uint8_t>(p.window);
  if (p.reg == nullptr) {
    BadAccess("write to an unimplemented TIS register", offset);
    return;
  }
  if (IsFifo(p.reg)) {
    for (uint8_t b : in) WriteFifoByte(loc, b, offset);
    return;
  }
  const LaneWrite w = WriteLanes(p.byte_offset, in);
  const auto written = static_cast<uint32_t>(w.value);
  const auto mask = static_cast<uint32_t>(w.mask);
  TisLocalityState& l = regs_.localities[loc];
  switch (p.reg->id) {
    case kRegAccess:
      if (mask & 0xFF) WriteAccess(loc, static_cast<uint8_t>(written), offset);
      break;
    case kRegIntEnable:
      if (ActiveOrBad(loc, "INT_ENABLE written by a locality that is not active", offset)) {
        l.int_enable = ((l.int_enable & ~mask) | written) & kIntEnableBits;
      }
      break;
    case kRegIntVector:
      break;  // hard-wired by the VMM (Linux writes the vector it already read)
    case kRegIntStatus:
      if (ActiveOrBad(loc, "INT_STATUS written by a locality that is not active", offset)) {
        l.int_status &= ~(written & tis::kIntSupported);
      }
      break;
    case kRegSts:
      if (ActiveOrBad(loc, "STS written by a locality that is not active", offset)) {
        WriteSts(loc, written, offset);
      }
      break;
    case kRegHashStart:
    case kRegHashEnd:
      // One event per access: only a write that covers the register's first byte triggers.
      if (loc != 4) {
        BadAccess("HASH_START/HASH_END exist at locality 4 only", offset);
      } else if (p.byte_offset == 0) {
        WriteHash(p.reg->id, offset);
      }
      break;
    case kRegInterfaceId:
      if (config_.family == TpmFamily::kTpm20 && (written & tis::kInterfaceIdIntfSelLock)) {
        regs_.intf_sel_lock = true;  // selector writes are ignored: this device is FIFO only
      }
      break;
    default:
      BadAccess("write to a read-only TIS register", offset);
      break;
  }
}

bool Tis::ActiveOrBad(uint8_t loc, std::string_view what, uint64_t offset) {
  if (regs_.active == loc) return true;
  BadAccess(what, offset);
  return false;
}

// ---------------------------------------------------------------------------------------------
// TPM_ACCESS: locality requests, relinquish, seize

uint8_t Tis::AccessValue(uint8_t loc) {
  uint8_t v = tis::kAccessValid;
  if (regs_.active == loc) v |= tis::kAccessActiveLocality;
  if (regs_.localities[loc].been_seized) v |= tis::kAccessBeenSeized;
  if (regs_.localities[loc].request_use) v |= tis::kAccessRequestUse;
  for (uint8_t l = 0; l < kNumLocalities; ++l) {
    if (l != loc && regs_.localities[l].request_use) v |= tis::kAccessPendingRequest;
  }
  if (!backend().TpmEstablished()) v |= tis::kAccessEstablishment;
  return v;
}

void Tis::WriteAccess(uint8_t loc, uint8_t v, uint64_t offset) {
  if (std::popcount(static_cast<unsigned>(v & 0x3A)) > 1) {
    // "More than one bit set is vendor specific": QEMU processes the combination; so do we.
    BadAccess("ACCESS written with several request bits", offset);
  }
  if (v & tis::kAccessSeize) {
    v &= static_cast<uint8_t>(~(tis::kAccessRequestUse | tis::kAccessActiveLocality));
  }
  if (v & tis::kAccessActiveLocality) Relinquish(loc);
  if (v & tis::kAccessBeenSeized) regs_.localities[loc].been_seized = false;
  if (v & tis::kAccessSeize) Seize(loc, offset);
  if ((v & tis::kAccessRequestUse) && regs_.active != loc) {
    if (ValidLocality(regs_.active)) {
      regs_.localities[loc].request_use = true;
    } else {
      SetActive(loc, false);  // nobody active: granted at once
    }
  }
}

// activeLocality written 1: the owner hands over to the highest requester (or to nobody);
// another locality withdraws its pending request.
void Tis::Relinquish(uint8_t loc) {
  if (regs_.active != loc) {
    regs_.localities[loc].request_use = false;
    return;
  }
  uint8_t next = kNoLocality;
  for (uint8_t c = kNumLocalities; c-- > 0;) {
    if (regs_.localities[c].request_use) {
      next = c;
      break;
    }
  }
  if (ValidLocality(next) && Executing()) {
    Abort(AfterAbort::kSwitch, next);
  } else {
    SetActive(next, false);
  }
}

void Tis::Seize(uint8_t loc, uint64_t offset) {
  const bool allowed = !ValidLocality(regs_.active) || loc > regs_.active;
  const bool higher_pending =
      after_abort_ == AfterAbort::kSwitch && next_is_seize_ && next_locality_ >= loc;
  if (!allowed || higher_pending) {
    BadAccess("Seize from a locality not above the active one", offset);
  } else if (Executing()) {
    Abort(AfterAbort::kSwitch, loc);
    next_is_seize_ = true;
  } else {
    SetActive(loc, true);
  }
}

void Tis::SetActive(uint8_t loc, bool seize) {
  const bool change = regs_.active != loc;
  if (change && ValidLocality(regs_.active) && seize) {
    regs_.localities[regs_.active].been_seized = true;
  }
  regs_.active = loc;
  if (!ValidLocality(loc)) return;
  regs_.localities[loc].request_use = false;
  if (regs_.owner != loc) {
    // The command state belongs to a locality; a new owner starts from Idle. A command the old
    // owner left running (relinquished without waiting) is cancelled and its response will be
    // ignored: it must never appear as the new owner's.
    if (Executing()) {
      if (after_abort_ == AfterAbort::kNone) CancelCommand();
      AbandonCommand();
      after_abort_ = AfterAbort::kNone;
    }
    regs_.owner = loc;
    regs_.state = State::kIdle;
    ClearCommandState();
  }
  if (change) Raise(loc, tis::kIntLocalityChange);
}

// ---------------------------------------------------------------------------------------------
// TPM_STS

uint32_t Tis::StsValue() const {
  uint32_t sts = config_.family == TpmFamily::kTpm20 ? tis::kStsFamilyTpm20 : 0;
  if (regs_.selftest_done) sts |= tis::kStsSelfTestDone;
  switch (regs_.state) {
    case State::kIdle:
      break;
    case State::kReady:
      sts |= tis::kStsCommandReady;
      break;
    case State::kReception:
      sts |= tis::kStsValid | (regs_.command.size() < ExpectedLength() ? tis::kStsExpect : 0);
      break;
    case State::kExecution:
      sts |= tis::kStsValid;
      break;
    case State::kCompletion:
      sts |= tis::kStsValid | (regs_.response_pos < regs_.response.size() ? tis::kStsDataAvail : 0);
      break;
  }
  return sts | (BurstCount() << 8);
}

// How many bytes the guest may transfer now without waiting (0: none).
uint32_t Tis::BurstCount() const {
  uint32_t burst = 0;
  if (regs_.state == State::kReady) {
    burst = buffer_size_;
  } else if (regs_.state == State::kReception && regs_.command.size() < ExpectedLength()) {
    burst = buffer_size_ - static_cast<uint32_t>(regs_.command.size());
  } else if (regs_.state == State::kCompletion && regs_.response_pos < regs_.response.size()) {
    burst = static_cast<uint32_t>(regs_.response.size()) - regs_.response_pos;
  }
  // burstCount spans two byte lanes (0x19, 0x1A) that guests read separately (edk2). Keep the
  // low byte non-zero so that a lone read of 0x19 never says "wait", and keep the value at or
  // below what is really available so that the two bytes combined never overstate it.
  if (burst > 0xFF && (burst & 0xFF) == 0) burst -= 1;
  return std::min<uint32_t>(burst, 0xFFFF);
}

uint32_t Tis::ExpectedLength() const {
  if (regs_.command.size() < 6) return UINT32_MAX;
  return LoadBe32(regs_.command.data() + 2);
}

void Tis::WriteSts(uint8_t loc, uint32_t v, uint64_t offset) {
  if (config_.family == TpmFamily::kTpm20) WriteStsTpm20(loc, v, offset);
  v &= tis::kStsCommandReady | tis::kStsGo | tis::kStsResponseRetry;
  if (v == 0) return;
  if (std::popcount(v) > 1) {
    BadAccess("STS written with several of commandReady/tpmGo/responseRetry", offset);
  } else if (v == tis::kStsCommandReady) {
    CommandReady(loc);
  } else if (v == tis::kStsGo) {
    if (regs_.state == State::kReception && regs_.command.size() >= ExpectedLength()) {
      Go();
    } else {
      BadAccess("tpmGo while the TPM does not hold a complete command", offset);
    }
  } else if (regs_.state == State::kCompletion) {  // responseRetry
    regs_.response_pos = 0;
  } else {
    BadAccess("responseRetry outside command completion", offset);
  }
}

// commandCancel and resetEstablishment (TPM 2.0 only).
void Tis::WriteStsTpm20(uint8_t loc, uint32_t v, uint64_t offset) {
  if ((v & tis::kStsCommandCancel) && regs_.state == State::kExecution && Executing() &&
      after_abort_ == AfterAbort::kNone) {
    CancelCommand();
  }
  if (v & tis::kStsResetEstablishment) {
    if (loc == 3 || loc == 4) {
      QueueResetEstablished(loc);
    } else {
      BadAccess("resetEstablishment from a locality below 3", offset);
    }
  }
}

void Tis::CommandReady(uint8_t loc) {
  switch (regs_.state) {
    case State::kIdle:
    case State::kReception:
      regs_.state = State::kReady;
      regs_.command.clear();
      Raise(loc, tis::kIntCommandReady);
      break;
    case State::kReady:
      regs_.command.clear();
      break;
    case State::kExecution:
      if (after_abort_ == AfterAbort::kNone) Abort(AfterAbort::kReady, loc);
      break;
    case State::kCompletion:
      regs_.state = State::kReady;
      ClearCommandState();
      Raise(loc, tis::kIntCommandReady);
      break;
  }
}

// ---------------------------------------------------------------------------------------------
// TPM_DATA_FIFO / TPM_XDATA_FIFO (TPM_HASH_DATA at locality 4 during a hash sequence)

void Tis::WriteFifoByte(uint8_t loc, uint8_t b, uint64_t offset) {
  if (loc == 4 && hashing_) {
    hash_buf_.push_back(b);
    if (hash_buf_.size() >= kHashChunk) FlushHash();
    return;
  }
  if (regs_.active != loc) {
    BadAccess("FIFO written by a locality that is not active", offset);
    return;
  }
  if (regs_.state == State::kReady) {
    regs_.state = State::kReception;
    regs_.command.clear();
  }
  if (regs_.state != State::kReception) {
    BadAccess("FIFO written while the TPM is not receiving a command", offset);
    return;
  }
  if (regs_.command.size() >= ExpectedLength() || regs_.command.size() >= buffer_size_) {
    BadAccess("FIFO written past the end of the command", offset);
    return;
  }
  regs_.command.push_back(b);
}

uint8_t Tis::ReadFifoByte(uint8_t loc) {
  if (regs_.active != loc || regs_.state != State::kCompletion ||
      regs_.response_pos >= regs_.response.size()) {
    return kNoDataByte;
  }
  const uint8_t b = regs_.response[regs_.response_pos++];
  if (regs_.response_pos == regs_.response.size()) Raise(loc, tis::kIntStsValid);
  return b;
}

// ---------------------------------------------------------------------------------------------
// TPM_HASH_START / TPM_HASH_END (locality 4: the H-CRTM/DRTM sequence)

void Tis::WriteHash(int id, uint64_t offset) {
  if (id == kRegHashStart) {
    if (Executing()) Abort(AfterAbort::kIdle, regs_.owner);
    if (hashing_) CloseHash();
    hashing_ = true;
    hash_buf_.clear();
    QueueHashStart();
  } else if (hashing_) {
    CloseHash();
  } else {
    BadAccess("HASH_END without HASH_START", offset);
  }
}

void Tis::FlushHash() {
  if (hash_buf_.empty()) return;
  QueueHashData(hash_buf_);
  hash_buf_.clear();
}

void Tis::CloseHash() {
  FlushHash();
  QueueHashEnd();
  hashing_ = false;
}

// ---------------------------------------------------------------------------------------------
// Commands

void Tis::Go() {
  regs_.state = State::kExecution;
  auto h = wire::ParseHeader(regs_.command);
  regs_.last_command_code = h ? h->code : 0;
  StartCommand(regs_.owner, regs_.command);
}

void Tis::Abort(AfterAbort after, uint8_t next) {
  if (!Executing()) return;
  if (after_abort_ == AfterAbort::kNone) CancelCommand();
  after_abort_ = after;
  next_locality_ = next;
  next_is_seize_ = false;
}

void Tis::CommandCompleted(Bytes response) {
  const bool tpm2 = config_.family == TpmFamily::kTpm20;
  auto h = wire::ParseHeader(response);
  if (!h || h->size != response.size() || response.size() > buffer_size_) {
    BadAccess("backend returned a malformed or oversized response; answering TPM failure", 0);
    response = wire::ErrorResponse(tpm2 ? tpm::kStNoSessions : tpm::kTpm12TagRspCommand,
                                   tpm2 ? tpm::kRcFailure : tpm::kTpm12Fail);
    h = wire::ParseHeader(response);
  }
  if (h->code == 0 && (regs_.last_command_code == tpm::kCcSelfTest ||
                       regs_.last_command_code == tpm::kTpm12ContinueSelfTest)) {
    regs_.selftest_done = true;  // once set, only a reset clears it (as QEMU)
  }
  if (after_abort_ != AfterAbort::kNone) {
    FinishAbort();
  } else {
    regs_.response = std::move(response);
    regs_.response_pos = 0;
    regs_.state = State::kCompletion;
    Raise(regs_.owner, tis::kIntDataAvail | tis::kIntStsValid);
  }
}

void Tis::FinishAbort() {
  const AfterAbort after = after_abort_;
  after_abort_ = AfterAbort::kNone;
  const uint8_t next = next_locality_;
  const bool seize = next_is_seize_;
  next_locality_ = kNoLocality;
  next_is_seize_ = false;
  ClearCommandState();
  switch (after) {
    case AfterAbort::kNone:
      break;
    case AfterAbort::kReady:
      regs_.state = State::kReady;
      Raise(regs_.owner, tis::kIntCommandReady);
      break;
    case AfterAbort::kIdle:
      regs_.state = State::kIdle;
      break;
    case AfterAbort::kSwitch:
      regs_.state = State::kIdle;
      // The requester may have withdrawn meanwhile; the old owner has given up either way.
      SetActive(seize || regs_.localities[next].request_use ? next : kNoLocality, seize);
      break;
  }
}

void Tis::ClearCommandState() {
  regs_.command.clear();
  regs_.response.clear();
  regs_.response_pos = 0;
}

// ---------------------------------------------------------------------------------------------
// Interrupts: the line is derived from state here and nowhere else.

void Tis::Raise(uint8_t loc, uint32_t bits) {
  if (!ValidLocality(loc)) return;
  TisLocalityState& l = regs_.localities[loc];
  // As QEMU: an event is latched in INT_STATUS only while it is enabled (globally and itself).
  if ((l.int_enable & tis::kIntGlobalEnable) && (l.int_enable & bits)) l.int_status |= bits;
}

bool Tis::IrqAsserted() const {
  return std::any_of(regs_.localities.begin(), regs_.localities.end(),
                     [](const TisLocalityState& l) {
                       return (l.int_enable & tis::kIntGlobalEnable) &&
                              (l.int_enable & l.int_status & tis::kIntSupported);
                     });
}

// ---------------------------------------------------------------------------------------------
// Saved state (tis_state.h)

Bytes Tis::SaveRegisters() const {
  return EncodeTisState({.family = config_.family, .irq_level = irq_level(), .regs = regs_});
}

Status Tis::RestoreRegisters(ByteSpan payload) {
  VTPM_ASSIGN_OR_RETURN(TisState s, DecodeTisState(payload));
  if (s.family != config_.family) {
    return Fail(Errc::kInvalidArgument,
                "TIS device state is from a TPM of the other family (1.2 vs 2.0)");
  }
  if (s.regs.command.size() > buffer_size_ || s.regs.response.size() > buffer_size_) {
    return Fail(Errc::kCorrupt, "TIS device state: a buffer is larger than this device's");
  }
  regs_ = std::move(s.regs);
  regs_.command.reserve(buffer_size_);
  after_abort_ = AfterAbort::kNone;
  return Ok();
}

}  // namespace vtpm::device
