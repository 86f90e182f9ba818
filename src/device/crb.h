// The TPM CRB interface (TCG PC Client PTP, Command Response Buffer) as a BusDevice: one or five
// 4 KiB locality windows at 0xFED40000, control area at +0x40, data buffer at +0x80 (3968 bytes).
//
// Register behaviour follows docs/DEVICES.md §2 and, where the spec leaves room, QEMU
// hw/tpm/tpm_crb.c (CTRL_REQ reads 0 at once, CMD/RSP address and size registers ignore
// firmware writes as edk2 makes them); differences are listed in docs/ARCHITECTURE.md.
//
// The data buffer is either inside the device (accessed by MMIO at +0x80, one exit per access)
// or, with CrbConfig::external_buffer, in guest RAM the VMM owns: CMD/RSP_ADDR then point there,
// the guest fills it with plain stores (no exits) and the device reads the command from it on
// CTRL_START and writes the response into it on completion.
//
// The lock, backend calls, completions, the interrupt line, Reset/Busy/stats and the saved-state
// envelope are DeviceShell's (device_shell.h), as for Tis; this file holds the registers and the
// locality/start state machine. The saved state: crb_state.h.
#pragma once

#include <array>
#include <memory>
#include <optional>
#include <span>
#include <string>

#include "device/crb_state.h"
#include "device/device_shell.h"
#include "device/regs.h"

namespace vtpm::device {

struct CrbExternalBuffer {
  uint64_t gpa = 0;         // guest-physical address the guest is told (CMD/RSP_ADDR)
  std::span<uint8_t> host;  // the VMM's mapping of it; >= 1024 bytes; must outlive the device
};

struct CrbConfig {
  uint8_t localities = 1;            // 1 (as QEMU, cloud-hypervisor) or 5
  uint64_t base_gpa = kTpmMmioBase;  // where the VMM maps the device
  // INTF_ID VID/DID/RID; defaults as QEMU's tpm-crb (IBM, 0, 0).
  uint16_t vendor_id = 0x1014;
  uint16_t device_id = 0x0000;
  uint8_t revision_id = 0x00;
  std::optional<CrbExternalBuffer> external_buffer;
  std::string label = "tpm-crb";
};

using CrbDeps = DeviceDeps;

// BusDevice, Reset(), SaveState()/RestoreState(), Busy() and stats() come from DeviceShell. A
// saved state is refused while CTRL_START reads 1; with an internal buffer the buffer's contents
// are part of it (an external one is guest RAM and migrates with it), and it restores only into
// a device with the same locality count and kind of buffer.
class Crb final : public DeviceShell {
 public:
  static Result<std::unique_ptr<Crb>> Create(const CrbConfig& config, CrbDeps deps);
  ~Crb() override;

  // Command/response buffer size the guest is told (CMD_SIZE/RSP_SIZE).
  uint32_t buffer_size() const { return buffer_size_; }
  // Guest-physical address of the buffer of locality 0 (what CMD_LADDR/RSP_ADDR read there).
  uint64_t buffer_gpa() const;

 private:
  Crb(const CrbConfig& config, CrbDeps deps, uint32_t buffer_size);

  // DeviceShell hooks (device lock held).
  void ReadPiece(const AccessPiece& piece, std::span<uint8_t> out) override;
  void WritePiece(const AccessPiece& piece, std::span<const uint8_t> in, uint64_t offset) override;
  void ResetRegisters() override;
  void CommandCompleted(Bytes response) override;
  bool IrqAsserted() const override;
  Bytes SaveRegisters() const override;
  Status RestoreRegisters(ByteSpan payload) override;

  // Registers, in the order of the register map.
  uint64_t ReadReg(uint8_t loc, int id);
  void WriteReg(uint8_t loc, int id, uint32_t value, uint32_t mask, uint64_t offset);
  void WriteLocCtrl(uint8_t loc, uint32_t value, uint64_t offset);
  void Relinquish(uint8_t loc);
  void Seize(uint8_t loc, uint64_t offset);
  void WriteCtrlReq(uint32_t value, uint64_t offset);
  void WriteCtrlStart(uint8_t loc, uint32_t value, uint64_t offset);
  void ReadData(uint32_t at, std::span<uint8_t> out) const;
  void WriteData(uint32_t at, std::span<const uint8_t> in, uint64_t offset);

  void SetActive(uint8_t loc, bool seize);
  void Start();
  std::span<uint8_t> Buffer();
  void Raise(uint32_t bits);

  const CrbConfig config_;
  const uint32_t buffer_size_;

  // --- Guarded by the device lock. ---
  CrbRegisters regs_;  // what a saved state holds (crb_state.h)
  // The command in flight (never saved: a device is saved between commands).
  bool discard_ = false;                // it was seized away: drop its response
  uint8_t cmd_locality_ = kNoLocality;  // the locality that started it
};

}  // namespace vtpm::device
