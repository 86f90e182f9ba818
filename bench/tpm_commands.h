// The TPM 2.0 commands the benchmarks send, built with tpmcmd (src/tpmcmd) and their responses
// checked with tpmcmd's strict response parsing. All commands that need authorization use a
// password session with an empty password.
#pragma once

#include <fmt/format.h>

#include <cstdint>
#include <functional>
#include <string>
#include <utility>

#include "base/bytes.h"
#include "base/result.h"
#include "tpmcmd/tpm2_commands.h"

namespace vtpm::bench {

struct BenchCommand {
  std::string name;
  Bytes bytes;
  // Ok if |response| parses as this command's response (header, response code 0, every size) and
  // holds what the command asked for (GetRandom's byte count, the signature scheme, ...).
  std::function<Status(ByteSpan response)> check;
  // Command creates a transient object whose handle (ObjectHandle) must be flushed afterwards
  // (CreatePrimary).
  bool flush_handle = false;
};

// |cmd| as a BenchCommand whose response must parse and, if given, pass |expect|.
template <class Cmd>
BenchCommand Make(std::string name, const Cmd& cmd,
                  std::function<Status(const typename Cmd::Response&)> expect = {}) {
  auto check = [expect = std::move(expect)](ByteSpan response) -> Status {
    VTPM_ASSIGN_OR_RETURN(auto parsed, tpmcmd::ParseResponse<Cmd>(response));
    return expect ? expect(parsed) : Ok();
  };
  return {std::move(name), tpmcmd::Marshal(cmd), std::move(check)};
}

inline Status Expect(bool ok, std::string what) {
  if (ok) return Ok();
  return Fail(Errc::kCorrupt, "unexpected response: " + what);
}

// 32 bytes first, first + 1, ...: the digest the benchmarks extend and sign.
inline Bytes Counting(uint8_t first) {
  Bytes b(32);
  for (size_t i = 0; i < b.size(); ++i) b[i] = static_cast<uint8_t>(first + i);
  return b;
}

// Part 3 §16.1 TPM2_GetRandom.
inline BenchCommand GetRandom(uint16_t n) {
  return Make("GetRandom(" + std::to_string(n) + ")", tpmcmd::GetRandom{n},
              [n](const tpmcmd::GetRandom::Response& r) {
                return Expect(r.random_bytes.size() == n,
                              fmt::format("{} random bytes", r.random_bytes.size()));
              });
}

// Part 3 §22.4 TPM2_PCR_Read of sha256 PCR 0.
inline BenchCommand PcrRead() {
  const tpmcmd::PcrSelection pcr0 = tpmcmd::SelectPcrs(tpmcmd::kAlgSha256, {0});
  return Make("PCR_Read", tpmcmd::PcrRead{{pcr0}}, [pcr0](const tpmcmd::PcrRead::Response& r) {
    return Expect(r.pcr_selection_out == std::vector{pcr0} && r.pcr_values.size() == 1 &&
                      r.pcr_values[0].size() == 32,
                  fmt::format("{} PCR values", r.pcr_values.size()));
  });
}

// Part 3 §22.2 TPM2_PCR_Extend of PCR 16 with one sha256 digest.
inline BenchCommand PcrExtend() {
  tpmcmd::PcrExtend cmd;
  cmd.pcr_handle = 16;
  cmd.digests = {{tpmcmd::kAlgSha256, Counting(0x00)}};
  return Make("PCR_Extend", cmd);
}

// TPMT_PUBLIC of an unrestricted signing key: ECDSA P-256 / RSASSA 2048, both with SHA-256.
inline tpmcmd::Public SigningTemplate(bool rsa) {
  tpmcmd::Public p;
  p.type = rsa ? tpmcmd::kAlgRsa : tpmcmd::kAlgEcc;
  p.name_alg = tpmcmd::kAlgSha256;
  p.object_attributes = tpmcmd::kObjFixedTpm | tpmcmd::kObjFixedParent |
                        tpmcmd::kObjSensitiveDataOrigin | tpmcmd::kObjUserWithAuth |
                        tpmcmd::kObjSign;
  if (rsa) {
    p.parameters = tpmcmd::RsaParms{{}, {tpmcmd::kAlgRsassa, tpmcmd::kAlgSha256}, 2048, 0};
    p.unique = Bytes{};
  } else {
    p.parameters =
        tpmcmd::EccParms{{}, {tpmcmd::kAlgEcdsa, tpmcmd::kAlgSha256}, tpmcmd::kEccNistP256, {}};
    p.unique = tpmcmd::EccPoint{};
  }
  return p;
}

// Part 3 §24.1 TPM2_CreatePrimary in the owner hierarchy.
inline BenchCommand CreatePrimary(bool rsa) {
  tpmcmd::CreatePrimary cmd;
  cmd.primary_handle = tpmcmd::kRhOwner;
  cmd.in_public = SigningTemplate(rsa);
  const uint16_t type = cmd.in_public.type;
  BenchCommand c = Make(rsa ? "CreatePrimary RSA-2048" : "CreatePrimary ECC P-256", cmd,
                        [type](const tpmcmd::CreatePrimary::Response& r) {
                          return Expect(r.out_public.type == type, "key type");
                        });
  c.flush_handle = true;
  return c;
}

// The object handle in a CreatePrimary response; 0 if it is not one.
inline uint32_t ObjectHandle(ByteSpan create_primary_response) {
  auto r = tpmcmd::ParseResponse<tpmcmd::CreatePrimary>(create_primary_response);
  return r ? r->object_handle : 0;
}

// Part 3 §20.2 TPM2_Sign of a 32-byte digest with the key's own scheme.
inline BenchCommand Sign(uint32_t key_handle, bool rsa) {
  tpmcmd::Sign cmd;
  cmd.key_handle = key_handle;
  cmd.digest = Counting(0xa0);
  const uint16_t scheme = rsa ? tpmcmd::kAlgRsassa : tpmcmd::kAlgEcdsa;
  return Make(rsa ? "Sign RSASSA-2048" : "Sign ECDSA P-256", cmd,
              [scheme](const tpmcmd::Sign::Response& r) {
                return Expect(r.signature.sig_alg == scheme, "signature scheme");
              });
}

// Part 3 §31.3 TPM2_NV_DefineSpace: an 8-byte NV counter at |index| (TPM_NT_COUNTER,
// AUTHREAD|AUTHWRITE, NO_DA), owner-authorised.
inline BenchCommand NvDefineCounter(uint32_t index) {
  tpmcmd::NvDefineSpace cmd;
  cmd.auth_handle = tpmcmd::kRhOwner;
  cmd.public_info.nv_index = index;
  cmd.public_info.name_alg = tpmcmd::kAlgSha256;
  cmd.public_info.attributes =
      tpmcmd::kNvCounter | tpmcmd::kNvAuthWrite | tpmcmd::kNvAuthRead | tpmcmd::kNvNoDa;
  cmd.public_info.data_size = 8;
  return Make("NV_DefineSpace", cmd);
}

// Part 3 §31.8 TPM2_NV_Increment: every one is a write of the permanent state (permall) before
// it answers.
inline BenchCommand NvIncrement(uint32_t index) {
  return Make("NV_Increment", tpmcmd::NvIncrement{index, index});
}

// Part 3 §28.4 TPM2_FlushContext.
inline BenchCommand FlushContext(uint32_t handle) {
  return Make("FlushContext", tpmcmd::FlushContext{handle});
}

// Part 3 §9.3 TPM2_Startup(CLEAR).
inline BenchCommand Startup() { return Make("Startup", tpmcmd::Startup{tpmcmd::kSuClear}); }

}  // namespace vtpm::bench
