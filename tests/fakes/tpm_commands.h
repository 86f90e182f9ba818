// The TPM 2.0 commands the tests send, as complete command bytes built with tpmcmd
// (src/tpmcmd; Part 3 layouts, golden-tested in tests/unit/tpmcmd), with an empty password
// session (TPM_RS_PW) where authorisation is needed.
#pragma once

#include <openssl/evp.h>

#include "base/bytes.h"
#include "tpmcmd/tpm2_commands.h"

namespace vtpm::testing::cmd {

inline Bytes Startup(uint16_t type = tpmcmd::kSuClear) {
  return tpmcmd::Marshal(tpmcmd::Startup{type});
}
inline Bytes SelfTest() { return tpmcmd::Marshal(tpmcmd::SelfTest{true}); }
inline Bytes GetRandom(uint16_t n) { return tpmcmd::Marshal(tpmcmd::GetRandom{n}); }
inline Bytes PcrExtend(uint32_t pcr, ByteSpan sha256) {
  tpmcmd::PcrExtend c;
  c.pcr_handle = pcr;
  c.digests = {{tpmcmd::kAlgSha256, Bytes(sha256.begin(), sha256.end())}};
  return tpmcmd::Marshal(c);
}
inline Bytes PcrRead(uint32_t pcr) {
  return tpmcmd::Marshal(tpmcmd::PcrRead{{tpmcmd::SelectPcrs(tpmcmd::kAlgSha256, {pcr})}});
}
// ECC P-256 storage primary under the owner hierarchy.
inline Bytes CreatePrimaryEcc() {
  tpmcmd::CreatePrimary c;
  c.primary_handle = tpmcmd::kRhOwner;
  c.in_public.type = tpmcmd::kAlgEcc;
  c.in_public.name_alg = tpmcmd::kAlgSha256;
  c.in_public.object_attributes = tpmcmd::kObjFixedTpm | tpmcmd::kObjFixedParent |
                                  tpmcmd::kObjSensitiveDataOrigin | tpmcmd::kObjUserWithAuth |
                                  tpmcmd::kObjRestricted | tpmcmd::kObjDecrypt;
  c.in_public.parameters =
      tpmcmd::EccParms{{tpmcmd::kAlgAes, 128, tpmcmd::kAlgCfb}, {}, tpmcmd::kEccNistP256, {}};
  c.in_public.unique = tpmcmd::EccPoint{};
  return tpmcmd::Marshal(c);
}
inline Bytes GetCapability(uint32_t capability, uint32_t property, uint32_t count) {
  return tpmcmd::Marshal(tpmcmd::GetCapability{capability, property, count});
}
// TPM_CAP_TPM_PROPERTIES from TPM_PT_FIXED: constants of the implementation (same on every
// fresh TPM of one libtpms build).
inline Bytes FixedProperties(uint32_t count = 8) {
  return GetCapability(tpmcmd::kCapTpmProperties, tpmcmd::kPtFixed, count);
}
inline Bytes FlushContext(uint32_t handle) { return tpmcmd::Marshal(tpmcmd::FlushContext{handle}); }
// An ordinary index, owner- and auth-readable and -writable, no dictionary-attack protection.
inline Bytes NvDefine(uint32_t index, uint16_t size) {
  tpmcmd::NvDefineSpace c;
  c.auth_handle = tpmcmd::kRhOwner;
  c.public_info.nv_index = index;
  c.public_info.name_alg = tpmcmd::kAlgSha256;
  c.public_info.attributes = tpmcmd::kNvOwnerWrite | tpmcmd::kNvAuthWrite | tpmcmd::kNvOwnerRead |
                             tpmcmd::kNvAuthRead | tpmcmd::kNvNoDa;
  c.public_info.data_size = size;
  return tpmcmd::Marshal(c);
}
inline Bytes NvWrite(uint32_t index, ByteSpan data, uint16_t offset = 0) {
  return tpmcmd::Marshal(tpmcmd::NvWrite{index, index, Bytes(data.begin(), data.end()), offset});
}
inline Bytes NvRead(uint32_t index, uint16_t size, uint16_t offset = 0) {
  return tpmcmd::Marshal(tpmcmd::NvRead{index, index, size, offset});
}
// A command the TPM does not know: the header alone, with command code |code|.
inline Bytes UnknownCommand(uint32_t code) { return tpmcmd::CommandBuilder(code).Finish(); }

inline uint32_t Rc(const Bytes& rsp) { return rsp.size() >= 10 ? LoadBe32(rsp.data() + 6) : ~0u; }

inline Bytes Sha256(ByteSpan a, ByteSpan b = {}) {
  Bytes out(32);
  unsigned len = 0;
  EVP_MD_CTX* c = EVP_MD_CTX_new();
  EVP_DigestInit_ex(c, EVP_sha256(), nullptr);
  EVP_DigestUpdate(c, a.data(), a.size());
  if (!b.empty()) EVP_DigestUpdate(c, b.data(), b.size());
  EVP_DigestFinal_ex(c, out.data(), &len);
  EVP_MD_CTX_free(c);
  return out;
}

// The SHA-256 value in a PCR_Read response for one PCR (empty if the response is not one).
inline Bytes PcrValue(const Bytes& rsp) {
  auto r = tpmcmd::ParseResponse<tpmcmd::PcrRead>(rsp);
  if (!r || r->pcr_values.size() != 1) return {};
  return r->pcr_values[0];
}

}  // namespace vtpm::testing::cmd
