// TPM 2.0 constants and structures used by vtpm's own TPM client code (provisioning, EK
// export), with marshalling through ByteWriter/ByteReader. Section numbers refer to the TPM 2.0
// Library Specification Part 2 ("Structures"), revision 1.59.
//
// Only what vtpm sends or reads is modelled. Unmarshalling is strict and bounded: every size
// prefix is checked against what remains, and unsupported variants are refused with an Error
// rather than skipped.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <variant>
#include <vector>

#include "base/bytes.h"
#include "base/result.h"

namespace vtpm::tpmcmd {

// §6.9 TPM_ST
inline constexpr uint16_t kStNoSessions = 0x8001;
inline constexpr uint16_t kStSessions = 0x8002;
inline constexpr uint16_t kStHashcheck = 0x8024;

// §6.5.2 TPM_CC
inline constexpr uint32_t kCcEvictControl = 0x00000120;
inline constexpr uint32_t kCcNvDefineSpace = 0x0000012a;
inline constexpr uint32_t kCcPcrAllocate = 0x0000012b;
inline constexpr uint32_t kCcCreatePrimary = 0x00000131;
inline constexpr uint32_t kCcNvIncrement = 0x00000134;
inline constexpr uint32_t kCcNvWrite = 0x00000137;
inline constexpr uint32_t kCcNvWriteLock = 0x00000138;
inline constexpr uint32_t kCcSelfTest = 0x00000143;
inline constexpr uint32_t kCcStartup = 0x00000144;
inline constexpr uint32_t kCcShutdown = 0x00000145;
inline constexpr uint32_t kCcNvRead = 0x0000014e;
inline constexpr uint32_t kCcSign = 0x0000015d;
inline constexpr uint32_t kCcFlushContext = 0x00000165;
inline constexpr uint32_t kCcNvReadPublic = 0x00000169;
inline constexpr uint32_t kCcReadPublic = 0x00000173;
inline constexpr uint32_t kCcGetCapability = 0x0000017a;
inline constexpr uint32_t kCcGetRandom = 0x0000017b;
inline constexpr uint32_t kCcPcrRead = 0x0000017e;
inline constexpr uint32_t kCcPcrExtend = 0x00000182;

// §7.4 TPM_RH (permanent handles) and TPM_RS_PW.
inline constexpr uint32_t kRhOwner = 0x40000001;
inline constexpr uint32_t kRhNull = 0x40000007;
inline constexpr uint32_t kRsPw = 0x40000009;
inline constexpr uint32_t kRhEndorsement = 0x4000000b;
inline constexpr uint32_t kRhPlatform = 0x4000000c;

// §7.2 TPM_HT: handle type in the top byte.
inline constexpr uint8_t kHtNvIndex = 0x01;
inline constexpr uint8_t kHtTransient = 0x80;
inline constexpr uint8_t kHtPersistent = 0x81;

// §6.3 TPM_ALG_ID
inline constexpr uint16_t kAlgRsa = 0x0001;
inline constexpr uint16_t kAlgSha1 = 0x0004;
inline constexpr uint16_t kAlgHmac = 0x0005;
inline constexpr uint16_t kAlgAes = 0x0006;
inline constexpr uint16_t kAlgKeyedHash = 0x0008;
inline constexpr uint16_t kAlgSha256 = 0x000b;
inline constexpr uint16_t kAlgSha384 = 0x000c;
inline constexpr uint16_t kAlgSha512 = 0x000d;
inline constexpr uint16_t kAlgNull = 0x0010;
inline constexpr uint16_t kAlgSm3_256 = 0x0012;
inline constexpr uint16_t kAlgRsassa = 0x0014;
inline constexpr uint16_t kAlgRsaes = 0x0015;
inline constexpr uint16_t kAlgRsapss = 0x0016;
inline constexpr uint16_t kAlgEcdsa = 0x0018;
inline constexpr uint16_t kAlgEcdaa = 0x001a;
inline constexpr uint16_t kAlgSm2 = 0x001b;
inline constexpr uint16_t kAlgEcschnorr = 0x001c;
inline constexpr uint16_t kAlgEcc = 0x0023;
inline constexpr uint16_t kAlgSymCipher = 0x0025;
inline constexpr uint16_t kAlgSha3_256 = 0x0027;
inline constexpr uint16_t kAlgSha3_384 = 0x0028;
inline constexpr uint16_t kAlgSha3_512 = 0x0029;
inline constexpr uint16_t kAlgCfb = 0x0043;

// §6.4 TPM_ECC_CURVE
inline constexpr uint16_t kEccNistP256 = 0x0003;
inline constexpr uint16_t kEccNistP384 = 0x0004;
inline constexpr uint16_t kEccNistP521 = 0x0005;

// §8.3 TPMA_OBJECT bits
inline constexpr uint32_t kObjFixedTpm = 1u << 1;
inline constexpr uint32_t kObjFixedParent = 1u << 4;
inline constexpr uint32_t kObjSensitiveDataOrigin = 1u << 5;
inline constexpr uint32_t kObjUserWithAuth = 1u << 6;
inline constexpr uint32_t kObjAdminWithPolicy = 1u << 7;
inline constexpr uint32_t kObjNoDa = 1u << 10;
inline constexpr uint32_t kObjRestricted = 1u << 16;
inline constexpr uint32_t kObjDecrypt = 1u << 17;
inline constexpr uint32_t kObjSign = 1u << 18;

// §13.4 TPMA_NV bits
inline constexpr uint32_t kNvPpWrite = 1u << 0;
inline constexpr uint32_t kNvOwnerWrite = 1u << 1;
inline constexpr uint32_t kNvAuthWrite = 1u << 2;
inline constexpr uint32_t kNvPolicyWrite = 1u << 3;
inline constexpr uint32_t kNvCounter = 1u << 4;  // TPM_NT_COUNTER in the TPM_NT field (bits 7:4)
inline constexpr uint32_t kNvPolicyDelete = 1u << 10;
inline constexpr uint32_t kNvWriteLocked = 1u << 11;
inline constexpr uint32_t kNvWriteAll = 1u << 12;
inline constexpr uint32_t kNvWriteDefine = 1u << 13;
inline constexpr uint32_t kNvWriteStClear = 1u << 14;
inline constexpr uint32_t kNvPpRead = 1u << 16;
inline constexpr uint32_t kNvOwnerRead = 1u << 17;
inline constexpr uint32_t kNvAuthRead = 1u << 18;
inline constexpr uint32_t kNvPolicyRead = 1u << 19;
inline constexpr uint32_t kNvNoDa = 1u << 25;
inline constexpr uint32_t kNvOrderly = 1u << 26;
inline constexpr uint32_t kNvClearStClear = 1u << 27;
inline constexpr uint32_t kNvReadLocked = 1u << 28;
inline constexpr uint32_t kNvWritten = 1u << 29;
inline constexpr uint32_t kNvPlatformCreate = 1u << 30;
inline constexpr uint32_t kNvReadStClear = 1u << 31;

// §6.12 TPM_CAP and §6.13 TPM_PT
inline constexpr uint32_t kCapHandles = 0x00000001;
inline constexpr uint32_t kCapPcrs = 0x00000005;
inline constexpr uint32_t kCapTpmProperties = 0x00000006;
inline constexpr uint32_t kPtFixed = 0x00000100;        // PT_FIXED: the first fixed property
inline constexpr uint32_t kPtNvBufferMax = 0x0000012c;  // PT_FIXED + 44

// §6.5.1 TPM_SU
inline constexpr uint16_t kSuClear = 0x0000;
inline constexpr uint16_t kSuState = 0x0001;

// Digest size of a hash algorithm; 0 if unknown.
size_t DigestSize(uint16_t hash_alg);
// "sha256" etc. (swtpm_setup's bank names); empty if unknown.
std::string_view HashAlgName(uint16_t hash_alg);
// The inverse of HashAlgName; 0 if unknown.
uint16_t HashAlgFromName(std::string_view name);

// TPMT_SYM_DEF_OBJECT (§11.1.7). For algorithm == TPM_ALG_NULL, key_bits and mode are absent.
struct SymDef {
  uint16_t algorithm = kAlgNull;
  uint16_t key_bits = 0;
  uint16_t mode = 0;
  bool operator==(const SymDef&) const = default;
};

// TPMT_RSA_SCHEME / TPMT_ECC_SCHEME / TPMT_KDF_SCHEME (§11.2.4.7, §11.2.5.6, §11.2.3.3): the
// scheme and, for every scheme except NULL and RSAES, its hash; ECDAA also has a count.
struct Scheme {
  uint16_t scheme = kAlgNull;
  uint16_t hash_alg = 0;
  uint16_t count = 0;  // ECDAA only
  bool operator==(const Scheme&) const = default;
};

// TPMS_RSA_PARMS (§12.2.3.5)
struct RsaParms {
  SymDef symmetric;
  Scheme scheme;
  uint16_t key_bits = 0;
  uint32_t exponent = 0;  // 0 means 2^16 + 1
  bool operator==(const RsaParms&) const = default;
};

// TPMS_ECC_PARMS (§12.2.3.6)
struct EccParms {
  SymDef symmetric;
  Scheme scheme;
  uint16_t curve_id = 0;
  Scheme kdf;
  bool operator==(const EccParms&) const = default;
};

// TPMS_ECC_POINT (§11.2.5.2)
struct EccPoint {
  Bytes x;
  Bytes y;
  bool operator==(const EccPoint&) const = default;
};

// TPMT_PUBLIC (§12.2.4) for the two asymmetric types (RSA, ECC).
struct Public {
  uint16_t type = kAlgRsa;
  uint16_t name_alg = kAlgSha256;
  uint32_t object_attributes = 0;
  Bytes auth_policy;
  std::variant<RsaParms, EccParms> parameters;
  std::variant<Bytes, EccPoint> unique;  // RSA: modulus (TPM2B_PUBLIC_KEY_RSA); ECC: point
  bool operator==(const Public&) const = default;

  const RsaParms* rsa() const { return std::get_if<RsaParms>(&parameters); }
  const EccParms* ecc() const { return std::get_if<EccParms>(&parameters); }
};

// TPMS_NV_PUBLIC (§13.5)
struct NvPublic {
  uint32_t nv_index = 0;
  uint16_t name_alg = kAlgSha256;
  uint32_t attributes = 0;
  Bytes auth_policy;
  uint16_t data_size = 0;
  bool operator==(const NvPublic&) const = default;
};

// TPMS_PCR_SELECTION (§10.6.2)
struct PcrSelection {
  uint16_t hash = 0;
  Bytes select;  // sizeofSelect bytes of bitmap
  bool operator==(const PcrSelection&) const = default;
};

// TPMS_PCR_SELECTION of |hash| selecting |pcrs|: sizeofSelect is PCR_SELECT_MIN (3 bytes, 24
// PCRs), or more if a PCR above 23 is selected.
PcrSelection SelectPcrs(uint16_t hash, std::initializer_list<uint32_t> pcrs);

// TPMT_HA (§10.3.2): a digest tagged with its hash algorithm.
struct TaggedHash {
  uint16_t hash_alg = kAlgSha256;
  Bytes digest;  // DigestSize(hash_alg) bytes
  bool operator==(const TaggedHash&) const = default;
};

// TPMT_TK_HASHCHECK (§10.7.6). The default is the NULL ticket (tag TPM_ST_HASHCHECK, hierarchy
// TPM_RH_NULL, empty digest): what a digest signed by an unrestricted key needs.
struct HashcheckTicket {
  uint32_t hierarchy = kRhNull;
  Bytes digest;
  bool operator==(const HashcheckTicket&) const = default;
};

// TPMS_SIGNATURE_ECC's signatureR and signatureS (§11.3.2).
struct EccSignature {
  Bytes r;
  Bytes s;
  bool operator==(const EccSignature&) const = default;
};

// TPMT_SIGNATURE (§11.3.4) of the RSA schemes (RSASSA, RSAPSS: the signature) and the ECC
// schemes (ECDSA, ECDAA, SM2, ECSCHNORR: r and s).
struct Signature {
  uint16_t sig_alg = kAlgNull;
  uint16_t hash_alg = 0;
  std::variant<Bytes, EccSignature> signature;
  bool operator==(const Signature&) const = default;
};

// TPM2B_* helpers: a 16-bit size followed by that many bytes.
void Put2b(ByteWriter& w, ByteSpan b);
Result<Bytes> Get2b(ByteReader& r, size_t max, std::string_view what);

void MarshalPublic(ByteWriter& w, const Public& p);  // TPMT_PUBLIC
Bytes MarshalPublic(const Public& p);
void MarshalPublic2b(ByteWriter& w, const Public& p);  // TPM2B_PUBLIC
Result<Public> UnmarshalPublic(ByteReader& r);         // TPMT_PUBLIC
Result<Public> UnmarshalPublic2b(ByteReader& r);       // TPM2B_PUBLIC (size must match content)
// TPM2B_PUBLIC, also keeping the TPMT_PUBLIC bytes as the TPM sent them in |area|.
Result<Public> UnmarshalPublic2b(ByteReader& r, Bytes& area);

void MarshalNvPublic2b(ByteWriter& w, const NvPublic& p);  // TPM2B_NV_PUBLIC
Result<NvPublic> UnmarshalNvPublic2b(ByteReader& r);

void MarshalPcrSelections(ByteWriter& w, const std::vector<PcrSelection>& s);  // TPML_PCR_SELECTION
Result<std::vector<PcrSelection>> UnmarshalPcrSelections(ByteReader& r);

// TPMT_SIG_SCHEME (and TPMT_RSA_SCHEME, TPMT_ECC_SCHEME, TPMT_KDF_SCHEME: the same layout).
void MarshalScheme(ByteWriter& w, const Scheme& s);
// TPML_DIGEST_VALUES: the count, then each TPMT_HA.
void MarshalDigestValues(ByteWriter& w, const std::vector<TaggedHash>& digests);
// TPML_DIGEST (at most 8 digests, §10.9.2).
Result<std::vector<Bytes>> UnmarshalDigestList(ByteReader& r);
void MarshalHashcheckTicket(ByteWriter& w, const HashcheckTicket& t);  // TPMT_TK_HASHCHECK
Result<Signature> UnmarshalSignature(ByteReader& r);                   // TPMT_SIGNATURE

}  // namespace vtpm::tpmcmd
