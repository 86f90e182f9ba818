#include "provision/setup.h"

#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/engine.h"
#include "provision/engine_transport.h"
#include "provision/file_util.h"
#include "provision/mem_store.h"
#include "state/dir_store.h"
#include "tpmcmd/tpm12_commands.h"
#include "tpmcmd/tpm2_commands.h"
#include "wire/tpm_header.h"

namespace vtpm::provision {

namespace {

// TPMLIB_GetInfo flags (libtpms' TPMLIB_INFO_TPMSPECIFICATION, TPMLIB_INFO_TPMATTRIBUTES).
constexpr uint64_t kInfoTpmSpecification = 1;
constexpr uint64_t kInfoTpmAttributes = 2;

std::string_view StateFileName(bool tpm2) { return tpm2 ? "tpm2-00.permall" : "tpm-00.permall"; }

Status CheckDirectory(const std::string& dir, std::string_view what) {
  struct stat st;
  if (stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return Fail(
        Errc::kNotFound,
        fmt::format("{} {} does not exist or is not a directory; create it first", what, dir));
  }
  if (access(dir.c_str(), R_OK | W_OK | X_OK) != 0) {
    return Fail(Errc::kIo,
                fmt::format("{} {} is not writable for {}", what, dir, CurrentUserName()));
  }
  return Ok();
}

Status Tpm12Startup(tpmcmd::Transport& tpm) {
  VTPM_ASSIGN_OR_RETURN(Bytes resp, tpm.Transmit(tpmcmd::tpm12::Startup(tpm::kTpm12StClear)));
  uint32_t rc = wire::ResponseCode(resp);
  if (rc != 0) return Fail(Errc::kTpm, fmt::format("TPM_Startup failed: 0x{:x}", rc));
  return Ok();
}

struct CertFile {
  std::string name;
  const Bytes* der;
};

}  // namespace

Status ValidateRequest(const SetupRequest& req) {
  if (req.state_dir.empty()) {
    return Fail(Errc::kInvalidArgument, "--tpm-state must be provided");
  }
  const Tpm2Plan& p2 = req.tpm2_plan;
  const Tpm12Plan& p12 = req.tpm12_plan;
  if (req.reconfigure) {
    if (!req.tpm2) return Fail(Errc::kInvalidArgument, "--reconfigure requires --tpm2");
    if (!p2.eks.empty() || p2.ek_certs || p2.platform_cert || p2.create_spk) {
      return Fail(Errc::kInvalidArgument,
                  "Reconfiguration is not supported with creation of EK or certificates");
    }
  }
  if (req.tpm2) {
    if ((p2.ek_certs || p2.platform_cert) && p2.eks.empty()) {
      return Fail(Errc::kInvalidArgument, "certificates need an EK (--createek)");
    }
    if (p2.pcr_banks) {
      if (p2.pcr_banks->empty()) {
        return Fail(Errc::kInvalidArgument, "--pcr-banks: give at least one bank, or '-'");
      }
      for (const auto& bank : *p2.pcr_banks) {
        if (tpmcmd::HashAlgFromName(bank) == 0) {
          return Fail(Errc::kInvalidArgument,
                      fmt::format("--pcr-banks: unknown PCR bank '{}' (known: sha1, sha256, "
                                  "sha384, sha512, sm3-256, sha3-256, sha3-384, sha3-512)",
                                  bank));
        }
      }
    }
    for (size_t i = 0; i < p2.eks.size(); ++i) {
      for (size_t j = 0; j < i; ++j) {
        if (p2.eks[i] == p2.eks[j]) {
          return Fail(Errc::kInvalidArgument,
                      fmt::format("EK {} is listed twice", GetEkProfile(p2.eks[i]).name));
        }
      }
    }
  } else {
    if ((p12.take_ownership || p12.ek_cert || p12.platform_cert) && !p12.create_ek) {
      return Fail(Errc::kInvalidArgument, "ownership and certificates need --createek");
    }
  }
  if (!req.ek_cert_dir.empty()) {
    bool any_cert = req.tpm2 ? p2.ek_certs : p12.ek_cert;
    if (!any_cert) {
      return Fail(Errc::kInvalidArgument, "--write-ek-cert-files needs --create-ek-cert");
    }
  }
  return Ok();
}

namespace {

// The existing-state rule: puts the state to reconfigure into |mem|, or decides to keep, refuse
// or replace what is there. False: keep it (result.kept_existing), nothing more to do.
Result<bool> ApplyExistingStateRule(const SetupRequest& req, state::DirStore& store, bool has_state,
                                    MemStore& mem, SetupResult& result, const Logger& log) {
  if (req.reconfigure) {
    if (has_state) {
      VTPM_ASSIGN_OR_RETURN(auto blob, store.Load(state::kPermallName));
      if (!blob) return Fail(Errc::kNotFound, "the TPM state disappeared while locked");
      mem.Put(state::kPermallName, std::move(*blob));
    } else {
      log->warn("No TPM state in {} to reconfigure; creating a new TPM without EKs", req.state_dir);
    }
    return true;
  }
  if (!has_state) return true;
  switch (req.existing) {
    case ExistingState::kKeep:
      log->info("Not overwriting existing state file.");
      result.kept_existing = true;
      return false;
    case ExistingState::kFail:
      return Fail(Errc::kAlreadyExists,
                  fmt::format("Found existing TPM state '{}' in {}; pass --overwrite to "
                              "replace it, or --not-overwrite to keep it",
                              StateFileName(req.tpm2), req.state_dir));
    case ExistingState::kOverwrite:
      log->info("Overwriting the existing TPM state in {}", req.state_dir);
      result.replaced_existing = true;
      break;
  }
  return true;
}

// The TPM-side work in an in-process engine over |mem|: manufacture (or reconfigure) and shut
// down, so |mem| ends with the new permanent state.
Status RunTpm(const SetupRequest& req, const SetupEnv& env, const std::optional<Ca>& ca,
              MemStore& mem, SetupResult& result) {
  const Logger& log = env.log;
  engine::EngineOptions eo;
  eo.version = req.tpm2 ? engine::TpmVersion::kTpm20 : engine::TpmVersion::kTpm12;
  VTPM_ASSIGN_OR_RETURN(auto eng, engine::Engine::Create(eo, &mem, log));
  VTPM_RETURN_IF_ERROR(eng->Start(/*delete_volatile=*/false));
  EngineTransport tpm(eng.get());
  std::optional<CertInputs> inputs;
  if (ca) {
    VTPM_ASSIGN_OR_RETURN(std::string json,
                          eng->GetInfo(kInfoTpmSpecification | kInfoTpmAttributes));
    VTPM_ASSIGN_OR_RETURN(TpmInfo info, ParseTpmInfo(json));
    inputs = CertInputs{ca->issuer(), info, req.platform, req.vmid, env.clock, env.random};
  }
  const CertInputs* in = inputs ? &*inputs : nullptr;
  if (req.tpm2) {
    VTPM_RETURN_IF_ERROR(tpmcmd::Execute(tpm, tpmcmd::Startup{tpmcmd::kSuClear}));
    if (req.reconfigure) {
      if (req.tpm2_plan.pcr_banks) {
        VTPM_RETURN_IF_ERROR(AllocatePcrBanks(tpm, *req.tpm2_plan.pcr_banks, result.tpm2, log));
      }
    } else {
      VTPM_ASSIGN_OR_RETURN(result.tpm2, ManufactureTpm2(tpm, req.tpm2_plan, in, log));
    }
    VTPM_RETURN_IF_ERROR(tpmcmd::Execute(tpm, tpmcmd::Shutdown{tpmcmd::kSuClear}));
  } else {
    VTPM_RETURN_IF_ERROR(Tpm12Startup(tpm));
    VTPM_ASSIGN_OR_RETURN(result.tpm12, ManufactureTpm12(tpm, req.tpm12_plan, in, env.random, log));
  }
  eng->Stop();
  return Ok();
}

// --write-ek-cert-files: the EK certificates as DER files (removed again by the caller if the
// commit fails; result.cert_files lists what was written).
Status WriteCertFiles(const SetupRequest& req, SetupResult& result) {
  std::vector<CertFile> files;
  if (req.tpm2) {
    for (const auto& ek : result.tpm2.eks) {
      if (!ek.cert.empty()) {
        files.push_back({fmt::format("ek-{}.crt", GetEkProfile(ek.alg).name), &ek.cert});
      }
    }
  } else if (!result.tpm12.ek_cert.empty()) {
    files.push_back({"ek-rsa2048.crt", &result.tpm12.ek_cert});
  }
  for (const auto& f : files) {
    VTPM_RETURN_IF_ERROR(WriteFileAtomic(req.ek_cert_dir, f.name, *f.der, 0640, req.durable));
    result.cert_files.push_back(req.ek_cert_dir + "/" + f.name);
  }
  return Ok();
}

// A replaced TPM's volatile and saved state belong to the old permanent state and go first; then
// the new permanent state replaces the old atomically; then the old generation (the .bak
// DirStore keeps) goes, so no fallback can ever bring the old TPM back.
Status Commit(const SetupRequest& req, state::DirStore& store, bool had_state,
              const Bytes& permall) {
  if (had_state && !req.reconfigure) {
    VTPM_RETURN_IF_ERROR(store.Delete(state::kVolatileStateName, false));
    VTPM_RETURN_IF_ERROR(store.Delete(state::kSaveStateName, false));
  }
  VTPM_RETURN_IF_ERROR(store.Store(state::kPermallName, permall));
  if (!req.reconfigure) {
    VTPM_RETURN_IF_ERROR(store.DeletePreviousGeneration(state::kPermallName));
  }
  return Ok();
}

}  // namespace

Result<SetupResult> RunSetup(const SetupRequest& req, const SetupEnv& env) {
  VTPM_RETURN_IF_ERROR(ValidateRequest(req));
  const Logger& log = env.log;
  VTPM_RETURN_IF_ERROR(CheckDirectory(req.state_dir, "TPM state directory"));
  state::DirStoreOptions so;
  so.directory = req.state_dir;
  so.tpm_version = req.tpm2 ? state::TpmVersion::kTpm20 : state::TpmVersion::kTpm12;
  so.file_mode = req.state_mode;
  so.fsync = req.durable;
  so.key = req.state_key;
  VTPM_ASSIGN_OR_RETURN(auto store, state::DirStore::Open(so, log));
  VTPM_RETURN_IF_ERROR(store->Lock());
  VTPM_ASSIGN_OR_RETURN(bool has_state, store->HasState());

  SetupResult result;
  MemStore mem;
  VTPM_ASSIGN_OR_RETURN(bool proceed,
                        ApplyExistingStateRule(req, *store, has_state, mem, result, log));
  if (!proceed) return result;
  if (!req.ek_cert_dir.empty()) {
    VTPM_RETURN_IF_ERROR(CheckDirectory(req.ek_cert_dir, "EK certificate directory"));
  }
  const bool need_ca = req.tpm2 ? (req.tpm2_plan.ek_certs || req.tpm2_plan.platform_cert)
                                : (req.tpm12_plan.ek_cert || req.tpm12_plan.platform_cert);
  std::optional<Ca> ca;
  if (need_ca) {
    if (!env.open_ca) return Fail(Errc::kInvalidArgument, "no CA configured");
    VTPM_ASSIGN_OR_RETURN(ca, env.open_ca());
    result.ca_description = ca->description();
    log->info("Issuing certificates with the {}", ca->description());
  }
  VTPM_RETURN_IF_ERROR(RunTpm(req, env, ca, mem, result));
  const Bytes* permall = mem.Get(state::kPermallName);
  if (permall == nullptr) return Fail(Errc::kTpm, "the TPM produced no permanent state");

  // Certificate files first: they can be removed again if the commit fails.
  Status st = req.ek_cert_dir.empty() ? Ok() : WriteCertFiles(req, result);
  if (st) st = Commit(req, *store, has_state, *permall);
  if (!st) {
    for (const auto& f : result.cert_files) unlink(f.c_str());
    return tl::unexpected(st.error());
  }
  return result;
}

}  // namespace vtpm::provision
