// RunSetup: swtpm_setup's job done in process. The TPM runs on the in-process Engine over an
// in-memory store; only the finished state reaches the state directory, in one atomic,
// durable replacement of <prefix>permall, while the directory's lock is held. A failure at any
// step leaves the directory as it was (swtpm_setup instead deletes the state it was replacing).
//
// Existing state (a <prefix>permall in the directory), as swtpm_setup:
//   default        error "Found existing TPM state"
//   --not-overwrite  leave it, succeed (kept_existing)
//   --overwrite    replace it; its volatile/save state and previous generation are removed
//   --reconfigure  (TPM 2) start from it and change only the PCR banks; no EKs or certificates
#pragma once

#include <sys/types.h>

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "base/log.h"
#include "base/result.h"
#include "provision/ca.h"
#include "provision/tpm12_manufacture.h"
#include "provision/tpm2_manufacture.h"
#include "state/state_key.h"

namespace vtpm::provision {

enum class ExistingState { kFail, kOverwrite, kKeep };

struct SetupRequest {
  bool tpm2 = false;
  std::string state_dir;  // must exist
  mode_t state_mode = 0600;
  ExistingState existing = ExistingState::kFail;
  bool reconfigure = false;
  Tpm2Plan tpm2_plan;
  Tpm12Plan tpm12_plan;
  std::string vmid;
  PlatformInfo platform;
  std::string ek_cert_dir;          // --write-ek-cert-files: ek-<alg>.crt (DER, 0640); empty: none
  bool durable = true;              // fsync what is committed
  state::SharedStateKey state_key;  // encrypt the state with it (null: plain)
};

struct SetupEnv {
  Logger log;
  Clock clock;
  RandomFn random;
  // Opens (or creates) the CA; called only if a certificate is to be issued.
  std::function<Result<Ca>()> open_ca;
};

struct SetupResult {
  bool kept_existing = false;
  bool replaced_existing = false;
  std::string ca_description;  // empty if no certificate was issued
  Tpm2Outcome tpm2;
  Tpm12Outcome tpm12;
  std::vector<std::string> cert_files;
};

// Checks a request for contradictions before anything is touched.
Status ValidateRequest(const SetupRequest& req);

Result<SetupResult> RunSetup(const SetupRequest& req, const SetupEnv& env);

}  // namespace vtpm::provision
