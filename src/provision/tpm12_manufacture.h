// The TPM 1.2 manufacturing steps of swtpm_setup: physical presence, enable and activate, the
// EK, optionally ownership (owner and SRK secrets), certificates in NV (with the PC Client
// 7-byte header), and the global NV lock. Run on a started TPM (TPM_Startup(ST_CLEAR)).
#pragma once

#include <string>

#include "base/log.h"
#include "base/result.h"
#include "provision/tpm2_manufacture.h"
#include "tpmcmd/transport.h"

namespace vtpm::provision {

struct Tpm12Plan {
  bool create_ek = false;
  bool take_ownership = false;  // needs create_ek
  bool ek_cert = false;         // needs create_ek
  bool platform_cert = false;   // needs create_ek
  bool lock_nvram = false;
  // Owner/SRK secrets are SHA-1 of the password (swtpm_setup's defaults "ooo" and "sss"), or
  // 20 zero bytes with *_well_known.
  std::string owner_password = "ooo";
  std::string srk_password = "sss";
  bool owner_well_known = false;
  bool srk_well_known = false;
};

struct Tpm12Outcome {
  Bytes ek_modulus;  // 256 bytes; empty without an EK
  Bytes ek_cert;     // DER (without the NV header)
  Bytes platform_cert;
};

Result<Tpm12Outcome> ManufactureTpm12(tpmcmd::Transport& tpm, const Tpm12Plan& plan,
                                      const CertInputs* certs, const RandomFn& random, Logger log);

}  // namespace vtpm::provision
