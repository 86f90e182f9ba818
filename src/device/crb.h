// The TPM CRB interface (TCG PC Client PTP, Command Response Buffer) as a BusDevice: one or five
// 4 KiB locality windows at 0xFED40000, control area at +0x40, data buffer at +0x80 (3968 bytes).
//
// Register behaviour follows shared/notes/DEVICES.md §1.12 and, where the spec leaves room, QEMU
// hw/tpm/tpm_crb.c (CTRL_REQ reads 0 at once, CMD/RSP address and size registers ignore
// firmware writes as edk2 makes them); differences are listed in docs/ARCHITECTURE.md.
//
// The data buffer is either inside the device (accessed by MMIO at +0x80, one exit per access)
// or, with CrbConfig::external_buffer, in guest RAM the VMM owns: CMD/RSP_ADDR then point there,
// the guest fills it with plain stores (no exits) and the device reads the command from it on
// CTRL_START and writes the response into it on completion.
//
// Threading as for Tis: one mutex per device (lock order: device -> IrqLine), backend calls made
// outside it, completion on the backend's thread.
#pragma once

#include <array>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "device/backend_work.h"
#include "device/bus_device.h"
#include "device/mmio.h"
#include "device/regs.h"
#include "device/tis.h"  // DeviceStats
#include "device/tpm_backend.h"

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

struct CrbDeps {
  TpmBackend* backend = nullptr;  // required; must outlive the device
  IrqLine* irq = nullptr;         // optional
  Logger log;
};

class Crb final : public BusDevice {
 public:
  static constexpr uint32_t kStateVersion = 1;

  static Result<std::unique_ptr<Crb>> Create(const CrbConfig& config, CrbDeps deps);
  ~Crb() override;
  Crb(const Crb&) = delete;
  Crb& operator=(const Crb&) = delete;

  void Read(const BusAccess& access, std::span<uint8_t> data) override;
  void Write(const BusAccess& access, std::span<const uint8_t> data) override;
  uint64_t size() const override { return uint64_t{config_.localities} * kLocalityWindow; }
  std::string_view DebugLabel() const override { return config_.label; }

  // Command/response buffer size the guest is told (CMD_SIZE/RSP_SIZE).
  uint32_t buffer_size() const { return buffer_size_; }
  // Guest-physical address of the buffer of locality 0 (what CMD_LADDR/RSP_ADDR read there).
  uint64_t buffer_gpa() const;

  void Reset();
  // As Tis: refused while a command executes (CTRL_START reads 1). With an internal buffer the
  // buffer's contents are part of the state; an external one is guest RAM and migrates with it.
  Result<Bytes> SaveState();
  Status RestoreState(ByteSpan blob);
  bool Busy();
  DeviceStats stats();

  void OnCompletionLocked(uint64_t seq, Bytes response);

 private:
  struct Locality {
    bool pending = false;
    bool been_seized = false;
  };
  Crb(const CrbConfig& config, CrbDeps deps, uint32_t buffer_size);
  void ResetLocked();
  uint64_t ReadReg(uint8_t loc, int id);
  void WriteReg(uint8_t loc, int id, uint64_t value, uint64_t mask, uint64_t offset);
  void WriteLocCtrl(uint8_t loc, uint32_t v, uint64_t offset);
  void SetActive(uint8_t loc, bool seize);
  void Start();
  std::span<uint8_t> Buffer();
  void Raise(uint32_t bits);
  void UpdateIrqLocked();
  bool Executing() const { return inflight_seq_ != 0; }

  const CrbConfig config_;
  TpmBackend* const backend_;
  IrqLine* const irq_;
  Logger log_;
  const uint32_t buffer_size_;
  std::shared_ptr<internal::Anchor<Crb>> anchor_;

  // --- Guarded by anchor_->mu. ---
  std::array<Locality, kNumLocalities> loc_{};
  uint8_t active_ = kNoLocality;
  bool idle_ = true;     // CTRL_STS.tpmIdle
  bool fatal_ = false;   // CTRL_STS.tpmSts
  uint32_t cancel_ = 0;  // CTRL_CANCEL as written
  uint32_t int_enable_ = 0;
  uint32_t int_status_ = 0;
  uint64_t inflight_seq_ = 0;  // CTRL_START reads 1 while non-zero
  uint64_t next_seq_ = 1;
  bool discard_ = false;                // the executing command was seized away: drop its response
  uint8_t cmd_locality_ = kNoLocality;  // locality that started the executing command
  bool irq_level_ = false;
  std::vector<uint8_t> internal_buffer_;
  BadAccessCounter bad_;
  DeviceStats stats_{};
  std::vector<internal::BackendOp> ops_;
};

}  // namespace vtpm::device
