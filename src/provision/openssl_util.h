// RAII owners for OpenSSL objects and conversions between them and bytes/PEM. All X.509 and
// key handling in vtpm goes through OpenSSL 3's APIs.
#pragma once

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/bytes.h"
#include "base/result.h"

namespace vtpm::provision {

template <auto Free>
struct OpenSslDeleter {
  template <class T>
  void operator()(T* p) const {
    Free(p);
  }
};

using EvpPkeyPtr = std::unique_ptr<EVP_PKEY, OpenSslDeleter<EVP_PKEY_free>>;
using EvpPkeyCtxPtr = std::unique_ptr<EVP_PKEY_CTX, OpenSslDeleter<EVP_PKEY_CTX_free>>;
using X509Ptr = std::unique_ptr<X509, OpenSslDeleter<X509_free>>;
using X509NamePtr = std::unique_ptr<X509_NAME, OpenSslDeleter<X509_NAME_free>>;
using X509ExtensionPtr = std::unique_ptr<X509_EXTENSION, OpenSslDeleter<X509_EXTENSION_free>>;
using BioPtr = std::unique_ptr<BIO, OpenSslDeleter<BIO_free_all>>;
using BignumPtr = std::unique_ptr<BIGNUM, OpenSslDeleter<BN_free>>;
using Asn1IntegerPtr = std::unique_ptr<ASN1_INTEGER, OpenSslDeleter<ASN1_INTEGER_free>>;
using Asn1TimePtr = std::unique_ptr<ASN1_TIME, OpenSslDeleter<ASN1_TIME_free>>;
using Asn1ObjectPtr = std::unique_ptr<ASN1_OBJECT, OpenSslDeleter<ASN1_OBJECT_free>>;

// An Error whose message is |what| followed by the reasons OpenSSL queued (the queue is
// cleared).
Error OpenSslError(Errc code, std::string_view what);

Result<Bytes> CertToDer(X509* cert);
Result<std::string> CertToPem(X509* cert);
Result<X509Ptr> CertFromDer(ByteSpan der);
// All certificates in a PEM text, in order.
Result<std::vector<X509Ptr>> CertsFromPem(std::string_view pem);
// SubjectPublicKeyInfo as PEM ("-----BEGIN PUBLIC KEY-----").
Result<std::string> PublicKeyToPem(EVP_PKEY* key);
// "-----BEGIN CERTIFICATE-----" armour around DER bytes.
Result<std::string> DerCertToPem(ByteSpan der);

}  // namespace vtpm::provision
