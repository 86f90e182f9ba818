// TPM command/response headers (TPM 2.0 Part 1 §18 / TPM 1.2 Part 3 §3.1): tag(2) size(4) code(4).
#pragma once

#include <cstdint>
#include <optional>

#include "base/bytes.h"

namespace vtpm::wire {

inline constexpr size_t kTpmHeaderSize = 10;

// The TPM family: the one version enum of every layer (engine, state files, device models).
enum class TpmVersion : uint8_t { kTpm12 = 0, kTpm20 = 1 };

// TPM 2.0 tags.
inline constexpr uint16_t kTpmStNoSessions = 0x8001;
inline constexpr uint16_t kTpmStSessions = 0x8002;
// TPM 1.2 tags: commands 0x00C1..0x00C3, responses 0x00C4..0x00C6.
inline constexpr uint16_t kTpm12TagRquCommand = 0x00C1;
inline constexpr uint16_t kTpm12TagRquAuth2Command = 0x00C3;
inline constexpr uint16_t kTpm12TagRspCommand = 0x00C4;

// TPM 2.0 codes used by the daemon itself.
inline constexpr uint32_t kTpmCcStartup = 0x144;
inline constexpr uint32_t kTpmCcShutdown = 0x145;
inline constexpr uint32_t kTpmCcSelfTest = 0x143;
// swtpm's vendor command TPM2_CC_SET_LOCALITY {header, u8 locality} (--locality
// allow-set-locality): a TPM 2 client selects the locality on the data channel.
inline constexpr uint32_t kTpmCcSwtpmSetLocality = 0x20001000;
inline constexpr uint16_t kTpmSuClear = 0x0000;
inline constexpr uint16_t kTpmSuState = 0x0001;
inline constexpr uint32_t kTpmRcSuccess = 0x000;
inline constexpr uint32_t kTpmRcValue = 0x084;
inline constexpr uint32_t kTpmRcInitialize = 0x100;
inline constexpr uint32_t kTpmRcFailure = 0x101;
inline constexpr uint32_t kTpmRcCommandSize = 0x142;
inline constexpr uint32_t kTpmRcLocality = 0x907;
// TPM 1.2 codes.
inline constexpr uint32_t kTpm12Startup = 0x99;
inline constexpr uint16_t kTpm12StClear = 0x0001;
inline constexpr uint16_t kTpm12StState = 0x0002;
inline constexpr uint16_t kTpm12StDeactivated = 0x0003;
inline constexpr uint32_t kTpm12Fail = 0x09;
inline constexpr uint32_t kTpm12BadParamSize = 0x19;
inline constexpr uint32_t kTpm12BadLocality = 0x3d;

struct TpmHeader {
  uint16_t tag;
  uint32_t size;  // whole command/response, header included
  uint32_t code;  // command code or response code
};

// Parses the first 10 bytes; fails when fewer are given. Does not judge the values.
std::optional<TpmHeader> ParseHeader(ByteSpan b);

// True for the tags a TPM 2.0 or 1.2 command can carry.
bool IsCommandTag(uint16_t tag);

// The response code of a response, or TPM_RC_FAILURE for something too short to be one.
uint32_t ResponseCode(ByteSpan response);

// A header-only response: tag, size 10, |rc|.
Bytes ErrorResponse(uint16_t tag, uint32_t rc);
// The 10-byte fatal error a TPM answers when it is not running: TPM 2 `8001 0000000a 00000101`,
// TPM 1.2 `00c4 0000000a 00000009` (QEMU's version probe relies on the tag; docs/PROTOCOLS.md
// §2.2).
Bytes NotRunningResponse(bool tpm2);

// The answer to a command at a locality the TPM refuses: TPM 2 `8001 0000000a 00000907`
// (TPM_RC_LOCALITY), TPM 1.2 `00c4 0000000a 0000003d` (TPM_BAD_LOCALITY).
Bytes LocalityErrorResponse(bool tpm2);

// Command bytes for TPM2_Startup / TPM2_Shutdown / TPM_Startup (1.2).
Bytes Tpm2StartupCommand(uint16_t startup_type);
Bytes Tpm2ShutdownCommand(uint16_t shutdown_type);
Bytes Tpm12StartupCommand(uint16_t startup_type);

}  // namespace vtpm::wire
