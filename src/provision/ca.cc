#include "provision/ca.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <openssl/pem.h>

#include <cstring>

#include "provision/file_util.h"

namespace vtpm::provision {

namespace {

constexpr size_t kMaxPemFile = 1024 * 1024;
constexpr auto kCaLockTimeout = std::chrono::seconds(30);
constexpr const char* kRootName = "vtpm-localca-rootca";
constexpr const char* kIssuerName = "vtpm-localca";

Error Ssl(std::string_view what) { return OpenSslError(Errc::kInvalidArgument, what); }

// PEM password callback: never prompts on a terminal; an empty password fails decryption.
int PasswordCallback(char* buf, int size, int /*rwflag*/, void* u) {
  const auto* pw = static_cast<const std::string*>(u);
  if (pw == nullptr || pw->empty() || static_cast<int>(pw->size()) > size) return -1;
  std::memcpy(buf, pw->data(), pw->size());
  return static_cast<int>(pw->size());
}

const EVP_MD* DigestFor(EVP_PKEY* key) {
  if (EVP_PKEY_base_id(key) == EVP_PKEY_EC) {
    int bits = EVP_PKEY_get_bits(key);
    if (bits > 384) return EVP_sha512();
    if (bits > 256) return EVP_sha384();
  }
  return EVP_sha256();
}

Result<EvpPkeyPtr> GenerateKey(CaKeyType type) {
  EVP_PKEY* key = nullptr;
  switch (type) {
    case CaKeyType::kEcdsaP256:
      key = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
      break;
    case CaKeyType::kEcdsaP384:
      key = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-384");
      break;
    case CaKeyType::kRsa2048:
      key = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(2048));
      break;
    case CaKeyType::kRsa3072:
      key = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(3072));
      break;
  }
  if (key == nullptr) return tl::unexpected(Ssl("cannot generate a CA key"));
  return EvpPkeyPtr(key);
}

Status AddConfExtension(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509ExtensionPtr ext(X509V3_EXT_conf_nid(nullptr, &ctx, nid, value));
  if (!ext || X509_add_ext(cert, ext.get(), -1) != 1) {
    return tl::unexpected(Ssl(fmt::format("cannot add CA extension {}", value)));
  }
  return Ok();
}

// A CA certificate for |key| named |cn|, signed by |signer_key| (|signer_cert| null: self).
Result<X509Ptr> MakeCaCert(EVP_PKEY* key, const char* cn, EVP_PKEY* signer_key, X509* signer_cert,
                           bool path_len_zero, std::time_t now, const RandomFn& random) {
  X509Ptr cert(X509_new());
  if (!cert || X509_set_version(cert.get(), X509_VERSION_3) != 1) {
    return tl::unexpected(Ssl("out of memory"));
  }
  VTPM_ASSIGN_OR_RETURN(Bytes serial, NewSerial(random));
  BignumPtr bn(BN_bin2bn(serial.data(), static_cast<int>(serial.size()), nullptr));
  Asn1IntegerPtr asn_serial(bn ? BN_to_ASN1_INTEGER(bn.get(), nullptr) : nullptr);
  X509_NAME* subject = X509_get_subject_name(cert.get());
  if (!asn_serial || X509_set_serialNumber(cert.get(), asn_serial.get()) != 1 ||
      X509_NAME_add_entry_by_NID(subject, NID_commonName, MBSTRING_ASC,
                                 reinterpret_cast<const unsigned char*>(cn), -1, -1, 0) != 1 ||
      X509_set_issuer_name(cert.get(),
                           signer_cert ? X509_get_subject_name(signer_cert) : subject) != 1 ||
      X509_set_pubkey(cert.get(), key) != 1) {
    return tl::unexpected(Ssl("cannot fill in a CA certificate"));
  }
  Asn1TimePtr not_before(ASN1_TIME_set(nullptr, now));
  Asn1TimePtr not_after(ASN1_TIME_new());
  if (!not_before || !not_after || ASN1_TIME_set_string(not_after.get(), "99991231235959Z") != 1 ||
      X509_set1_notBefore(cert.get(), not_before.get()) != 1 ||
      X509_set1_notAfter(cert.get(), not_after.get()) != 1) {
    return tl::unexpected(Ssl("cannot set a CA certificate's validity"));
  }
  X509* issuer = signer_cert ? signer_cert : cert.get();
  VTPM_RETURN_IF_ERROR(
      AddConfExtension(cert.get(), issuer, NID_basic_constraints,
                       path_len_zero ? "critical,CA:TRUE,pathlen:0" : "critical,CA:TRUE"));
  VTPM_RETURN_IF_ERROR(
      AddConfExtension(cert.get(), issuer, NID_key_usage, "critical,keyCertSign,cRLSign"));
  VTPM_RETURN_IF_ERROR(AddConfExtension(cert.get(), issuer, NID_subject_key_identifier, "hash"));
  if (signer_cert != nullptr) {
    VTPM_RETURN_IF_ERROR(
        AddConfExtension(cert.get(), issuer, NID_authority_key_identifier, "keyid:always"));
  }
  if (X509_sign(cert.get(), signer_key, DigestFor(signer_key)) <= 0) {
    return tl::unexpected(Ssl("cannot sign a CA certificate"));
  }
  return cert;
}

Result<std::string> PrivateKeyPem(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio ||
      PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return tl::unexpected(Ssl("cannot encode a CA key"));
  }
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(len));
}

ByteSpan AsBytes(const std::string& s) {
  return ByteSpan(reinterpret_cast<const uint8_t*>(s.data()), s.size());
}

Result<EvpPkeyPtr> LoadPrivateKey(const std::string& path, const std::string& password) {
  VTPM_ASSIGN_OR_RETURN(std::string pem, ReadSmallFile(path, kMaxPemFile, "the CA signing key"));
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  std::string pw = password;
  EvpPkeyPtr key(bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, PasswordCallback, &pw)
                     : nullptr);
  if (!key) {
    return tl::unexpected(OpenSslError(
        Errc::kInvalidArgument,
        fmt::format("cannot load the CA signing key {} (not a PEM private key, or encrypted "
                    "and the password is missing or wrong)",
                    path)));
  }
  return key;
}

Result<std::vector<X509Ptr>> LoadCerts(const std::string& path, std::string_view what) {
  VTPM_ASSIGN_OR_RETURN(std::string text, ReadSmallFile(path, kMaxPemFile, what));
  VTPM_ASSIGN_OR_RETURN(std::vector<X509Ptr> certs, CertsFromPem(text));
  if (certs.empty()) {
    // Perhaps DER.
    auto der = CertFromDer(AsBytes(text));
    if (!der) {
      return Fail(Errc::kInvalidArgument,
                  fmt::format("{} {} holds no PEM or DER certificate", what, path));
    }
    certs.push_back(std::move(*der));
  }
  return certs;
}

}  // namespace

Result<CaKeyType> ParseCaKeyType(std::string_view name) {
  if (name == "ecdsa-p384" || name == "p384" || name == "ec" || name == "ecdsa") {
    return CaKeyType::kEcdsaP384;
  }
  if (name == "ecdsa-p256" || name == "p256") return CaKeyType::kEcdsaP256;
  if (name == "rsa3072" || name == "rsa") return CaKeyType::kRsa3072;
  if (name == "rsa2048") return CaKeyType::kRsa2048;
  return Fail(Errc::kInvalidArgument,
              fmt::format("unknown CA key type '{}' (use ecdsa-p384, ecdsa-p256, rsa3072 or "
                          "rsa2048)",
                          name));
}

std::string_view CaKeyTypeName(CaKeyType type) {
  switch (type) {
    case CaKeyType::kEcdsaP256:
      return "ecdsa-p256";
    case CaKeyType::kEcdsaP384:
      return "ecdsa-p384";
    case CaKeyType::kRsa2048:
      return "rsa2048";
    case CaKeyType::kRsa3072:
      return "rsa3072";
  }
  return "?";
}

std::string DefaultLocalCaDir(uid_t uid, const char* xdg_config_home, const char* home,
                              bool system_dir_writable) {
  if (uid == 0 || system_dir_writable) return kSystemLocalCaDir;
  if (xdg_config_home != nullptr && xdg_config_home[0] == '/') {
    return std::string(xdg_config_home) + "/vtpm/localca";
  }
  if (home != nullptr && home[0] != '\0') return std::string(home) + "/.config/vtpm/localca";
  return kSystemLocalCaDir;
}

Result<Ca> Ca::FromParts(EvpPkeyPtr key, std::vector<X509Ptr> certs, std::string description) {
  if (certs.empty()) return Fail(Errc::kInvalidArgument, "no CA certificate");
  if (X509_check_private_key(certs[0].get(), key.get()) != 1) {
    return tl::unexpected(OpenSslError(
        Errc::kInvalidArgument,
        fmt::format("{}: the signing key does not belong to the CA certificate", description)));
  }
  if (X509_check_ca(certs[0].get()) == 0) {
    return Fail(Errc::kInvalidArgument,
                fmt::format("{}: the certificate is not a CA certificate (it needs "
                            "basicConstraints CA:TRUE and keyCertSign)",
                            description));
  }
  Ca ca;
  ca.digest_ = DigestFor(key.get());
  ca.key_ = std::move(key);
  ca.cert_ = std::move(certs[0]);
  for (size_t i = 1; i < certs.size(); ++i) ca.chain_.push_back(std::move(certs[i]));
  ca.description_ = std::move(description);
  return ca;
}

Result<Ca> Ca::Load(const std::string& key_file, const std::string& cert_file,
                    const std::string& chain_file, const std::string& password) {
  VTPM_ASSIGN_OR_RETURN(EvpPkeyPtr key, LoadPrivateKey(key_file, password));
  VTPM_ASSIGN_OR_RETURN(std::vector<X509Ptr> certs, LoadCerts(cert_file, "the CA certificate"));
  if (!chain_file.empty()) {
    VTPM_ASSIGN_OR_RETURN(std::vector<X509Ptr> more, LoadCerts(chain_file, "the CA chain"));
    for (auto& c : more) certs.push_back(std::move(c));
  }
  return FromParts(std::move(key), std::move(certs), fmt::format("CA {}", cert_file));
}

Result<Ca> Ca::OpenLocal(const std::string& dir, CaKeyType type, const Clock& clock,
                         const RandomFn& random, Logger log) {
  VTPM_RETURN_IF_ERROR(MakeDirs(dir, 0700));
  VTPM_ASSIGN_OR_RETURN(FileLock lock, FileLock::Acquire(dir + "/.lock", kCaLockTimeout));
  const std::string_view files[] = {kRootKeyFile, kRootCertFile, kIssuerKeyFile, kIssuerCertFile};
  std::vector<std::string> present, missing;
  for (auto f : files) {
    (FileExists(dir + "/" + std::string(f)) ? present : missing).emplace_back(f);
  }
  std::string description = fmt::format("local CA in {}", dir);
  if (missing.empty()) {
    VTPM_ASSIGN_OR_RETURN(Ca ca, Load(dir + "/" + std::string(kIssuerKeyFile),
                                      dir + "/" + std::string(kIssuerCertFile),
                                      dir + "/" + std::string(kRootCertFile), ""));
    ca.description_ = std::move(description);
    return ca;
  }
  // Files are written in the order of |files|, the issuer certificate last, and nothing can be
  // issued without it: a prefix without the issuer certificate is an interrupted creation
  // (safe to redo), anything else was changed by hand (refuse).
  bool interrupted = !present.empty() && missing.back() == kIssuerCertFile;
  for (size_t i = 0; i < present.size() && interrupted; ++i) interrupted = present[i] == files[i];
  if (interrupted) {
    log->warn("the local CA in {} was not completely created (has only {}); creating it anew", dir,
              fmt::join(present, ", "));
  } else if (!present.empty()) {
    return Fail(Errc::kCorrupt,
                fmt::format("the local CA in {} is incomplete (has {}, lacks {}); restore the "
                            "missing files, or move the directory away to start a new CA",
                            dir, fmt::join(present, ", "), fmt::join(missing, ", ")));
  }
  log->info("Creating a local CA ({}) in {}", CaKeyTypeName(type), dir);
  std::time_t now = clock();
  VTPM_ASSIGN_OR_RETURN(EvpPkeyPtr root_key, GenerateKey(type));
  VTPM_ASSIGN_OR_RETURN(X509Ptr root, MakeCaCert(root_key.get(), kRootName, root_key.get(), nullptr,
                                                 false, now, random));
  VTPM_ASSIGN_OR_RETURN(EvpPkeyPtr issuer_key, GenerateKey(type));
  VTPM_ASSIGN_OR_RETURN(X509Ptr issuer, MakeCaCert(issuer_key.get(), kIssuerName, root_key.get(),
                                                   root.get(), true, now, random));
  VTPM_ASSIGN_OR_RETURN(std::string root_key_pem, PrivateKeyPem(root_key.get()));
  VTPM_ASSIGN_OR_RETURN(std::string root_pem, CertToPem(root.get()));
  VTPM_ASSIGN_OR_RETURN(std::string issuer_key_pem, PrivateKeyPem(issuer_key.get()));
  VTPM_ASSIGN_OR_RETURN(std::string issuer_pem, CertToPem(issuer.get()));
  // The issuer certificate goes last: its presence marks a complete CA.
  VTPM_RETURN_IF_ERROR(WriteFileAtomic(dir, kRootKeyFile, AsBytes(root_key_pem), 0600, true));
  VTPM_RETURN_IF_ERROR(WriteFileAtomic(dir, kRootCertFile, AsBytes(root_pem), 0644, true));
  VTPM_RETURN_IF_ERROR(WriteFileAtomic(dir, kIssuerKeyFile, AsBytes(issuer_key_pem), 0600, true));
  VTPM_RETURN_IF_ERROR(WriteFileAtomic(dir, kIssuerCertFile, AsBytes(issuer_pem), 0644, true));
  std::vector<X509Ptr> certs;
  certs.push_back(std::move(issuer));
  certs.push_back(std::move(root));
  return FromParts(std::move(issuer_key), std::move(certs), std::move(description));
}

}  // namespace vtpm::provision
