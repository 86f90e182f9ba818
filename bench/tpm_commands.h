// TPM 2.0 command bytes used by the benchmarks (TPM 2.0 Part 3 sections cited per command).
// All commands that need authorization use a password session with an empty password.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/bytes.h"

namespace vtpm::bench {

struct BenchCommand {
  std::string name;
  Bytes bytes;
  // Exact response size when known (0: only the header's size field is checked).
  size_t response_size = 0;
  // Command creates a transient object whose handle (at offset 10 of the response) must be
  // flushed afterwards (CreatePrimary).
  bool flush_handle = false;
};

inline void PasswordAuth(ByteWriter& w) {
  w.U32(9);           // authorizationSize
  w.U32(0x40000009);  // TPM_RS_PW
  w.U16(0);           // nonceCaller
  w.U8(0);            // sessionAttributes
  w.U16(0);           // hmac (empty password)
}

inline Bytes Finish(ByteWriter&& w) {
  Bytes b = std::move(w).Take();
  StoreBe32(b.data() + 2, static_cast<uint32_t>(b.size()));
  return b;
}

inline ByteWriter Header(uint16_t tag, uint32_t cc) {
  ByteWriter w;
  w.U16(tag);
  w.U32(0);  // size, patched by Finish()
  w.U32(cc);
  return w;
}

// Part 3 §16.1 TPM2_GetRandom.
inline BenchCommand GetRandom(uint16_t n) {
  ByteWriter w = Header(0x8001, 0x17b);
  w.U16(n);
  return {"GetRandom(" + std::to_string(n) + ")", Finish(std::move(w)), size_t{12} + n};
}

// Part 3 §22.4 TPM2_PCR_Read of sha256 PCR 0.
inline BenchCommand PcrRead() {
  ByteWriter w = Header(0x8001, 0x17e);
  w.U32(1);       // TPML_PCR_SELECTION.count
  w.U16(0x000b);  // sha256
  w.U8(3);
  w.U8(0x01);
  w.U8(0);
  w.U8(0);
  return {"PCR_Read", Finish(std::move(w)), 0};
}

// Part 3 §22.2 TPM2_PCR_Extend of PCR 16 with one sha256 digest.
inline BenchCommand PcrExtend() {
  ByteWriter w = Header(0x8002, 0x182);
  w.U32(16);
  PasswordAuth(w);
  w.U32(1);       // TPML_DIGEST_VALUES.count
  w.U16(0x000b);  // sha256
  for (int i = 0; i < 32; ++i) w.U8(static_cast<uint8_t>(i));
  return {"PCR_Extend", Finish(std::move(w)), 19};
}

// TPMT_PUBLIC of an unrestricted signing key: ECDSA P-256 / RSASSA 2048, both with SHA-256.
inline Bytes SigningTemplate(bool rsa) {
  ByteWriter t;
  t.U16(rsa ? 0x0001 : 0x0023);  // TPM_ALG_RSA / TPM_ALG_ECC
  t.U16(0x000b);                 // nameAlg sha256
  t.U32(0x00040072);             // fixedTPM|fixedParent|sensitiveDataOrigin|userWithAuth|sign
  t.U16(0);                      // authPolicy
  t.U16(0x0010);                 // symmetric: TPM_ALG_NULL
  if (rsa) {
    t.U16(0x0014);  // RSASSA
    t.U16(0x000b);
    t.U16(2048);
    t.U32(0);  // default exponent
    t.U16(0);  // unique
  } else {
    t.U16(0x0018);  // ECDSA
    t.U16(0x000b);
    t.U16(0x0003);  // NIST P-256
    t.U16(0x0010);  // kdf NULL
    t.U16(0);       // unique.x
    t.U16(0);       // unique.y
  }
  return std::move(t).Take();
}

// Part 3 §24.1 TPM2_CreatePrimary in the owner hierarchy.
inline BenchCommand CreatePrimary(bool rsa) {
  ByteWriter w = Header(0x8002, 0x131);
  w.U32(0x40000001);  // TPM_RH_OWNER
  PasswordAuth(w);
  w.U16(4);  // TPM2B_SENSITIVE_CREATE: empty userAuth and data
  w.U16(0);
  w.U16(0);
  Bytes tmpl = SigningTemplate(rsa);
  w.U16(static_cast<uint16_t>(tmpl.size()));
  w.Append(tmpl);
  w.U16(0);  // outsideInfo
  w.U32(0);  // creationPCR: none
  return {rsa ? "CreatePrimary RSA-2048" : "CreatePrimary ECC P-256", Finish(std::move(w)), 0,
          true};
}

// Part 3 §20.2 TPM2_Sign of a 32-byte digest with the key's own scheme.
inline BenchCommand Sign(uint32_t key_handle, bool rsa) {
  ByteWriter w = Header(0x8002, 0x15d);
  w.U32(key_handle);
  PasswordAuth(w);
  w.U16(32);
  for (int i = 0; i < 32; ++i) w.U8(static_cast<uint8_t>(0xa0 + i));
  w.U16(0x0010);      // inScheme: TPM_ALG_NULL (use the key's)
  w.U16(0x8024);      // TPMT_TK_HASHCHECK tag
  w.U32(0x40000007);  // TPM_RH_NULL
  w.U16(0);
  return {rsa ? "Sign RSASSA-2048" : "Sign ECDSA P-256", Finish(std::move(w)), 0};
}

// Part 3 §28.4 TPM2_FlushContext.
// An 8-byte NV counter at |index| (TPM_NT_COUNTER, AUTHREAD|AUTHWRITE, NO_DA), owner-authorised.
inline BenchCommand NvDefineCounter(uint32_t index) {
  ByteWriter pub;
  pub.U32(index);
  pub.U16(0x000b);  // nameAlg sha256
  pub.U32((1u << 4) | (1u << 2) | (1u << 18) | (1u << 25));
  pub.U16(0);  // authPolicy
  pub.U16(8);  // dataSize
  const Bytes p = std::move(pub).Take();
  ByteWriter w = Header(0x8002, 0x12a);
  w.U32(0x40000001);  // TPM_RH_OWNER
  PasswordAuth(w);
  w.U16(0);  // auth
  w.U16(static_cast<uint16_t>(p.size()));
  w.Append(p);
  return {"NV_DefineSpace", Finish(std::move(w)), 19};
}

// TPM2_NV_Increment: every one is a write of the permanent state (permall) before it answers.
inline BenchCommand NvIncrement(uint32_t index) {
  ByteWriter w = Header(0x8002, 0x134);
  w.U32(index);
  w.U32(index);
  PasswordAuth(w);
  return {"NV_Increment", Finish(std::move(w)), 19};
}

inline Bytes FlushContext(uint32_t handle) {
  ByteWriter w = Header(0x8001, 0x165);
  w.U32(handle);
  return Finish(std::move(w));
}

inline Bytes Startup() {
  ByteWriter w = Header(0x8001, 0x144);
  w.U16(0);
  return Finish(std::move(w));
}

}  // namespace vtpm::bench
