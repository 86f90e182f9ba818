#include "provision/setup_options.h"

#include <fmt/format.h>
#include <pwd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>

#include "provision/file_util.h"
#include "state/tpmstate.h"

namespace vtpm::provision {
namespace {

// "a, b,c" -> {"a", "b", "c"} (items trimmed, empty ones dropped).
std::vector<std::string> SplitList(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    size_t comma = s.find(',', start);
    std::string item =
        s.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    size_t b = item.find_first_not_of(" \t");
    size_t e = item.find_last_not_of(" \t");
    if (b != std::string::npos) out.push_back(item.substr(b, e - b + 1));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

Result<std::vector<EkAlg>> ChooseEks(const SetupOptions& a, const SwtpmConfigs& cfg) {
  std::vector<EkAlg> eks;
  if (!a.ek_list.empty()) {
    for (const std::string& name : SplitList(a.ek_list)) {
      VTPM_ASSIGN_OR_RETURN(EkAlg alg, ParseEkAlg(name));
      eks.push_back(alg);
    }
    if (eks.empty()) return Fail(Errc::kInvalidArgument, "--ek: give at least one algorithm");
    return eks;
  }
  std::string ek1 = a.ek1, ek2 = a.ek2;
  if (ek1.empty() && cfg.setup && cfg.setup->ek1keyalgo) ek1 = *cfg.setup->ek1keyalgo;
  if (ek2.empty() && cfg.setup && cfg.setup->ek2keyalgo) ek2 = *cfg.setup->ek2keyalgo;
  if (ek1.empty()) {
    std::string size = a.rsa_keysize;
    if (size.empty() && cfg.setup && cfg.setup->rsa_keysize) size = *cfg.setup->rsa_keysize;
    if (size.empty() || size == "2048") {
      ek1 = "rsa2048";
    } else if (size == "3072" || size == "max") {
      ek1 = "rsa3072";
    } else {
      return Fail(Errc::kInvalidArgument,
                  "--rsa-keysize " + size + " is not supported (2048, 3072 or max)");
    }
  }
  if (ek2.empty()) ek2 = "secp384r1";
  VTPM_ASSIGN_OR_RETURN(EkAlg first, ParseEkAlg(ek1));
  VTPM_ASSIGN_OR_RETURN(EkAlg second, ParseEkAlg(ek2));
  eks.push_back(first);
  if (second != first) eks.push_back(second);  // the same algorithm twice: one EK
  return eks;
}

// The user's login name (for a command line), else the numeric uid.
std::string LoginName() {
  const passwd* pw = getpwuid(geteuid());
  return pw != nullptr ? std::string(pw->pw_name) : std::to_string(geteuid());
}

}  // namespace

Status RefuseUnsupported(const SetupOptions& a) {
  struct {
    bool given;
    const char* what;
  } refused[] = {
      {!a.runas.empty(), "--runas: run vtpm setup as the target user instead"},
      {!a.profile.empty() || !a.profile_name.empty() || !a.profile_file.empty() ||
           !a.profile_file_fd.empty() || !a.profile_remove_disabled.empty() || a.print_profiles,
       "TPM profiles (--profile*, --print-profiles) need libtpms 0.10"},
      {!a.iak.empty() || !a.idevid.empty(), "IAK/IDevID keys (--iakkeyalgo, --idevidkeyalgo)"},
  };
  for (const auto& r : refused) {
    if (r.given) return Fail(Errc::kUnsupported, std::string("not supported: ") + r.what);
  }
  return Ok();
}

Result<SwtpmConfigs> LoadSwtpmConfigs(const SetupOptions& a, Logger log) {
  SwtpmConfigs c;
  c.explicit_config = !a.config.empty();
  std::string path = a.config;
  if (path.empty())
    path = FindSwtpmSetupConfig(std::getenv("XDG_CONFIG_HOME"), std::getenv("HOME"));
  if (path.empty()) return c;
  auto setup = LoadSwtpmSetupConfig(path);
  if (!setup) {
    if (c.explicit_config) return tl::unexpected(setup.error());
    log->warn("ignoring {}: {}", path, setup.error().message);
    return c;
  }
  c.setup = std::move(*setup);
  if (!c.setup->localca_config.empty()) {
    auto lc = LoadSwtpmLocalCaConfig(c.setup->localca_config);
    if (lc) {
      c.localca = std::move(*lc);
    } else if (c.explicit_config) {
      return tl::unexpected(lc.error());
    }
  }
  if (!c.setup->localca_options.empty()) {
    auto lo = LoadSwtpmLocalCaOptions(c.setup->localca_options);
    if (lo) {
      c.options = std::move(*lo);
    } else if (c.explicit_config) {
      return tl::unexpected(lo.error());
    }
  }
  return c;
}

// The CA, by precedence: --ca-key/--ca-cert; --ca-dir; swtpm_localca's CA named by the swtpm
// config (when its key and certificate exist); vtpm's local CA in the default directory.
std::function<Result<Ca>()> CaProvider(const SetupOptions& a, const SwtpmConfigs& cfg, Logger log,
                                       const Clock& clock, const RandomFn& random) {
  return [a, cfg, log, clock, random]() -> Result<Ca> {
    VTPM_ASSIGN_OR_RETURN(CaKeyType type, ParseCaKeyType(a.ca_key_type));
    if (!a.ca_key.empty() || !a.ca_cert.empty()) {
      if (a.ca_key.empty() || a.ca_cert.empty()) {
        return Fail(Errc::kInvalidArgument, "--ca-key and --ca-cert go together");
      }
      std::string password;
      if (!a.ca_password_file.empty()) {
        VTPM_ASSIGN_OR_RETURN(password,
                              ReadSmallFile(a.ca_password_file, 4096, "the CA key password file"));
        while (!password.empty() && (password.back() == '\n' || password.back() == '\r')) {
          password.pop_back();
        }
      }
      return Ca::Load(a.ca_key, a.ca_cert, a.ca_chain, password);
    }
    if (!a.ca_dir.empty()) return Ca::OpenLocal(a.ca_dir, type, clock, random, log);
    if (cfg.localca && !cfg.localca->signing_key.empty() && !cfg.localca->issuer_cert.empty()) {
      const auto& lc = *cfg.localca;
      if (lc.signing_key.rfind("pkcs11:", 0) == 0) {
        return Fail(Errc::kUnsupported, "swtpm-localca signingkey " + lc.signing_key +
                                            ": PKCS#11 keys are not supported");
      }
      bool present = FileExists(lc.signing_key) && FileExists(lc.issuer_cert);
      bool readable = access(lc.signing_key.c_str(), R_OK) == 0;
      if (present && (readable || cfg.explicit_config)) {
        return Ca::Load(lc.signing_key, lc.issuer_cert, "", lc.signing_key_password);
      }
      if (present) {
        log->warn("not using swtpm's CA {}: not readable for {}", lc.signing_key,
                  CurrentUserName());
      }
    }
    const bool system_ok = access(kSystemLocalCaDir, W_OK | X_OK) == 0;
    std::string dir = DefaultLocalCaDir(geteuid(), std::getenv("XDG_CONFIG_HOME"),
                                        std::getenv("HOME"), system_ok);
    auto ca = Ca::OpenLocal(dir, type, clock, random, log);
    if (!ca && (ca.error().sys_errno == EACCES || ca.error().sys_errno == EPERM)) {
      ca.error().message += fmt::format(
          ". vtpm setup runs as {} here and keeps its local CA in {}. Give this user the host's "
          "CA directory, as vtpm's install step does for tss (libvirt's user): `install -d -o {} "
          "-m 0750 {}`; or name a CA with --ca-dir",
          CurrentUserName(), dir, LoginName(), kSystemLocalCaDir);
    }
    return ca;
  };
}

Result<state::SharedStateKey> LoadSetupKey(const SetupOptions& a) {
  struct {
    const std::string& value;
    const char* form;
  } sources[] = {
      {a.keyfile, "file"}, {a.keyfile_fd, "fd"}, {a.pwdfile, "pwdfile"}, {a.pwdfile_fd, "pwdfd"}};
  std::string spec;
  for (const auto& s : sources) {
    if (s.value.empty()) continue;
    if (!spec.empty()) {
      return Fail(Errc::kInvalidArgument,
                  "give one of --keyfile, --keyfile-fd, --pwdfile, --pwdfile-fd");
    }
    if (s.value.find(',') != std::string::npos) {
      return Fail(Errc::kInvalidArgument, "a key file name must not contain ','");
    }
    spec = std::string(s.form) + "=" + s.value;
  }
  if (spec.empty()) {
    if (!a.cipher.empty()) {
      return Fail(Errc::kInvalidArgument, "--cipher needs a key: --keyfile[-fd] or --pwdfile[-fd]");
    }
    return state::SharedStateKey();
  }
  if (!a.cipher.empty()) {
    if (!state::CipherFromName(a.cipher)) {
      return Fail(Errc::kInvalidArgument,
                  "--cipher " + a.cipher + ": use aes-128-cbc, aes-256-cbc or aes-256-gcm");
    }
    spec += ",mode=" + a.cipher;
  }
  return state::LoadKeyOption(spec, "vtpm setup: the state key");
}

Result<SetupRequest> BuildSetupRequest(const SetupOptions& a, const SwtpmConfigs& cfg) {
  SetupRequest req;
  req.tpm2 = a.tpm2;
  if (a.tpm_state.empty()) return Fail(Errc::kInvalidArgument, "--tpm-state must be provided");
  VTPM_ASSIGN_OR_RETURN(const state::DirStoreOptions so,
                        state::ParseTpmState(a.tpm_state, /*plain_path=*/true, "--tpm-state"));
  req.state_dir = so.directory;
  req.state_mode = so.file_mode;
  if (a.overwrite && a.not_overwrite) {
    return Fail(Errc::kInvalidArgument, "--overwrite and --not-overwrite contradict each other");
  }
  req.existing = a.overwrite       ? ExistingState::kOverwrite
                 : a.not_overwrite ? ExistingState::kKeep
                                   : ExistingState::kFail;
  req.reconfigure = a.reconfigure;
  req.vmid = a.vmid;
  req.ek_cert_dir = a.ek_cert_dir;
  // swtpm_setup: certificate options imply --createek; --ek (native) does too.
  bool create_ek =
      a.createek || a.ek_cert || a.platform_cert || !a.ek_list.empty() || a.take_ownership;
  if (!a.tpm2) {
    for (bool tpm2_only :
         {a.ecc, a.create_spk, a.allow_signing, a.decryption, a.reconfigure, !a.pcr_banks.empty(),
          !a.ek_list.empty(), !a.ek1.empty(), !a.ek2.empty()}) {
      if (tpm2_only) {
        return Fail(Errc::kInvalidArgument,
                    "--ecc, --create-spk, --allow-signing, --decryption, --reconfigure, "
                    "--pcr-banks and EK algorithm options require --tpm2");
      }
    }
  } else if (a.take_ownership) {
    return Fail(Errc::kInvalidArgument, "Taking ownership is not supported for TPM 2.");
  }
  if (a.tpm2) {
    Tpm2Plan& p = req.tpm2_plan;
    if (create_ek) {
      VTPM_ASSIGN_OR_RETURN(p.eks, ChooseEks(a, cfg));
    }
    p.ek_certs = a.ek_cert;
    p.platform_cert = a.platform_cert;
    p.lock_nvram = a.lock;
    p.create_spk = a.create_spk;
    p.spk_ecc = a.ecc;
    p.spk_rsa_bits = a.rsa_keysize == "3072" || a.rsa_keysize == "max" ? 3072 : 2048;
    p.ek_usage = !a.allow_signing ? EkUsage::kDecrypt
                 : a.decryption   ? EkUsage::kSignAndDecrypt
                                  : EkUsage::kSign;
    std::string banks;
    for (const auto& b : a.pcr_banks) banks += (banks.empty() ? "" : ",") + b;
    if (SplitList(banks).empty() && cfg.setup && cfg.setup->active_pcr_banks) {
      banks = *cfg.setup->active_pcr_banks;
    }
    if (SplitList(banks).empty()) banks = "sha256";
    if (banks != "-") p.pcr_banks = SplitList(banks);
  } else {
    Tpm12Plan& p = req.tpm12_plan;
    p.create_ek = create_ek;
    p.take_ownership = a.take_ownership;
    p.ek_cert = a.ek_cert;
    p.platform_cert = a.platform_cert;
    p.lock_nvram = a.lock;
    if (a.ownerpass) p.owner_password = *a.ownerpass;
    if (a.srkpass) p.srk_password = *a.srkpass;
    p.owner_well_known = a.owner_well_known;
    p.srk_well_known = a.srk_well_known;
  }
  if (cfg.options) {
    if (cfg.options->platform_manufacturer) {
      req.platform.manufacturer = *cfg.options->platform_manufacturer;
    }
    if (cfg.options->platform_model) req.platform.model = *cfg.options->platform_model;
    if (cfg.options->platform_version) req.platform.version = *cfg.options->platform_version;
  }
  if (a.platform_manufacturer) req.platform.manufacturer = *a.platform_manufacturer;
  if (a.platform_model) req.platform.model = *a.platform_model;
  if (a.platform_version) req.platform.version = *a.platform_version;
  VTPM_RETURN_IF_ERROR(ValidateRequest(req));
  return req;
}

}  // namespace vtpm::provision
