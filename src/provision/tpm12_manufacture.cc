#include "provision/tpm12_manufacture.h"

#include <fmt/format.h>
#include <openssl/hmac.h>
#include <openssl/rsa.h>

#include <cstring>

#include "tpmcmd/tpm12_commands.h"

namespace vtpm::provision {

namespace tpm12 = tpmcmd::tpm12;

namespace {

Status Run(tpmcmd::Transport& tpm, const Bytes& cmd, std::string_view name) {
  VTPM_ASSIGN_OR_RETURN(Bytes resp, tpm.Transmit(cmd));
  VTPM_RETURN_IF_ERROR(tpm12::CheckResponse(resp, name));
  return Ok();
}

tpm12::Digest Sha1(ByteSpan data) {
  tpm12::Digest d{};
  unsigned int n = 0;
  EVP_Digest(data.data(), data.size(), d.data(), &n, EVP_sha1(), nullptr);
  return d;
}

tpm12::Digest SecretDigest(const std::string& password, bool well_known) {
  if (well_known) return tpm12::Digest{};  // 20 zero bytes (TSS_WELL_KNOWN_SECRET)
  return Sha1(ByteSpan(reinterpret_cast<const uint8_t*>(password.data()), password.size()));
}

// RSAES-OAEP with SHA-1, MGF1-SHA-1 and the label "TCPA" (TPM 1.2 Part 1, "Encryption" of
// authorization data).
Result<Bytes> OaepEncryptForTpm12(EVP_PKEY* ek, ByteSpan plain) {
  EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new(ek, nullptr));
  auto* label = static_cast<unsigned char*>(OPENSSL_malloc(4));
  if (!ctx || label == nullptr) {
    OPENSSL_free(label);
    return tl::unexpected(OpenSslError(Errc::kIo, "out of memory"));
  }
  std::memcpy(label, "TCPA", 4);
  if (EVP_PKEY_encrypt_init(ctx.get()) != 1 ||
      EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_PKCS1_OAEP_PADDING) != 1 ||
      EVP_PKEY_CTX_set_rsa_oaep_md(ctx.get(), EVP_sha1()) != 1 ||
      EVP_PKEY_CTX_set_rsa_mgf1_md(ctx.get(), EVP_sha1()) != 1) {
    OPENSSL_free(label);
    return tl::unexpected(OpenSslError(Errc::kInvalidArgument, "cannot set up OAEP"));
  }
  if (EVP_PKEY_CTX_set0_rsa_oaep_label(ctx.get(), label, 4) != 1) {
    OPENSSL_free(label);
    return tl::unexpected(OpenSslError(Errc::kInvalidArgument, "cannot set the OAEP label"));
  }
  size_t len = 0;
  if (EVP_PKEY_encrypt(ctx.get(), nullptr, &len, plain.data(), plain.size()) != 1) {
    return tl::unexpected(OpenSslError(Errc::kInvalidArgument, "OAEP encryption failed"));
  }
  Bytes out(len);
  if (EVP_PKEY_encrypt(ctx.get(), out.data(), &len, plain.data(), plain.size()) != 1) {
    return tl::unexpected(OpenSslError(Errc::kInvalidArgument, "OAEP encryption failed"));
  }
  out.resize(len);
  return out;
}

Status TakeOwnership(tpmcmd::Transport& tpm, const Tpm12Plan& plan, EVP_PKEY* ek,
                     const RandomFn& random) {
  tpm12::Digest owner = SecretDigest(plan.owner_password, plan.owner_well_known);
  tpm12::Digest srk = SecretDigest(plan.srk_password, plan.srk_well_known);
  tpm12::TakeOwnership cmd;
  VTPM_ASSIGN_OR_RETURN(cmd.enc_owner_auth, OaepEncryptForTpm12(ek, owner));
  VTPM_ASSIGN_OR_RETURN(cmd.enc_srk_auth, OaepEncryptForTpm12(ek, srk));
  VTPM_ASSIGN_OR_RETURN(Bytes oiap, tpm.Transmit(tpm12::Oiap()));
  VTPM_ASSIGN_OR_RETURN(tpm12::OiapSession session, tpm12::ParseOiap(oiap));
  cmd.auth_handle = session.auth_handle;
  VTPM_RETURN_IF_ERROR(random(cmd.nonce_odd));
  // OIAP (TPM 1.2 Part 1): HMAC(ownerAuth, inParamDigest || nonceEven || nonceOdd || continue)
  tpm12::Digest param_digest = Sha1(cmd.ParamDigestInput());
  ByteWriter mac_input;
  mac_input.Append(param_digest);
  mac_input.Append(session.nonce_even);
  mac_input.Append(cmd.nonce_odd);
  mac_input.U8(0);  // continueAuthSession
  tpm12::Digest hmac{};
  unsigned int hmac_len = 0;
  if (HMAC(EVP_sha1(), owner.data(), static_cast<int>(owner.size()), mac_input.bytes().data(),
           mac_input.size(), hmac.data(), &hmac_len) == nullptr ||
      hmac_len != hmac.size()) {
    return tl::unexpected(OpenSslError(Errc::kInvalidArgument, "HMAC-SHA1 failed"));
  }
  return Run(tpm, cmd.Marshal(hmac), "TPM_TakeOwnership");
}

Status WriteCert(tpmcmd::Transport& tpm, uint32_t index, const Bytes& der) {
  Bytes data = tpm12::StoredCertHeader(der.size());
  data.insert(data.end(), der.begin(), der.end());
  VTPM_RETURN_IF_ERROR(
      Run(tpm,
          tpm12::NvDefineSpace(index, tpm12::kNvPerOwnerRead | tpm12::kNvPerOwnerWrite,
                               static_cast<uint32_t>(data.size())),
          "TPM_NV_DefineSpace"));
  return Run(tpm, tpm12::NvWriteValue(index, 0, data), "TPM_NV_WriteValue");
}

}  // namespace

Result<Tpm12Outcome> ManufactureTpm12(tpmcmd::Transport& tpm, const Tpm12Plan& plan,
                                      const CertInputs* certs, const RandomFn& random, Logger log) {
  if ((plan.take_ownership || plan.ek_cert || plan.platform_cert) && !plan.create_ek) {
    return Fail(Errc::kInvalidArgument, "ownership and certificates need --createek");
  }
  if ((plan.ek_cert || plan.platform_cert) && certs == nullptr) {
    return Fail(Errc::kInvalidArgument, "certificates need a CA");
  }
  // What swtpm_bios does: assert physical presence, enable and activate the TPM.
  VTPM_RETURN_IF_ERROR(Run(tpm, tpm12::TscPhysicalPresence(tpm12::kPhysicalPresenceCmdEnable),
                           "TSC_PhysicalPresence"));
  VTPM_RETURN_IF_ERROR(Run(tpm, tpm12::TscPhysicalPresence(tpm12::kPhysicalPresencePresent),
                           "TSC_PhysicalPresence"));
  VTPM_RETURN_IF_ERROR(Run(tpm, tpm12::PhysicalEnable(), "TPM_PhysicalEnable"));
  VTPM_RETURN_IF_ERROR(
      Run(tpm, tpm12::PhysicalSetDeactivated(false), "TPM_PhysicalSetDeactivated"));
  Tpm12Outcome out;
  if (plan.create_ek) {
    tpm12::Digest nonce{};
    VTPM_RETURN_IF_ERROR(random(nonce));
    VTPM_ASSIGN_OR_RETURN(Bytes resp, tpm.Transmit(tpm12::CreateEndorsementKeyPair(nonce)));
    VTPM_ASSIGN_OR_RETURN(tpm12::EndorsementKey ek, tpm12::ParseCreateEndorsementKeyPair(resp));
    out.ek_modulus = ek.modulus;
    log->info("Successfully created EK.");
    VTPM_ASSIGN_OR_RETURN(EvpPkeyPtr key, RsaPublicKey(ek.modulus, 0));
    if (plan.take_ownership) {
      VTPM_RETURN_IF_ERROR(TakeOwnership(tpm, plan, key.get(), random));
      log->info("Successfully took ownership of the TPM.");
    }
    if (plan.ek_cert || plan.platform_cert) {
      CertFields fields;
      fields.not_before = certs->clock();
      // swtpm_setup's TPM 1.2 EK and platform certificates have an empty subject.
      if (plan.ek_cert) {
        VTPM_ASSIGN_OR_RETURN(fields.serial, NewSerial(certs->random));
        VTPM_ASSIGN_OR_RETURN(out.ek_cert,
                              IssueEkCertificate(certs->issuer, key.get(), certs->tpm, fields));
        VTPM_RETURN_IF_ERROR(
            WriteCert(tpm, tpm12::kNvIndexEkCert | tpm12::kNvIndexDBit, out.ek_cert));
        log->info("Successfully created NVRAM area for EK certificate.");
      }
      if (plan.platform_cert) {
        VTPM_ASSIGN_OR_RETURN(fields.serial, NewSerial(certs->random));
        VTPM_ASSIGN_OR_RETURN(out.platform_cert,
                              IssuePlatformCertificate(certs->issuer, key.get(), certs->platform,
                                                       certs->tpm, /*tpm2=*/false, fields));
        VTPM_RETURN_IF_ERROR(
            WriteCert(tpm, tpm12::kNvIndexPlatformCert | tpm12::kNvIndexDBit, out.platform_cert));
        log->info("Successfully created NVRAM area for Platform certificate.");
      }
    }
  }
  if (plan.lock_nvram) {
    VTPM_RETURN_IF_ERROR(
        Run(tpm, tpm12::NvDefineSpace(tpm12::kNvIndexLock, 0, 0), "TPM_NV_DefineSpace(lock)"));
    log->info("Successfully locked NVRAM access.");
  }
  return out;
}

}  // namespace vtpm::provision
