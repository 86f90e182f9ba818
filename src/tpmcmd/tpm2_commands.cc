#include "tpmcmd/tpm2_commands.h"

#include <fmt/format.h>

#include <array>

namespace vtpm::tpmcmd {

namespace {

constexpr size_t kHeaderSize = 10;
// Responses larger than this cannot come from a TPM (libtpms' TPM2_BUFFER_MAX is 4096).
constexpr size_t kMaxResponse = 64 * 1024;
constexpr size_t kMaxDigest = 64;    // TPM2B_DIGEST: SHA-512
constexpr size_t kMaxName = 2 + 64;  // TPM2B_NAME: hash alg + digest
constexpr size_t kMaxNvData = 2048;  // MAX_NV_INDEX_SIZE
constexpr size_t kMaxSessions = 3;   // MAX_SESSION_NUMBER

struct RcName {
  uint32_t rc;
  std::string_view name;
};
constexpr std::array<RcName, 44> kRcNames = {{
    {0x100, "TPM_RC_INITIALIZE"},
    {0x101, "TPM_RC_FAILURE"},
    {0x120, "TPM_RC_DISABLED"},
    {0x125, "TPM_RC_AUTH_MISSING"},
    {0x126, "TPM_RC_POLICY"},
    {0x12f, "TPM_RC_AUTH_UNAVAILABLE"},
    {0x130, "TPM_RC_REBOOT"},
    {0x142, "TPM_RC_COMMAND_SIZE"},
    {0x143, "TPM_RC_COMMAND_CODE"},
    {0x144, "TPM_RC_AUTHSIZE"},
    {0x145, "TPM_RC_AUTH_CONTEXT"},
    {0x146, "TPM_RC_NV_RANGE"},
    {0x147, "TPM_RC_NV_SIZE"},
    {0x148, "TPM_RC_NV_LOCKED"},
    {0x149, "TPM_RC_NV_AUTHORIZATION"},
    {0x14a, "TPM_RC_NV_UNINITIALIZED"},
    {0x14b, "TPM_RC_NV_SPACE"},
    {0x14c, "TPM_RC_NV_DEFINED"},
    {0x153, "TPM_RC_NEEDS_TEST"},
    {0x081, "TPM_RC_ASYMMETRIC"},
    {0x082, "TPM_RC_ATTRIBUTES"},
    {0x083, "TPM_RC_HASH"},
    {0x084, "TPM_RC_VALUE"},
    {0x085, "TPM_RC_HIERARCHY"},
    {0x087, "TPM_RC_KEY_SIZE"},
    {0x089, "TPM_RC_MODE"},
    {0x08a, "TPM_RC_TYPE"},
    {0x08b, "TPM_RC_HANDLE"},
    {0x08e, "TPM_RC_AUTH_FAIL"},
    {0x092, "TPM_RC_SCHEME"},
    {0x095, "TPM_RC_SIZE"},
    {0x096, "TPM_RC_SYMMETRIC"},
    {0x098, "TPM_RC_SELECTOR"},
    {0x09a, "TPM_RC_INSUFFICIENT"},
    {0x0a2, "TPM_RC_BAD_AUTH"},
    {0x0a6, "TPM_RC_CURVE"},
    {0x902, "TPM_RC_OBJECT_MEMORY"},
    {0x903, "TPM_RC_SESSION_MEMORY"},
    {0x904, "TPM_RC_MEMORY"},
    {0x906, "TPM_RC_OBJECT_HANDLES"},
    {0x920, "TPM_RC_NV_RATE"},
    {0x921, "TPM_RC_LOCKOUT"},
    {0x922, "TPM_RC_RETRY"},
    {0x923, "TPM_RC_NV_UNAVAILABLE"},
}};

Error Malformed(std::string_view name, std::string detail) {
  return Error{Errc::kCorrupt, fmt::format("malformed {} response: {}", name, detail), 0, 0};
}

// The authorization area of a TPM_ST_SESSIONS response: one TPMS_AUTH_RESPONSE (nonceTPM,
// sessionAttributes, hmac) per session of the command, at most three, and nothing after them.
// Password sessions need no further check.
Status CheckAuthArea(ByteReader& r, std::string_view name) {
  size_t sessions = 0;
  while (!r.empty()) {
    if (++sessions > kMaxSessions) {
      return tl::unexpected(Malformed(name, "more than 3 sessions in the authorization area"));
    }
    VTPM_RETURN_IF_ERROR(Get2b(r, kMaxDigest, "nonceTPM"));
    VTPM_RETURN_IF_ERROR(r.U8());  // sessionAttributes
    VTPM_RETURN_IF_ERROR(Get2b(r, kMaxDigest, "hmac"));
  }
  if (sessions == 0) {
    return tl::unexpected(Malformed(name, "no authorization area"));
  }
  return Ok();
}

}  // namespace

Status ExpectEnd(const ByteReader& params, std::string_view name) {
  if (!params.empty()) {
    return tl::unexpected(Malformed(name, fmt::format("{} unexpected bytes", params.remaining())));
  }
  return Ok();
}

CommandBuilder& CommandBuilder::Handle(uint32_t handle) {
  handles_.U32(handle);
  return *this;
}

CommandBuilder& CommandBuilder::Authorized(const AuthHandle& h) {
  return Handle(h.handle).PasswordAuth(h.auth);
}

CommandBuilder& CommandBuilder::PasswordAuth(ByteSpan password) {
  sessions_ = true;
  auths_.U32(kRsPw);
  Put2b(auths_, {});  // nonceCaller
  auths_.U8(0);       // sessionAttributes (continueSession is implied for TPM_RS_PW)
  Put2b(auths_, password);
  return *this;
}

Bytes CommandBuilder::Finish() const {
  ByteWriter w;
  w.U16(sessions_ ? kStSessions : kStNoSessions);
  w.U32(0);  // size, patched below
  w.U32(code_);
  w.Append(handles_.bytes());
  if (sessions_) {
    w.U32(static_cast<uint32_t>(auths_.size()));
    w.Append(auths_.bytes());
  }
  w.Append(params_.bytes());
  w.PatchU32(2, static_cast<uint32_t>(w.size()));
  return std::move(w).Take();
}

std::string DescribeRc(uint32_t rc) {
  uint32_t base = rc;
  std::string where;
  if (rc & 0x80) {  // format one: error number plus parameter/handle/session number
    base = 0x80 | (rc & 0x3f);
    uint32_t n = (rc >> 8) & 0xf;
    if (rc & 0x40) {
      where = fmt::format(", parameter {}", n);
    } else if (n & 0x8) {
      where = fmt::format(", session {}", n & 0x7);
    } else if (n != 0) {
      where = fmt::format(", handle {}", n);
    }
  }
  for (const auto& e : kRcNames) {
    if (e.rc == base) return fmt::format("{} (0x{:x}{})", e.name, rc, where);
  }
  return fmt::format("TPM_RC 0x{:x}", rc);
}

Result<ResponseParts> SplitResponse(ByteSpan response, size_t num_handles, std::string_view name) {
  if (response.size() < kHeaderSize || response.size() > kMaxResponse) {
    return tl::unexpected(Malformed(name, fmt::format("{} bytes", response.size())));
  }
  ByteReader r(response);
  uint16_t tag = *r.U16();
  uint32_t size = *r.U32();
  uint32_t rc = *r.U32();
  if (size != response.size()) {
    return tl::unexpected(
        Malformed(name, fmt::format("header says {} bytes, got {}", size, response.size())));
  }
  if (rc != 0) {
    return tl::unexpected(
        Error{Errc::kTpm, fmt::format("{} failed: {}", name, DescribeRc(rc)), 0, rc});
  }
  if (tag != kStNoSessions && tag != kStSessions) {
    return tl::unexpected(Malformed(name, fmt::format("tag 0x{:04x}", tag)));
  }
  ResponseParts parts;
  VTPM_ASSIGN_OR_RETURN(parts.handles, r.Take(num_handles * 4));
  if (tag == kStSessions) {
    VTPM_ASSIGN_OR_RETURN(uint32_t param_size, r.U32());
    VTPM_ASSIGN_OR_RETURN(parts.params, r.Take(param_size));
    VTPM_RETURN_IF_ERROR(CheckAuthArea(r, name));
  } else {
    parts.params = r.Rest();
  }
  return parts;
}

void Startup::MarshalTo(CommandBuilder& b) const { b.params().U16(startup_type); }

void Shutdown::MarshalTo(CommandBuilder& b) const { b.params().U16(shutdown_type); }

void SelfTest::MarshalTo(CommandBuilder& b) const { b.params().U8(full_test ? 1 : 0); }

void GetRandom::MarshalTo(CommandBuilder& b) const { b.params().U16(bytes_requested); }

Result<GetRandom::Response> GetRandom::Response::Unmarshal(ByteReader& params) {
  Response out;
  VTPM_ASSIGN_OR_RETURN(out.random_bytes, Get2b(params, kMaxDigest, "randomBytes"));
  return out;
}

void CreatePrimary::MarshalTo(CommandBuilder& b) const {
  b.Authorized(primary_handle);
  ByteWriter& p = b.params();
  ByteWriter sensitive;  // TPMS_SENSITIVE_CREATE inside TPM2B_SENSITIVE_CREATE
  Put2b(sensitive, user_auth);
  Put2b(sensitive, sensitive_data);
  Put2b(p, sensitive.bytes());
  MarshalPublic2b(p, in_public);
  Put2b(p, outside_info);
  MarshalPcrSelections(p, creation_pcr);
}

Result<CreatePrimary::Response> CreatePrimary::Response::Unmarshal(ByteReader& handles,
                                                                   ByteReader& params) {
  Response out;
  VTPM_ASSIGN_OR_RETURN(out.object_handle, handles.U32());
  // outPublic: keep the exact bytes too (they are what tpm2_readpublic -f tpmt prints).
  VTPM_ASSIGN_OR_RETURN(out.out_public, UnmarshalPublic2b(params, out.out_public_area));
  // creationData, creationHash, creationTicket: not needed; skip over them structurally.
  VTPM_ASSIGN_OR_RETURN(uint16_t cd_size, params.U16());
  VTPM_RETURN_IF_ERROR(params.Take(cd_size));
  VTPM_RETURN_IF_ERROR(Get2b(params, kMaxDigest, "creationHash"));
  VTPM_RETURN_IF_ERROR(params.U16());  // ticket tag
  VTPM_RETURN_IF_ERROR(params.U32());  // hierarchy
  VTPM_RETURN_IF_ERROR(Get2b(params, kMaxDigest, "creationTicket digest"));
  VTPM_ASSIGN_OR_RETURN(out.name, Get2b(params, kMaxName, "name"));
  return out;
}

void Sign::MarshalTo(CommandBuilder& b) const {
  b.Authorized(key_handle);
  Put2b(b.params(), digest);
  MarshalScheme(b.params(), in_scheme);
  MarshalHashcheckTicket(b.params(), validation);
}

Result<Sign::Response> Sign::Response::Unmarshal(ByteReader& params) {
  Response out;
  VTPM_ASSIGN_OR_RETURN(out.signature, UnmarshalSignature(params));
  return out;
}

void PcrExtend::MarshalTo(CommandBuilder& b) const {
  b.Authorized(pcr_handle);
  MarshalDigestValues(b.params(), digests);
}

void PcrRead::MarshalTo(CommandBuilder& b) const {
  MarshalPcrSelections(b.params(), pcr_selection);
}

Result<PcrRead::Response> PcrRead::Response::Unmarshal(ByteReader& params) {
  Response out;
  VTPM_ASSIGN_OR_RETURN(out.pcr_update_counter, params.U32());
  VTPM_ASSIGN_OR_RETURN(out.pcr_selection_out, UnmarshalPcrSelections(params));
  VTPM_ASSIGN_OR_RETURN(out.pcr_values, UnmarshalDigestList(params));
  return out;
}

void EvictControl::MarshalTo(CommandBuilder& b) const {
  b.Authorized(auth_handle).Handle(object_handle);
  b.params().U32(persistent_handle);
}

void FlushContext::MarshalTo(CommandBuilder& b) const { b.params().U32(flush_handle); }

void ReadPublic::MarshalTo(CommandBuilder& b) const { b.Handle(object_handle); }

Result<ReadPublic::Response> ReadPublic::Response::Unmarshal(ByteReader& params) {
  Response out;
  VTPM_ASSIGN_OR_RETURN(out.out_public, UnmarshalPublic2b(params, out.out_public_area));
  VTPM_ASSIGN_OR_RETURN(out.name, Get2b(params, kMaxName, "name"));
  VTPM_ASSIGN_OR_RETURN(out.qualified_name, Get2b(params, kMaxName, "qualifiedName"));
  return out;
}

void NvDefineSpace::MarshalTo(CommandBuilder& b) const {
  b.Authorized(auth_handle);
  Put2b(b.params(), index_auth);
  MarshalNvPublic2b(b.params(), public_info);
}

void NvWrite::MarshalTo(CommandBuilder& b) const {
  b.Authorized(auth_handle).Handle(nv_index);
  Put2b(b.params(), data);
  b.params().U16(offset);
}

void NvIncrement::MarshalTo(CommandBuilder& b) const { b.Authorized(auth_handle).Handle(nv_index); }

void NvWriteLock::MarshalTo(CommandBuilder& b) const { b.Authorized(auth_handle).Handle(nv_index); }

void NvRead::MarshalTo(CommandBuilder& b) const {
  b.Authorized(auth_handle).Handle(nv_index);
  b.params().U16(size);
  b.params().U16(offset);
}

Result<NvRead::Response> NvRead::Response::Unmarshal(ByteReader& params) {
  Response out;
  VTPM_ASSIGN_OR_RETURN(out.data, Get2b(params, kMaxNvData, "NV data"));
  return out;
}

void NvReadPublic::MarshalTo(CommandBuilder& b) const { b.Handle(nv_index); }

Result<NvReadPublic::Response> NvReadPublic::Response::Unmarshal(ByteReader& params) {
  Response out;
  VTPM_ASSIGN_OR_RETURN(out.nv_public, UnmarshalNvPublic2b(params));
  VTPM_ASSIGN_OR_RETURN(out.name, Get2b(params, kMaxName, "name"));
  return out;
}

void PcrAllocate::MarshalTo(CommandBuilder& b) const {
  b.Authorized(auth_handle);
  MarshalPcrSelections(b.params(), pcr_allocation);
}

Result<PcrAllocate::Response> PcrAllocate::Response::Unmarshal(ByteReader& params) {
  Response out;
  VTPM_ASSIGN_OR_RETURN(uint8_t ok, params.U8());
  out.allocation_success = ok != 0;
  VTPM_ASSIGN_OR_RETURN(out.max_pcr, params.U32());
  VTPM_ASSIGN_OR_RETURN(out.size_needed, params.U32());
  VTPM_ASSIGN_OR_RETURN(out.size_available, params.U32());
  return out;
}

void GetCapability::MarshalTo(CommandBuilder& b) const {
  b.params().U32(capability);
  b.params().U32(property);
  b.params().U32(property_count);
}

Result<GetCapability::Response> GetCapability::Response::Unmarshal(ByteReader& params) {
  Response out;
  VTPM_ASSIGN_OR_RETURN(uint8_t more, params.U8());
  out.more_data = more != 0;
  VTPM_ASSIGN_OR_RETURN(out.capability, params.U32());
  ByteSpan rest = params.Rest();
  out.data.assign(rest.begin(), rest.end());
  return out;
}

Result<std::vector<PcrSelection>> ParsePcrsCapability(const GetCapability::Response& resp) {
  if (resp.capability != kCapPcrs) {
    return tl::unexpected(Malformed(GetCapability::kCommand.name, "not a TPM_CAP_PCRS answer"));
  }
  ByteReader r(resp.data);
  VTPM_ASSIGN_OR_RETURN(auto sel, UnmarshalPcrSelections(r));
  VTPM_RETURN_IF_ERROR(ExpectEnd(r, GetCapability::kCommand.name));
  return sel;
}

Result<std::vector<uint32_t>> ParseHandlesCapability(const GetCapability::Response& resp) {
  if (resp.capability != kCapHandles) {
    return tl::unexpected(Malformed(GetCapability::kCommand.name, "not a TPM_CAP_HANDLES answer"));
  }
  ByteReader r(resp.data);
  VTPM_ASSIGN_OR_RETURN(uint32_t count, r.U32());
  if (count > r.remaining() / 4) {
    return tl::unexpected(
        Malformed(GetCapability::kCommand.name, fmt::format("{} handles", count)));
  }
  std::vector<uint32_t> out(count);
  for (auto& h : out) h = *r.U32();
  VTPM_RETURN_IF_ERROR(ExpectEnd(r, GetCapability::kCommand.name));
  return out;
}

Result<std::vector<std::pair<uint32_t, uint32_t>>> ParsePropertiesCapability(
    const GetCapability::Response& resp) {
  if (resp.capability != kCapTpmProperties) {
    return tl::unexpected(
        Malformed(GetCapability::kCommand.name, "not a TPM_CAP_TPM_PROPERTIES answer"));
  }
  ByteReader r(resp.data);
  VTPM_ASSIGN_OR_RETURN(uint32_t count, r.U32());
  if (count > r.remaining() / 8) {
    return tl::unexpected(
        Malformed(GetCapability::kCommand.name, fmt::format("{} properties", count)));
  }
  std::vector<std::pair<uint32_t, uint32_t>> out(count);
  for (auto& [prop, value] : out) {
    prop = *r.U32();
    value = *r.U32();
  }
  VTPM_RETURN_IF_ERROR(ExpectEnd(r, GetCapability::kCommand.name));
  return out;
}

}  // namespace vtpm::tpmcmd
