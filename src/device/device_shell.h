// DeviceShell: what the TIS and CRB models share, written once. A model derives from it and
// supplies its register map (DeviceLayout) and the hooks below (its registers and state
// machine); the shell owns the rest:
//  - the device lock, taken by every Read/Write, backend completion, Reset and Save/Restore
//    (lock order: device lock -> IrqLine);
//  - splitting each guest access into per-register pieces for the model's handlers, and the
//    bytes beyond the last locality window;
//  - the backend operations a model queues under the lock, issued in order once it is released
//    (a backend may complete inline, and a completion takes the lock);
//  - the command in flight: its sequence number, and the completion anchor through which a
//    completion that arrives after the device was destroyed, reset, or moved on is dropped;
//  - the interrupt line (SetLevel called only on a change of the level the model derives);
//  - stats() and the rate-limited log of rejected guest accesses;
//  - Reset(), Busy(), and the saved-state envelope (magic, version, length, payload, CRC-32,
//    64 KiB cap) around the payload the model encodes; refused while the device is busy.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/bytes.h"
#include "base/log.h"
#include "base/result.h"
#include "device/bus_device.h"
#include "device/mmio.h"
#include "device/regs.h"
#include "device/tpm_backend.h"

namespace vtpm::device {

struct DeviceDeps {
  TpmBackend* backend = nullptr;  // required; must outlive the device
  IrqLine* irq = nullptr;         // optional (polling-only guests); must outlive the device
  Logger log;                     // optional (default: discard)
};

struct DeviceStats {
  uint64_t bad_accesses = 0;
  uint64_t commands = 0;
  uint64_t cancels = 0;
};

// How a saved state is framed (WrapState in mmio.h).
struct StateFormat {
  std::string_view magic;  // up to 8 characters
  uint32_t version;
};

// What the shell needs to know about a model's register file.
struct DeviceLayout {
  std::string_view name;         // "TIS", "CRB": for messages
  uint32_t windows;              // locality windows of kLocalityWindow bytes
  std::span<const RegDef> regs;  // the registers of one window (static storage)
  StateFormat state;
  std::string_view busy;  // what keeps the device Busy(), for the refusals of Save/Restore
};

class DeviceShell : public BusDevice {
 public:
  ~DeviceShell() override;
  DeviceShell(const DeviceShell&) = delete;
  DeviceShell& operator=(const DeviceShell&) = delete;

  void Read(const BusAccess& access, std::span<uint8_t> data) final;
  void Write(const BusAccess& access, std::span<const uint8_t> data) final;
  uint64_t size() const final { return uint64_t{layout_.windows} * kLocalityWindow; }
  std::string_view DebugLabel() const final { return label_; }

  // Power-on state (VM reset). A command still running in the backend is cancelled and its
  // response discarded.
  void Reset();
  // Device state for snapshots/migration. Refused while Busy(): pause the vCPUs, let the command
  // finish, then save. The engine's state travels separately.
  Result<Bytes> SaveState();
  // Replaces the register state with a saved one, or fails and leaves the device untouched. The
  // device must not be Busy(); the blob must come from a device configured the same way.
  Status RestoreState(ByteSpan blob);
  bool Busy();
  DeviceStats stats();

 protected:
  // For the models' Create(): requires a backend, defaults the log, and returns the buffer size
  // to use: the smaller of |model_limit| and the backend's, at least 1 KiB.
  static Result<uint32_t> PrepareDeps(std::string_view name, DeviceDeps& deps,
                                      uint32_t model_limit);
  DeviceShell(const DeviceLayout& layout, DeviceDeps deps, const std::string& label);
  // Every model's destructor calls this first: once it returns, no completion reaches the model
  // (whose members are destroyed before this base), and a running command is cancelled.
  void Detach();

  // --- What a model supplies. Called with the device lock held. ---
  // One piece of a guest access within locality window |piece.window| (< windows); |piece.reg| is
  // nullptr for bytes between registers. |offset| is where the piece starts, for logs.
  virtual void ReadPiece(const AccessPiece& piece, std::span<uint8_t> out) = 0;
  virtual void WritePiece(const AccessPiece& piece, std::span<const uint8_t> in,
                          uint64_t offset) = 0;
  // Power-on register state. A command in flight has been cancelled and forgotten already.
  virtual void ResetRegisters() = 0;
  // The response to the command StartCommand() issued (well-formed or not: the model checks).
  // Backend operations queued here are issued with the next guest access.
  virtual void CommandCompleted(Bytes response) = 0;
  // The interrupt line's level, derived from the register state.
  virtual bool IrqAsserted() const = 0;
  // Work the device holds besides a command in flight (TIS: an open locality-4 hash sequence).
  virtual bool HoldsOtherWork() const { return false; }
  // The saved-state payload (the model's codec), and its inverse: decode, check that it fits
  // this device, apply; on failure nothing changes. The shell re-derives the interrupt line.
  virtual Bytes SaveRegisters() const = 0;
  virtual Status RestoreRegisters(ByteSpan payload) = 0;

  // --- What the shell offers a model. Called with the device lock held. ---
  bool Executing() const { return inflight_seq_ != 0; }
  // Queues |command| to the backend; Executing() until CommandCompleted() or AbandonCommand().
  void StartCommand(uint8_t locality, Bytes command);
  // Asks the backend to cancel the command in flight (it still completes).
  void CancelCommand();
  // The command in flight is no longer this device's: its completion will be dropped.
  void AbandonCommand() { inflight_seq_ = 0; }
  void QueueResetEstablished(uint8_t locality);
  void QueueHashStart();
  void QueueHashData(Bytes data);
  void QueueHashEnd();
  // A guest access the model rejects: counted, logged at a decreasing rate.
  void BadAccess(std::string_view what, uint64_t offset) { bad_.Record(what, offset); }
  // For cached queries only (TpmEstablished()); operations go through the queue.
  TpmBackend& backend() const { return *backend_; }
  bool irq_level() const { return irq_level_; }

 private:
  // A backend call decided under the lock, made after it is released.
  struct BackendOp {
    enum Kind : uint8_t { kSubmit, kCancel, kHashStart, kHashData, kHashEnd, kResetEstablished };
    Kind kind;
    uint8_t locality = 0;
    uint64_t seq = 0;
    Bytes data;
  };
  struct Anchor;
  class Scope;

  bool BusyLocked() const { return Executing() || HoldsOtherWork(); }
  void Queue(BackendOp::Kind kind, uint8_t locality = 0, uint64_t seq = 0, Bytes data = {});
  void CheckWidth(const BusAccess& access, size_t width);
  void Complete(uint64_t seq, Bytes response);
  void UpdateIrq();
  void Issue(std::vector<BackendOp>& ops);

  const DeviceLayout layout_;
  const std::string label_;
  TpmBackend* const backend_;
  IrqLine* const irq_;
  const std::shared_ptr<Anchor> anchor_;  // anchor_->mu is the device lock

  // --- Guarded by the device lock. ---
  uint64_t inflight_seq_ = 0;  // 0: no command in the backend for this device
  uint64_t next_seq_ = 1;
  bool irq_level_ = false;
  BadAccessCounter bad_;
  DeviceStats stats_{};
  std::vector<BackendOp> ops_;  // issued after the lock is released
};

}  // namespace vtpm::device
