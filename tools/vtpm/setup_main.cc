// `vtpm setup` (swtpm_setup's command line, plus native spellings) and `vtpm ek` (print an
// instance's EK public keys and certificates): composition roots of the provision layer.
#include <fcntl.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/log.h"
#include "commands.h"
#include "provision/ca.h"
#include "provision/ek_export.h"
#include "provision/file_util.h"
#include "provision/setup.h"
#include "provision/swtpm_config.h"

namespace vtpm::tools {

namespace {

using namespace provision;  // NOLINT: this file only composes the provision layer

struct SetupArgs {
  std::string tpm_state, vmid, logfile, config, ek_cert_dir, rsa_keysize, ek1, ek2, ek_list;
  std::vector<std::string> pcr_banks;
  bool tpm2 = false, createek = false, ek_cert = false, platform_cert = false, lock = false;
  bool not_overwrite = false, overwrite = false, reconfigure = false, print_caps = false;
  bool display = false, ecc = false, create_spk = false, allow_signing = false;
  bool decryption = false, take_ownership = false, owner_well_known = false;
  bool srk_well_known = false;
  std::optional<std::string> ownerpass, srkpass;
  std::vector<std::string> create_config_files;
  CLI::Option* create_config_files_opt = nullptr;
  // CA
  std::string ca_dir, ca_key, ca_cert, ca_chain, ca_password_file, ca_key_type = "ecdsa-p384";
  std::optional<std::string> platform_manufacturer, platform_model, platform_version;
  // Accepted for compatibility, no effect.
  std::string tpm_exe, swtpm_ioctl, tcsd_ps_file;
  // Not supported: refused with an explanation.
  std::string runas, keyfile, keyfile_fd, pwdfile, pwdfile_fd, cipher, profile, profile_name;
  std::string profile_file, profile_file_fd, profile_remove_disabled, iak, idevid;
  bool print_profiles = false, no_iak = false;
};

constexpr const char* kCapabilities =
    R"({ "type": "swtpm_setup", "features": [ "tpm-1.2", "tpm-2.0", "tpm12-not-need-root", )"
    R"("cmdarg-write-ek-cert-files", "cmdarg-create-config-files", )"
    R"("cmdarg-reconfigure-pcr-banks", "tpm2-rsa-keysize-2048", "tpm2-rsa-keysize-3072" ], )"
    R"("version": ")" VTPM_VERSION R"(" })";

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

// "DIR", "dir://DIR", or swtpm socket's "dir=DIR[,mode=0NNN]".
Status ParseStateArg(const std::string& arg, SetupRequest& req) {
  if (arg.rfind("file://", 0) == 0) {
    return Fail(Errc::kUnsupported,
                "--tpm-state file://...: the linear-file backend is not supported; give a "
                "directory");
  }
  if (arg.rfind("dir://", 0) == 0) {
    req.state_dir = arg.substr(6);
    return Ok();
  }
  if (arg.rfind("dir=", 0) == 0) {
    for (const std::string& kv : SplitList(arg)) {
      if (kv.rfind("dir=", 0) == 0) {
        req.state_dir = kv.substr(4);
      } else if (kv.rfind("mode=", 0) == 0) {
        char* end = nullptr;
        unsigned long mode = std::strtoul(kv.c_str() + 5, &end, 8);
        if (end == kv.c_str() + 5 || *end != '\0' || mode > 0777 || (mode & 0600) != 0600) {
          return Fail(Errc::kInvalidArgument,
                      "--tpm-state: mode= wants octal permissions including 0600");
        }
        req.state_mode = static_cast<mode_t>(mode);
      } else {
        return Fail(Errc::kInvalidArgument, "--tpm-state: unknown key in '" + kv + "'");
      }
    }
    return Ok();
  }
  req.state_dir = arg;
  return Ok();
}

Status RefuseUnsupported(const SetupArgs& a) {
  struct {
    bool given;
    const char* what;
  } refused[] = {
      {!a.keyfile.empty() || !a.keyfile_fd.empty() || !a.pwdfile.empty() || !a.pwdfile_fd.empty() ||
           !a.cipher.empty(),
       "state encryption (--keyfile, --pwdfile, --cipher): vtpm does not encrypt TPM state yet"},
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

struct Config {
  std::optional<SwtpmSetupConfig> setup;
  std::optional<SwtpmLocalCaConfig> localca;
  std::optional<SwtpmLocalCaOptions> options;
  bool explicit_config = false;
};

Result<Config> LoadConfig(const SetupArgs& a, Logger log) {
  Config c;
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
std::function<Result<Ca>()> CaProvider(const SetupArgs& a, const Config& cfg, Logger log,
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
    std::string dir =
        DefaultLocalCaDir(geteuid(), std::getenv("XDG_CONFIG_HOME"), std::getenv("HOME"));
    return Ca::OpenLocal(dir, type, clock, random, log);
  };
}

Result<std::vector<EkAlg>> ChooseEks(const SetupArgs& a, const Config& cfg) {
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

Result<SetupRequest> BuildRequest(const SetupArgs& a, const Config& cfg) {
  SetupRequest req;
  req.tpm2 = a.tpm2;
  if (a.tpm_state.empty()) return Fail(Errc::kInvalidArgument, "--tpm-state must be provided");
  VTPM_RETURN_IF_ERROR(ParseStateArg(a.tpm_state, req));
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

Result<Logger> MakeSetupLogger(const std::string& logfile) {
  if (logfile.empty()) return StderrLogger("vtpm-setup", spdlog::level::info);
  // Created like swtpm_setup does (0640, never through a symlink) before spdlog appends.
  UniqueFd fd(open(logfile.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0640));
  if (!fd) return SysFail("cannot open log file " + logfile, errno);
  return FileLogger("vtpm-setup", logfile, spdlog::level::info, false);
}

void PrintSummary(const SetupRequest& req, const SetupResult& res) {
  fmt::print("TPM {} state in {}\n", req.tpm2 ? "2.0" : "1.2", req.state_dir);
  for (const auto& ek : res.tpm2.eks) {
    const EkProfile& p = GetEkProfile(ek.alg);
    fmt::print("  EK {:<10} persistent handle 0x{:08x}", p.name, p.persistent_handle);
    if (!ek.cert.empty()) fmt::print(", certificate in NV index 0x{:08x}", p.cert_index);
    fmt::print("\n");
  }
  if (!res.tpm2.platform_cert.empty()) {
    fmt::print("  platform certificate in NV index 0x{:08x}\n", kPlatformCertIndex);
  }
  if (!res.tpm12.ek_modulus.empty()) fmt::print("  EK RSA 2048\n");
  if (!res.tpm2.active_banks.empty()) {
    fmt::print("  active PCR banks: {}\n", fmt::join(res.tpm2.active_banks, ","));
  }
  if (!res.ca_description.empty())
    fmt::print("  certificates issued by the {}\n", res.ca_description);
  for (const auto& f : res.cert_files) fmt::print("  wrote {}\n", f);
}

int RunSetupCommand(const SetupArgs& a) {
  if (a.print_caps) {
    std::printf("%s\n", kCapabilities);
    return 0;
  }
  if (a.create_config_files_opt != nullptr && a.create_config_files_opt->count() > 0) {
    // vtpm setup needs no per-user configuration: its CA is made on first use.
    return 0;
  }
  auto log_or = MakeSetupLogger(a.logfile);
  if (!log_or) {
    std::fprintf(stderr, "vtpm setup: %s\n", log_or.error().message.c_str());
    return 1;
  }
  Logger log = *log_or;
  auto fail = [&](const Error& e) {
    log->error("{}", e.message);
    log->error("An error occurred. Authoring the TPM state failed.");
    if (!a.logfile.empty()) std::fprintf(stderr, "vtpm setup: %s\n", e.message.c_str());
    return 1;
  };
  if (auto st = RefuseUnsupported(a); !st) return fail(st.error());
  if (!a.tpm_exe.empty() || !a.swtpm_ioctl.empty() || !a.tcsd_ps_file.empty()) {
    log->info(
        "ignoring --tpm/--swtpm_ioctl/--tcsd-system-ps-file: vtpm setup runs the TPM in "
        "process");
  }
  auto cfg = LoadConfig(a, log);
  if (!cfg) return fail(cfg.error());
  auto req = BuildRequest(a, *cfg);
  if (!req) return fail(req.error());
  SetupEnv env;
  env.log = log;
  env.clock = SystemClock();
  env.random = SystemRandom();
  env.open_ca = CaProvider(a, *cfg, log, env.clock, env.random);
  log->info("Starting vTPM {} as {} (vtpm {})",
            req->reconfigure ? "reconfiguration" : "manufacturing", CurrentUserName(),
            VTPM_VERSION);
  auto res = RunSetup(*req, env);
  if (!res) return fail(res.error());
  if (!res->kept_existing) log->info("Successfully authored TPM state.");
  if (a.display && !res->kept_existing) PrintSummary(*req, *res);
  return 0;
}

// --- vtpm ek ---------------------------------------------------------------------------------

struct EkArgs {
  std::string tpm_state, out_dir;
  bool tpm2 = false, keys_only = false, certs_only = false;
};

int RunEkCommand(const EkArgs& a) {
  auto die = [](const std::string& msg) {
    std::fprintf(stderr, "vtpm ek: %s\n", msg.c_str());
    return 1;
  };
  SetupRequest req;
  if (auto st = ParseStateArg(a.tpm_state, req); !st) return die(st.error().message);
  if (a.keys_only && a.certs_only) return die("--keys-only and --certs-only exclude each other");
  auto e = ReadEndorsementFromState(req.state_dir, StderrLogger("vtpm-ek", spdlog::level::warn));
  if (!e) return die(e.error().message);
  if (e->eks.empty()) return die("the TPM in " + req.state_dir + " has no endorsement key");
  bool keys = !a.certs_only, certs = !a.keys_only;
  if (a.out_dir.empty()) {
    auto text = FormatEndorsementPem(*e, keys, certs);
    if (!text) return die(text.error().message);
    std::fwrite(text->data(), 1, text->size(), stdout);
    return 0;
  }
  if (auto st = MakeDirs(a.out_dir, 0755); !st) return die(st.error().message);
  auto write = [&](const std::string& name, const std::string& pem) -> Status {
    ByteSpan b(reinterpret_cast<const uint8_t*>(pem.data()), pem.size());
    VTPM_RETURN_IF_ERROR(WriteFileAtomic(a.out_dir, name, b, 0644, false));
    std::printf("%s/%s\n", a.out_dir.c_str(), name.c_str());
    return Ok();
  };
  for (const auto& ek : e->eks) {
    std::string base = "ek-" + std::string(ek.profile->name);
    if (keys) {
      if (auto st = write(base + ".pub.pem", ek.public_pem); !st) return die(st.error().message);
    }
    if (certs && ek.cert) {
      auto pem = DerCertToPem(ek.cert->der);
      if (!pem) return die(pem.error().message);
      if (auto st = write(base + ".crt.pem", *pem); !st) return die(st.error().message);
    }
  }
  if (certs && e->platform_cert) {
    auto pem = DerCertToPem(e->platform_cert->der);
    if (!pem) return die(pem.error().message);
    if (auto st = write("platform.crt.pem", *pem); !st) return die(st.error().message);
  }
  return 0;
}

}  // namespace

Runner AddSetupCommand(CLI::App& app) {
  auto a = std::make_shared<SetupArgs>();
  CLI::App* s = app.add_subcommand(
      "setup",
      "Create a TPM state directory with EKs and certificates (swtpm_setup's options; runs the "
      "TPM in process)");
  // swtpm_setup's options (libvirt passes these), with native spellings as aliases.
  s->add_option("--tpm-state,--tpmstate", a->tpm_state,
                "State directory: DIR, dir://DIR or dir=DIR[,mode=0600]");
  s->add_flag("--tpm2", a->tpm2, "Set up a TPM 2.0 (default: TPM 1.2, like swtpm_setup)");
  s->add_flag("--createek,--create-ek", a->createek,
              "Create EKs (TPM 2: RSA-2048 and ECC P-384, see --ek)");
  s->add_option("--ek", a->ek_list,
                "EKs to create, comma-separated: rsa2048, rsa3072, secp256r1, secp384r1 "
                "(implies --createek)");
  s->add_option("--ek1keyalgo", a->ek1, "First EK (gets the platform certificate)");
  s->add_option("--ek2keyalgo", a->ek2, "Second EK");
  s->add_option("--rsa-keysize", a->rsa_keysize, "RSA EK size: 2048 (default), 3072, max");
  s->add_flag("--create-ek-cert,--ek-cert", a->ek_cert, "Issue EK certificates into NV");
  s->add_flag("--create-platform-cert,--platform-cert", a->platform_cert,
              "Issue a platform certificate (NV 0x01c08000)");
  s->add_flag("--lock-nvram,--lock", a->lock, "Write-lock the certificate NV indices");
  s->add_flag("--not-overwrite", a->not_overwrite, "Keep an existing state and succeed");
  s->add_flag("--overwrite", a->overwrite, "Replace an existing state");
  s->add_flag("--reconfigure", a->reconfigure, "Change the PCR banks of an existing TPM 2");
  s->add_option("--pcr-banks", a->pcr_banks,
                "PCR banks to keep active, e.g. sha256,sha384 ('-': all); default sha256");
  s->add_option("--vmid", a->vmid, "VM identifier: the certificates' subject CN");
  s->add_option("--logfile", a->logfile, "Append messages to this file (default stderr)");
  s->add_option("--config", a->config,
                "swtpm_setup.conf to read (default: $XDG_CONFIG_HOME or /etc)");
  s->add_option("--write-ek-cert-files,--ek-cert-dir", a->ek_cert_dir,
                "Also write the EK certificates (DER) as ek-<alg>.crt into this directory");
  s->add_flag("--print-capabilities", a->print_caps, "Print supported features as JSON");
  a->create_config_files_opt =
      s->add_option("--create-config-files", a->create_config_files,
                    "Accepted for libvirt; vtpm needs no per-user config files")
          ->expected(0, 1);
  s->add_flag("--display", a->display, "Print a summary when done");
  s->add_flag("--ecc", a->ecc, "With --create-spk: an ECC P-384 storage primary key");
  s->add_flag("--create-spk", a->create_spk, "Create a storage primary key at 0x81000001");
  s->add_flag("--allow-signing", a->allow_signing, "Non-standard EK that can sign");
  s->add_flag("--decryption", a->decryption, "With --allow-signing: also decrypt");
  s->add_flag("--take-ownership", a->take_ownership, "TPM 1.2: take ownership");
  s->add_option("--ownerpass", a->ownerpass, "TPM 1.2 owner password (default ooo)");
  s->add_flag("--owner-well-known", a->owner_well_known, "TPM 1.2: owner secret of 20 zeros");
  s->add_option("--srkpass", a->srkpass, "TPM 1.2 SRK password (default sss)");
  s->add_flag("--srk-well-known", a->srk_well_known, "TPM 1.2: SRK secret of 20 zeros");
  // The CA (native).
  s->add_option("--ca-dir", a->ca_dir,
                "Local CA directory, created on first use (default /var/lib/vtpm-localca for "
                "root, else $XDG_CONFIG_HOME/vtpm/localca)");
  s->add_option("--ca-key-type", a->ca_key_type,
                "Key type of a new local CA: ecdsa-p384 (default), ecdsa-p256, rsa3072, rsa2048");
  s->add_option("--ca-key", a->ca_key, "Sign with this CA key (PEM) instead of the local CA");
  s->add_option("--ca-cert", a->ca_cert, "Certificate of --ca-key (PEM; may hold the chain)");
  s->add_option("--ca-chain", a->ca_chain, "More certificates up to the root (PEM)");
  s->add_option("--ca-key-password-file", a->ca_password_file, "Password of --ca-key");
  s->add_option("--platform-manufacturer", a->platform_manufacturer, "Platform certificate");
  s->add_option("--platform-model", a->platform_model, "Platform certificate");
  s->add_option("--platform-version", a->platform_version, "Platform certificate");
  // Accepted, no effect.
  s->add_option("--tpm", a->tpm_exe, "Ignored (the TPM runs in process)");
  s->add_option("--swtpm_ioctl", a->swtpm_ioctl, "Ignored");
  s->add_option("--tcsd-system-ps-file", a->tcsd_ps_file, "Ignored (deprecated in swtpm too)");
  // Refused.
  s->add_option("--runas", a->runas, "Not supported");
  s->add_option("--keyfile", a->keyfile, "Not supported (state encryption)");
  s->add_option("--keyfile-fd", a->keyfile_fd, "Not supported (state encryption)");
  s->add_option("--pwdfile", a->pwdfile, "Not supported (state encryption)");
  s->add_option("--pwdfile-fd", a->pwdfile_fd, "Not supported (state encryption)");
  s->add_option("--cipher", a->cipher, "Not supported (state encryption)");
  s->add_option("--profile", a->profile, "Not supported (libtpms 0.10 profiles)");
  s->add_option("--profile-name", a->profile_name, "Not supported");
  s->add_option("--profile-file", a->profile_file, "Not supported");
  s->add_option("--profile-file-fd", a->profile_file_fd, "Not supported");
  s->add_option("--profile-remove-disabled", a->profile_remove_disabled, "Not supported");
  s->add_flag("--print-profiles", a->print_profiles, "Not supported");
  s->add_option("--iakkeyalgo", a->iak, "Not supported");
  s->add_option("--idevidkeyalgo", a->idevid, "Not supported");
  s->add_flag("--no-iak", a->no_iak, "Accepted (no IAK is ever created)");
  return [a] { return RunSetupCommand(*a); };
}

Runner AddEkCommand(CLI::App& app) {
  auto a = std::make_shared<EkArgs>();
  CLI::App* s = app.add_subcommand(
      "ek", "Print a TPM 2.0 instance's EK public keys and EK/platform certificates (PEM)");
  s->add_option("--tpmstate,--tpm-state", a->tpm_state, "State directory: DIR or dir=DIR")
      ->required();
  s->add_flag("--tpm2", a->tpm2, "Accepted for symmetry (only TPM 2.0 is supported)");
  s->add_flag("--keys-only", a->keys_only, "Only the public keys");
  s->add_flag("--certs-only", a->certs_only, "Only the certificates");
  s->add_option("--out-dir", a->out_dir,
                "Write ek-<alg>.pub.pem, ek-<alg>.crt.pem, platform.crt.pem here instead");
  return [a] { return RunEkCommand(*a); };
}

}  // namespace vtpm::tools
