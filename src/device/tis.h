// The TPM TIS / PTP FIFO interface (TCG PC Client Platform TPM Profile, FIFO interface; TIS 1.3
// for the TPM 1.2 personality) as a BusDevice over 5 locality windows of 4 KiB at 0xFED40000.
//
// Behaviour follows the spec as transcribed in docs/DEVICES.md §1 and, where the spec
// leaves room, QEMU's hw/tpm/tpm_tis_common.c (so guests see what they see on QEMU); deliberate
// differences are listed in docs/ARCHITECTURE.md ("TIS/CRB model: behaviour where the spec
// leaves room, and differences from QEMU").
//
// The lock, the backend calls, completions, interrupt line, Reset/Busy/stats and the saved-state
// envelope are DeviceShell's (device_shell.h); this file holds the registers and the command
// state machine. A command runs on the backend's thread; the vCPU that wrote tpmGo returns at
// once and the guest polls STS (or waits for the interrupt). The saved state: tis_state.h.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>

#include "base/bytes.h"
#include "base/result.h"
#include "device/device_shell.h"
#include "device/regs.h"
#include "device/tis_state.h"

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
  // Command/response buffer; the smaller of this, kTisMaxBuffer and the backend's BufferSize()
  // is used.
  uint32_t buffer_size = 4096;
  std::string label = "tpm-tis";
};

using TisDeps = DeviceDeps;

// BusDevice, Reset(), SaveState()/RestoreState(), Busy() and stats() come from DeviceShell.
// Busy() also while a locality-4 hash sequence is open; a saved state must come from a device
// of the same family.
class Tis final : public DeviceShell {
 public:
  static constexpr uint64_t kSize = uint64_t{kNumLocalities} * kLocalityWindow;  // 0x5000

  static Result<std::unique_ptr<Tis>> Create(const TisConfig& config, TisDeps deps);
  ~Tis() override;

 private:
  using State = TisCommandState;
  // What happens when the executing command completes after an abort was requested.
  enum class AfterAbort : uint8_t { kNone, kReady, kSwitch, kIdle };

  Tis(const TisConfig& config, TisDeps deps, uint32_t buffer_size);

  // DeviceShell hooks (device lock held).
  void ReadPiece(const AccessPiece& piece, std::span<uint8_t> out) override;
  void WritePiece(const AccessPiece& piece, std::span<const uint8_t> in, uint64_t offset) override;
  void ResetRegisters() override;
  void CommandCompleted(Bytes response) override;
  bool IrqAsserted() const override;
  bool HoldsOtherWork() const override { return hashing_; }
  Bytes SaveRegisters() const override;
  Status RestoreRegisters(ByteSpan payload) override;

  // Registers, in the order of the register map.
  uint32_t ReadReg32(uint8_t loc, int id);
  uint8_t AccessValue(uint8_t loc);
  void WriteAccess(uint8_t loc, uint8_t value, uint64_t offset);
  void Relinquish(uint8_t loc);
  void Seize(uint8_t loc, uint64_t offset);
  bool ActiveOrBad(uint8_t loc, std::string_view what, uint64_t offset);
  uint32_t StsValue() const;
  uint32_t BurstCount() const;
  void WriteSts(uint8_t loc, uint32_t value, uint64_t offset);
  void WriteStsTpm20(uint8_t loc, uint32_t value, uint64_t offset);
  void CommandReady(uint8_t loc);
  void WriteHash(int id, uint64_t offset);
  void WriteFifoByte(uint8_t loc, uint8_t b, uint64_t offset);
  uint8_t ReadFifoByte(uint8_t loc);
  void FlushHash();
  void CloseHash();

  // Command state machine and localities.
  void Go();
  void Abort(AfterAbort after, uint8_t next);
  void FinishAbort();
  void SetActive(uint8_t loc, bool seize);
  void ClearCommandState();
  void Raise(uint8_t loc, uint32_t bits);
  uint32_t ExpectedLength() const;

  const TisConfig config_;
  const uint32_t buffer_size_;

  // --- Guarded by the device lock. ---
  TisRegisters regs_;  // what a saved state holds (tis_state.h); command reserved to buffer_size_
  // Transient, never saved: an abort waiting for the command to complete, a hash sequence.
  AfterAbort after_abort_ = AfterAbort::kNone;
  uint8_t next_locality_ = kNoLocality;
  bool next_is_seize_ = false;
  bool hashing_ = false;
  Bytes hash_buf_;
};

}  // namespace vtpm::device
