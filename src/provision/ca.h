// The certificate authority that signs EK and platform certificates: either vtpm's local CA
// (a root and an intermediate made on first use in a directory) or a CA key and certificate the
// user provides (including swtpm_localca's, so hosts that trust swtpm's local CA keep one root).
//
// Local CA directory layout (0700): root-key.pem and issuer-key.pem (PKCS#8, 0600),
// root-cert.pem and issuer-cert.pem (0644), .lock (flock'ed while creating or loading, so
// concurrent first runs make one CA). Verify a certificate with
//   openssl verify -CAfile root-cert.pem -untrusted issuer-cert.pem ek.pem
//
// Key types (docs/ARCHITECTURE.md explains the choice): ECDSA P-384 by default. Creating a CA
// costs < 5 ms and each signature ~1 ms, where RSA-3072 (swtpm_localca's choice) needs ~1-2 s
// of key generation and ~3 ms per signature; RSA remains selectable for relying parties that
// cannot verify ECDSA.
#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>
#include <vector>

#include "base/log.h"
#include "base/result.h"
#include "provision/cert.h"
#include "provision/env.h"
#include "provision/openssl_util.h"

namespace vtpm::provision {

enum class CaKeyType { kEcdsaP256, kEcdsaP384, kRsa2048, kRsa3072 };
// "ecdsa-p256", "ecdsa-p384" (also "p256", "p384", "ec"), "rsa2048", "rsa3072" (also "rsa").
Result<CaKeyType> ParseCaKeyType(std::string_view name);
std::string_view CaKeyTypeName(CaKeyType type);

inline constexpr std::string_view kRootKeyFile = "root-key.pem";
inline constexpr std::string_view kRootCertFile = "root-cert.pem";
inline constexpr std::string_view kIssuerKeyFile = "issuer-key.pem";
inline constexpr std::string_view kIssuerCertFile = "issuer-cert.pem";

// The host's local CA, as swtpm_localca's /var/lib/swtpm-localca: vtpm's install step creates it
// for the user `tss` (libvirt runs swtpm_setup as tss, without HOME).
inline constexpr const char* kSystemLocalCaDir = "/var/lib/vtpm-localca";

// Where the local CA lives unless told otherwise: kSystemLocalCaDir for root, and for any user
// who may write it when it exists (|system_dir_writable|); else $XDG_CONFIG_HOME/vtpm/localca
// (default ~/.config/vtpm/localca); else (no HOME) kSystemLocalCaDir.
std::string DefaultLocalCaDir(uid_t uid, const char* xdg_config_home, const char* home,
                              bool system_dir_writable = false);

class Ca {
 public:
  // A CA from files: |key_file| (PEM private key, optionally encrypted with |password|) and
  // |cert_file| (PEM: the issuer certificate, optionally followed by the certificates above
  // it). |chain_file| (optional) holds more certificates up to the root. The key must match
  // the certificate, and the certificate must be a CA certificate.
  static Result<Ca> Load(const std::string& key_file, const std::string& cert_file,
                         const std::string& chain_file, const std::string& password);
  // vtpm's local CA in |dir|: loaded if complete; created (root + intermediate of |type|) if
  // the directory holds none of its files, or only those an interrupted creation leaves (the
  // issuer certificate, written last, missing); an error if other files are missing.
  static Result<Ca> OpenLocal(const std::string& dir, CaKeyType type, const Clock& clock,
                              const RandomFn& random, Logger log);

  Issuer issuer() const { return Issuer{key_.get(), cert_.get(), digest_}; }
  X509* cert() const { return cert_.get(); }
  // Certificates above the issuer, the root last (empty if the issuer is the root).
  const std::vector<X509Ptr>& chain() const { return chain_; }
  // For logs: "local CA in /var/lib/vtpm-localca" / "CA /etc/ca/key.pem".
  const std::string& description() const { return description_; }

 private:
  Ca() = default;
  static Result<Ca> FromParts(EvpPkeyPtr key, std::vector<X509Ptr> certs, std::string description);

  EvpPkeyPtr key_;
  X509Ptr cert_;
  std::vector<X509Ptr> chain_;
  const EVP_MD* digest_ = nullptr;
  std::string description_;
};

}  // namespace vtpm::provision
