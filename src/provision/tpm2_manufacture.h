// The TPM 2.0 manufacturing steps of swtpm_setup, as commands through a Transport: create and
// persist EKs, issue and store their certificates (and the platform certificate), lock the NV
// indices, allocate PCR banks. Run on a TPM that has been started (TPM2_Startup(CLEAR)).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "base/log.h"
#include "base/result.h"
#include "provision/cert.h"
#include "provision/ek_profile.h"
#include "tpmcmd/transport.h"

namespace vtpm::provision {

inline constexpr uint32_t kPlatformCertIndex = 0x01c08000;

// TPMA_NV of swtpm_setup's certificate and template indices before any write:
// PLATFORMCREATE | AUTHREAD | OWNERREAD | PPREAD | PPWRITE | NO_DA | WRITEDEFINE (0x42072001).
// After NV_Write they read back with WRITTEN, after NV_WriteLock with WRITELOCKED (0x62072801).
inline constexpr uint32_t kCertNvAttributes = 0x42072001;

struct Tpm2Plan {
  std::vector<EkAlg> eks;  // in creation order; empty: no EK
  EkUsage ek_usage = EkUsage::kDecrypt;
  bool ek_certs = false;
  bool platform_cert = false;  // over the first EK, like swtpm_setup
  bool lock_nvram = false;
  bool create_spk = false;
  bool spk_ecc = false;
  uint16_t spk_rsa_bits = 2048;
  // Banks to leave active ("sha256"...); every other bank is deactivated. nullopt: leave the
  // TPM's default (all banks), swtpm_setup's "--pcr-banks -".
  std::optional<std::vector<std::string>> pcr_banks;
};

// What certificate issuance needs besides the key.
struct CertInputs {
  Issuer issuer;
  TpmInfo tpm;
  PlatformInfo platform;
  std::string vmid;  // the subject CN; "" -> "unknown" (TPM 2, as swtpm)
  Clock clock;
  RandomFn random;
};

struct ProvisionedEk {
  EkAlg alg;
  tpmcmd::Public pub;
  Bytes cert;  // DER, empty without --create-ek-cert
};

struct Tpm2Outcome {
  std::vector<ProvisionedEk> eks;
  Bytes platform_cert;
  std::vector<std::string> active_banks;  // empty if PCR banks were left alone
  std::vector<std::string> all_banks;
};

// |certs| may be null when the plan needs no certificate.
Result<Tpm2Outcome> ManufactureTpm2(tpmcmd::Transport& tpm, const Tpm2Plan& plan,
                                    const CertInputs* certs, Logger log);

// TPM2_PCR_Allocate leaving exactly |banks| active (those the TPM has), in swtpm_setup's
// order: the requested banks first, then the others switched off. Fails if none of |banks|
// exists. Takes effect at the next TPM reset. Sets active/all in |out|.
Status AllocatePcrBanks(tpmcmd::Transport& tpm, const std::vector<std::string>& banks,
                        Tpm2Outcome& out, Logger log);

// Defines |index| with kCertNvAttributes under platform authorization, writes |data| in
// 1024-byte chunks and, with |lock|, write-locks it.
Status WriteNvIndex(tpmcmd::Transport& tpm, uint32_t index, ByteSpan data, bool lock);

}  // namespace vtpm::provision
