#include "provision/swtpm_config.h"

#include <fmt/format.h>
#include <unistd.h>

#include "provision/file_util.h"

namespace vtpm::provision {

namespace {

constexpr size_t kMaxConfigFile = 64 * 1024;

std::string_view Trim(std::string_view s) {
  const char* ws = " \t\r\n";
  size_t b = s.find_first_not_of(ws);
  if (b == std::string_view::npos) return {};
  size_t e = s.find_last_not_of(ws);
  return s.substr(b, e - b + 1);
}

std::optional<std::string> Get(const std::map<std::string, std::string>& m, const char* key) {
  auto it = m.find(key);
  if (it == m.end() || it->second.empty()) return std::nullopt;
  return it->second;
}

}  // namespace

std::map<std::string, std::string> ParseConfigText(std::string_view text) {
  std::map<std::string, std::string> out;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = Trim(text.substr(0, nl));
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    if (line.empty() || line[0] == '#') continue;
    size_t eq = line.find('=');
    if (eq == std::string_view::npos) continue;
    out[std::string(Trim(line.substr(0, eq)))] = std::string(Trim(line.substr(eq + 1)));
  }
  return out;
}

std::string FindSwtpmSetupConfig(const char* xdg_config_home, const char* home) {
  std::string user;
  if (xdg_config_home != nullptr && xdg_config_home[0] == '/') {
    user = std::string(xdg_config_home) + "/swtpm_setup.conf";
  } else if (home != nullptr && home[0] != '\0') {
    user = std::string(home) + "/.config/swtpm_setup.conf";
  }
  if (!user.empty() && access(user.c_str(), R_OK) == 0) return user;
  if (access("/etc/swtpm_setup.conf", R_OK) == 0) return "/etc/swtpm_setup.conf";
  return "";
}

Result<SwtpmSetupConfig> LoadSwtpmSetupConfig(const std::string& path) {
  VTPM_ASSIGN_OR_RETURN(std::string text,
                        ReadSmallFile(path, kMaxConfigFile, "the swtpm_setup config file"));
  auto kv = ParseConfigText(text);
  SwtpmSetupConfig c;
  c.path = path;
  c.active_pcr_banks = Get(kv, "active_pcr_banks");
  c.rsa_keysize = Get(kv, "rsa_keysize");
  c.ek1keyalgo = Get(kv, "ek1keyalgo");
  c.ek2keyalgo = Get(kv, "ek2keyalgo");
  c.localca_config = Get(kv, "create_certs_tool_config").value_or("");
  c.localca_options = Get(kv, "create_certs_tool_options").value_or("");
  return c;
}

Result<SwtpmLocalCaConfig> LoadSwtpmLocalCaConfig(const std::string& path) {
  VTPM_ASSIGN_OR_RETURN(std::string text,
                        ReadSmallFile(path, kMaxConfigFile, "the swtpm-localca config file"));
  auto kv = ParseConfigText(text);
  SwtpmLocalCaConfig c;
  c.signing_key = Get(kv, "signingkey").value_or("");
  c.issuer_cert = Get(kv, "issuercert").value_or("");
  c.signing_key_password = Get(kv, "signingkey_password").value_or("");
  return c;
}

Result<SwtpmLocalCaOptions> LoadSwtpmLocalCaOptions(const std::string& path) {
  VTPM_ASSIGN_OR_RETURN(std::string text,
                        ReadSmallFile(path, kMaxConfigFile, "the swtpm-localca options file"));
  SwtpmLocalCaOptions o;
  // One "--option value" per line (swtpm_localca passes them on to swtpm_cert).
  std::string_view rest = text;
  while (!rest.empty()) {
    size_t nl = rest.find('\n');
    std::string_view line = Trim(rest.substr(0, nl));
    rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
    if (line.empty() || line[0] == '#') continue;
    size_t sp = line.find_first_of(" \t");
    std::string_view opt = line.substr(0, sp);
    std::string value(sp == std::string_view::npos ? std::string_view() : Trim(line.substr(sp)));
    if (opt == "--platform-manufacturer") {
      o.platform_manufacturer = value;
    } else if (opt == "--platform-model") {
      o.platform_model = value;
    } else if (opt == "--platform-version") {
      o.platform_version = value;
    }
  }
  return o;
}

}  // namespace vtpm::provision
