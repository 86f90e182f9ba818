#include "provision/ek_profile.h"

#include <fmt/format.h>

namespace vtpm::provision {

namespace {

using namespace tpmcmd;  // NOLINT: the constants below read like the specification tables

// EK Credential Profile: PolicyA = TPM2_PolicySecret(TPM_RH_ENDORSEMENT), SHA-256.
const Bytes& PolicyASha256() {
  static const Bytes kPolicy = {0x83, 0x71, 0x97, 0x67, 0x44, 0x84, 0xb3, 0xf8, 0x1a, 0x90, 0xcc,
                                0x8d, 0x46, 0xa5, 0xd7, 0x24, 0xfd, 0x52, 0xd7, 0x6e, 0x06, 0x52,
                                0x0b, 0x64, 0xf2, 0xa1, 0xda, 0x1b, 0x33, 0x14, 0x69, 0xaa};
  return kPolicy;
}

// EK Credential Profile: PolicyB, the high-range templates' policy, SHA-384.
const Bytes& PolicyBSha384() {
  static const Bytes kPolicy = {0xb2, 0x6e, 0x7d, 0x28, 0xd1, 0x1a, 0x50, 0xbc, 0x53, 0xd8,
                                0x82, 0xbc, 0xf5, 0xfd, 0x3a, 0x1a, 0x07, 0x41, 0x48, 0xbb,
                                0x35, 0xd3, 0xb4, 0xe4, 0xcb, 0x1c, 0x0a, 0xd9, 0xbd, 0xe4,
                                0x19, 0xca, 0xcb, 0x47, 0xba, 0x09, 0x69, 0x96, 0x46, 0x15,
                                0x0f, 0x9f, 0xc0, 0x00, 0xf3, 0xf8, 0x0e, 0x12};
  return kPolicy;
}

// fixedTPM | fixedParent | sensitiveDataOrigin | adminWithPolicy | restricted | decrypt
constexpr uint32_t kEkAttributes = kObjFixedTpm | kObjFixedParent | kObjSensitiveDataOrigin |
                                   kObjAdminWithPolicy | kObjRestricted | kObjDecrypt;
static_assert(kEkAttributes == 0x000300b2);

const std::vector<EkProfile> kProfiles = {
    {EkAlg::kRsa2048, "rsa2048", "RSA 2048", 0x81010001, 0x01c00002, 0x01c00004},
    {EkAlg::kRsa3072, "rsa3072", "RSA 3072", 0x8101001c, 0x01c0001c, 0x01c0001d},
    {EkAlg::kEccP256, "secp256r1", "ECC NIST P-256", 0x8101000a, 0x01c0000a, 0x01c0000c},
    {EkAlg::kEccP384, "secp384r1", "ECC NIST P-384", 0x81010016, 0x01c00016, 0x01c00017},
};

}  // namespace

const EkProfile& GetEkProfile(EkAlg alg) {
  for (const auto& p : kProfiles) {
    if (p.alg == alg) return p;
  }
  return kProfiles[0];
}

const std::vector<EkProfile>& AllEkProfiles() { return kProfiles; }

Result<EkAlg> ParseEkAlg(std::string_view name) {
  if (name == "rsa2048" || name == "rsa") return EkAlg::kRsa2048;
  if (name == "rsa3072") return EkAlg::kRsa3072;
  if (name == "secp256r1" || name == "ecc_nist_p256" || name == "p256" || name == "ecc256" ||
      name == "ecc") {
    return EkAlg::kEccP256;
  }
  if (name == "secp384r1" || name == "ecc_nist_p384" || name == "p384" || name == "ecc384") {
    return EkAlg::kEccP384;
  }
  return Fail(Errc::kInvalidArgument,
              fmt::format("unsupported EK algorithm '{}' (use rsa2048, rsa3072, secp256r1 or "
                          "secp384r1)",
                          name));
}

Public EkTemplate(EkAlg alg, EkUsage usage) {
  bool high_range = alg == EkAlg::kRsa3072 || alg == EkAlg::kEccP384;
  Public p;
  p.name_alg = high_range ? kAlgSha384 : kAlgSha256;
  p.auth_policy = high_range ? PolicyBSha384() : PolicyASha256();
  uint32_t attributes = kEkAttributes | (high_range ? kObjUserWithAuth : 0);
  SymDef sym{kAlgAes, static_cast<uint16_t>(high_range ? 256 : 128), kAlgCfb};
  if (usage != EkUsage::kDecrypt) {
    // swtpm_setup --allow-signing: an unrestricted signing key, no symmetric algorithm.
    attributes &= ~(kObjRestricted | kObjDecrypt);
    attributes |= kObjSign | (usage == EkUsage::kSignAndDecrypt ? kObjDecrypt : 0);
    sym = SymDef{};
  }
  p.object_attributes = attributes;
  switch (alg) {
    case EkAlg::kRsa2048:
    case EkAlg::kRsa3072: {
      p.type = kAlgRsa;
      uint16_t bits = alg == EkAlg::kRsa2048 ? 2048 : 3072;
      p.parameters = RsaParms{sym, Scheme{}, bits, 0};
      p.unique = high_range ? Bytes{} : Bytes(bits / 8, 0);
      break;
    }
    case EkAlg::kEccP256:
    case EkAlg::kEccP384: {
      p.type = kAlgEcc;
      uint16_t curve = alg == EkAlg::kEccP256 ? kEccNistP256 : kEccNistP384;
      p.parameters = EccParms{sym, Scheme{}, curve, Scheme{}};
      p.unique = high_range ? EccPoint{} : EccPoint{Bytes(32, 0), Bytes(32, 0)};
      break;
    }
  }
  return p;
}

Public SpkTemplate(bool ecc, uint16_t rsa_bits) {
  Public p;
  // fixedTPM | fixedParent | sensitiveDataOrigin | userWithAuth | noDA | restricted | decrypt
  p.object_attributes = kObjFixedTpm | kObjFixedParent | kObjSensitiveDataOrigin |
                        kObjUserWithAuth | kObjNoDa | kObjRestricted | kObjDecrypt;
  if (ecc) {
    p.type = kAlgEcc;
    p.name_alg = kAlgSha384;
    p.parameters = EccParms{SymDef{kAlgAes, 256, kAlgCfb}, Scheme{}, kEccNistP384, Scheme{}};
    p.unique = EccPoint{Bytes(48, 0), Bytes(48, 0)};
  } else {
    p.type = kAlgRsa;
    p.name_alg = rsa_bits == 2048 ? kAlgSha256 : kAlgSha384;
    p.parameters =
        RsaParms{SymDef{kAlgAes, static_cast<uint16_t>(rsa_bits == 2048 ? 128 : 256), kAlgCfb},
                 Scheme{}, rsa_bits, 0};
    p.unique = Bytes(rsa_bits / 8, 0);
  }
  return p;
}

}  // namespace vtpm::provision
