// TPM command/response headers (TPM 2.0 Part 1 §18 / TPM 1.2 Part 3 §3.1): tag(2) size(4) code(4).
#pragma once

#include <cstdint>
#include <optional>

#include "base/bytes.h"
#include "wire/tpm_constants.h"

namespace vtpm::wire {

inline constexpr size_t kTpmHeaderSize = 10;

// The TPM family (wire::TpmVersion is tpm::Version).
using TpmVersion = tpm::Version;

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

}  // namespace vtpm::wire
