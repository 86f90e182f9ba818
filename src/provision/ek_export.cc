#include "provision/ek_export.h"

#include <fmt/format.h>
#include <sys/stat.h>

#include <algorithm>

#include "engine/engine.h"
#include "provision/cert.h"
#include "provision/engine_transport.h"
#include "provision/mem_store.h"
#include "provision/tpm2_manufacture.h"
#include "state/dir_store.h"
#include "tpmcmd/tpm2_commands.h"

namespace vtpm::provision {

namespace {

using tpmcmd::Execute;

constexpr uint16_t kNvChunk = 1024;

// All handles of the type of |first| (TPM_CAP_HANDLES), following moreData.
Result<std::vector<uint32_t>> ListHandles(tpmcmd::Transport& tpm, uint32_t first) {
  std::vector<uint32_t> out;
  uint32_t next = first;
  for (int round = 0; round < 64; ++round) {
    tpmcmd::GetCapability cap;
    cap.capability = tpmcmd::kCapHandles;
    cap.property = next;
    cap.property_count = 64;
    VTPM_ASSIGN_OR_RETURN(auto resp, Execute(tpm, cap));
    VTPM_ASSIGN_OR_RETURN(auto handles, tpmcmd::ParseHandlesCapability(resp));
    for (uint32_t h : handles) {
      if ((h >> 24) != (first >> 24)) return out;
      out.push_back(h);
    }
    if (!resp.more_data || handles.empty()) break;
    next = handles.back() + 1;
  }
  return out;
}

bool Contains(const std::vector<uint32_t>& v, uint32_t h) {
  return std::find(v.begin(), v.end(), h) != v.end();
}

Result<std::string> CertPem(const NvCertificate& c) { return DerCertToPem(c.der); }

}  // namespace

Result<NvCertificate> ReadNvIndex(tpmcmd::Transport& tpm, uint32_t index) {
  VTPM_ASSIGN_OR_RETURN(auto pub, Execute(tpm, tpmcmd::NvReadPublic{index}));
  NvCertificate out;
  out.index = index;
  out.attributes = pub.nv_public.attributes;
  uint16_t size = pub.nv_public.data_size;
  for (uint16_t off = 0; off < size;) {
    tpmcmd::NvRead rd;
    rd.auth_handle = index;
    rd.nv_index = index;
    rd.size = std::min<uint16_t>(kNvChunk, static_cast<uint16_t>(size - off));
    rd.offset = off;
    VTPM_ASSIGN_OR_RETURN(auto data, Execute(tpm, rd));
    if (data.data.size() != rd.size) {
      return Fail(Errc::kCorrupt, fmt::format("NV index 0x{:08x}: short read", index));
    }
    out.der.insert(out.der.end(), data.data.begin(), data.data.end());
    off = static_cast<uint16_t>(off + rd.size);
  }
  return out;
}

Result<Endorsement> ReadEndorsement(tpmcmd::Transport& tpm) {
  VTPM_ASSIGN_OR_RETURN(auto persistent, ListHandles(tpm, 0x81000000));
  VTPM_ASSIGN_OR_RETURN(auto nv, ListHandles(tpm, 0x01000000));
  Endorsement e;
  for (const EkProfile& prof : AllEkProfiles()) {
    if (!Contains(persistent, prof.persistent_handle)) continue;
    ExportedEk ek;
    ek.profile = &prof;
    VTPM_ASSIGN_OR_RETURN(auto rp, Execute(tpm, tpmcmd::ReadPublic{prof.persistent_handle}));
    ek.pub = rp.out_public;
    VTPM_ASSIGN_OR_RETURN(EvpPkeyPtr key, PublicKeyFromTpm(ek.pub));
    VTPM_ASSIGN_OR_RETURN(ek.public_pem, PublicKeyToPem(key.get()));
    if (Contains(nv, prof.cert_index)) {
      VTPM_ASSIGN_OR_RETURN(ek.cert, ReadNvIndex(tpm, prof.cert_index));
    }
    e.eks.push_back(std::move(ek));
  }
  if (Contains(nv, kPlatformCertIndex)) {
    VTPM_ASSIGN_OR_RETURN(e.platform_cert, ReadNvIndex(tpm, kPlatformCertIndex));
  }
  return e;
}

Result<Endorsement> ReadEndorsementFromState(const std::string& state_dir, Logger log,
                                             state::SharedStateKey key) {
  struct stat st;
  if (stat(state_dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return Fail(Errc::kNotFound,
                fmt::format("{} is not a TPM state directory (it does not exist or is not a "
                            "directory)",
                            state_dir));
  }
  state::DirStoreOptions so;
  so.directory = state_dir;
  so.tpm_version = state::TpmVersion::kTpm20;
  so.key = std::move(key);
  VTPM_ASSIGN_OR_RETURN(auto store, state::DirStore::Open(so, log));
  // No lock: reading a state file is safe while a daemon replaces it (atomic renames).
  VTPM_ASSIGN_OR_RETURN(auto blob, store->Load(state::kPermallName));
  if (!blob) {
    return Fail(Errc::kNotFound,
                fmt::format("no TPM 2 state in {} (tpm2-00.permall); provision it with "
                            "`vtpm setup --tpm2 --tpm-state {} --create-ek-cert`",
                            state_dir, state_dir));
  }
  MemStore mem;
  mem.Put(state::kPermallName, std::move(*blob));
  engine::EngineOptions eo;
  eo.version = engine::TpmVersion::kTpm20;
  eo.auto_shutdown = false;
  VTPM_ASSIGN_OR_RETURN(auto eng, engine::Engine::Create(eo, &mem, log));
  VTPM_RETURN_IF_ERROR(eng->Start(false));
  EngineTransport tpm(eng.get());
  VTPM_RETURN_IF_ERROR(Execute(tpm, tpmcmd::Startup{tpmcmd::kSuClear}));
  return ReadEndorsement(tpm);  // the engine and its in-memory state are discarded
}

Result<std::string> FormatEndorsementPem(const Endorsement& e, bool keys, bool certs) {
  std::string out;
  for (const auto& ek : e.eks) {
    if (keys) {
      out += fmt::format("# EK {} public key (persistent handle 0x{:08x})\n", ek.profile->name,
                         ek.profile->persistent_handle);
      out += ek.public_pem;
    }
    if (certs && ek.cert) {
      out += fmt::format("# EK {} certificate (NV index 0x{:08x})\n", ek.profile->name,
                         ek.cert->index);
      VTPM_ASSIGN_OR_RETURN(std::string pem, CertPem(*ek.cert));
      out += pem;
    }
  }
  if (certs && e.platform_cert) {
    out += fmt::format("# platform certificate (NV index 0x{:08x})\n", e.platform_cert->index);
    VTPM_ASSIGN_OR_RETURN(std::string pem, CertPem(*e.platform_cert));
    out += pem;
  }
  return out;
}

}  // namespace vtpm::provision
