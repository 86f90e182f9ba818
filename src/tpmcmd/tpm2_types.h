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
#include "wire/tpm_constants.h"

namespace vtpm::tpmcmd {

// The TPM 2.0 vocabulary (TPM_ST, TPM_CC, TPM_RH, TPM_ALG, ...) is wire/tpm_constants.h.
using namespace ::vtpm::tpm;  // NOLINT(google-build-using-namespace): one vocabulary

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
