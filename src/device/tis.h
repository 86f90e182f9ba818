// The TPM TIS / PTP FIFO interface (TCG PC Client Platform TPM Profile, FIFO interface; TIS 1.3
// for the TPM 1.2 personality) as a BusDevice over 5 locality windows of 4 KiB at 0xFED40000.
//
// Behaviour follows the spec as transcribed in shared/notes/DEVICES.md §1 and, where the spec
// leaves room, QEMU's hw/tpm/tpm_tis_common.c (so guests see what they see on QEMU); deliberate
// differences are listed in docs/ARCHITECTURE.md ("TIS model: differences from QEMU").
//
// Threading: one mutex per device, taken by every Read/Write, by backend completions and by
// Save/Restore/Reset. Lock order: device mutex -> IrqLine (SetLevel is called under it). Backend
// calls are made after the mutex is released. A command runs on the backend's thread; the vCPU
// that wrote tpmGo returns at once and the guest polls STS (or waits for the interrupt).
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/bytes.h"
#include "base/log.h"
#include "base/result.h"
#include "device/backend_work.h"
#include "device/bus_device.h"
#include "device/mmio.h"
#include "device/regs.h"
#include "device/tis_state.h"
#include "device/tpm_backend.h"

namespace vtpm::device {

struct TisConfig {
  TpmFamily family = TpmFamily::kTpm20;
  // What TPM_INT_VECTOR reads (the IRQ the VMM wired, 1..15; 0 = none). Guest writes are
  // ignored: the line is fixed by the VMM, as in QEMU.
  uint8_t irq_vector = 0;
  // DID_VID / RID. Avoid VIDs Linux keys quirks on (0x8086, 0x1114, 0x15D1, 0x1050, 0x104A).
  uint16_t vendor_id = 0x1014;
  uint16_t device_id = 0x0001;
  uint8_t revision_id = 0x01;
  // Command/response buffer; the smaller of this and the backend's BufferSize() is used.
  uint32_t buffer_size = 4096;
  std::string label = "tpm-tis";
};

struct TisDeps {
  TpmBackend* backend = nullptr;  // required; must outlive the device
  IrqLine* irq = nullptr;         // optional (polling-only guests); must outlive the device
  Logger log;                     // optional (default: discard)
};

struct DeviceStats {
  uint64_t bad_accesses = 0;
  uint64_t commands = 0;
  uint64_t cancels = 0;
};

class Tis final : public BusDevice {
 public:
  static constexpr uint64_t kSize = uint64_t{kNumLocalities} * 0x1000;  // 0x5000
  static constexpr uint32_t kStateVersion = 1;

  static Result<std::unique_ptr<Tis>> Create(const TisConfig& config, TisDeps deps);
  ~Tis() override;
  Tis(const Tis&) = delete;
  Tis& operator=(const Tis&) = delete;

  void Read(const BusAccess& access, std::span<uint8_t> data) override;
  void Write(const BusAccess& access, std::span<const uint8_t> data) override;
  uint64_t size() const override { return kSize; }
  std::string_view DebugLabel() const override { return config_.label; }

  // Power-on state (VM reset). A command still running in the backend is cancelled and its
  // response discarded.
  void Reset();
  // Device state for snapshots/migration (versioned envelope, see mmio.h). Refused while a
  // command executes or a locality-4 hash sequence is open: pause the vCPUs, let the command
  // finish (Busy() false), then save.
  Result<Bytes> SaveState();
  // Replaces the register state. The device must not be Busy(); the blob must come from a device
  // with the same family.
  Status RestoreState(ByteSpan blob);
  bool Busy();
  DeviceStats stats();

  // Called by completions (internal; public for the completion trampoline).
  void OnCompletionLocked(uint64_t seq, Bytes response);

 private:
  enum class State : uint8_t { kIdle, kReady, kReception, kExecution, kCompletion };
  // What happens when the executing command completes after an abort was requested.
  enum class AfterAbort : uint8_t { kNone, kReady, kSwitch, kIdle };
  struct Locality {
    bool request_use = false;
    bool been_seized = false;
    uint32_t int_enable = 0;
    uint32_t int_status = 0;
  };

  Tis(const TisConfig& config, TisDeps deps, uint32_t buffer_size);
  void ResetLocked();
  void ReadPiece(uint8_t loc, const RegDef* reg, uint32_t byte_offset, std::span<uint8_t> out);
  void WritePiece(uint8_t loc, const RegDef* reg, uint32_t byte_offset, std::span<const uint8_t> in,
                  uint64_t offset);
  uint32_t ReadReg32(uint8_t loc, int id);
  uint32_t StsValue() const;
  uint8_t AccessValue(uint8_t loc);
  void WriteAccess(uint8_t loc, uint8_t value, uint64_t offset);
  void WriteSts(uint8_t loc, uint32_t value, uint64_t offset);
  void WriteFifoByte(uint8_t loc, uint8_t b, uint64_t offset);
  uint8_t ReadFifoByte(uint8_t loc);
  void StartCommand();
  void Abort(AfterAbort after, uint8_t next);
  void FinishAbort();
  void SetActive(uint8_t loc, bool seize);
  void Raise(uint8_t loc, uint32_t bits);
  void UpdateIrqLocked();
  bool Executing() const { return inflight_seq_ != 0; }
  uint32_t ExpectedLength() const;
  void FlushHash();

  const TisConfig config_;
  TpmBackend* const backend_;
  IrqLine* const irq_;
  Logger log_;
  const uint32_t buffer_size_;
  std::shared_ptr<internal::Anchor<Tis>> anchor_;  // anchor_->mu is the device lock

  // --- Guarded by anchor_->mu. ---
  std::array<Locality, kNumLocalities> loc_{};
  uint8_t active_ = kNoLocality;
  uint8_t owner_ = kNoLocality;  // locality the command state below belongs to
  State state_ = State::kIdle;
  Bytes cmd_;  // reserved to buffer_size_, size() = bytes received
  Bytes rsp_;  // response being read
  uint32_t rsp_pos_ = 0;
  uint64_t inflight_seq_ = 0;  // 0: no command in the backend
  uint64_t next_seq_ = 1;
  AfterAbort after_abort_ = AfterAbort::kNone;
  uint8_t next_locality_ = kNoLocality;
  bool next_is_seize_ = false;
  bool selftest_done_ = false;
  bool intf_sel_lock_ = false;
  bool hashing_ = false;
  Bytes hash_buf_;
  bool irq_level_ = false;
  uint32_t last_command_code_ = 0;
  BadAccessCounter bad_;
  DeviceStats stats_{};
  std::vector<internal::BackendOp> ops_;  // issued after the lock is released
};

}  // namespace vtpm::device
