// `vtpm setup`'s options: swtpm_setup's command line (which libvirt passes) plus native
// spellings, as plain values, and what they mean -- the swtpm configuration files they name, the
// CA to sign with, the SetupRequest they ask for. The command-line parser in tools/ only fills
// SetupOptions; everything after that is here, where it can be tested without a process.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "base/log.h"
#include "base/result.h"
#include "provision/ca.h"
#include "provision/env.h"
#include "provision/setup.h"
#include "provision/swtpm_config.h"
#include "state/state_key.h"

namespace vtpm::provision {

struct SetupOptions {
  std::string tpm_state, vmid, logfile, config, ek_cert_dir, rsa_keysize, ek1, ek2, ek_list;
  std::vector<std::string> pcr_banks;
  bool tpm2 = false, createek = false, ek_cert = false, platform_cert = false, lock = false;
  bool not_overwrite = false, overwrite = false, reconfigure = false, print_caps = false;
  bool display = false, ecc = false, create_spk = false, allow_signing = false;
  bool decryption = false, take_ownership = false, owner_well_known = false;
  bool srk_well_known = false;
  std::optional<std::string> ownerpass, srkpass;
  std::vector<std::string> create_config_files;
  // CA
  std::string ca_dir, ca_key, ca_cert, ca_chain, ca_password_file, ca_key_type = "ecdsa-p384";
  std::optional<std::string> platform_manufacturer, platform_model, platform_version;
  // Accepted for compatibility, no effect.
  std::string tpm_exe, swtpm_ioctl, tcsd_ps_file;
  // State encryption (swtpm_setup's spellings; libvirt passes --pwdfile-fd N --cipher C).
  std::string keyfile, keyfile_fd, pwdfile, pwdfile_fd, cipher;
  // Not supported: refused with an explanation.
  std::string runas, profile, profile_name;
  std::string profile_file, profile_file_fd, profile_remove_disabled, iak, idevid;
  bool print_profiles = false, no_iak = false;
};

// Options vtpm does not support get an explanation instead of being ignored.
Status RefuseUnsupported(const SetupOptions& a);

// The swtpm configuration in effect: --config, else $XDG_CONFIG_HOME/swtpm_setup.conf,
// $HOME/.config/swtpm_setup.conf or /etc/swtpm_setup.conf, and the swtpm_localca files it names.
// An unreadable file found by search is ignored with a warning; one given with --config fails.
struct SwtpmConfigs {
  std::optional<SwtpmSetupConfig> setup;
  std::optional<SwtpmLocalCaConfig> localca;
  std::optional<SwtpmLocalCaOptions> options;
  bool explicit_config = false;
};
Result<SwtpmConfigs> LoadSwtpmConfigs(const SetupOptions& a, Logger log);

// Opens the CA to sign with, by precedence: --ca-key/--ca-cert; --ca-dir; swtpm_localca's CA
// named by the swtpm configuration (when its key and certificate exist); vtpm's local CA in the
// default directory (made on first use).
std::function<Result<Ca>()> CaProvider(const SetupOptions& a, const SwtpmConfigs& cfg, Logger log,
                                       const Clock& clock, const RandomFn& random);

// The state key --keyfile/--keyfile-fd/--pwdfile/--pwdfile-fd and --cipher name (read now: an
// fd is read to its end and closed); null when none is given.
Result<state::SharedStateKey> LoadSetupKey(const SetupOptions& a);

// What the options ask for, checked (ValidateRequest).
Result<SetupRequest> BuildSetupRequest(const SetupOptions& a, const SwtpmConfigs& cfg);

}  // namespace vtpm::provision
