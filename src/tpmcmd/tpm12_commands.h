// The few TPM 1.2 commands provisioning needs (TPM Main Specification Level 2 Version 1.2,
// Revision 116, Part 3 "Commands"; TSC_ = TCG PC Client TPM Interface Specification).
// Pure marshalling: the one command that needs cryptography (TakeOwnership: OAEP-encrypted
// secrets and an HMAC) takes those values ready-made from the caller.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/bytes.h"
#include "base/result.h"
#include "tpmcmd/transport.h"
#include "wire/tpm_constants.h"

namespace vtpm::tpmcmd::tpm12 {

// The TPM 1.2 tags, TPM_Startup and result codes used elsewhere are in wire/tpm_constants.h.
inline constexpr uint16_t kTagRquCommand = tpm::kTpm12TagRquCommand;
inline constexpr uint16_t kTagRquAuth1Command = 0x00c2;

inline constexpr uint32_t kOrdOiap = 0x0000000a;
inline constexpr uint32_t kOrdTakeOwnership = 0x0000000d;
inline constexpr uint32_t kOrdPhysicalEnable = 0x0000006f;
inline constexpr uint32_t kOrdPhysicalSetDeactivated = 0x00000072;
inline constexpr uint32_t kOrdCreateEndorsementKeyPair = 0x00000078;
inline constexpr uint32_t kOrdNvDefineSpace = 0x000000cc;
inline constexpr uint32_t kOrdNvWriteValue = 0x000000cd;
inline constexpr uint32_t kOrdTscPhysicalPresence = 0x4000000a;

// TPM_PHYSICAL_PRESENCE values
inline constexpr uint16_t kPhysicalPresencePresent = 0x0008;
inline constexpr uint16_t kPhysicalPresenceCmdEnable = 0x0020;

// TPM_NV_INDEX values and TPM_NV_PER_* bits
inline constexpr uint32_t kNvIndexDBit = 0x10000000;
inline constexpr uint32_t kNvIndexEkCert = 0x0000f000;
inline constexpr uint32_t kNvIndexPlatformCert = 0x0000f002;
inline constexpr uint32_t kNvIndexLock = 0xffffffff;
inline constexpr uint32_t kNvPerOwnerWrite = 0x00000002;
inline constexpr uint32_t kNvPerOwnerRead = 0x00020000;

inline constexpr size_t kDigestSize = 20;
using Digest = std::array<uint8_t, kDigestSize>;

// The response code name ("TPM_OWNER_SET (0x14)").
std::string DescribeRc(uint32_t rc);

// Checks tag/size/return code; returns the bytes after the header. |name| for messages.
Result<ByteSpan> CheckResponse(ByteSpan response, std::string_view name);

// TPM_Startup(|type|: tpm::kTpm12StClear, kTpm12StState, kTpm12StDeactivated)
Bytes Startup(uint16_t type);
// TSC_PhysicalPresence (TPM Interface Specification)
Bytes TscPhysicalPresence(uint16_t physical_presence);
// TPM_PhysicalEnable
Bytes PhysicalEnable();
// TPM_PhysicalSetDeactivated
Bytes PhysicalSetDeactivated(bool deactivated);

// TPM_CreateEndorsementKeyPair for a 2048-bit RSA EK, OAEP/SHA-1, no signing.
Bytes CreateEndorsementKeyPair(const Digest& anti_replay);
struct EndorsementKey {
  Bytes modulus;  // 256 bytes, public exponent 65537
  Digest checksum;
};
Result<EndorsementKey> ParseCreateEndorsementKeyPair(ByteSpan response);

// TPM_OIAP
Bytes Oiap();
struct OiapSession {
  uint32_t auth_handle = 0;
  Digest nonce_even{};
};
Result<OiapSession> ParseOiap(ByteSpan response);

// TPM_TakeOwnership with TPM_PID_OWNER and a 2048-bit storage SRK that always
// needs authorization. Build it in two steps: the bytes the caller hashes for the parameter
// digest (ordinal .. srkParams), then the complete command with the caller's HMAC.
struct TakeOwnership {
  Bytes enc_owner_auth;  // owner auth, OAEP(SHA-1, label "TCPA")-encrypted to the EK
  Bytes enc_srk_auth;    // SRK auth, likewise
  uint32_t auth_handle = 0;
  Digest nonce_odd{};
  // SHA-1 of this is inParamDigest (the ordinal and the parameters 1S..7S).
  Bytes ParamDigestInput() const;
  Bytes Marshal(const Digest& owner_auth_hmac) const;
};

// TPM_NV_DefineSpace without owner authorization (allowed before the NV lock),
// no PCR restrictions, all localities, as swtpm_setup defines its certificate indices.
Bytes NvDefineSpace(uint32_t nv_index, uint32_t permissions, uint32_t data_size);
// TPM_NV_WriteValue without authorization.
Bytes NvWriteValue(uint32_t nv_index, uint32_t offset, ByteSpan data);

// TCG PC Client (TPM 1.2) spec: certificates in NV carry a 7-byte header:
// TCG_PCCLIENT_STORED_CERT (tag 0x1001, certType 0 = full, size) + TCG_FULL_CERT tag 0x1002.
Bytes StoredCertHeader(size_t der_size);

}  // namespace vtpm::tpmcmd::tpm12
