#include "provision/tpm2_manufacture.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>

#include "tpmcmd/tpm2_commands.h"

namespace vtpm::provision {

namespace {

using tpmcmd::Execute;

// libtpms' TPM_PT_NV_BUFFER_MAX; swtpm_setup writes in chunks of this size too.
constexpr size_t kNvChunk = 1024;

Status Context(Status st, std::string_view what) {
  if (!st) st.error().message = fmt::format("{}: {}", what, st.error().message);
  return st;
}

Result<Bytes> IssueFor(const CertInputs& in, EVP_PKEY* key, bool platform) {
  CertFields fields;
  fields.common_name = in.vmid.empty() ? "unknown" : in.vmid;
  fields.not_before = in.clock();
  VTPM_ASSIGN_OR_RETURN(fields.serial, NewSerial(in.random));
  if (platform) {
    return IssuePlatformCertificate(in.issuer, key, in.platform, in.tpm, /*tpm2=*/true, fields);
  }
  return IssueEkCertificate(in.issuer, key, in.tpm, fields);
}

// CreatePrimary in the endorsement hierarchy, EvictControl to |handle|, flush the transient.
Result<tpmcmd::Public> CreatePersistentPrimary(tpmcmd::Transport& tpm, uint32_t hierarchy,
                                               const tpmcmd::Public& templ, uint32_t handle) {
  tpmcmd::CreatePrimary cp;
  cp.primary_handle = hierarchy;
  cp.in_public = templ;
  VTPM_ASSIGN_OR_RETURN(auto created, Execute(tpm, cp));
  tpmcmd::EvictControl ev;
  ev.auth_handle = tpmcmd::kRhOwner;
  ev.object_handle = created.object_handle;
  ev.persistent_handle = handle;
  auto evicted = Execute(tpm, ev);
  (void)Execute(tpm, tpmcmd::FlushContext{created.object_handle});
  if (!evicted) return tl::unexpected(evicted.error());
  return created.out_public;
}

}  // namespace

Status WriteNvIndex(tpmcmd::Transport& tpm, uint32_t index, ByteSpan data, bool lock) {
  if (data.empty() || data.size() > 0xffff) {
    return Fail(Errc::kInvalidArgument, fmt::format("cannot store {} bytes in NV", data.size()));
  }
  tpmcmd::NvDefineSpace def;
  def.auth_handle = tpmcmd::kRhPlatform;
  def.public_info.nv_index = index;
  def.public_info.name_alg = tpmcmd::kAlgSha256;
  def.public_info.attributes = kCertNvAttributes;
  def.public_info.data_size = static_cast<uint16_t>(data.size());
  VTPM_RETURN_IF_ERROR(Execute(tpm, def));
  for (size_t off = 0; off < data.size(); off += kNvChunk) {
    tpmcmd::NvWrite w;
    w.auth_handle = tpmcmd::kRhPlatform;
    w.nv_index = index;
    ByteSpan chunk = data.subspan(off, std::min(kNvChunk, data.size() - off));
    w.data.assign(chunk.begin(), chunk.end());
    w.offset = static_cast<uint16_t>(off);
    VTPM_RETURN_IF_ERROR(Execute(tpm, w));
  }
  if (lock) {
    tpmcmd::NvWriteLock l;
    l.auth_handle = tpmcmd::kRhPlatform;
    l.nv_index = index;
    VTPM_RETURN_IF_ERROR(Execute(tpm, l));
  }
  return Ok();
}

Status AllocatePcrBanks(tpmcmd::Transport& tpm, const std::vector<std::string>& banks,
                        Tpm2Outcome& out, Logger log) {
  tpmcmd::GetCapability cap;
  cap.capability = tpmcmd::kCapPcrs;
  cap.property = 0;
  cap.property_count = 64;
  VTPM_ASSIGN_OR_RETURN(auto resp, Execute(tpm, cap));
  VTPM_ASSIGN_OR_RETURN(auto available, tpmcmd::ParsePcrsCapability(resp));
  out.all_banks.clear();
  for (const auto& sel : available) {
    std::string_view name = tpmcmd::HashAlgName(sel.hash);
    out.all_banks.push_back(name.empty() ? fmt::format("{:02x}", sel.hash) : std::string(name));
  }
  std::vector<tpmcmd::PcrSelection> allocation;
  std::vector<bool> chosen(available.size(), false);
  out.active_banks.clear();
  for (const std::string& bank : banks) {
    uint16_t alg = tpmcmd::HashAlgFromName(bank);
    for (size_t i = 0; i < available.size(); ++i) {
      if (alg != 0 && available[i].hash == alg && !chosen[i]) {
        chosen[i] = true;
        allocation.push_back({alg, Bytes(available[i].select.size(), 0xff)});
        out.active_banks.push_back(bank);
      }
    }
  }
  if (allocation.empty()) {
    return Fail(Errc::kInvalidArgument,
                fmt::format("no PCR bank could be allocated: this TPM has {}, none of {} was asked "
                            "for",
                            fmt::join(out.all_banks, ","), fmt::join(banks, ",")));
  }
  for (size_t i = 0; i < available.size(); ++i) {
    if (!chosen[i]) allocation.push_back({available[i].hash, Bytes(available[i].select.size(), 0)});
  }
  tpmcmd::PcrAllocate alloc;
  alloc.auth_handle = tpmcmd::kRhPlatform;
  alloc.pcr_allocation = std::move(allocation);
  VTPM_ASSIGN_OR_RETURN(auto result, Execute(tpm, alloc));
  if (!result.allocation_success) {
    return Fail(Errc::kTpm,
                fmt::format("TPM2_PCR_Allocate did not succeed (needs {} bytes, has {})",
                            result.size_needed, result.size_available));
  }
  log->info("Successfully activated PCR banks {} among {}.", fmt::join(out.active_banks, ","),
            fmt::join(out.all_banks, ","));
  return Ok();
}

Result<Tpm2Outcome> ManufactureTpm2(tpmcmd::Transport& tpm, const Tpm2Plan& plan,
                                    const CertInputs* certs, Logger log) {
  if ((plan.ek_certs || plan.platform_cert) && (certs == nullptr || plan.eks.empty())) {
    return Fail(Errc::kInvalidArgument, "certificates need an EK and a CA");
  }
  Tpm2Outcome out;
  if (plan.create_spk) {
    auto spk = CreatePersistentPrimary(tpm, tpmcmd::kRhOwner,
                                       SpkTemplate(plan.spk_ecc, plan.spk_rsa_bits), kSpkHandle);
    VTPM_RETURN_IF_ERROR(Context(spk.has_value() ? Ok() : tl::unexpected(spk.error()),
                                 "cannot create the storage primary key"));
    log->info("Successfully created storage primary key with handle 0x{:x}.", kSpkHandle);
  }
  for (size_t i = 0; i < plan.eks.size(); ++i) {
    const EkProfile& prof = GetEkProfile(plan.eks[i]);
    tpmcmd::Public templ = EkTemplate(prof.alg, plan.ek_usage);
    auto pub = CreatePersistentPrimary(tpm, tpmcmd::kRhEndorsement, templ, prof.persistent_handle);
    if (!pub) {
      return Fail(pub.error().code, fmt::format("cannot create the {} EK: {}", prof.description,
                                                pub.error().message));
    }
    log->info("Successfully created {} EK with handle 0x{:x}.", prof.description,
              prof.persistent_handle);
    ProvisionedEk ek{prof.alg, *pub, {}};
    if (plan.ek_usage != EkUsage::kDecrypt) {
      // swtpm_setup stores a non-standard EK's template so tpm2_createek -t can recreate it.
      VTPM_RETURN_IF_ERROR(Context(
          WriteNvIndex(tpm, prof.template_index, tpmcmd::MarshalPublic(templ), plan.lock_nvram),
          fmt::format("cannot store the {} EK template in NV index 0x{:x}", prof.description,
                      prof.template_index)));
      log->info("Successfully created NVRAM area 0x{:x} for {} EK template.", prof.template_index,
                prof.description);
    }
    bool platform = plan.platform_cert && i == 0;
    if (plan.ek_certs || platform) {
      VTPM_ASSIGN_OR_RETURN(EvpPkeyPtr key, PublicKeyFromTpm(ek.pub));
      if (plan.ek_certs) {
        VTPM_ASSIGN_OR_RETURN(ek.cert, IssueFor(*certs, key.get(), false));
        VTPM_RETURN_IF_ERROR(
            Context(WriteNvIndex(tpm, prof.cert_index, ek.cert, plan.lock_nvram),
                    fmt::format("cannot store the {} EK certificate in NV index 0x{:x}",
                                prof.description, prof.cert_index)));
        log->info("Successfully created NVRAM area 0x{:x} for {} EK certificate.", prof.cert_index,
                  prof.description);
      }
      if (platform) {
        VTPM_ASSIGN_OR_RETURN(out.platform_cert, IssueFor(*certs, key.get(), true));
        VTPM_RETURN_IF_ERROR(
            Context(WriteNvIndex(tpm, kPlatformCertIndex, out.platform_cert, plan.lock_nvram),
                    fmt::format("cannot store the platform certificate in NV index 0x{:x}",
                                kPlatformCertIndex)));
        log->info("Successfully created NVRAM area 0x{:x} for platform certificate.",
                  kPlatformCertIndex);
      }
    }
    out.eks.push_back(std::move(ek));
  }
  if (plan.pcr_banks) {
    VTPM_RETURN_IF_ERROR(AllocatePcrBanks(tpm, *plan.pcr_banks, out, log));
  }
  return out;
}

}  // namespace vtpm::provision
