// Hand-encoded TPM 2.0 commands for tests (TPM 2.0 Part 3 command layouts), with an empty
// password session (TPM_RS_PW) where authorisation is needed.
#pragma once

#include <openssl/evp.h>

#include "base/bytes.h"

namespace vtpm::testing::cmd {

class Cmd {
 public:
  Cmd(uint16_t tag, uint32_t code) {
    w_.U16(tag);
    w_.U32(0);
    w_.U32(code);
  }
  Cmd& U8(uint8_t v) { return w_.U8(v), *this; }
  Cmd& U16(uint16_t v) { return w_.U16(v), *this; }
  Cmd& U32(uint32_t v) { return w_.U32(v), *this; }
  Cmd& Raw(ByteSpan b) { return w_.Append(b), *this; }
  Cmd& Tpm2b(ByteSpan b) { return U16(static_cast<uint16_t>(b.size())).Raw(b); }
  // Authorization area with one empty password session.
  Cmd& PwSession() { return U32(9).U32(0x40000009).U16(0).U8(0).U16(0); }
  Bytes Done() {
    w_.PatchU32(2, static_cast<uint32_t>(w_.size()));
    return std::move(w_).Take();
  }

 private:
  ByteWriter w_;
};

constexpr uint16_t kNoSessions = 0x8001, kSessions = 0x8002;
constexpr uint32_t kOwner = 0x40000001;

inline Bytes Startup(uint16_t type = 0) { return Cmd(kNoSessions, 0x144).U16(type).Done(); }
inline Bytes SelfTest() { return Cmd(kNoSessions, 0x143).U8(1).Done(); }
inline Bytes GetRandom(uint16_t n) { return Cmd(kNoSessions, 0x17B).U16(n).Done(); }
inline Bytes PcrExtend(uint32_t pcr, ByteSpan sha256) {
  return Cmd(kSessions, 0x182).U32(pcr).PwSession().U32(1).U16(0x000B).Raw(sha256).Done();
}
inline Bytes PcrRead(uint32_t pcr) {
  uint8_t sel[3] = {0, 0, 0};
  sel[pcr / 8] = static_cast<uint8_t>(1u << (pcr % 8));
  return Cmd(kNoSessions, 0x17E).U32(1).U16(0x000B).U8(3).Raw(ByteSpan(sel, 3)).Done();
}
// ECC P-256 storage primary under the owner hierarchy.
inline Bytes CreatePrimaryEcc() {
  Bytes pub = Cmd(0, 0)  // reuse the writer; strip the fake header below
                  .U16(0x0023)
                  .U16(0x000B)
                  .U32(0x00030072)
                  .U16(0)  // type, nameAlg, attrs, policy
                  .U16(0x0006)
                  .U16(128)
                  .U16(0x0043)  // AES-128-CFB
                  .U16(0x0010)
                  .U16(0x0003)
                  .U16(0x0010)  // scheme, P-256, kdf
                  .U16(0)
                  .U16(0)  // unique x, y
                  .Done();
  pub.erase(pub.begin(), pub.begin() + 10);
  return Cmd(kSessions, 0x131)
      .U32(kOwner)
      .PwSession()
      .U16(4)
      .U16(0)
      .U16(0)  // inSensitive: empty auth and data
      .Tpm2b(pub)
      .U16(0)  // outsideInfo
      .U32(0)  // creationPCR
      .Done();
}
inline Bytes GetCapability(uint32_t capability, uint32_t property, uint32_t count) {
  return Cmd(kNoSessions, 0x17A).U32(capability).U32(property).U32(count).Done();
}
// TPM_CAP_TPM_PROPERTIES from TPM_PT_FIXED: constants of the implementation (same on every
// fresh TPM of one libtpms build).
inline Bytes FixedProperties(uint32_t count = 8) { return GetCapability(6, 0x100, count); }
inline Bytes FlushContext(uint32_t handle) { return Cmd(kNoSessions, 0x165).U32(handle).Done(); }
inline Bytes NvDefine(uint32_t index, uint16_t size) {
  Bytes pub = Cmd(0, 0).U32(index).U16(0x000B).U32(0x02060006).U16(0).U16(size).Done();
  pub.erase(pub.begin(), pub.begin() + 10);
  return Cmd(kSessions, 0x12A).U32(kOwner).PwSession().U16(0).Tpm2b(pub).Done();
}
inline Bytes NvWrite(uint32_t index, ByteSpan data, uint16_t offset = 0) {
  return Cmd(kSessions, 0x137).U32(index).U32(index).PwSession().Tpm2b(data).U16(offset).Done();
}
inline Bytes NvRead(uint32_t index, uint16_t size, uint16_t offset = 0) {
  return Cmd(kSessions, 0x14E).U32(index).U32(index).PwSession().U16(size).U16(offset).Done();
}

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

// The SHA-256 value in a PCR_Read response for one PCR.
inline Bytes PcrValue(const Bytes& rsp) {
  // header(10) updateCounter(4) selection(4+2+1+3) count(4) size(2) digest(32)
  if (rsp.size() < 10 + 4 + 10 + 4 + 2 + 32) return {};
  return Bytes(rsp.end() - 32, rsp.end());
}

}  // namespace vtpm::testing::cmd
