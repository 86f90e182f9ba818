// swtpm_setup's configuration files, read so `vtpm setup` can stand in for swtpm_setup on a
// host configured for it (swtpm_setup.conf(5), swtpm-localca.conf(5), swtpm-localca.options):
//
//   swtpm_setup.conf       active_pcr_banks, rsa_keysize, ek1keyalgo, ek2keyalgo,
//                          create_certs_tool_config (-> swtpm-localca.conf),
//                          create_certs_tool_options (-> swtpm-localca.options)
//   swtpm-localca.conf     signingkey, issuercert, signingkey_password (the CA to sign with)
//   swtpm-localca.options  --platform-manufacturer, --platform-model, --platform-version
//
// Other keys (create_certs_tool, certserial, statedir, env:..., profile...) are not used: vtpm
// issues certificates itself, with random serial numbers.
#pragma once

#include <map>
#include <optional>
#include <string>

#include "base/result.h"

namespace vtpm::provision {

// "key = value" lines; '#' starts a comment line; later keys win. Values are trimmed.
std::map<std::string, std::string> ParseConfigText(std::string_view text);

struct SwtpmSetupConfig {
  std::string path;
  std::optional<std::string> active_pcr_banks;
  std::optional<std::string> rsa_keysize;
  std::optional<std::string> ek1keyalgo;
  std::optional<std::string> ek2keyalgo;
  std::string localca_config;   // create_certs_tool_config
  std::string localca_options;  // create_certs_tool_options
};

struct SwtpmLocalCaConfig {
  std::string signing_key;
  std::string issuer_cert;
  std::string signing_key_password;
};

struct SwtpmLocalCaOptions {
  std::optional<std::string> platform_manufacturer;
  std::optional<std::string> platform_model;
  std::optional<std::string> platform_version;
};

// The file swtpm_setup would read without --config: $XDG_CONFIG_HOME/swtpm_setup.conf (or
// ~/.config/swtpm_setup.conf) if readable, else /etc/swtpm_setup.conf; "" if none is readable.
std::string FindSwtpmSetupConfig(const char* xdg_config_home, const char* home);

Result<SwtpmSetupConfig> LoadSwtpmSetupConfig(const std::string& path);
Result<SwtpmLocalCaConfig> LoadSwtpmLocalCaConfig(const std::string& path);
Result<SwtpmLocalCaOptions> LoadSwtpmLocalCaOptions(const std::string& path);

}  // namespace vtpm::provision
