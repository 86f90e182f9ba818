#include "device/device_shell.h"

#include <fmt/format.h>

#include <algorithm>
#include <mutex>

namespace vtpm::device {

namespace {

constexpr uint8_t kNoDeviceByte = 0xFF;  // what reads beyond the last window return

}  // namespace

// Shared between a device and the completions it handed out.
struct DeviceShell::Anchor {
  std::mutex mu;                  // the device lock
  DeviceShell* device = nullptr;  // nulled (under mu) by Detach()
};

// Holds the device lock; on the way out releases it, then issues the backend operations queued
// meanwhile (in order).
class DeviceShell::Scope {
 public:
  explicit Scope(DeviceShell& shell) : shell_(shell), lock_(shell.anchor_->mu) {}
  ~Scope() {
    std::vector<BackendOp> ops;
    ops.swap(shell_.ops_);
    lock_.unlock();
    shell_.Issue(ops);
  }
  Scope(const Scope&) = delete;
  Scope& operator=(const Scope&) = delete;

 private:
  DeviceShell& shell_;
  std::unique_lock<std::mutex> lock_;
};

Result<uint32_t> DeviceShell::PrepareDeps(std::string_view name, DeviceDeps& deps,
                                          uint32_t model_limit) {
  if (deps.backend == nullptr) {
    return Fail(Errc::kInvalidArgument, fmt::format("a {} device needs a TPM backend", name));
  }
  if (!deps.log) deps.log = NullLogger();
  return NegotiateBufferSize(model_limit, deps.backend->BufferSize());
}

DeviceShell::DeviceShell(const DeviceLayout& layout, DeviceDeps deps, const std::string& label)
    : layout_(layout),
      label_(label),
      backend_(deps.backend),
      irq_(deps.irq),
      anchor_(std::make_shared<Anchor>()),
      bad_(std::move(deps.log), label) {
  anchor_->device = this;
}

// The models have detached already (their members are gone by now); this covers the shell's own.
DeviceShell::~DeviceShell() { Detach(); }

void DeviceShell::Detach() {
  Scope scope(*this);
  if (anchor_->device == nullptr) return;
  anchor_->device = nullptr;
  if (Executing()) CancelCommand();
  AbandonCommand();
}

// ---------------------------------------------------------------------------------------------
// Guest accesses

void DeviceShell::CheckWidth(const BusAccess& access, size_t width) {
  if (width == 0 || width > 8) bad_.Record("access width is not 1..8", access.offset);
}

void DeviceShell::Read(const BusAccess& access, std::span<uint8_t> data) {
  Scope scope(*this);
  CheckWidth(access, data.size());
  SplitAccess(access.offset, data.size(), kLocalityWindow, layout_.windows, layout_.regs,
              [&](const AccessPiece& p) {
                std::span<uint8_t> out = data.subspan(p.pos, p.count);
                if (p.window < layout_.windows) {
                  ReadPiece(p, out);
                  return;
                }
                bad_.Record("read beyond the device's range", access.offset + p.pos);
                std::fill(out.begin(), out.end(), kNoDeviceByte);
              });
  UpdateIrq();
}

void DeviceShell::Write(const BusAccess& access, std::span<const uint8_t> data) {
  Scope scope(*this);
  CheckWidth(access, data.size());
  SplitAccess(access.offset, data.size(), kLocalityWindow, layout_.windows, layout_.regs,
              [&](const AccessPiece& p) {
                const uint64_t at = access.offset + p.pos;
                if (p.window < layout_.windows) {
                  WritePiece(p, data.subspan(p.pos, p.count), at);
                  return;
                }
                bad_.Record("write beyond the device's range", at);
              });
  UpdateIrq();
}

// ---------------------------------------------------------------------------------------------
// Backend operations

void DeviceShell::StartCommand(uint8_t locality, Bytes command) {
  inflight_seq_ = next_seq_++;
  Queue(BackendOp::kSubmit, locality, inflight_seq_, std::move(command));
  ++stats_.commands;
}

void DeviceShell::CancelCommand() {
  Queue(BackendOp::kCancel);
  ++stats_.cancels;
}

void DeviceShell::QueueResetEstablished(uint8_t locality) {
  Queue(BackendOp::kResetEstablished, locality);
}

void DeviceShell::QueueHashStart() { Queue(BackendOp::kHashStart); }

void DeviceShell::QueueHashData(Bytes data) { Queue(BackendOp::kHashData, 0, 0, std::move(data)); }

void DeviceShell::QueueHashEnd() { Queue(BackendOp::kHashEnd); }

void DeviceShell::Queue(BackendOp::Kind kind, uint8_t locality, uint64_t seq, Bytes data) {
  ops_.push_back(BackendOp{kind, locality, seq, std::move(data)});
}

void DeviceShell::Issue(std::vector<BackendOp>& ops) {
  for (BackendOp& op : ops) {
    switch (op.kind) {
      case BackendOp::kSubmit: {
        std::weak_ptr<Anchor> weak = anchor_;
        backend_->Submit(op.locality, std::move(op.data), [weak, seq = op.seq](Bytes response) {
          auto anchor = weak.lock();
          if (!anchor) return;
          std::lock_guard lock(anchor->mu);
          if (anchor->device != nullptr) {
            anchor->device->Complete(seq, std::move(response));
          }
        });
        break;
      }
      case BackendOp::kCancel:
        backend_->Cancel();
        break;
      case BackendOp::kHashStart:
        backend_->HashStart();
        break;
      case BackendOp::kHashData:
        backend_->HashData(std::move(op.data));
        break;
      case BackendOp::kHashEnd:
        backend_->HashEnd();
        break;
      case BackendOp::kResetEstablished:
        backend_->ResetEstablished(op.locality);
        break;
    }
  }
}

void DeviceShell::Complete(uint64_t seq, Bytes response) {
  if (seq == 0 || seq != inflight_seq_) return;  // reset, abandoned, or not ours
  inflight_seq_ = 0;
  CommandCompleted(std::move(response));
  UpdateIrq();
}

// ---------------------------------------------------------------------------------------------
// Interrupt line, reset, status

void DeviceShell::UpdateIrq() {
  const bool level = IrqAsserted();
  if (level != irq_level_) {
    irq_level_ = level;
    if (irq_ != nullptr) irq_->SetLevel(level);
  }
}

void DeviceShell::Reset() {
  Scope scope(*this);
  if (Executing()) CancelCommand();
  AbandonCommand();
  ResetRegisters();
  UpdateIrq();
}

bool DeviceShell::Busy() {
  Scope scope(*this);
  return BusyLocked();
}

DeviceStats DeviceShell::stats() {
  Scope scope(*this);
  DeviceStats s = stats_;
  s.bad_accesses = bad_.count();
  return s;
}

// ---------------------------------------------------------------------------------------------
// Saved state

Result<Bytes> DeviceShell::SaveState() {
  Scope scope(*this);
  if (BusyLocked()) {
    return Fail(Errc::kFailedPrecondition,
                fmt::format("the {} device is busy ({}); let it complete, then save", layout_.name,
                            layout_.busy));
  }
  return WrapState(layout_.state.magic, layout_.state.version, SaveRegisters());
}

Status DeviceShell::RestoreState(ByteSpan blob) {
  VTPM_ASSIGN_OR_RETURN(ByteSpan payload,
                        UnwrapState(layout_.state.magic, layout_.state.version, blob));
  Scope scope(*this);
  if (BusyLocked()) {
    return Fail(Errc::kFailedPrecondition,
                fmt::format("the {} device is busy ({}); restore into an idle one", layout_.name,
                            layout_.busy));
  }
  VTPM_RETURN_IF_ERROR(RestoreRegisters(payload));
  UpdateIrq();
  return Ok();
}

}  // namespace vtpm::device
