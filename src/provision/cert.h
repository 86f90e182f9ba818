// EK and platform certificates in the profile swtpm_setup 0.7.1 (swtpm_localca/swtpm_cert)
// produces, which follows the TCG EK Credential Profile for TPM Family 2.0:
//
// EK certificate (extensions in swtpm's order):
//   ExtendedKeyUsage            2.23.133.8.1 (tcg-kp-EKCertificate)
//   SubjectAltName   critical   dirName: 2.23.133.2.1 TPM manufacturer ("id:00001014"),
//                               2.23.133.2.2 TPM model, 2.23.133.2.3 TPM version (UTF8String)
//   BasicConstraints critical   CA:FALSE
//   SubjectDirectoryAttributes  2.23.133.2.16 tcg-at-tpmSpecification {family, level, revision}
//   AuthorityKeyIdentifier      keyid of the issuer
//   KeyUsage         critical   keyEncipherment (RSA EK) / keyAgreement (ECC EK)
// Platform certificate (a public-key certificate over the EK, as swtpm makes it):
//   SubjectAltName   critical   dirName: 2.23.133.5.1.1 platformManufacturerStr,
//                               2.23.133.5.1.4 platformModel, 2.23.133.5.1.5 platformVersion
//                               (TPM 1.2: the TPM's 2.23.133.2.1-3, then 2.23.133.2.4-6)
//   BasicConstraints critical   CA:FALSE
//   AuthorityKeyIdentifier
//   KeyUsage         critical   keyEncipherment (RSA EK) / keyAgreement (ECC EK)
//   ExtendedKeyUsage            2.23.133.8.2 (tcg-kp-PlatformCertificate)
// Both: X.509 v3, subject CN=<vmid> (PrintableString when it fits, else UTF8String; TPM 1.2
// EK certificates have an empty subject, as swtpm's), notBefore = the injected clock,
// notAfter = 99991231235959Z (RFC 5280 §4.1.2.5 "no well-defined expiration", swtpm's
// --days -1), signature with the issuer's key and digest.
//
// Given swtpm's CA key, serial and time, IssueEkCertificate/IssuePlatformCertificate reproduce
// swtpm_setup 0.7.1's TPM 2 certificates byte for byte (tests/unit/provision).
#pragma once

#include <ctime>
#include <string>

#include "base/bytes.h"
#include "base/result.h"
#include "provision/env.h"
#include "provision/openssl_util.h"
#include "tpmcmd/tpm2_types.h"

namespace vtpm::provision {

// What libtpms reports about itself (TPMLIB_GetInfo TPMSpecification + TPMAttributes).
struct TpmInfo {
  std::string family = "2.0";
  int level = 0;
  int revision = 164;
  std::string manufacturer = "id:00001014";
  std::string model = "swtpm";
  std::string version = "id:20191023";
};
// Parses libtpms' JSON: {"TPMSpecification":{"family":"2.0","level":0,"revision":164},
// "TPMAttributes":{"manufacturer":"id:00001014","version":"id:20191023","model":"swtpm"}}.
Result<TpmInfo> ParseTpmInfo(std::string_view json);

struct PlatformInfo {
  std::string manufacturer = "vtpm";
  std::string model = "vtpm";
  std::string version = "1.0";
};

// Who signs.
struct Issuer {
  EVP_PKEY* key = nullptr;  // private key
  X509* cert = nullptr;     // its certificate (issuer name, key identifier)
  const EVP_MD* digest = nullptr;
};

struct CertFields {
  std::string common_name;  // empty: empty subject
  Bytes serial;             // big-endian, positive (see NewSerial)
  std::time_t not_before = 0;
};

// A random positive 16-byte serial number (RFC 5280 §4.1.2.2: at most 20 octets).
Result<Bytes> NewSerial(const RandomFn& random);

Result<Bytes> IssueEkCertificate(const Issuer& issuer, EVP_PKEY* ek, const TpmInfo& tpm,
                                 const CertFields& fields);
// |tpm| is used only for TPM 1.2 (whose platform certificate also names the TPM).
Result<Bytes> IssuePlatformCertificate(const Issuer& issuer, EVP_PKEY* ek,
                                       const PlatformInfo& platform, const TpmInfo& tpm, bool tpm2,
                                       const CertFields& fields);

// The public key of a TPM object (RSA or NIST ECC) as an OpenSSL key.
Result<EvpPkeyPtr> PublicKeyFromTpm(const tpmcmd::Public& pub);
// An RSA public key from its modulus; exponent 0 means 65537.
Result<EvpPkeyPtr> RsaPublicKey(ByteSpan modulus, uint32_t exponent);

}  // namespace vtpm::provision
