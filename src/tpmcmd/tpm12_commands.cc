#include "tpmcmd/tpm12_commands.h"

#include <fmt/format.h>

namespace vtpm::tpmcmd::tpm12 {

namespace {

constexpr size_t kHeaderSize = 10;
constexpr size_t kMaxResponse = 64 * 1024;

constexpr uint32_t kAlgRsa = 0x00000001;
constexpr uint16_t kEsRsaesOaepSha1Mgf1 = 0x0003;
constexpr uint16_t kSsNone = 0x0001;
constexpr uint16_t kSsRsaSsaPkcs1v15Sha1 = 0x0002;
constexpr uint16_t kPidOwner = 0x0005;
constexpr uint16_t kTagKey12 = 0x0028;
constexpr uint16_t kKeyStorage = 0x0011;
constexpr uint8_t kAuthAlways = 0x01;
constexpr uint16_t kTagNvAttributes = 0x0017;
constexpr uint16_t kTagNvDataPublic = 0x0018;
constexpr uint8_t kLocAll = 0x1f;

Bytes Command(uint16_t tag, uint32_t ordinal, ByteSpan body) {
  ByteWriter w;
  w.U16(tag);
  w.U32(static_cast<uint32_t>(kHeaderSize + body.size()));
  w.U32(ordinal);
  w.Append(body);
  return std::move(w).Take();
}

// TPM_KEY_PARMS for a 2048-bit, 2-prime RSA key with the default exponent.
void PutRsa2048KeyParms(ByteWriter& w, uint16_t sig_scheme) {
  w.U32(kAlgRsa);
  w.U16(kEsRsaesOaepSha1Mgf1);
  w.U16(sig_scheme);
  w.U32(12);    // parmSize: TPM_RSA_KEY_PARMS
  w.U32(2048);  // keyLength
  w.U32(2);     // numPrimes
  w.U32(0);     // exponentSize: 0 = 65537
}

// TPM_PCR_INFO_SHORT selecting no PCR, usable at every locality.
void PutPcrInfoShortAll(ByteWriter& w) {
  w.U16(3);  // sizeOfSelect
  w.U8(0);
  w.U8(0);
  w.U8(0);
  w.U8(kLocAll);
  for (size_t i = 0; i < kDigestSize; ++i) w.U8(0);  // digestAtRelease
}

}  // namespace

std::string DescribeRc(uint32_t rc) {
  std::string_view name;
  switch (rc) {
    case 0x01:
      name = "TPM_AUTHFAIL";
      break;
    case 0x02:
      name = "TPM_BADINDEX";
      break;
    case 0x03:
      name = "TPM_BAD_PARAMETER";
      break;
    case 0x06:
      name = "TPM_DEACTIVATED";
      break;
    case 0x07:
      name = "TPM_DISABLED";
      break;
    case 0x08:
      name = "TPM_DISABLED_CMD";
      break;
    case 0x09:
      name = "TPM_FAIL";
      break;
    case 0x11:
      name = "TPM_NOSPACE";
      break;
    case 0x14:
      name = "TPM_OWNER_SET";
      break;
    case 0x26:
      name = "TPM_INVALID_POSTINIT";
      break;
    case 0x3c:
      name = "TPM_AREA_LOCKED";
      break;
    default:
      return fmt::format("TPM 1.2 return code 0x{:x}", rc);
  }
  return fmt::format("{} (0x{:x})", name, rc);
}

Result<ByteSpan> CheckResponse(ByteSpan response, std::string_view name) {
  if (response.size() < kHeaderSize || response.size() > kMaxResponse) {
    return Fail(Errc::kCorrupt,
                fmt::format("malformed {} response: {} bytes", name, response.size()));
  }
  uint16_t tag = LoadBe16(response.data());
  uint32_t size = LoadBe32(response.data() + 2);
  uint32_t rc = LoadBe32(response.data() + 6);
  if (size != response.size() || tag < 0x00c4 || tag > 0x00c6) {
    return Fail(Errc::kCorrupt, fmt::format("malformed {} response: tag 0x{:04x}, size {} of {}",
                                            name, tag, size, response.size()));
  }
  if (rc != 0) {
    return tl::unexpected(
        Error{Errc::kTpm, fmt::format("{} failed: {}", name, DescribeRc(rc)), 0, rc});
  }
  return response.subspan(kHeaderSize);
}

Bytes TscPhysicalPresence(uint16_t physical_presence) {
  ByteWriter w;
  w.U16(physical_presence);
  return Command(kTagRquCommand, kOrdTscPhysicalPresence, w.bytes());
}

Bytes Startup(uint16_t type) {
  ByteWriter w;
  w.U16(type);
  return Command(kTagRquCommand, tpm::kTpm12Startup, w.bytes());
}

Bytes PhysicalEnable() { return Command(kTagRquCommand, kOrdPhysicalEnable, {}); }

Bytes PhysicalSetDeactivated(bool deactivated) {
  const uint8_t state = deactivated ? 1 : 0;
  return Command(kTagRquCommand, kOrdPhysicalSetDeactivated, ByteSpan(&state, 1));
}

Bytes CreateEndorsementKeyPair(const Digest& anti_replay) {
  ByteWriter w;
  w.Append(anti_replay);
  // swtpm_setup asks for sigScheme RSASSA-PKCS1v15-SHA1; the TPM ignores it for the EK (it
  // answers TPM_SS_NONE), but we send the same bytes.
  PutRsa2048KeyParms(w, kSsRsaSsaPkcs1v15Sha1);
  return Command(kTagRquCommand, kOrdCreateEndorsementKeyPair, w.bytes());
}

Result<EndorsementKey> ParseCreateEndorsementKeyPair(ByteSpan response) {
  VTPM_ASSIGN_OR_RETURN(ByteSpan body, CheckResponse(response, "TPM_CreateEndorsementKeyPair"));
  ByteReader r(body);
  // TPM_PUBKEY: TPM_KEY_PARMS then TPM_STORE_PUBKEY.
  VTPM_ASSIGN_OR_RETURN(uint32_t alg, r.U32());
  VTPM_RETURN_IF_ERROR(r.U16());  // encScheme
  VTPM_RETURN_IF_ERROR(r.U16());  // sigScheme
  VTPM_ASSIGN_OR_RETURN(uint32_t parm_size, r.U32());
  if (alg != kAlgRsa || parm_size > 64) {
    return Fail(Errc::kCorrupt, "TPM_CreateEndorsementKeyPair returned a non-RSA key");
  }
  VTPM_RETURN_IF_ERROR(r.Take(parm_size));
  VTPM_ASSIGN_OR_RETURN(uint32_t key_len, r.U32());
  if (key_len != 256) {
    return Fail(Errc::kCorrupt,
                fmt::format("TPM_CreateEndorsementKeyPair returned a {}-byte modulus", key_len));
  }
  EndorsementKey ek;
  VTPM_ASSIGN_OR_RETURN(ByteSpan mod, r.Take(key_len));
  ek.modulus.assign(mod.begin(), mod.end());
  VTPM_ASSIGN_OR_RETURN(ByteSpan sum, r.Take(kDigestSize));
  std::copy(sum.begin(), sum.end(), ek.checksum.begin());
  return ek;
}

Bytes Oiap() { return Command(kTagRquCommand, kOrdOiap, {}); }

Result<OiapSession> ParseOiap(ByteSpan response) {
  VTPM_ASSIGN_OR_RETURN(ByteSpan body, CheckResponse(response, "TPM_OIAP"));
  ByteReader r(body);
  OiapSession s;
  VTPM_ASSIGN_OR_RETURN(s.auth_handle, r.U32());
  VTPM_ASSIGN_OR_RETURN(ByteSpan nonce, r.Take(kDigestSize));
  std::copy(nonce.begin(), nonce.end(), s.nonce_even.begin());
  return s;
}

Bytes TakeOwnership::ParamDigestInput() const {
  ByteWriter w;
  w.U32(kOrdTakeOwnership);
  w.U16(kPidOwner);
  w.U32(static_cast<uint32_t>(enc_owner_auth.size()));
  w.Append(enc_owner_auth);
  w.U32(static_cast<uint32_t>(enc_srk_auth.size()));
  w.Append(enc_srk_auth);
  // srkParams: TPM_KEY12
  w.U16(kTagKey12);
  w.U16(0);  // fill
  w.U16(kKeyStorage);
  w.U32(0);  // keyFlags
  w.U8(kAuthAlways);
  PutRsa2048KeyParms(w, kSsNone);
  w.U32(0);  // PCRInfoSize
  w.U32(0);  // pubKey.keyLength
  w.U32(0);  // encDataSize
  return std::move(w).Take();
}

Bytes TakeOwnership::Marshal(const Digest& owner_auth_hmac) const {
  Bytes params = ParamDigestInput();
  ByteWriter body;
  body.Append(ByteSpan(params).subspan(4));  // the ordinal is in the header
  body.U32(auth_handle);
  body.Append(nonce_odd);
  body.U8(0);  // continueAuthSession
  body.Append(owner_auth_hmac);
  return Command(kTagRquAuth1Command, kOrdTakeOwnership, body.bytes());
}

Bytes NvDefineSpace(uint32_t nv_index, uint32_t permissions, uint32_t data_size) {
  ByteWriter w;
  w.U16(kTagNvDataPublic);
  w.U32(nv_index);
  PutPcrInfoShortAll(w);  // pcrInfoRead
  PutPcrInfoShortAll(w);  // pcrInfoWrite
  w.U16(kTagNvAttributes);
  w.U32(permissions);
  w.U8(0);  // bReadSTClear
  w.U8(0);  // bWriteSTClear
  w.U8(0);  // bWriteDefine
  w.U32(data_size);
  for (size_t i = 0; i < kDigestSize; ++i) w.U8(0);  // encAuth
  return Command(kTagRquCommand, kOrdNvDefineSpace, w.bytes());
}

Bytes NvWriteValue(uint32_t nv_index, uint32_t offset, ByteSpan data) {
  ByteWriter w;
  w.U32(nv_index);
  w.U32(offset);
  w.U32(static_cast<uint32_t>(data.size()));
  w.Append(data);
  return Command(kTagRquCommand, kOrdNvWriteValue, w.bytes());
}

Bytes StoredCertHeader(size_t der_size) {
  ByteWriter w;
  w.U16(0x1001);  // TCG_TAG_PCCLIENT_STORED_CERT
  w.U8(0);        // TCG_FULL_CERT
  w.U16(static_cast<uint16_t>(der_size + 2));
  w.U16(0x1002);  // TCG_TAG_PCCLIENT_FULL_CERT
  return std::move(w).Take();
}

}  // namespace vtpm::tpmcmd::tpm12
