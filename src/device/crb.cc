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

DeviceLayout LayoutFor(const CrbConfig& config) {
  return DeviceLayout{
      .name = "CRB",
      .windows = config.localities,
      .regs = kRegs,
      .state = {"VTPMCRB", 1},
      .busy = "a command executes: CTRL_START reads 1",
  };
}

bool ValidLocality(uint8_t l) { return l < kNumLocalities; }

}  // namespace

Result<std::unique_ptr<Crb>> Crb::Create(const CrbConfig& config, CrbDeps deps) {
  if (config.localities != 1 && config.localities != kNumLocalities) {
    return Fail(Errc::kInvalidArgument, "a CRB device has 1 or 5 localities");
  }
  uint32_t limit = crb::kDataBufferSize;
  if (config.external_buffer) {
    if (config.external_buffer->host.size() < 1024 || config.external_buffer->gpa == 0) {
      return Fail(Errc::kInvalidArgument,
                  "the external CRB buffer needs a guest address and at least 1024 bytes");
    }
    limit = static_cast<uint32_t>(std::min<size_t>(config.external_buffer->host.size(), 4096));
  }
  VTPM_ASSIGN_OR_RETURN(uint32_t size, PrepareDeps("CRB", deps, limit));
  return std::unique_ptr<Crb>(new Crb(config, std::move(deps), size));
}

Crb::Crb(const CrbConfig& config, CrbDeps deps, uint32_t buffer_size)
    : DeviceShell(LayoutFor(config), std::move(deps), config.label),
      config_(config),
      buffer_size_(buffer_size) {
  if (!config_.external_buffer) regs_.buffer.assign(crb::kDataBufferSize, 0);
  ResetRegisters();
}

Crb::~Crb() { Detach(); }

uint64_t Crb::buffer_gpa() const {
  return config_.external_buffer ? config_.external_buffer->gpa
                                 : config_.base_gpa + crb::kDataBuffer;
}

std::span<uint8_t> Crb::Buffer() {
  if (config_.external_buffer) return config_.external_buffer->host.first(buffer_size_);
  return std::span<uint8_t>(regs_.buffer).first(buffer_size_);
}

void Crb::ResetRegisters() {
  regs_.localities = {};
  regs_.active = kNoLocality;
  regs_.idle = true;
  regs_.fatal = false;
  regs_.cancel = 0;
  regs_.int_enable = 0;
  regs_.int_status = 0;
  discard_ = false;
}

// ---------------------------------------------------------------------------------------------
// Access dispatch

void Crb::ReadPiece(const AccessPiece& p, std::span<uint8_t> out) {
  if (p.reg == nullptr) {
    std::fill(out.begin(), out.end(), 0);  // reserved: reads 0 (QEMU)
  } else if (p.reg->id == kRegData) {
    ReadData(p.byte_offset, out);
  } else {
    ReadLanes(ReadReg(static_cast<uint8_t>(p.window), p.reg->id), p.byte_offset, out);
  }
}

void Crb::WritePiece(const AccessPiece& p, std::span<const uint8_t> in, uint64_t offset) {
  if (p.reg == nullptr) {
    BadAccess("write to a reserved CRB offset", offset);
  } else if (p.reg->id == kRegData) {
    WriteData(p.byte_offset, in, offset);
  } else {
    const LaneWrite w = WriteLanes(p.byte_offset, in);
    WriteReg(static_cast<uint8_t>(p.window), p.reg->id, static_cast<uint32_t>(w.value),
             static_cast<uint32_t>(w.mask), offset);
  }
}

uint64_t Crb::ReadReg(uint8_t loc, int id) {
  const uint64_t window_buffer =
      config_.external_buffer
          ? config_.external_buffer->gpa
          : config_.base_gpa + uint64_t{loc} * kLocalityWindow + crb::kDataBuffer;
  switch (id) {
    case kRegLocState: {
      uint32_t v = crb::kLocStateValid;
      if (ValidLocality(regs_.active)) {
        v |= crb::kLocStateAssigned | (uint32_t{regs_.active} << crb::kLocStateActiveShift);
      }
      if (!backend().TpmEstablished()) v |= crb::kLocStateEstablished;
      return v;
    }
    case kRegLocSts:
      return (regs_.active == loc ? crb::kLocStsGranted : 0) |
             (regs_.localities[loc].been_seized ? crb::kLocStsBeenSeized : 0);
    case kRegIntfId: {
      uint64_t lo = crb::kIntfIdLow | (config_.localities > 1 ? crb::kIntfIdCapLocality : 0) |
                    (uint32_t{config_.revision_id} << 24);
      uint64_t hi = (uint32_t{config_.device_id} << 16) | config_.vendor_id;
      return lo | (hi << 32);
    }
    case kRegCtrlSts:
      return (regs_.fatal ? crb::kStsFatal : 0) | (regs_.idle ? crb::kStsIdle : 0);
    case kRegCtrlCancel:
      return regs_.cancel;
    case kRegCtrlStart:
      return Executing() ? crb::kStartInvoke : 0;
    case kRegIntEnable:
      return regs_.int_enable;
    case kRegIntSts:
      return regs_.int_status;
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

// |v|: the bytes written, in their lanes; |mask|: the lanes written.
void Crb::WriteReg(uint8_t loc, int id, uint32_t v, uint32_t mask, uint64_t offset) {
  switch (id) {
    case kRegLocCtrl:
      WriteLocCtrl(loc, v, offset);
      break;
    case kRegCtrlReq:
      WriteCtrlReq(v, offset);
      break;
    case kRegCtrlCancel:
      if (mask & 0xFF) {
        regs_.cancel = v & crb::kCancelInvoke;
        if (regs_.cancel && Executing() && !discard_) CancelCommand();
      }
      break;
    case kRegCtrlStart:
      WriteCtrlStart(loc, v, offset);
      break;
    case kRegIntEnable:
      regs_.int_enable =
          ((regs_.int_enable & ~mask) | v) & (crb::kIntGlobalEnable | crb::kIntSupported);
      break;
    case kRegIntSts:
      regs_.int_status &= ~(v & crb::kIntSupported);
      break;
    case kRegCmdSize:
    case kRegCmdLaddr:
    case kRegCmdHaddr:
    case kRegRspSize:
    case kRegRspAddr:
      break;  // edk2 writes the values it computed; the addresses are fixed by the device
    default:
      BadAccess("write to a read-only CRB register", offset);
      break;
  }
}

// ---------------------------------------------------------------------------------------------
// LOC_CTRL: locality requests, relinquish, seize, resetEstablishment

void Crb::WriteLocCtrl(uint8_t loc, uint32_t v, uint64_t offset) {
  v &= 0xF;
  if (v == 0) return;
  if (std::popcount(v) > 1) {
    BadAccess("LOC_CTRL with several bits", offset);
    return;
  }
  switch (v) {
    case crb::kLocCtrlRequest:
      if (!ValidLocality(regs_.active) || regs_.active == loc) {
        SetActive(loc, false);
      } else {
        regs_.localities[loc].pending = true;
      }
      break;
    case crb::kLocCtrlRelinquish:
      Relinquish(loc);
      break;
    case crb::kLocCtrlSeize:
      Seize(loc, offset);
      break;
    case crb::kLocCtrlResetEstablishment:
      if (loc == 3 || loc == 4) {
        QueueResetEstablished(loc);
      } else {
        BadAccess("resetEstablishment from a locality below 3", offset);
      }
      break;
    default:
      break;
  }
}

// Withdraws |loc|'s request; if it was active, the highest pending locality (or none) gets it.
void Crb::Relinquish(uint8_t loc) {
  regs_.localities[loc].pending = false;
  if (regs_.active != loc) return;
  uint8_t next = kNoLocality;
  for (uint8_t c = kNumLocalities; c-- > 0;) {
    if (regs_.localities[c].pending) {
      next = c;
      break;
    }
  }
  SetActive(next, false);
}

void Crb::Seize(uint8_t loc, uint64_t offset) {
  if (ValidLocality(regs_.active) && loc > regs_.active) {
    SetActive(loc, true);  // drops a running command's response (as VirtualBox)
  } else if (!ValidLocality(regs_.active)) {
    SetActive(loc, false);
  } else {
    BadAccess("seize from a locality not above the active one", offset);
  }
}

void Crb::SetActive(uint8_t loc, bool seize) {
  const bool change = loc != regs_.active;
  if (change && ValidLocality(regs_.active) && seize) {
    regs_.localities[regs_.active].been_seized = true;
  }
  regs_.active = loc;
  if (!ValidLocality(loc)) return;
  if (Executing() && loc != cmd_locality_ && !discard_) {
    // Another locality takes over while the previous owner's command runs: its response must
    // not land in the new owner's buffer.
    discard_ = true;
    CancelCommand();
  }
  regs_.localities[loc].pending = false;
  regs_.localities[loc].been_seized = false;  // a grant clears it (QEMU)
  if (change) Raise(crb::kIntLocalityChange);
}

// ---------------------------------------------------------------------------------------------
// CTRL_REQ, CTRL_START and the data buffer

void Crb::WriteCtrlReq(uint32_t v, uint64_t offset) {
  const uint32_t req = v & (crb::kReqCmdReady | crb::kReqGoIdle);
  if (req == crb::kReqCmdReady) {
    regs_.idle = false;
    Raise(crb::kIntCmdReady);
  } else if (req == crb::kReqGoIdle) {
    if (Executing()) {
      BadAccess("goIdle while a command executes", offset);
    } else {
      regs_.idle = true;
    }
  } else if (req != 0) {
    BadAccess("CTRL_REQ with both cmdReady and goIdle", offset);
  }
}

void Crb::WriteCtrlStart(uint8_t loc, uint32_t v, uint64_t offset) {
  if ((v & crb::kStartInvoke) == 0) return;  // writing 0 does nothing
  if (Executing()) {
    BadAccess("CTRL_START while a command executes", offset);
  } else if (regs_.active != loc) {
    BadAccess("CTRL_START from a locality that is not active", offset);
  } else {
    Start();
  }
}

void Crb::ReadData(uint32_t at, std::span<uint8_t> out) const {
  std::fill(out.begin(), out.end(), 0);
  if (config_.external_buffer || at >= buffer_size_) return;
  const size_t n = std::min<size_t>(out.size(), buffer_size_ - at);
  std::copy_n(regs_.buffer.begin() + at, n, out.begin());
}

void Crb::WriteData(uint32_t at, std::span<const uint8_t> in, uint64_t offset) {
  if (config_.external_buffer || at >= buffer_size_) {
    BadAccess("write outside the CRB data buffer", offset);
    return;
  }
  const size_t n = std::min<size_t>(in.size(), buffer_size_ - at);
  std::copy_n(in.begin(), n, regs_.buffer.begin() + at);
}

void Crb::Start() {
  std::span<uint8_t> buf = Buffer();
  // Read the header once: with an external buffer the guest may change it concurrently.
  uint32_t len = LoadBe32(buf.data() + 2);
  len = std::clamp<uint32_t>(len, static_cast<uint32_t>(wire::kTpmHeaderSize), buffer_size_);
  cmd_locality_ = regs_.active;
  discard_ = false;
  StartCommand(regs_.active, Bytes(buf.begin(), buf.begin() + len));
}

void Crb::CommandCompleted(Bytes response) {
  auto h = wire::ParseHeader(response);
  if (!h || h->size != response.size() || response.size() > buffer_size_) {
    BadAccess("backend response malformed or larger than the CRB buffer: tpmSts set", 0);
    regs_.fatal = true;
  } else if (!discard_) {
    std::copy(response.begin(), response.end(), Buffer().begin());
  }
  discard_ = false;
  Raise(crb::kIntStart);
}

// ---------------------------------------------------------------------------------------------
// Interrupts

void Crb::Raise(uint32_t bits) {
  if ((regs_.int_enable & crb::kIntGlobalEnable) && (regs_.int_enable & bits)) {
    regs_.int_status |= bits;
  }
}

bool Crb::IrqAsserted() const {
  return (regs_.int_enable & crb::kIntGlobalEnable) &&
         (regs_.int_enable & regs_.int_status & crb::kIntSupported);
}

// ---------------------------------------------------------------------------------------------
// Saved state (crb_state.h)

Bytes Crb::SaveRegisters() const {
  return EncodeCrbState({.locality_count = config_.localities, .regs = regs_});
}

Status Crb::RestoreRegisters(ByteSpan payload) {
  VTPM_ASSIGN_OR_RETURN(CrbState s, DecodeCrbState(payload));
  if (s.locality_count != config_.localities) {
    return Fail(Errc::kInvalidArgument, "CRB device state has a different locality count");
  }
  if (s.regs.buffer.size() != regs_.buffer.size()) {
    return Fail(Errc::kCorrupt,
                "CRB device state: the data buffer is inside one device and in guest RAM for "
                "the other");
  }
  regs_ = std::move(s.regs);
  return Ok();
}

}  // namespace vtpm::device
