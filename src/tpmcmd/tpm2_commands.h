// TPM 2.0 commands, hand-written in the style of go-tpm's tpm2 package: one struct per command
// holding its handles and parameters, a Marshal() producing the complete command bytes, and a
// nested Response with a static Unmarshal(). Section numbers refer to the TPM 2.0 Library
// Specification Part 3 ("Commands"), revision 1.59.
//
// Authorization: every handle marked @auth in Part 3 is authorized with a password session
// (TPM_RS_PW) carrying |auth| (usually empty, as on a freshly manufactured TPM), exactly like
// swtpm_setup does it.
//
// Execute(transport, cmd) sends a command and returns its Response, or an Error with Errc::kTpm and
// the response code in tpm_rc when the TPM refused it.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/bytes.h"
#include "base/result.h"
#include "tpmcmd/tpm2_types.h"
#include "tpmcmd/transport.h"

namespace vtpm::tpmcmd {

// Assembles header, handle area, authorization area (password sessions) and parameters.
class CommandBuilder {
 public:
  explicit CommandBuilder(uint32_t code) : code_(code) {}
  CommandBuilder& Handle(uint32_t handle);
  // Adds one TPMS_AUTH_COMMAND for TPM_RS_PW with |password| (§18.6 of Part 1).
  CommandBuilder& PasswordAuth(ByteSpan password = {});
  ByteWriter& params() { return params_; }
  Bytes Finish() const;

 private:
  uint32_t code_;
  ByteWriter handles_;
  ByteWriter auths_;
  bool sessions_ = false;
  ByteWriter params_;
};

// A parsed response: its handle area and its parameter area (authorization area dropped).
struct ResponseParts {
  ByteSpan handles;
  ByteSpan params;
};
// Checks tag, size and response code; |num_handles| handles precede the parameters.
// |name| ("TPM2_NV_Write") is used in error messages.
Result<ResponseParts> SplitResponse(ByteSpan response, size_t num_handles, std::string_view name);

// "TPM_RC_NV_LOCKED (0x148)", "TPM_RC_VALUE (0x184, parameter 1)", ...
std::string DescribeRc(uint32_t rc);

// Part 3 §9.3 TPM2_Startup
struct Startup {
  static constexpr std::string_view kName = "TPM2_Startup";
  uint16_t startup_type = kSuClear;
  struct Response {
    static Result<Response> Unmarshal(const ResponseParts&) { return Response{}; }
  };
  Bytes Marshal() const;
  static constexpr size_t kResponseHandles = 0;
};

// Part 3 §9.4 TPM2_Shutdown
struct Shutdown {
  static constexpr std::string_view kName = "TPM2_Shutdown";
  uint16_t shutdown_type = kSuClear;
  struct Response {
    static Result<Response> Unmarshal(const ResponseParts&) { return Response{}; }
  };
  Bytes Marshal() const;
  static constexpr size_t kResponseHandles = 0;
};

// Part 3 §24.1 TPM2_CreatePrimary
struct CreatePrimary {
  static constexpr std::string_view kName = "TPM2_CreatePrimary";
  uint32_t primary_handle = kRhEndorsement;  // @auth
  Bytes auth;
  Bytes user_auth;       // inSensitive.userAuth
  Bytes sensitive_data;  // inSensitive.data
  Public in_public;
  Bytes outside_info;
  std::vector<PcrSelection> creation_pcr;
  struct Response {
    uint32_t object_handle = 0;
    Public out_public;
    Bytes out_public_area;  // the TPMT_PUBLIC bytes as the TPM returned them
    Bytes name;
    static Result<Response> Unmarshal(const ResponseParts& parts);
  };
  Bytes Marshal() const;
  static constexpr size_t kResponseHandles = 1;
};

// Part 3 §28.5 TPM2_EvictControl
struct EvictControl {
  static constexpr std::string_view kName = "TPM2_EvictControl";
  uint32_t auth_handle = kRhOwner;  // @auth
  Bytes auth;
  uint32_t object_handle = 0;
  uint32_t persistent_handle = 0;
  struct Response {
    static Result<Response> Unmarshal(const ResponseParts&) { return Response{}; }
  };
  Bytes Marshal() const;
  static constexpr size_t kResponseHandles = 0;
};

// Part 3 §28.4 TPM2_FlushContext (the handle is a parameter, not in the handle area)
struct FlushContext {
  static constexpr std::string_view kName = "TPM2_FlushContext";
  uint32_t flush_handle = 0;
  struct Response {
    static Result<Response> Unmarshal(const ResponseParts&) { return Response{}; }
  };
  Bytes Marshal() const;
  static constexpr size_t kResponseHandles = 0;
};

// Part 3 §12.4 TPM2_ReadPublic
struct ReadPublic {
  static constexpr std::string_view kName = "TPM2_ReadPublic";
  uint32_t object_handle = 0;
  struct Response {
    Public out_public;
    Bytes out_public_area;
    Bytes name;
    Bytes qualified_name;
    static Result<Response> Unmarshal(const ResponseParts& parts);
  };
  Bytes Marshal() const;
  static constexpr size_t kResponseHandles = 0;
};

// Part 3 §31.3 TPM2_NV_DefineSpace
struct NvDefineSpace {
  static constexpr std::string_view kName = "TPM2_NV_DefineSpace";
  uint32_t auth_handle = kRhPlatform;  // @auth
  Bytes auth;
  Bytes index_auth;  // auth value of the new index
  NvPublic public_info;
  struct Response {
    static Result<Response> Unmarshal(const ResponseParts&) { return Response{}; }
  };
  Bytes Marshal() const;
  static constexpr size_t kResponseHandles = 0;
};

// Part 3 §31.7 TPM2_NV_Write
struct NvWrite {
  static constexpr std::string_view kName = "TPM2_NV_Write";
  uint32_t auth_handle = kRhPlatform;  // @auth
  Bytes auth;
  uint32_t nv_index = 0;
  Bytes data;  // at most TPM_PT_NV_BUFFER_MAX (1024 for libtpms)
  uint16_t offset = 0;
  struct Response {
    static Result<Response> Unmarshal(const ResponseParts&) { return Response{}; }
  };
  Bytes Marshal() const;
  static constexpr size_t kResponseHandles = 0;
};

// Part 3 §31.11 TPM2_NV_WriteLock
struct NvWriteLock {
  static constexpr std::string_view kName = "TPM2_NV_WriteLock";
  uint32_t auth_handle = kRhPlatform;  // @auth
  Bytes auth;
  uint32_t nv_index = 0;
  struct Response {
    static Result<Response> Unmarshal(const ResponseParts&) { return Response{}; }
  };
  Bytes Marshal() const;
  static constexpr size_t kResponseHandles = 0;
};

// Part 3 §31.13 TPM2_NV_Read
struct NvRead {
  static constexpr std::string_view kName = "TPM2_NV_Read";
  uint32_t auth_handle = kRhOwner;  // @auth
  Bytes auth;
  uint32_t nv_index = 0;
  uint16_t size = 0;
  uint16_t offset = 0;
  struct Response {
    Bytes data;
    static Result<Response> Unmarshal(const ResponseParts& parts);
  };
  Bytes Marshal() const;
  static constexpr size_t kResponseHandles = 0;
};

// Part 3 §31.6 TPM2_NV_ReadPublic
struct NvReadPublic {
  static constexpr std::string_view kName = "TPM2_NV_ReadPublic";
  uint32_t nv_index = 0;
  struct Response {
    NvPublic nv_public;
    Bytes name;
    static Result<Response> Unmarshal(const ResponseParts& parts);
  };
  Bytes Marshal() const;
  static constexpr size_t kResponseHandles = 0;
};

// Part 3 §22.5 TPM2_PCR_Allocate
struct PcrAllocate {
  static constexpr std::string_view kName = "TPM2_PCR_Allocate";
  uint32_t auth_handle = kRhPlatform;  // @auth
  Bytes auth;
  std::vector<PcrSelection> pcr_allocation;
  struct Response {
    bool allocation_success = false;
    uint32_t max_pcr = 0;
    uint32_t size_needed = 0;
    uint32_t size_available = 0;
    static Result<Response> Unmarshal(const ResponseParts& parts);
  };
  Bytes Marshal() const;
  static constexpr size_t kResponseHandles = 0;
};

// Part 3 §30.2 TPM2_GetCapability
struct GetCapability {
  static constexpr std::string_view kName = "TPM2_GetCapability";
  uint32_t capability = kCapPcrs;
  uint32_t property = 0;
  uint32_t property_count = 1;
  struct Response {
    bool more_data = false;
    uint32_t capability = 0;
    Bytes data;  // TPMU_CAPABILITIES; see the Parse* helpers below
    static Result<Response> Unmarshal(const ResponseParts& parts);
  };
  Bytes Marshal() const;
  static constexpr size_t kResponseHandles = 0;
};
// TPM_CAP_PCRS -> TPML_PCR_SELECTION; TPM_CAP_HANDLES -> TPML_HANDLE;
// TPM_CAP_TPM_PROPERTIES -> TPML_TAGGED_TPM_PROPERTY as (property, value) pairs.
Result<std::vector<PcrSelection>> ParsePcrsCapability(const GetCapability::Response& r);
Result<std::vector<uint32_t>> ParseHandlesCapability(const GetCapability::Response& r);
Result<std::vector<std::pair<uint32_t, uint32_t>>> ParsePropertiesCapability(
    const GetCapability::Response& r);

// Sends |cmd| and parses its response.
template <class Cmd>
Result<typename Cmd::Response> Execute(Transport& t, const Cmd& cmd) {
  Bytes bytes = cmd.Marshal();
  VTPM_ASSIGN_OR_RETURN(Bytes resp, t.Transmit(bytes));
  VTPM_ASSIGN_OR_RETURN(ResponseParts parts,
                        SplitResponse(resp, Cmd::kResponseHandles, Cmd::kName));
  return Cmd::Response::Unmarshal(parts);
}

}  // namespace vtpm::tpmcmd
