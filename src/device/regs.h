// Register offsets and bit fields of the TCG PC Client PTP FIFO (TIS 1.3) and CRB interfaces.
// Transcribed from the implementations that carry the spec's names (the spec text itself was not
// available): edk2 MdePkg/Include/IndustryStandard/TpmPtp.h, QEMU include/hw/acpi/tpm.h and
// hw/tpm/tpm_tis.h, Linux drivers/char/tpm/tpm_tis_core.h and tpm_crb.c; summarised with
// sources in docs/DEVICES.md §1 (TIS) and §2 (CRB).
#pragma once

#include <cstdint>

namespace vtpm::device {

inline constexpr uint64_t kTpmMmioBase = 0xFED40000;  // PTP: fixed base of locality 0
inline constexpr uint32_t kLocalityWindow = 0x1000;
inline constexpr uint32_t kNumLocalities = 5;
inline constexpr uint8_t kNoLocality = 0xFF;

namespace tis {
// Offsets within a locality window (docs/DEVICES.md §1.2).
inline constexpr uint16_t kAccess = 0x000;
inline constexpr uint16_t kIntEnable = 0x008;
inline constexpr uint16_t kIntVector = 0x00C;
inline constexpr uint16_t kIntStatus = 0x010;
inline constexpr uint16_t kIntfCapability = 0x014;
inline constexpr uint16_t kSts = 0x018;
inline constexpr uint16_t kHashEnd = 0x020;    // locality 4 only
inline constexpr uint16_t kDataFifo = 0x024;   // = TPM_HASH_DATA at locality 4
inline constexpr uint16_t kHashStart = 0x028;  // locality 4 only
inline constexpr uint16_t kInterfaceId = 0x030;
inline constexpr uint16_t kXDataFifo = 0x080;  // 0x80..0xBF (64-byte transfers)
inline constexpr uint16_t kXDataFifoSize = 0x40;
inline constexpr uint16_t kDidVid = 0xF00;
inline constexpr uint16_t kRid = 0xF04;

// TPM_ACCESS_x (docs/DEVICES.md §1.3).
inline constexpr uint8_t kAccessEstablishment = 1u << 0;  // 1 = NOT established
inline constexpr uint8_t kAccessRequestUse = 1u << 1;
inline constexpr uint8_t kAccessPendingRequest = 1u << 2;
inline constexpr uint8_t kAccessSeize = 1u << 3;
inline constexpr uint8_t kAccessBeenSeized = 1u << 4;
inline constexpr uint8_t kAccessActiveLocality = 1u << 5;
inline constexpr uint8_t kAccessValid = 1u << 7;

// TPM_INT_ENABLE_x / TPM_INT_STATUS_x (docs/DEVICES.md §1.4).
inline constexpr uint32_t kIntDataAvail = 1u << 0;
inline constexpr uint32_t kIntStsValid = 1u << 1;
inline constexpr uint32_t kIntLocalityChange = 1u << 2;
inline constexpr uint32_t kIntCommandReady = 1u << 7;
inline constexpr uint32_t kIntSupported =
    kIntDataAvail | kIntStsValid | kIntLocalityChange | kIntCommandReady;  // 0x87
inline constexpr uint32_t kIntPolarityMask = 3u << 3;
inline constexpr uint32_t kIntPolarityLowLevel = 1u << 3;
inline constexpr uint32_t kIntGlobalEnable = 1u << 31;

// TPM_STS_x (docs/DEVICES.md §1.6).
inline constexpr uint32_t kStsResponseRetry = 1u << 1;
inline constexpr uint32_t kStsSelfTestDone = 1u << 2;
inline constexpr uint32_t kStsExpect = 1u << 3;
inline constexpr uint32_t kStsDataAvail = 1u << 4;
inline constexpr uint32_t kStsGo = 1u << 5;
inline constexpr uint32_t kStsCommandReady = 1u << 6;
inline constexpr uint32_t kStsValid = 1u << 7;
inline constexpr uint32_t kStsCommandCancel = 1u << 24;       // TPM 2.0
inline constexpr uint32_t kStsResetEstablishment = 1u << 25;  // TPM 2.0, localities 3/4
inline constexpr uint32_t kStsFamilyTpm20 = 1u << 26;

// TPM_INTF_CAPABILITY_x (docs/DEVICES.md §1.5): QEMU's values, burst count dynamic, 64-byte transfers, low-level
// interrupts, all four interrupt sources; interface version 3 (PTP) or 2 (TIS 1.3).
inline constexpr uint32_t kIntfCapTpm20 = 0x30000697;
inline constexpr uint32_t kIntfCapTpm12 = 0x20000697;
// TPM_INTERFACE_ID_x (docs/DEVICES.md §1.7): FIFO, version 0, five localities, CapFIFO.
inline constexpr uint32_t kInterfaceIdTpm20 = 0x00002100;
inline constexpr uint32_t kInterfaceIdTpm12 = 0xFFFFFFFF;  // "all of it is don't care"
inline constexpr uint32_t kInterfaceIdIntfSelLock = 1u << 19;
}  // namespace tis

namespace crb {
// Offsets within a locality window (docs/DEVICES.md §2.2).
inline constexpr uint16_t kLocState = 0x00;
inline constexpr uint16_t kLocCtrl = 0x08;
inline constexpr uint16_t kLocSts = 0x0C;
inline constexpr uint16_t kIntfId = 0x30;   // 64-bit
inline constexpr uint16_t kCtrlExt = 0x38;  // 64-bit
inline constexpr uint16_t kCtrlReq = 0x40;
inline constexpr uint16_t kCtrlSts = 0x44;
inline constexpr uint16_t kCtrlCancel = 0x48;
inline constexpr uint16_t kCtrlStart = 0x4C;
inline constexpr uint16_t kIntEnable = 0x50;
inline constexpr uint16_t kIntSts = 0x54;
inline constexpr uint16_t kCmdSize = 0x58;
inline constexpr uint16_t kCmdLaddr = 0x5C;
inline constexpr uint16_t kCmdHaddr = 0x60;
inline constexpr uint16_t kRspSize = 0x64;
inline constexpr uint16_t kRspAddr = 0x68;  // 64-bit
inline constexpr uint16_t kDataBuffer = 0x80;
inline constexpr uint32_t kDataBufferSize = 0x1000 - 0x80;  // 3968

inline constexpr uint32_t kLocStateEstablished = 1u << 0;  // 1 = NOT established
inline constexpr uint32_t kLocStateAssigned = 1u << 1;
inline constexpr uint32_t kLocStateActiveShift = 2;
inline constexpr uint32_t kLocStateValid = 1u << 7;
inline constexpr uint32_t kLocCtrlRequest = 1u << 0;
inline constexpr uint32_t kLocCtrlRelinquish = 1u << 1;
inline constexpr uint32_t kLocCtrlSeize = 1u << 2;
inline constexpr uint32_t kLocCtrlResetEstablishment = 1u << 3;
inline constexpr uint32_t kLocStsGranted = 1u << 0;
inline constexpr uint32_t kLocStsBeenSeized = 1u << 1;
inline constexpr uint32_t kReqCmdReady = 1u << 0;
inline constexpr uint32_t kReqGoIdle = 1u << 1;
inline constexpr uint32_t kStsFatal = 1u << 0;
inline constexpr uint32_t kStsIdle = 1u << 1;
inline constexpr uint32_t kStartInvoke = 1u << 0;
inline constexpr uint32_t kCancelInvoke = 1u << 0;
inline constexpr uint32_t kIntStart = 1u << 0;
inline constexpr uint32_t kIntCmdReady = 1u << 1;
inline constexpr uint32_t kIntEstablishmentClear = 1u << 2;
inline constexpr uint32_t kIntLocalityChange = 1u << 3;
inline constexpr uint32_t kIntSupported = 0xF;
inline constexpr uint32_t kIntGlobalEnable = 1u << 31;
// TPM_CRB_INTF_ID low word: type CRB, version CRB, XferSize 64 B, CapCRB, selector CRB (QEMU's
// 0x00025811); CapLocality (bit 8) is added when five localities are modelled.
inline constexpr uint32_t kIntfIdLow = 0x00025811;
inline constexpr uint32_t kIntfIdCapLocality = 1u << 8;
}  // namespace crb

}  // namespace vtpm::device
