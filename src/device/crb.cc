#include "device/crb.h"

#include <algorithm>
#include <bit>

#include "wire/tpm_header.h"

namespace vtpm::device {

namespace {

enum RegId {
  kRegLocState,
  kRegLocCtrl,
  kRegLocSts,
  kRegIntfId,
  kRegCtrlExt,
  kRegCtrlReq,
  kRegCtrlSts,
  kRegCtrlCancel,
  kRegCtrlStart,
  kRegIntEnable,
  kRegIntSts,
  kRegCmdSize,
  kRegCmdLaddr,
  kRegCmdHaddr,
  kRegRspSize,
  kRegRspAddr,
  kRegData,
};

constexpr RegDef kRegs[] = {
    {crb::kLocState, 4, kRegLocState},
    {crb::kLocCtrl, 4, kRegLocCtrl},
    {crb::kLocSts, 4, kRegLocSts},
    {crb::kIntfId, 8, kRegIntfId},
    {crb::kCtrlExt, 8, kRegCtrlExt},
    {crb::kCtrlReq, 4, kRegCtrlReq},
    {crb::kCtrlSts, 4, kRegCtrlSts},
    {crb::kCtrlCancel, 4, kRegCtrlCancel},
    {crb::kCtrlStart, 4, kRegCtrlStart},
    {crb::kIntEnable, 4, kRegIntEnable},
    {crb::kIntSts, 4, kRegIntSts},
    {crb::kCmdSize, 4, kRegCmdSize},
    {crb::kCmdLaddr, 4, kRegCmdLaddr},
    {crb::kCmdHaddr, 4, kRegCmdHaddr},
    {crb::kRspSize, 4, kRegRspSize},
    {crb::kRspAddr, 8, kRegRspAddr},
    {crb::kDataBuffer, static_cast<uint16_t>(crb::kDataBufferSize), kRegData},
};

bool ValidLocality(uint8_t l) { return l < kNumLocalities; }

}  // namespace

Result<std::unique_ptr<Crb>> Crb::Create(const CrbConfig& config, CrbDeps deps) {
  if (deps.backend == nullptr) return Fail(Errc::kInvalidArgument, "a CRB device needs a backend");
  if (config.localities != 1 && config.localities != kNumLocalities) {
    return Fail(Errc::kInvalidArgument, "a CRB device has 1 or 5 localities");
  }
  uint32_t size = crb::kDataBufferSize;
  if (config.external_buffer) {
    if (config.external_buffer->host.size() < 1024 || config.external_buffer->gpa == 0) {
      return Fail(Errc::kInvalidArgument,
                  "the external CRB buffer needs a guest address and at least 1024 bytes");
    }
    size = static_cast<uint32_t>(std::min<size_t>(config.external_buffer->host.size(), 4096));
  }
  VTPM_ASSIGN_OR_RETURN(size, NegotiateBufferSize(size, deps.backend->BufferSize()));
  if (!deps.log) deps.log = NullLogger();
  return std::unique_ptr<Crb>(new Crb(config, std::move(deps), size));
}

Crb::Crb(const CrbConfig& config, CrbDeps deps, uint32_t buffer_size)
    : config_(config),
      backend_(deps.backend),
      irq_(deps.irq),
      log_(std::move(deps.log)),
      buffer_size_(buffer_size),
      anchor_(std::make_shared<internal::Anchor<Crb>>()),
      bad_(log_, config.label) {
  anchor_->device = this;
  if (!config_.external_buffer) internal_buffer_.assign(crb::kDataBufferSize, 0);
  std::lock_guard lock(anchor_->mu);
  ResetLocked();
}

Crb::~Crb() {
  std::vector<internal::BackendOp> ops;
  {
    std::lock_guard lock(anchor_->mu);
    anchor_->device = nullptr;
    if (Executing()) ops.push_back({internal::BackendOp::kCancel});
  }
  internal::RunBackendOps(ops, backend_, anchor_);
}

uint64_t Crb::buffer_gpa() const {
  return config_.external_buffer ? config_.external_buffer->gpa
                                 : config_.base_gpa + crb::kDataBuffer;
}

std::span<uint8_t> Crb::Buffer() {
  if (config_.external_buffer) return config_.external_buffer->host.first(buffer_size_);
  return std::span<uint8_t>(internal_buffer_).first(buffer_size_);
}

void Crb::ResetLocked() {
  if (Executing()) {
    ops_.push_back({internal::BackendOp::kCancel});
    ++stats_.cancels;
  }
  loc_ = {};
  active_ = kNoLocality;
  idle_ = true;
  fatal_ = false;
  cancel_ = 0;
  int_enable_ = 0;
  int_status_ = 0;
  inflight_seq_ = 0;
  discard_ = false;
  UpdateIrqLocked();
}

void Crb::Reset() {
  std::vector<internal::BackendOp> ops;
  {
    std::lock_guard lock(anchor_->mu);
    ResetLocked();
    ops.swap(ops_);
  }
  internal::RunBackendOps(ops, backend_, anchor_);
}

void Crb::Read(const BusAccess& access, std::span<uint8_t> data) {
  std::lock_guard lock(anchor_->mu);
  if (data.size() == 0 || data.size() > 8) bad_.Record("access width is not 1..8", access.offset);
  SplitAccess(access.offset, data.size(), kLocalityWindow, config_.localities, kRegs,
              [&](const AccessPiece& p) {
                std::span<uint8_t> out = data.subspan(p.pos, p.count);
                if (p.window >= config_.localities) {
                  bad_.Record("read beyond the CRB range", access.offset + p.pos);
                  std::fill(out.begin(), out.end(), 0xFF);
                  return;
                }
                if (p.reg == nullptr) {
                  std::fill(out.begin(), out.end(), 0);  // reserved: reads 0 (QEMU)
                  return;
                }
                if (p.reg->id == kRegData) {
                  if (config_.external_buffer || p.byte_offset >= buffer_size_) {
                    std::fill(out.begin(), out.end(), 0);
                    return;
                  }
                  const size_t n = std::min<size_t>(out.size(), buffer_size_ - p.byte_offset);
                  std::copy_n(internal_buffer_.begin() + p.byte_offset, n, out.begin());
                  std::fill(out.begin() + static_cast<ptrdiff_t>(n), out.end(), 0);
                  return;
                }
                const uint64_t v = ReadReg(static_cast<uint8_t>(p.window), p.reg->id);
                for (uint32_t i = 0; i < p.count; ++i) out[i] = LaneByte(v, p.byte_offset + i);
              });
}

void Crb::Write(const BusAccess& access, std::span<const uint8_t> data) {
  std::vector<internal::BackendOp> ops;
  {
    std::lock_guard lock(anchor_->mu);
    if (data.size() == 0 || data.size() > 8) {
      bad_.Record("access width is not 1..8", access.offset);
    }
    SplitAccess(access.offset, data.size(), kLocalityWindow, config_.localities, kRegs,
                [&](const AccessPiece& p) {
                  const uint64_t at = access.offset + p.pos;
                  std::span<const uint8_t> in = data.subspan(p.pos, p.count);
                  if (p.window >= config_.localities) {
                    bad_.Record("write beyond the CRB range", at);
                    return;
                  }
                  if (p.reg == nullptr) {
                    bad_.Record("write to a reserved CRB offset", at);
                    return;
                  }
                  if (p.reg->id == kRegData) {
                    if (config_.external_buffer || p.byte_offset >= buffer_size_) {
                      bad_.Record("write outside the CRB data buffer", at);
                      return;
                    }
                    const size_t n = std::min<size_t>(in.size(), buffer_size_ - p.byte_offset);
                    std::copy_n(in.begin(), n, internal_buffer_.begin() + p.byte_offset);
                    return;
                  }
                  uint64_t value = 0, mask = 0;
                  for (uint32_t i = 0; i < p.count; ++i) {
                    const uint32_t shift = 8 * (p.byte_offset + i);
                    value |= uint64_t{in[i]} << shift;
                    mask |= uint64_t{0xFF} << shift;
                  }
                  WriteReg(static_cast<uint8_t>(p.window), p.reg->id, value, mask, at);
                });
    UpdateIrqLocked();
    ops.swap(ops_);
  }
  internal::RunBackendOps(ops, backend_, anchor_);
}

uint64_t Crb::ReadReg(uint8_t loc, int id) {
  const uint64_t window_buffer =
      config_.external_buffer
          ? config_.external_buffer->gpa
          : config_.base_gpa + uint64_t{loc} * kLocalityWindow + crb::kDataBuffer;
  switch (id) {
    case kRegLocState: {
      uint32_t v = crb::kLocStateValid;
      if (ValidLocality(active_)) {
        v |= crb::kLocStateAssigned | (uint32_t{active_} << crb::kLocStateActiveShift);
      }
      if (!backend_->TpmEstablished()) v |= crb::kLocStateEstablished;
      return v;
    }
    case kRegLocSts:
      return (active_ == loc ? crb::kLocStsGranted : 0) |
             (loc_[loc].been_seized ? crb::kLocStsBeenSeized : 0);
    case kRegIntfId: {
      uint64_t lo = crb::kIntfIdLow | (config_.localities > 1 ? crb::kIntfIdCapLocality : 0) |
                    (uint32_t{config_.revision_id} << 24);
      uint64_t hi = (uint32_t{config_.device_id} << 16) | config_.vendor_id;
      return lo | (hi << 32);
    }
    case kRegCtrlSts:
      return (fatal_ ? crb::kStsFatal : 0) | (idle_ ? crb::kStsIdle : 0);
    case kRegCtrlCancel:
      return cancel_;
    case kRegCtrlStart:
      return Executing() ? crb::kStartInvoke : 0;
    case kRegIntEnable:
      return int_enable_;
    case kRegIntSts:
      return int_status_;
    case kRegCmdSize:
    case kRegRspSize:
      return buffer_size_;
    case kRegCmdLaddr:
      return window_buffer & 0xFFFFFFFF;
    case kRegCmdHaddr:
      return window_buffer >> 32;
    case kRegRspAddr:
      return window_buffer;
    default:
      return 0;  // LOC_CTRL, CTRL_REQ (requests complete at once), CTRL_EXT
  }
}

void Crb::WriteReg(uint8_t loc, int id, uint64_t value, uint64_t mask, uint64_t offset) {
  const auto v = static_cast<uint32_t>(value & mask);
  switch (id) {
    case kRegLocCtrl:
      WriteLocCtrl(loc, v, offset);
      break;
    case kRegCtrlReq: {
      const uint32_t req = v & (crb::kReqCmdReady | crb::kReqGoIdle);
      if (req == crb::kReqCmdReady) {
        idle_ = false;
        Raise(crb::kIntCmdReady);
      } else if (req == crb::kReqGoIdle) {
        if (Executing()) {
          bad_.Record("goIdle while a command executes", offset);
        } else {
          idle_ = true;
        }
      } else if (req != 0) {
        bad_.Record("CTRL_REQ with both cmdReady and goIdle", offset);
      }
      break;
    }
    case kRegCtrlCancel:
      if (mask & 0xFF) {
        cancel_ = v & crb::kCancelInvoke;
        if (cancel_ && Executing() && !discard_) {
          ops_.push_back({internal::BackendOp::kCancel});
          ++stats_.cancels;
        }
      }
      break;
    case kRegCtrlStart:
      if ((v & crb::kStartInvoke) == 0) break;  // writing 0 does nothing
      if (Executing()) {
        bad_.Record("CTRL_START while a command executes", offset);
      } else if (active_ != loc) {
        bad_.Record("CTRL_START from a locality that is not active", offset);
      } else {
        Start();
      }
      break;
    case kRegIntEnable:
      int_enable_ = static_cast<uint32_t>((int_enable_ & ~mask) | (value & mask)) &
                    (crb::kIntGlobalEnable | crb::kIntSupported);
      break;
    case kRegIntSts:
      int_status_ &= ~(v & crb::kIntSupported);
      break;
    case kRegCmdSize:
    case kRegCmdLaddr:
    case kRegCmdHaddr:
    case kRegRspSize:
    case kRegRspAddr:
      break;  // edk2 writes the values it computed; the addresses are fixed by the device
    default:
      bad_.Record("write to a read-only CRB register", offset);
      break;
  }
}

void Crb::WriteLocCtrl(uint8_t loc, uint32_t v, uint64_t offset) {
  v &= 0xF;
  if (v == 0) return;
  if (std::popcount(v) > 1) {
    bad_.Record("LOC_CTRL with several bits", offset);
    return;
  }
  switch (v) {
    case crb::kLocCtrlRequest:
      if (!ValidLocality(active_) || active_ == loc) {
        SetActive(loc, false);
      } else {
        loc_[loc].pending = true;
      }
      break;
    case crb::kLocCtrlRelinquish:
      loc_[loc].pending = false;
      if (active_ == loc) {
        uint8_t next = kNoLocality;
        for (uint8_t c = kNumLocalities; c-- > 0;) {
          if (loc_[c].pending) {
            next = c;
            break;
          }
        }
        SetActive(next, false);
      }
      break;
    case crb::kLocCtrlSeize:
      if (ValidLocality(active_) && loc > active_) {
        SetActive(loc, true);  // drops a running command's response (as VirtualBox)
      } else if (!ValidLocality(active_)) {
        SetActive(loc, false);
      } else {
        bad_.Record("seize from a locality not above the active one", offset);
      }
      break;
    case crb::kLocCtrlResetEstablishment:
      if (loc == 3 || loc == 4) {
        internal::BackendOp op{internal::BackendOp::kResetEstablished};
        op.locality = loc;
        ops_.push_back(std::move(op));
      } else {
        bad_.Record("resetEstablishment from a locality below 3", offset);
      }
      break;
    default:
      break;
  }
}

void Crb::SetActive(uint8_t loc, bool seize) {
  const bool change = loc != active_;
  if (change && ValidLocality(active_) && seize) loc_[active_].been_seized = true;
  active_ = loc;
  if (ValidLocality(loc) && Executing() && loc != cmd_locality_ && !discard_) {
    // Another locality takes over while the previous owner's command runs: its response must
    // not land in the new owner's buffer.
    discard_ = true;
    ops_.push_back({internal::BackendOp::kCancel});
    ++stats_.cancels;
  }
  if (ValidLocality(loc)) {
    loc_[loc].pending = false;
    loc_[loc].been_seized = false;  // a grant clears it (QEMU)
    if (change) Raise(crb::kIntLocalityChange);
  }
}

void Crb::Start() {
  std::span<uint8_t> buf = Buffer();
  // Read the header once: with an external buffer the guest may change it concurrently.
  uint32_t len = LoadBe32(buf.data() + 2);
  len = std::clamp<uint32_t>(len, static_cast<uint32_t>(wire::kTpmHeaderSize), buffer_size_);
  internal::BackendOp op{internal::BackendOp::kSubmit};
  op.locality = active_;
  cmd_locality_ = active_;
  op.seq = inflight_seq_ = next_seq_++;
  op.data.assign(buf.begin(), buf.begin() + len);
  ops_.push_back(std::move(op));
  discard_ = false;
  ++stats_.commands;
}

void Crb::OnCompletionLocked(uint64_t seq, Bytes response) {
  if (seq == 0 || seq != inflight_seq_) return;
  inflight_seq_ = 0;
  auto h = wire::ParseHeader(response);
  if (!h || h->size != response.size() || response.size() > buffer_size_) {
    bad_.Record("backend response malformed or larger than the CRB buffer: tpmSts set", 0);
    fatal_ = true;
  } else if (!discard_) {
    std::copy(response.begin(), response.end(), Buffer().begin());
  }
  discard_ = false;
  Raise(crb::kIntStart);
  UpdateIrqLocked();
}

void Crb::Raise(uint32_t bits) {
  if ((int_enable_ & crb::kIntGlobalEnable) && (int_enable_ & bits)) int_status_ |= bits;
}

void Crb::UpdateIrqLocked() {
  const bool level =
      (int_enable_ & crb::kIntGlobalEnable) && (int_enable_ & int_status_ & crb::kIntSupported);
  if (level != irq_level_) {
    irq_level_ = level;
    if (irq_ != nullptr) irq_->SetLevel(level);
  }
}

bool Crb::Busy() {
  std::lock_guard lock(anchor_->mu);
  return Executing();
}

DeviceStats Crb::stats() {
  std::lock_guard lock(anchor_->mu);
  DeviceStats s = stats_;
  s.bad_accesses = bad_.count();
  return s;
}

Result<Bytes> Crb::SaveState() {
  std::lock_guard lock(anchor_->mu);
  if (Executing()) {
    return Fail(Errc::kFailedPrecondition,
                "the CRB device is executing a command (CTRL_START is 1); let it complete, then "
                "save");
  }
  ByteWriter w;
  w.U8(config_.localities);
  w.U8(active_);
  w.U8(static_cast<uint8_t>((idle_ ? 1 : 0) | (fatal_ ? 2 : 0)));
  w.U32(cancel_);
  w.U32(int_enable_);
  w.U32(int_status_);
  for (const Locality& l : loc_) {
    w.U8(static_cast<uint8_t>((l.pending ? 1 : 0) | (l.been_seized ? 2 : 0)));
  }
  w.U32(static_cast<uint32_t>(internal_buffer_.size()));
  w.Append(internal_buffer_);
  return WrapState("VTPMCRB", kStateVersion, w.bytes());
}

Status Crb::RestoreState(ByteSpan blob) {
  VTPM_ASSIGN_OR_RETURN(ByteSpan payload, UnwrapState("VTPMCRB", kStateVersion, blob));
  ByteReader r(payload);
  auto bad = [](std::string what) { return Fail(Errc::kCorrupt, "CRB device state: " + what); };
  auto locs = r.U8(), active = r.U8(), flags = r.U8();
  auto cancel = r.U32(), en = r.U32(), sts = r.U32();
  if (!sts) return bad("truncated");
  if (*locs != config_.localities) {
    return Fail(Errc::kInvalidArgument, "CRB device state has a different locality count");
  }
  if (*active != kNoLocality && *active >= config_.localities) return bad("locality range");
  if (*flags > 3 || *cancel > 1) return bad("invalid flags");
  std::array<Locality, kNumLocalities> l{};
  for (Locality& x : l) {
    auto f = r.U8();
    if (!f || *f > 3) return bad("invalid locality record");
    x.pending = (*f & 1) != 0;
    x.been_seized = (*f & 2) != 0;
  }
  auto len = r.U32();
  if (!len || *len != internal_buffer_.size()) return bad("buffer size differs");
  auto buf = r.Take(*len);
  if (!buf || !r.empty()) return bad("truncated buffer");
  std::lock_guard lock(anchor_->mu);
  if (Executing()) return Fail(Errc::kFailedPrecondition, "the CRB device is busy");
  active_ = *active;
  idle_ = (*flags & 1) != 0;
  fatal_ = (*flags & 2) != 0;
  cancel_ = *cancel;
  int_enable_ = *en & (crb::kIntGlobalEnable | crb::kIntSupported);
  int_status_ = *sts & crb::kIntSupported;
  loc_ = l;
  std::copy(buf->begin(), buf->end(), internal_buffer_.begin());
  UpdateIrqLocked();
  return Ok();
}

}  // namespace vtpm::device
