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
#include "provision/setup_options.h"
#include "provision/swtpm_config.h"
#include "state/state_key.h"
#include "state/tpmstate.h"

namespace vtpm::tools {

namespace {

using namespace provision;  // NOLINT: this file only composes the provision layer

struct SetupArgs : SetupOptions {
  CLI::Option* create_config_files_opt = nullptr;
};

constexpr const char* kCapabilities =
    R"({ "type": "swtpm_setup", "features": [ "tpm-1.2", "tpm-2.0", "tpm12-not-need-root", )"
    R"("cmdarg-keyfile-fd", "cmdarg-pwdfile-fd", )"
    R"("cmdarg-write-ek-cert-files", "cmdarg-create-config-files", )"
    R"("cmdarg-reconfigure-pcr-banks", "tpm2-rsa-keysize-2048", "tpm2-rsa-keysize-3072" ], )"
    R"("version": ")" VTPM_VERSION R"(" })";

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
  auto cfg = LoadSwtpmConfigs(a, log);
  if (!cfg) return fail(cfg.error());
  auto req = BuildSetupRequest(a, *cfg);
  if (!req) return fail(req.error());
  auto key = LoadSetupKey(a);
  if (!key) return fail(key.error());
  req->state_key = *key;
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
  std::string tpm_state, out_dir, key;
  bool tpm2 = false, keys_only = false, certs_only = false;
};

int RunEkCommand(const EkArgs& a) {
  auto die = [](const std::string& msg) {
    std::fprintf(stderr, "vtpm ek: %s\n", msg.c_str());
    return 1;
  };
  auto state = state::ParseTpmState(a.tpm_state, /*plain_path=*/true);
  if (!state) return die(state.error().message);
  SetupRequest req;
  req.state_dir = state->directory;
  if (a.keys_only && a.certs_only) return die("--keys-only and --certs-only exclude each other");
  state::SharedStateKey key;
  if (!a.key.empty()) {
    auto k = state::LoadKeyOption(a.key, "--key");
    if (!k) return die(k.error().message);
    key = *k;
  }
  auto e =
      ReadEndorsementFromState(req.state_dir, StderrLogger("vtpm-ek", spdlog::level::warn), key);
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
  // State encryption (as swtpm_setup; the state is then readable with swtpm --key).
  s->add_option("--keyfile", a->keyfile, "File with the state key (hex)");
  s->add_option("--keyfile-fd", a->keyfile_fd, "Read the state key (hex) from this fd");
  s->add_option("--pwdfile", a->pwdfile, "File with a passphrase for the state key (PBKDF2)");
  s->add_option("--pwdfile-fd", a->pwdfile_fd, "Read the passphrase from this fd");
  s->add_option("--cipher", a->cipher, "aes-128-cbc (default), aes-256-cbc or aes-256-gcm");
  // Accepted, no effect.
  s->add_option("--tpm", a->tpm_exe, "Ignored (the TPM runs in process)");
  s->add_option("--swtpm_ioctl", a->swtpm_ioctl, "Ignored");
  s->add_option("--tcsd-system-ps-file", a->tcsd_ps_file, "Ignored (deprecated in swtpm too)");
  // Refused.
  s->add_option("--runas", a->runas, "Not supported");
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
  s->add_option("--key", a->key, "The state key, as for `vtpm socket --key` (encrypted state)");
  s->add_flag("--certs-only", a->certs_only, "Only the certificates");
  s->add_option("--out-dir", a->out_dir,
                "Write ek-<alg>.pub.pem, ek-<alg>.crt.pem, platform.crt.pem here instead");
  return [a] { return RunEkCommand(*a); };
}

}  // namespace vtpm::tools
