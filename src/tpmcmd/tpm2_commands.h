// TPM 2.0 commands, hand-written in the style of go-tpm's tpm2 package: one struct per command
// holding its handles and parameters, and its Response. Section numbers refer to the TPM 2.0
// Library Specification Part 3 ("Commands"), revision 1.59.
//
// Every command struct has the same parts:
//   kCommand            its command code and name ("TPM2_NV_Write", for error messages);
//   fields              its handles and parameters, with the usual defaults;
//   Response            the parsed response: NoResponse for commands without response
//                       parameters, else a struct with Unmarshal(ByteReader& params) (and
//                       kHandles = 1 with Unmarshal(handles, params) for CreatePrimary);
//   MarshalTo(builder)  adds its handles, authorizations and parameters to a CommandBuilder.
// Marshal(cmd) produces the complete command bytes, ParseResponse<Cmd>(bytes) checks and parses
// a response, Execute(transport, cmd) does both.
//
// Authorization: every handle marked @auth in Part 3 is an AuthHandle, authorized with a password
// session (TPM_RS_PW) carrying its |auth| (usually empty, as on a freshly manufactured TPM),
// exactly like swtpm_setup does it.
//
// Responses are parsed strictly: the header's size must match, the parameter area must be consumed
// exactly, the authorization area must be a well-formed list of TPMS_AUTH_RESPONSE, and every
// size read is bounded. A TPM error becomes an Error with Errc::kTpm and the response code in
// tpm_rc.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/bytes.h"
#include "base/result.h"
#include "tpmcmd/tpm2_types.h"
#include "tpmcmd/transport.h"

namespace vtpm::tpmcmd {

// A handle marked @auth in Part 3 and the password that authorizes it (go-tpm's AuthHandle with
// a password session). A bare handle converts to one with the empty password.
struct AuthHandle {
  AuthHandle(uint32_t h = 0, Bytes password = {}) : handle(h), auth(std::move(password)) {}
  uint32_t handle;
  Bytes auth;
};

// Assembles header, handle area, authorization area (password sessions) and parameters.
class CommandBuilder {
 public:
  explicit CommandBuilder(uint32_t code) : code_(code) {}
  CommandBuilder& Handle(uint32_t handle);
  // Handle(h.handle), and PasswordAuth(h.auth) in the authorization area.
  CommandBuilder& Authorized(const AuthHandle& h);
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

// A command's code and its name in messages ("TPM2_NV_Write").
struct CommandInfo {
  uint32_t code;
  std::string_view name;
};

// A parsed response: its handle area and its parameter area (authorization area checked, then
// dropped).
struct ResponseParts {
  ByteSpan handles;
  ByteSpan params;
};
// Checks tag, size and response code, and for TPM_ST_SESSIONS the authorization area;
// |num_handles| handles precede the parameters. |name| ("TPM2_NV_Write") is used in error
// messages.
Result<ResponseParts> SplitResponse(ByteSpan response, size_t num_handles, std::string_view name);
// Fails unless |params| was read to its end (Errc::kCorrupt naming |name|).
Status ExpectEnd(const ByteReader& params, std::string_view name);

// "TPM_RC_NV_LOCKED (0x148)", "TPM_RC_VALUE (0x184, parameter 1)", ...
std::string DescribeRc(uint32_t rc);

// The response of every command without response handles or parameters.
struct NoResponse {
  static Result<NoResponse> Unmarshal(ByteReader&) { return NoResponse{}; }
};

// Part 3 §9.3 TPM2_Startup
struct Startup {
  static constexpr CommandInfo kCommand{kCcStartup, "TPM2_Startup"};
  uint16_t startup_type = kSuClear;
  using Response = NoResponse;
  void MarshalTo(CommandBuilder& b) const;
};

// Part 3 §9.4 TPM2_Shutdown
struct Shutdown {
  static constexpr CommandInfo kCommand{kCcShutdown, "TPM2_Shutdown"};
  uint16_t shutdown_type = kSuClear;
  using Response = NoResponse;
  void MarshalTo(CommandBuilder& b) const;
};

// Part 3 §10.2 TPM2_SelfTest
struct SelfTest {
  static constexpr CommandInfo kCommand{kCcSelfTest, "TPM2_SelfTest"};
  bool full_test = true;
  using Response = NoResponse;
  void MarshalTo(CommandBuilder& b) const;
};

// Part 3 §16.1 TPM2_GetRandom
struct GetRandom {
  static constexpr CommandInfo kCommand{kCcGetRandom, "TPM2_GetRandom"};
  uint16_t bytes_requested = 0;
  struct Response {
    Bytes random_bytes;  // at most bytes_requested (and at most a SHA-512 digest's size)
    static Result<Response> Unmarshal(ByteReader& params);
  };
  void MarshalTo(CommandBuilder& b) const;
};

// Part 3 §24.1 TPM2_CreatePrimary
struct CreatePrimary {
  static constexpr CommandInfo kCommand{kCcCreatePrimary, "TPM2_CreatePrimary"};
  AuthHandle primary_handle = kRhEndorsement;
  Bytes user_auth;       // inSensitive.userAuth
  Bytes sensitive_data;  // inSensitive.data
  Public in_public;
  Bytes outside_info;
  std::vector<PcrSelection> creation_pcr;
  struct Response {
    static constexpr size_t kHandles = 1;
    uint32_t object_handle = 0;
    Public out_public;
    Bytes out_public_area;  // the TPMT_PUBLIC bytes as the TPM returned them
    Bytes name;
    static Result<Response> Unmarshal(ByteReader& handles, ByteReader& params);
  };
  void MarshalTo(CommandBuilder& b) const;
};

// Part 3 §20.2 TPM2_Sign
struct Sign {
  static constexpr CommandInfo kCommand{kCcSign, "TPM2_Sign"};
  AuthHandle key_handle = 0;
  Bytes digest;
  Scheme in_scheme;  // TPM_ALG_NULL: the key's own scheme
  HashcheckTicket validation;
  struct Response {
    Signature signature;
    static Result<Response> Unmarshal(ByteReader& params);
  };
  void MarshalTo(CommandBuilder& b) const;
};

// Part 3 §22.2 TPM2_PCR_Extend
struct PcrExtend {
  static constexpr CommandInfo kCommand{kCcPcrExtend, "TPM2_PCR_Extend"};
  AuthHandle pcr_handle = 0;
  std::vector<TaggedHash> digests;
  using Response = NoResponse;
  void MarshalTo(CommandBuilder& b) const;
};

// Part 3 §22.4 TPM2_PCR_Read
struct PcrRead {
  static constexpr CommandInfo kCommand{kCcPcrRead, "TPM2_PCR_Read"};
  std::vector<PcrSelection> pcr_selection;
  struct Response {
    uint32_t pcr_update_counter = 0;
    std::vector<PcrSelection> pcr_selection_out;  // the PCRs whose values follow, in order
    std::vector<Bytes> pcr_values;
    static Result<Response> Unmarshal(ByteReader& params);
  };
  void MarshalTo(CommandBuilder& b) const;
};

// Part 3 §28.5 TPM2_EvictControl
struct EvictControl {
  static constexpr CommandInfo kCommand{kCcEvictControl, "TPM2_EvictControl"};
  AuthHandle auth_handle = kRhOwner;
  uint32_t object_handle = 0;
  uint32_t persistent_handle = 0;
  using Response = NoResponse;
  void MarshalTo(CommandBuilder& b) const;
};

// Part 3 §28.4 TPM2_FlushContext (the handle is a parameter, not in the handle area)
struct FlushContext {
  static constexpr CommandInfo kCommand{kCcFlushContext, "TPM2_FlushContext"};
  uint32_t flush_handle = 0;
  using Response = NoResponse;
  void MarshalTo(CommandBuilder& b) const;
};

// Part 3 §12.4 TPM2_ReadPublic
struct ReadPublic {
  static constexpr CommandInfo kCommand{kCcReadPublic, "TPM2_ReadPublic"};
  uint32_t object_handle = 0;
  struct Response {
    Public out_public;
    Bytes out_public_area;
    Bytes name;
    Bytes qualified_name;
    static Result<Response> Unmarshal(ByteReader& params);
  };
  void MarshalTo(CommandBuilder& b) const;
};

// Part 3 §31.3 TPM2_NV_DefineSpace
struct NvDefineSpace {
  static constexpr CommandInfo kCommand{kCcNvDefineSpace, "TPM2_NV_DefineSpace"};
  AuthHandle auth_handle = kRhPlatform;
  Bytes index_auth;  // auth value of the new index
  NvPublic public_info;
  using Response = NoResponse;
  void MarshalTo(CommandBuilder& b) const;
};

// Part 3 §31.7 TPM2_NV_Write
struct NvWrite {
  static constexpr CommandInfo kCommand{kCcNvWrite, "TPM2_NV_Write"};
  AuthHandle auth_handle = kRhPlatform;
  uint32_t nv_index = 0;
  Bytes data;  // at most TPM_PT_NV_BUFFER_MAX (1024 for libtpms)
  uint16_t offset = 0;
  using Response = NoResponse;
  void MarshalTo(CommandBuilder& b) const;
};

// Part 3 §31.8 TPM2_NV_Increment
struct NvIncrement {
  static constexpr CommandInfo kCommand{kCcNvIncrement, "TPM2_NV_Increment"};
  AuthHandle auth_handle = kRhOwner;
  uint32_t nv_index = 0;
  using Response = NoResponse;
  void MarshalTo(CommandBuilder& b) const;
};

// Part 3 §31.11 TPM2_NV_WriteLock
struct NvWriteLock {
  static constexpr CommandInfo kCommand{kCcNvWriteLock, "TPM2_NV_WriteLock"};
  AuthHandle auth_handle = kRhPlatform;
  uint32_t nv_index = 0;
  using Response = NoResponse;
  void MarshalTo(CommandBuilder& b) const;
};

// Part 3 §31.13 TPM2_NV_Read
struct NvRead {
  static constexpr CommandInfo kCommand{kCcNvRead, "TPM2_NV_Read"};
  AuthHandle auth_handle = kRhOwner;
  uint32_t nv_index = 0;
  uint16_t size = 0;
  uint16_t offset = 0;
  struct Response {
    Bytes data;
    static Result<Response> Unmarshal(ByteReader& params);
  };
  void MarshalTo(CommandBuilder& b) const;
};

// Part 3 §31.6 TPM2_NV_ReadPublic
struct NvReadPublic {
  static constexpr CommandInfo kCommand{kCcNvReadPublic, "TPM2_NV_ReadPublic"};
  uint32_t nv_index = 0;
  struct Response {
    NvPublic nv_public;
    Bytes name;
    static Result<Response> Unmarshal(ByteReader& params);
  };
  void MarshalTo(CommandBuilder& b) const;
};

// Part 3 §22.5 TPM2_PCR_Allocate
struct PcrAllocate {
  static constexpr CommandInfo kCommand{kCcPcrAllocate, "TPM2_PCR_Allocate"};
  AuthHandle auth_handle = kRhPlatform;
  std::vector<PcrSelection> pcr_allocation;
  struct Response {
    bool allocation_success = false;
    uint32_t max_pcr = 0;
    uint32_t size_needed = 0;
    uint32_t size_available = 0;
    static Result<Response> Unmarshal(ByteReader& params);
  };
  void MarshalTo(CommandBuilder& b) const;
};

// Part 3 §30.2 TPM2_GetCapability
struct GetCapability {
  static constexpr CommandInfo kCommand{kCcGetCapability, "TPM2_GetCapability"};
  uint32_t capability = kCapPcrs;
  uint32_t property = 0;
  uint32_t property_count = 1;
  struct Response {
    bool more_data = false;
    uint32_t capability = 0;
    Bytes data;  // TPMU_CAPABILITIES; see the Parse* helpers below
    static Result<Response> Unmarshal(ByteReader& params);
  };
  void MarshalTo(CommandBuilder& b) const;
};
// TPM_CAP_PCRS -> TPML_PCR_SELECTION; TPM_CAP_HANDLES -> TPML_HANDLE;
// TPM_CAP_TPM_PROPERTIES -> TPML_TAGGED_TPM_PROPERTY as (property, value) pairs.
Result<std::vector<PcrSelection>> ParsePcrsCapability(const GetCapability::Response& r);
Result<std::vector<uint32_t>> ParseHandlesCapability(const GetCapability::Response& r);
Result<std::vector<std::pair<uint32_t, uint32_t>>> ParsePropertiesCapability(
    const GetCapability::Response& r);

// The complete command bytes of |cmd|.
template <class Cmd>
Bytes Marshal(const Cmd& cmd) {
  CommandBuilder b(Cmd::kCommand.code);
  cmd.MarshalTo(b);
  return b.Finish();
}

// Response::kHandles for a response with a handle area (CreatePrimary's), else 0.
template <class Response>
constexpr size_t ResponseHandles() {
  if constexpr (requires { Response::kHandles; }) {
    return Response::kHandles;
  } else {
    return 0;
  }
}

// Checks |response| (see SplitResponse) and parses it as the response to a |Cmd|; the parameter
// area must be consumed exactly.
template <class Cmd>
Result<typename Cmd::Response> ParseResponse(ByteSpan response) {
  using Response = typename Cmd::Response;
  constexpr size_t kHandles = ResponseHandles<Response>();
  VTPM_ASSIGN_OR_RETURN(ResponseParts parts, SplitResponse(response, kHandles, Cmd::kCommand.name));
  ByteReader handles(parts.handles);
  ByteReader params(parts.params);
  Result<Response> out = [&] {
    if constexpr (kHandles > 0) {
      return Response::Unmarshal(handles, params);
    } else {
      return Response::Unmarshal(params);
    }
  }();
  if (out) {
    VTPM_RETURN_IF_ERROR(ExpectEnd(params, Cmd::kCommand.name));
  }
  return out;
}

// Sends |cmd| and parses its response.
template <class Cmd>
Result<typename Cmd::Response> Execute(Transport& t, const Cmd& cmd) {
  VTPM_ASSIGN_OR_RETURN(Bytes resp, t.Transmit(Marshal(cmd)));
  return ParseResponse<Cmd>(resp);
}

}  // namespace vtpm::tpmcmd
