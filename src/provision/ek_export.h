// Reading an instance's endorsement keys and certificates back out, for host-side attestation
// tools (swtpm#722): `vtpm ek --tpmstate dir=...`.
//
// ReadEndorsement asks a running TPM (any Transport) for every EK of the profile table and the
// platform certificate. ReadEndorsementFromState does so for a state directory without writing
// it: the permanent state is copied into memory and a throw-away in-process TPM answers. That
// works while a daemon serves the same directory (state files are replaced atomically), and
// shows what is persisted.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "base/log.h"
#include "base/result.h"
#include "provision/ek_profile.h"
#include "provision/openssl_util.h"
#include "state/state_key.h"
#include "tpmcmd/tpm2_types.h"
#include "tpmcmd/transport.h"

namespace vtpm::provision {

struct NvCertificate {
  uint32_t index = 0;
  uint32_t attributes = 0;
  Bytes der;
};

struct ExportedEk {
  const EkProfile* profile = nullptr;
  tpmcmd::Public pub;
  std::string public_pem;
  std::optional<NvCertificate> cert;
};

struct Endorsement {
  std::vector<ExportedEk> eks;  // in profile order; only those present
  std::optional<NvCertificate> platform_cert;
};

Result<Endorsement> ReadEndorsement(tpmcmd::Transport& tpm);
Result<Endorsement> ReadEndorsementFromState(const std::string& state_dir, Logger log,
                                             state::SharedStateKey key = nullptr);

// Reads a whole NV index (authorized by the index itself, i.e. AUTHREAD, empty password).
Result<NvCertificate> ReadNvIndex(tpmcmd::Transport& tpm, uint32_t index);

// Text for stdout: for each EK a comment line, its public key PEM and certificate PEM.
Result<std::string> FormatEndorsementPem(const Endorsement& e, bool keys, bool certs);

}  // namespace vtpm::provision
