// Endorsement keys as constant data: the TCG EK Credential Profile for TPM Family 2.0
// (version 2.5: templates L-1, L-2, H-3, H-6 and their NV indices) and the persistent
// handles of the TCG TPM v2.0 Provisioning Guidance, matching what swtpm_setup creates:
//
//   EK           template  persistent  cert NV     template NV  nameAlg  policy          sym
//   rsa2048      L-1       0x81010001  0x01c00002  0x01c00004   SHA-256  PolicyA AES-128-CFB
//   rsa3072      H-6       0x8101001c  0x01c0001c  0x01c0001d   SHA-384  PolicyB-SHA384 AES-256-CFB
//   secp256r1    L-2       0x8101000a  0x01c0000a  0x01c0000c   SHA-256  PolicyA AES-128-CFB
//   secp384r1    H-3       0x81010016  0x01c00016  0x01c00017   SHA-384  PolicyB-SHA384 AES-256-CFB
//
// L- ("low range") templates carry a zero-filled unique field and no userWithAuth; H- ("high
// range") templates an empty unique field and userWithAuth. From the same endorsement seed,
// tpm2_createek -G rsa / ecc / ecc384 derives the same keys.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "tpmcmd/tpm2_types.h"

namespace vtpm::provision {

enum class EkAlg { kRsa2048, kRsa3072, kEccP256, kEccP384 };

struct EkProfile {
  EkAlg alg;
  std::string_view name;         // "rsa2048", "secp384r1": swtpm's cert file suffix
  std::string_view description;  // "RSA 2048", "ECC NIST P-384": for messages
  uint32_t persistent_handle;
  uint32_t cert_index;
  uint32_t template_index;
};

const EkProfile& GetEkProfile(EkAlg alg);
const std::vector<EkProfile>& AllEkProfiles();
// Accepts swtpm's spellings: rsa2048, rsa3072, ecc_nist_p256, secp256r1, ecc_nist_p384,
// secp384r1, plus p256/p384/ecc256/ecc384.
Result<EkAlg> ParseEkAlg(std::string_view name);

// swtpm_setup's default set: RSA-2048 first (it gets the platform certificate), then P-384.
inline const std::vector<EkAlg>& DefaultEks() {
  static const std::vector<EkAlg> kDefault = {EkAlg::kRsa2048, EkAlg::kEccP384};
  return kDefault;
}

// What the EK may be used for. kDecrypt is the TCG template (restricted decryption key);
// the others are swtpm_setup's non-standard --allow-signing [--decryption] variants.
enum class EkUsage { kDecrypt, kSign, kSignAndDecrypt };

// The public template for TPM2_CreatePrimary in the endorsement hierarchy.
tpmcmd::Public EkTemplate(EkAlg alg, EkUsage usage = EkUsage::kDecrypt);

// Storage primary key templates swtpm_setup's deprecated --create-spk makes (at 0x81000001):
// RSA-3072 (or 2048 with --rsa-keysize 2048) or ECC P-384, restricted decryption, AES-CFB.
inline constexpr uint32_t kSpkHandle = 0x81000001;
tpmcmd::Public SpkTemplate(bool ecc, uint16_t rsa_bits);

}  // namespace vtpm::provision
