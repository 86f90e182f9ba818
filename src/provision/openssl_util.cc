#include "provision/openssl_util.h"

#include <fmt/format.h>
#include <openssl/err.h>
#include <openssl/pem.h>

namespace vtpm::provision {

Error OpenSslError(Errc code, std::string_view what) {
  std::string msg(what);
  unsigned long e;
  bool first = true;
  while ((e = ERR_get_error()) != 0) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof(buf));
    msg += first ? ": " : "; ";
    msg += buf;
    first = false;
  }
  return Error{code, std::move(msg), 0, 0};
}

Result<Bytes> CertToDer(X509* cert) {
  unsigned char* der = nullptr;
  int len = i2d_X509(cert, &der);
  if (len <= 0)
    return tl::unexpected(OpenSslError(Errc::kInvalidArgument, "cannot encode a certificate"));
  Bytes out(der, der + len);
  OPENSSL_free(der);
  return out;
}

Result<std::string> CertToPem(X509* cert) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_X509(bio.get(), cert) != 1) {
    return tl::unexpected(
        OpenSslError(Errc::kInvalidArgument, "cannot write a certificate as PEM"));
  }
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(len));
}

Result<X509Ptr> CertFromDer(ByteSpan der) {
  const unsigned char* p = der.data();
  X509Ptr cert(d2i_X509(nullptr, &p, static_cast<long>(der.size())));
  if (!cert) return tl::unexpected(OpenSslError(Errc::kCorrupt, "not a DER X.509 certificate"));
  if (p != der.data() + der.size()) {
    return Fail(Errc::kCorrupt, "trailing bytes after a DER X.509 certificate");
  }
  return cert;
}

Result<std::vector<X509Ptr>> CertsFromPem(std::string_view pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) return tl::unexpected(OpenSslError(Errc::kIo, "out of memory"));
  std::vector<X509Ptr> certs;
  while (true) {
    X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
    if (!cert) break;
    certs.push_back(std::move(cert));
  }
  ERR_clear_error();  // the loop ends with a "no start line" error
  return certs;
}

Result<std::string> PublicKeyToPem(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PUBKEY(bio.get(), key) != 1) {
    return tl::unexpected(OpenSslError(Errc::kInvalidArgument, "cannot write a public key as PEM"));
  }
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(len));
}

Result<std::string> DerCertToPem(ByteSpan der) {
  VTPM_ASSIGN_OR_RETURN(X509Ptr cert, CertFromDer(der));
  return CertToPem(cert.get());
}

}  // namespace vtpm::provision
