#include "provision/cert.h"

#include <fmt/format.h>
#include <openssl/asn1.h>
#include <openssl/conf.h>
#include <openssl/core_names.h>
#include <openssl/param_build.h>

#include <algorithm>
#include <nlohmann/json.hpp>

namespace vtpm::provision {

namespace {

// TCG OIDs (TCG EK Credential Profile, TCG Platform Certificate Profile).
constexpr const char* kOidTpmManufacturer = "2.23.133.2.1";
constexpr const char* kOidTpmModel = "2.23.133.2.2";
constexpr const char* kOidTpmVersion = "2.23.133.2.3";
constexpr const char* kOidTpm12PlatformManufacturer = "2.23.133.2.4";
constexpr const char* kOidTpm12PlatformModel = "2.23.133.2.5";
constexpr const char* kOidTpm12PlatformVersion = "2.23.133.2.6";
constexpr const char* kOidPlatformManufacturerStr = "2.23.133.5.1.1";
constexpr const char* kOidPlatformModel = "2.23.133.5.1.4";
constexpr const char* kOidPlatformVersion = "2.23.133.5.1.5";
constexpr const char* kOidEkCertificate = "2.23.133.8.1";
constexpr const char* kOidPlatformCertificate = "2.23.133.8.2";
constexpr const char* kOidTpmSpecification = "2.23.133.2.16";

constexpr const char* kNotAfterForever = "99991231235959Z";

// Longest attribute value we put into a certificate (TCG: STRING (SIZE (1..STRMAX)), 255).
constexpr size_t kMaxAttributeLength = 255;

using ExtUsagePtr = std::unique_ptr<EXTENDED_KEY_USAGE, OpenSslDeleter<EXTENDED_KEY_USAGE_free>>;
using GeneralNamesPtr = std::unique_ptr<GENERAL_NAMES, OpenSslDeleter<GENERAL_NAMES_free>>;
using GeneralNamePtr = std::unique_ptr<GENERAL_NAME, OpenSslDeleter<GENERAL_NAME_free>>;
using BasicConstraintsPtr =
    std::unique_ptr<BASIC_CONSTRAINTS, OpenSslDeleter<BASIC_CONSTRAINTS_free>>;
using BitStringPtr = std::unique_ptr<ASN1_BIT_STRING, OpenSslDeleter<ASN1_BIT_STRING_free>>;
using OctetStringPtr = std::unique_ptr<ASN1_OCTET_STRING, OpenSslDeleter<ASN1_OCTET_STRING_free>>;
using ConfPtr = std::unique_ptr<CONF, OpenSslDeleter<NCONF_free>>;
using Asn1TypePtr = std::unique_ptr<ASN1_TYPE, OpenSslDeleter<ASN1_TYPE_free>>;
using ParamBldPtr = std::unique_ptr<OSSL_PARAM_BLD, OpenSslDeleter<OSSL_PARAM_BLD_free>>;
using ParamsPtr = std::unique_ptr<OSSL_PARAM, OpenSslDeleter<OSSL_PARAM_free>>;

Error Ssl(std::string_view what) { return OpenSslError(Errc::kInvalidArgument, what); }

// A public key of |type| ("RSA", "EC") from the parameters in |bld|; |what| names it in errors.
Result<EvpPkeyPtr> PublicKeyFromParams(const char* type, OSSL_PARAM_BLD* bld,
                                       std::string_view what) {
  ParamsPtr params(OSSL_PARAM_BLD_to_param(bld));
  EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr));
  EVP_PKEY* key = nullptr;
  if (!params || !ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
      EVP_PKEY_fromdata(ctx.get(), &key, EVP_PKEY_PUBLIC_KEY, params.get()) != 1) {
    return tl::unexpected(Ssl(fmt::format("cannot make {}", what)));
  }
  return EvpPkeyPtr(key);
}

// ASN.1 PrintableString's character set (X.680).
bool IsPrintableString(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           std::string_view(" '()+,-./:=?").find(c) != std::string_view::npos;
  });
}

Status CheckAttribute(std::string_view what, std::string_view value) {
  if (value.empty() || value.size() > kMaxAttributeLength) {
    return Fail(Errc::kInvalidArgument,
                fmt::format("{} must be 1 to {} characters long", what, kMaxAttributeLength));
  }
  if (std::any_of(value.begin(), value.end(),
                  [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; })) {
    return Fail(Errc::kInvalidArgument, fmt::format("{} contains a control character", what));
  }
  return Ok();
}

Result<Asn1ObjectPtr> Oid(const char* dotted) {
  Asn1ObjectPtr obj(OBJ_txt2obj(dotted, 1));
  if (!obj) return tl::unexpected(Ssl(fmt::format("bad OID {}", dotted)));
  return obj;
}

// Appends an RDN of one UTF8String attribute.
Status AddUtf8Attribute(X509_NAME* name, const char* oid, std::string_view value) {
  VTPM_ASSIGN_OR_RETURN(Asn1ObjectPtr obj, Oid(oid));
  if (X509_NAME_add_entry_by_OBJ(name, obj.get(), V_ASN1_UTF8STRING,
                                 reinterpret_cast<const unsigned char*>(value.data()),
                                 static_cast<int>(value.size()), -1, 0) != 1) {
    return tl::unexpected(Ssl(fmt::format("cannot add attribute {}", oid)));
  }
  return Ok();
}

Status AddExtension(X509* cert, int nid, void* value, bool critical, std::string_view what) {
  if (X509_add1_ext_i2d(cert, nid, value, critical ? 1 : 0, X509V3_ADD_APPEND) != 1) {
    return tl::unexpected(Ssl(fmt::format("cannot add the {} extension", what)));
  }
  return Ok();
}

Status AddExtendedKeyUsage(X509* cert, const char* oid) {
  ExtUsagePtr eku(sk_ASN1_OBJECT_new_null());
  VTPM_ASSIGN_OR_RETURN(Asn1ObjectPtr obj, Oid(oid));
  if (!eku || sk_ASN1_OBJECT_push(eku.get(), obj.get()) <= 0) {
    return tl::unexpected(Ssl("out of memory"));
  }
  obj.release();  // owned by the stack now
  return AddExtension(cert, NID_ext_key_usage, eku.get(), false, "extended key usage");
}

// SubjectAltName with one directoryName built from (OID, value) pairs, each its own RDN.
Status AddDirNameSan(X509* cert,
                     std::initializer_list<std::pair<const char*, std::string_view>> attributes) {
  X509NamePtr dir(X509_NAME_new());
  if (!dir) return tl::unexpected(Ssl("out of memory"));
  for (const auto& [oid, value] : attributes) {
    VTPM_RETURN_IF_ERROR(AddUtf8Attribute(dir.get(), oid, value));
  }
  GeneralNamePtr gn(GENERAL_NAME_new());
  GeneralNamesPtr names(sk_GENERAL_NAME_new_null());
  if (!gn || !names) return tl::unexpected(Ssl("out of memory"));
  GENERAL_NAME_set0_value(gn.get(), GEN_DIRNAME, dir.release());
  if (sk_GENERAL_NAME_push(names.get(), gn.get()) <= 0) return tl::unexpected(Ssl("out of memory"));
  gn.release();
  return AddExtension(cert, NID_subject_alt_name, names.get(), true, "subject alternative name");
}

Status AddBasicConstraintsNotCa(X509* cert) {
  BasicConstraintsPtr bc(BASIC_CONSTRAINTS_new());
  if (!bc) return tl::unexpected(Ssl("out of memory"));
  bc->ca = 0;
  return AddExtension(cert, NID_basic_constraints, bc.get(), true, "basic constraints");
}

Status AddKeyUsage(X509* cert, int bit) {
  BitStringPtr ku(ASN1_BIT_STRING_new());
  if (!ku || ASN1_BIT_STRING_set_bit(ku.get(), bit, 1) != 1) {
    return tl::unexpected(Ssl("out of memory"));
  }
  return AddExtension(cert, NID_key_usage, ku.get(), true, "key usage");
}

Status AddAuthorityKeyId(X509* cert, X509* issuer) {
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509ExtensionPtr ext(
      X509V3_EXT_conf_nid(nullptr, &ctx, NID_authority_key_identifier, "keyid:always"));
  if (!ext || X509_add_ext(cert, ext.get(), -1) != 1) {
    return tl::unexpected(Ssl("cannot add the authority key identifier extension"));
  }
  return Ok();
}

// SubjectDirectoryAttributes (RFC 5280 §4.2.1.8) holding TCG's tpmSpecification attribute
// (TCG EK Credential Profile):
//   SEQUENCE { SEQUENCE { OID 2.23.133.2.16,
//                         SET { SEQUENCE { UTF8String family, INTEGER level, INTEGER rev } } } }
// OpenSSL 3.0 has no typed API for this extension, so it is built with OpenSSL's ASN.1
// generator (the `openssl asn1parse -genconf` language) from validated values.
Status AddTpmSpecification(X509* cert, const TpmInfo& tpm) {
  bool family_ok = !tpm.family.empty() && tpm.family.size() <= 8 &&
                   std::all_of(tpm.family.begin(), tpm.family.end(),
                               [](char c) { return (c >= '0' && c <= '9') || c == '.'; });
  if (!family_ok || tpm.level < 0 || tpm.revision < 0) {
    return Fail(Errc::kInvalidArgument,
                fmt::format("unusable TPM specification '{}' level {} revision {}", tpm.family,
                            tpm.level, tpm.revision));
  }
  std::string text = fmt::format(
      "[sda]\nattr = SEQUENCE:attr\n"
      "[attr]\ntype = OID:{}\nvalues = SET:values\n"
      "[values]\nspec = SEQUENCE:spec\n"
      "[spec]\nfamily = UTF8:{}\nlevel = INT:{}\nrevision = INT:{}\n",
      kOidTpmSpecification, tpm.family, tpm.level, tpm.revision);
  ConfPtr conf(NCONF_new(nullptr));
  BioPtr bio(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
  long error_line = 0;
  if (!conf || !bio || NCONF_load_bio(conf.get(), bio.get(), &error_line) != 1) {
    return tl::unexpected(Ssl("cannot prepare the tpmSpecification attribute"));
  }
  Asn1TypePtr value(ASN1_generate_nconf("SEQUENCE:sda", conf.get()));
  if (!value) return tl::unexpected(Ssl("cannot encode the tpmSpecification attribute"));
  unsigned char* der = nullptr;
  int len = i2d_ASN1_TYPE(value.get(), &der);
  if (len <= 0) return tl::unexpected(Ssl("cannot encode the tpmSpecification attribute"));
  OctetStringPtr octets(ASN1_OCTET_STRING_new());
  bool ok = octets && ASN1_OCTET_STRING_set(octets.get(), der, len) == 1;
  OPENSSL_free(der);
  if (!ok) return tl::unexpected(Ssl("out of memory"));
  X509ExtensionPtr ext(
      X509_EXTENSION_create_by_NID(nullptr, NID_subject_directory_attributes, 0, octets.get()));
  if (!ext || X509_add_ext(cert, ext.get(), -1) != 1) {
    return tl::unexpected(Ssl("cannot add the subject directory attributes extension"));
  }
  return Ok();
}

// Everything up to the extensions: version, serial, issuer, validity, subject, key.
Result<X509Ptr> NewCertificate(const Issuer& issuer, EVP_PKEY* subject_key,
                               const CertFields& fields) {
  if (issuer.key == nullptr || issuer.cert == nullptr || issuer.digest == nullptr) {
    return Fail(Errc::kInvalidArgument, "no certificate issuer configured");
  }
  if (fields.serial.empty() || fields.serial.size() > 20 || (fields.serial[0] & 0x80) != 0) {
    return Fail(Errc::kInvalidArgument, "a serial number must be 1 to 20 bytes and positive");
  }
  X509Ptr cert(X509_new());
  if (!cert || X509_set_version(cert.get(), X509_VERSION_3) != 1) {
    return tl::unexpected(Ssl("out of memory"));
  }
  BignumPtr bn(BN_bin2bn(fields.serial.data(), static_cast<int>(fields.serial.size()), nullptr));
  Asn1IntegerPtr serial(bn ? BN_to_ASN1_INTEGER(bn.get(), nullptr) : nullptr);
  if (!serial || X509_set_serialNumber(cert.get(), serial.get()) != 1) {
    return tl::unexpected(Ssl("cannot set the serial number"));
  }
  if (X509_set_issuer_name(cert.get(), X509_get_subject_name(issuer.cert)) != 1) {
    return tl::unexpected(Ssl("cannot set the issuer name"));
  }
  Asn1TimePtr not_before(ASN1_TIME_set(nullptr, fields.not_before));
  Asn1TimePtr not_after(ASN1_TIME_new());
  if (!not_before || !not_after || ASN1_TIME_set_string(not_after.get(), kNotAfterForever) != 1 ||
      X509_set1_notBefore(cert.get(), not_before.get()) != 1 ||
      X509_set1_notAfter(cert.get(), not_after.get()) != 1) {
    return tl::unexpected(Ssl("cannot set the validity period"));
  }
  if (!fields.common_name.empty()) {
    VTPM_RETURN_IF_ERROR(
        CheckAttribute("the certificate's common name (--vmid)", fields.common_name));
    int type = IsPrintableString(fields.common_name) ? V_ASN1_PRINTABLESTRING : V_ASN1_UTF8STRING;
    if (X509_NAME_add_entry_by_NID(
            X509_get_subject_name(cert.get()), NID_commonName, type,
            reinterpret_cast<const unsigned char*>(fields.common_name.data()),
            static_cast<int>(fields.common_name.size()), -1, 0) != 1) {
      return tl::unexpected(Ssl("cannot set the subject name"));
    }
  }
  if (X509_set_pubkey(cert.get(), subject_key) != 1) {
    return tl::unexpected(Ssl("cannot set the certificate's public key"));
  }
  return cert;
}

Result<Bytes> SignAndEncode(X509* cert, const Issuer& issuer) {
  if (X509_sign(cert, issuer.key, issuer.digest) <= 0) {
    return tl::unexpected(Ssl("cannot sign the certificate with the CA key"));
  }
  return CertToDer(cert);
}

int EncipherOrAgreementBit(EVP_PKEY* key) {
  // KeyUsage bits (RFC 5280 §4.2.1.3): keyEncipherment (2) for RSA, keyAgreement (4) for EC.
  return EVP_PKEY_base_id(key) == EVP_PKEY_EC ? 4 : 2;
}

}  // namespace

Result<TpmInfo> ParseTpmInfo(std::string_view json) {
  auto j = nlohmann::json::parse(json, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return Fail(Errc::kCorrupt, "libtpms returned unparsable TPM information");
  }
  TpmInfo info;
  const auto& spec = j["TPMSpecification"];
  const auto& attr = j["TPMAttributes"];
  if (!spec.is_object() || !attr.is_object() || !spec["family"].is_string() ||
      !spec["level"].is_number_integer() || !spec["revision"].is_number_integer() ||
      !attr["manufacturer"].is_string() || !attr["model"].is_string() ||
      !attr["version"].is_string()) {
    return Fail(Errc::kCorrupt, fmt::format("unexpected TPM information from libtpms: {}", json));
  }
  info.family = spec["family"].get<std::string>();
  info.level = spec["level"].get<int>();
  info.revision = spec["revision"].get<int>();
  info.manufacturer = attr["manufacturer"].get<std::string>();
  info.model = attr["model"].get<std::string>();
  info.version = attr["version"].get<std::string>();
  return info;
}

Result<Bytes> NewSerial(const RandomFn& random) {
  Bytes serial(16);
  VTPM_RETURN_IF_ERROR(random(serial));
  serial[0] = static_cast<uint8_t>((serial[0] & 0x7f) | 0x40);  // positive, full length
  return serial;
}

Result<Bytes> IssueEkCertificate(const Issuer& issuer, EVP_PKEY* ek, const TpmInfo& tpm,
                                 const CertFields& fields) {
  VTPM_RETURN_IF_ERROR(CheckAttribute("the TPM manufacturer", tpm.manufacturer));
  VTPM_RETURN_IF_ERROR(CheckAttribute("the TPM model", tpm.model));
  VTPM_RETURN_IF_ERROR(CheckAttribute("the TPM version", tpm.version));
  VTPM_ASSIGN_OR_RETURN(X509Ptr cert, NewCertificate(issuer, ek, fields));
  X509* c = cert.get();
  VTPM_RETURN_IF_ERROR(AddExtendedKeyUsage(c, kOidEkCertificate));
  VTPM_RETURN_IF_ERROR(AddDirNameSan(c, {{kOidTpmManufacturer, tpm.manufacturer},
                                         {kOidTpmModel, tpm.model},
                                         {kOidTpmVersion, tpm.version}}));
  VTPM_RETURN_IF_ERROR(AddBasicConstraintsNotCa(c));
  VTPM_RETURN_IF_ERROR(AddTpmSpecification(c, tpm));
  VTPM_RETURN_IF_ERROR(AddAuthorityKeyId(c, issuer.cert));
  VTPM_RETURN_IF_ERROR(AddKeyUsage(c, EncipherOrAgreementBit(ek)));
  return SignAndEncode(c, issuer);
}

Result<Bytes> IssuePlatformCertificate(const Issuer& issuer, EVP_PKEY* ek,
                                       const PlatformInfo& platform, const TpmInfo& tpm, bool tpm2,
                                       const CertFields& fields) {
  VTPM_RETURN_IF_ERROR(CheckAttribute("the platform manufacturer", platform.manufacturer));
  VTPM_RETURN_IF_ERROR(CheckAttribute("the platform model", platform.model));
  VTPM_RETURN_IF_ERROR(CheckAttribute("the platform version", platform.version));
  VTPM_ASSIGN_OR_RETURN(X509Ptr cert, NewCertificate(issuer, ek, fields));
  X509* c = cert.get();
  if (tpm2) {
    VTPM_RETURN_IF_ERROR(AddDirNameSan(c, {{kOidPlatformManufacturerStr, platform.manufacturer},
                                           {kOidPlatformModel, platform.model},
                                           {kOidPlatformVersion, platform.version}}));
  } else {
    VTPM_RETURN_IF_ERROR(AddDirNameSan(c, {{kOidTpmManufacturer, tpm.manufacturer},
                                           {kOidTpmModel, tpm.model},
                                           {kOidTpmVersion, tpm.version},
                                           {kOidTpm12PlatformManufacturer, platform.manufacturer},
                                           {kOidTpm12PlatformModel, platform.model},
                                           {kOidTpm12PlatformVersion, platform.version}}));
  }
  VTPM_RETURN_IF_ERROR(AddBasicConstraintsNotCa(c));
  VTPM_RETURN_IF_ERROR(AddAuthorityKeyId(c, issuer.cert));
  VTPM_RETURN_IF_ERROR(AddKeyUsage(c, EncipherOrAgreementBit(ek)));
  VTPM_RETURN_IF_ERROR(AddExtendedKeyUsage(c, kOidPlatformCertificate));
  return SignAndEncode(c, issuer);
}

Result<EvpPkeyPtr> RsaPublicKey(ByteSpan modulus, uint32_t exponent) {
  if (modulus.empty()) return Fail(Errc::kInvalidArgument, "empty RSA modulus");
  BignumPtr n(BN_bin2bn(modulus.data(), static_cast<int>(modulus.size()), nullptr));
  BignumPtr e(BN_new());
  ParamBldPtr bld(OSSL_PARAM_BLD_new());
  if (!n || !e || !bld || BN_set_word(e.get(), exponent == 0 ? 65537 : exponent) != 1 ||
      OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, n.get()) != 1 ||
      OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, e.get()) != 1) {
    return tl::unexpected(Ssl("out of memory"));
  }
  return PublicKeyFromParams("RSA", bld.get(), "an RSA public key from the TPM's modulus");
}

Result<EvpPkeyPtr> PublicKeyFromTpm(const tpmcmd::Public& pub) {
  if (const tpmcmd::RsaParms* rsa = pub.rsa()) {
    const Bytes* n = std::get_if<Bytes>(&pub.unique);
    if (n == nullptr || n->size() * 8 != rsa->key_bits) {
      return Fail(Errc::kCorrupt, "the TPM's RSA public key does not match its key size");
    }
    return RsaPublicKey(*n, rsa->exponent);
  }
  const tpmcmd::EccParms* ecc = pub.ecc();
  const tpmcmd::EccPoint* pt = std::get_if<tpmcmd::EccPoint>(&pub.unique);
  if (ecc == nullptr || pt == nullptr) {
    return Fail(Errc::kUnsupported, "only RSA and ECC public keys are supported");
  }
  const char* group = nullptr;
  size_t field = 0;
  switch (ecc->curve_id) {
    case tpmcmd::kEccNistP256:
      group = "P-256";
      field = 32;
      break;
    case tpmcmd::kEccNistP384:
      group = "P-384";
      field = 48;
      break;
    case tpmcmd::kEccNistP521:
      group = "P-521";
      field = 66;
      break;
    default:
      return Fail(Errc::kUnsupported,
                  fmt::format("ECC curve 0x{:04x} is not supported", ecc->curve_id));
  }
  if (pt->x.empty() || pt->y.empty() || pt->x.size() > field || pt->y.size() > field) {
    return Fail(Errc::kCorrupt, "the TPM's ECC public point does not match its curve");
  }
  // Uncompressed SEC1 point: 04 || X || Y, coordinates left-padded to the field size.
  Bytes point(1 + 2 * field, 0);
  point[0] = 0x04;
  std::copy(pt->x.begin(), pt->x.end(),
            point.begin() + 1 + static_cast<ptrdiff_t>(field - pt->x.size()));
  std::copy(pt->y.begin(), pt->y.end(), point.end() - static_cast<ptrdiff_t>(pt->y.size()));
  ParamBldPtr bld(OSSL_PARAM_BLD_new());
  if (!bld ||
      OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME, group, 0) != 1 ||
      OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(),
                                       point.size()) != 1) {
    return tl::unexpected(Ssl("out of memory"));
  }
  return PublicKeyFromParams("EC", bld.get(), "an EC public key from the TPM's point");
}

}  // namespace vtpm::provision
