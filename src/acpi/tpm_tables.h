// ACPI for a virtual TPM: the TPM2 table (TCG ACPI spec, revision 4 layout as Linux 6.1's
// struct acpi_table_tpm2 + acpi_tpm2_phy read it), the TCPA table for TPM 1.2 (client layout),
// and the AML of the TPM device for the VMM's DSDT (or a standalone SSDT).
// Layouts and the choices below: docs/DEVICES.md §4.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/bytes.h"

namespace vtpm::acpi {

// Fields of the common ACPI table header that identify the producer.
struct TableIds {
  std::string oem_id = "VTPM";        // padded to 6 with spaces
  std::string oem_table_id = "VTPM";  // padded to 8 with spaces
  uint32_t oem_revision = 1;
  std::string creator_id = "VTPM";  // padded to 4 with spaces
  uint32_t creator_revision = 1;
};

// TPM2 start methods (ACPI_TPM2_MEMORY_MAPPED / ACPI_TPM2_COMMAND_BUFFER).
enum class StartMethod : uint32_t { kTisFifo = 6, kCrb = 7 };

struct Tpm2TableConfig {
  StartMethod start_method = StartMethod::kCrb;
  // Address of the CRB control area (CRB: device base + 0x40, which Linux requires for locality
  // handling); 0 for TIS (as QEMU).
  uint64_t control_area = 0;
  uint16_t platform_class = 0;  // 0 client, 1 server
  // Event log area. With |log_fields| the table is 76 bytes (Linux reads LAML/LASA from it for
  // the ACPI event log; both 0 means "no log", and Linux then tries EFI); without, 64 bytes.
  bool log_fields = true;
  uint32_t log_area_minimum_length = 0;
  uint64_t log_area_start_address = 0;
  TableIds ids;
};

// The TPM2 table, revision 4, checksummed.
Bytes BuildTpm2Table(const Tpm2TableConfig& config);

struct TcpaTableConfig {
  uint32_t log_area_minimum_length = 0x10000;
  uint64_t log_area_start_address = 0;
  TableIds ids;
};

// The TCPA table for a TPM 1.2 (client: platform class 0), revision 2, 50 bytes.
Bytes BuildTcpaTable(const TcpaTableConfig& config);

// The ACPI device node of the TPM.
struct TpmDeviceConfig {
  std::string name = "TPM";  // ACPI name segment, 1..4 of [A-Z0-9_], padded with '_'
  bool tpm2 = true;          // _HID "MSFT0101" (TPM 2.0) or EisaId("PNP0C31") (TPM 1.2)
  uint64_t base = 0xFED40000;
  uint32_t size = 0x5000;  // TIS: 0x5000, CRB: 0x1000 (QEMU's _CRS sizes)
  uint32_t uid = 1;
  // Extra memory ranges in _CRS (a CRB data buffer the VMM placed in reserved RAM).
  std::vector<std::pair<uint32_t, uint32_t>> extra_ranges;
  // An interrupt in _CRS: Interrupt(ResourceConsumer, Level, ActiveHigh, Exclusive) {irq}.
  // Without one the guest polls (as on QEMU, VirtualBox, cloud-hypervisor); with one, Linux runs
  // its interrupt test (tpm_tis) and then waits on the interrupt.
  std::optional<uint32_t> irq;
};

// The AML of Device(<name>) { _HID, _STR, _UID, _STA, _CRS } to place in the
// VMM's DSDT inside Scope(\_SB).
Result<Bytes> BuildTpmDeviceAml(const TpmDeviceConfig& config);

// A complete SSDT holding Scope(\_SB) { <device> } (for VMMs that add an SSDT rather than edit
// their DSDT, and for decompiling in tests).
Result<Bytes> BuildTpmSsdt(const TpmDeviceConfig& config, const TableIds& ids = {});

// Sets byte 9 (checksum) of a complete ACPI table so that all bytes sum to 0.
void FixChecksum(Bytes& table);

}  // namespace vtpm::acpi
