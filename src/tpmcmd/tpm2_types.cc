#include "tpmcmd/tpm2_types.h"

#include <fmt/format.h>

#include <array>

namespace vtpm::tpmcmd {

namespace {

// Upper bounds for sizes read from a TPM (Part 2 §10/§11 TPM2B maxima, rounded up generously).
constexpr size_t kMaxDigest = 64;        // TPMU_HA: SHA-512
constexpr size_t kMaxRsaKeyBytes = 512;  // TPM2B_PUBLIC_KEY_RSA: 4096 bits
constexpr size_t kMaxEccKeyBytes = 128;  // TPM2B_ECC_PARAMETER: P-521 is 66
constexpr size_t kMaxPublicArea = 1024;  // TPM2B_PUBLIC
constexpr size_t kMaxPcrBanks = 16;      // HASH_COUNT
constexpr size_t kMaxPcrSelect = 8;      // PCR_SELECT_MAX is 3 for 24 PCRs
constexpr size_t kPcrSelectMin = 3;      // PCR_SELECT_MIN: 24 PCRs
constexpr size_t kMaxDigestList = 8;     // TPML_DIGEST

struct HashInfo {
  uint16_t alg;
  size_t size;
  std::string_view name;
};
constexpr std::array<HashInfo, 8> kHashes = {{
    {kAlgSha1, 20, "sha1"},
    {kAlgSha256, 32, "sha256"},
    {kAlgSha384, 48, "sha384"},
    {kAlgSha512, 64, "sha512"},
    {kAlgSm3_256, 32, "sm3-256"},
    {kAlgSha3_256, 32, "sha3-256"},
    {kAlgSha3_384, 48, "sha3-384"},
    {kAlgSha3_512, 64, "sha3-512"},
}};

Error Bad(std::string_view what, std::string detail) {
  return Error{Errc::kCorrupt, fmt::format("malformed {} from the TPM: {}", what, detail), 0, 0};
}

void MarshalSymDef(ByteWriter& w, const SymDef& s) {
  w.U16(s.algorithm);
  if (s.algorithm == kAlgNull) return;
  w.U16(s.key_bits);
  w.U16(s.mode);
}

Result<SymDef> UnmarshalSymDef(ByteReader& r) {
  SymDef s;
  VTPM_ASSIGN_OR_RETURN(s.algorithm, r.U16());
  if (s.algorithm == kAlgNull) return s;
  VTPM_ASSIGN_OR_RETURN(s.key_bits, r.U16());
  VTPM_ASSIGN_OR_RETURN(s.mode, r.U16());
  return s;
}

bool SchemeHasHash(uint16_t scheme) { return scheme != kAlgNull && scheme != kAlgRsaes; }

Result<Scheme> UnmarshalScheme(ByteReader& r) {
  Scheme s;
  VTPM_ASSIGN_OR_RETURN(s.scheme, r.U16());
  if (!SchemeHasHash(s.scheme)) return s;
  VTPM_ASSIGN_OR_RETURN(s.hash_alg, r.U16());
  if (s.scheme == kAlgEcdaa) {
    VTPM_ASSIGN_OR_RETURN(s.count, r.U16());
  }
  return s;
}

bool IsRsaSignature(uint16_t sig_alg) { return sig_alg == kAlgRsassa || sig_alg == kAlgRsapss; }

bool IsEccSignature(uint16_t sig_alg) {
  return sig_alg == kAlgEcdsa || sig_alg == kAlgEcdaa || sig_alg == kAlgSm2 ||
         sig_alg == kAlgEcschnorr;
}

}  // namespace

void MarshalScheme(ByteWriter& w, const Scheme& s) {
  w.U16(s.scheme);
  if (!SchemeHasHash(s.scheme)) return;
  w.U16(s.hash_alg);
  if (s.scheme == kAlgEcdaa) w.U16(s.count);
}

size_t DigestSize(uint16_t hash_alg) {
  for (const auto& h : kHashes) {
    if (h.alg == hash_alg) return h.size;
  }
  return 0;
}

std::string_view HashAlgName(uint16_t hash_alg) {
  for (const auto& h : kHashes) {
    if (h.alg == hash_alg) return h.name;
  }
  return {};
}

uint16_t HashAlgFromName(std::string_view name) {
  for (const auto& h : kHashes) {
    if (h.name == name) return h.alg;
  }
  return 0;
}

void Put2b(ByteWriter& w, ByteSpan b) {
  w.U16(static_cast<uint16_t>(b.size()));
  w.Append(b);
}

Result<Bytes> Get2b(ByteReader& r, size_t max, std::string_view what) {
  VTPM_ASSIGN_OR_RETURN(uint16_t size, r.U16());
  if (size > max) {
    return tl::unexpected(Bad(what, fmt::format("size {} exceeds {}", size, max)));
  }
  VTPM_ASSIGN_OR_RETURN(ByteSpan b, r.Take(size));
  return Bytes(b.begin(), b.end());
}

void MarshalPublic(ByteWriter& w, const Public& p) {
  w.U16(p.type);
  w.U16(p.name_alg);
  w.U32(p.object_attributes);
  Put2b(w, p.auth_policy);
  if (const RsaParms* rsa = p.rsa()) {
    MarshalSymDef(w, rsa->symmetric);
    MarshalScheme(w, rsa->scheme);
    w.U16(rsa->key_bits);
    w.U32(rsa->exponent);
  } else if (const EccParms* ecc = p.ecc()) {
    MarshalSymDef(w, ecc->symmetric);
    MarshalScheme(w, ecc->scheme);
    w.U16(ecc->curve_id);
    MarshalScheme(w, ecc->kdf);
  }
  if (const Bytes* n = std::get_if<Bytes>(&p.unique)) {
    Put2b(w, *n);
  } else if (const EccPoint* pt = std::get_if<EccPoint>(&p.unique)) {
    Put2b(w, pt->x);
    Put2b(w, pt->y);
  }
}

Bytes MarshalPublic(const Public& p) {
  ByteWriter w;
  MarshalPublic(w, p);
  return std::move(w).Take();
}

void MarshalPublic2b(ByteWriter& w, const Public& p) { Put2b(w, MarshalPublic(p)); }

Result<Public> UnmarshalPublic(ByteReader& r) {
  Public p;
  VTPM_ASSIGN_OR_RETURN(p.type, r.U16());
  VTPM_ASSIGN_OR_RETURN(p.name_alg, r.U16());
  VTPM_ASSIGN_OR_RETURN(p.object_attributes, r.U32());
  VTPM_ASSIGN_OR_RETURN(p.auth_policy, Get2b(r, kMaxDigest, "authPolicy"));
  if (p.type == kAlgRsa) {
    RsaParms rsa;
    VTPM_ASSIGN_OR_RETURN(rsa.symmetric, UnmarshalSymDef(r));
    VTPM_ASSIGN_OR_RETURN(rsa.scheme, UnmarshalScheme(r));
    VTPM_ASSIGN_OR_RETURN(rsa.key_bits, r.U16());
    VTPM_ASSIGN_OR_RETURN(rsa.exponent, r.U32());
    p.parameters = rsa;
    VTPM_ASSIGN_OR_RETURN(Bytes n, Get2b(r, kMaxRsaKeyBytes, "RSA public key"));
    p.unique = std::move(n);
  } else if (p.type == kAlgEcc) {
    EccParms ecc;
    VTPM_ASSIGN_OR_RETURN(ecc.symmetric, UnmarshalSymDef(r));
    VTPM_ASSIGN_OR_RETURN(ecc.scheme, UnmarshalScheme(r));
    VTPM_ASSIGN_OR_RETURN(ecc.curve_id, r.U16());
    VTPM_ASSIGN_OR_RETURN(ecc.kdf, UnmarshalScheme(r));
    p.parameters = ecc;
    EccPoint pt;
    VTPM_ASSIGN_OR_RETURN(pt.x, Get2b(r, kMaxEccKeyBytes, "ECC point x"));
    VTPM_ASSIGN_OR_RETURN(pt.y, Get2b(r, kMaxEccKeyBytes, "ECC point y"));
    p.unique = std::move(pt);
  } else {
    return Fail(Errc::kUnsupported,
                fmt::format("public area of type 0x{:04x} is not supported (only RSA and ECC "
                            "keys)",
                            p.type));
  }
  return p;
}

Result<Public> UnmarshalPublic2b(ByteReader& r) {
  Bytes area;
  return UnmarshalPublic2b(r, area);
}

Result<Public> UnmarshalPublic2b(ByteReader& r, Bytes& area) {
  VTPM_ASSIGN_OR_RETURN(uint16_t size, r.U16());
  if (size == 0 || size > kMaxPublicArea) {
    return tl::unexpected(Bad("TPM2B_PUBLIC", fmt::format("size {}", size)));
  }
  VTPM_ASSIGN_OR_RETURN(ByteSpan bytes, r.Take(size));
  ByteReader inner(bytes);
  VTPM_ASSIGN_OR_RETURN(Public p, UnmarshalPublic(inner));
  if (!inner.empty()) {
    return tl::unexpected(
        Bad("TPM2B_PUBLIC", fmt::format("{} bytes left after the public area", inner.remaining())));
  }
  area.assign(bytes.begin(), bytes.end());
  return p;
}

void MarshalNvPublic2b(ByteWriter& w, const NvPublic& p) {
  ByteWriter inner;
  inner.U32(p.nv_index);
  inner.U16(p.name_alg);
  inner.U32(p.attributes);
  Put2b(inner, p.auth_policy);
  inner.U16(p.data_size);
  Put2b(w, inner.bytes());
}

Result<NvPublic> UnmarshalNvPublic2b(ByteReader& r) {
  VTPM_ASSIGN_OR_RETURN(uint16_t size, r.U16());
  VTPM_ASSIGN_OR_RETURN(ByteSpan area, r.Take(size));
  ByteReader inner(area);
  NvPublic p;
  VTPM_ASSIGN_OR_RETURN(p.nv_index, inner.U32());
  VTPM_ASSIGN_OR_RETURN(p.name_alg, inner.U16());
  VTPM_ASSIGN_OR_RETURN(p.attributes, inner.U32());
  VTPM_ASSIGN_OR_RETURN(p.auth_policy, Get2b(inner, kMaxDigest, "NV authPolicy"));
  VTPM_ASSIGN_OR_RETURN(p.data_size, inner.U16());
  if (!inner.empty()) {
    return tl::unexpected(
        Bad("TPM2B_NV_PUBLIC",
            fmt::format("{} bytes left after the NV public area", inner.remaining())));
  }
  return p;
}

void MarshalPcrSelections(ByteWriter& w, const std::vector<PcrSelection>& s) {
  w.U32(static_cast<uint32_t>(s.size()));
  for (const auto& sel : s) {
    w.U16(sel.hash);
    w.U8(static_cast<uint8_t>(sel.select.size()));
    w.Append(sel.select);
  }
}

Result<std::vector<PcrSelection>> UnmarshalPcrSelections(ByteReader& r) {
  VTPM_ASSIGN_OR_RETURN(uint32_t count, r.U32());
  if (count > kMaxPcrBanks) {
    return tl::unexpected(Bad("TPML_PCR_SELECTION", fmt::format("{} banks", count)));
  }
  std::vector<PcrSelection> out;
  out.reserve(count);
  for (uint32_t i = 0; i < count; ++i) {
    PcrSelection sel;
    VTPM_ASSIGN_OR_RETURN(sel.hash, r.U16());
    VTPM_ASSIGN_OR_RETURN(uint8_t n, r.U8());
    if (n > kMaxPcrSelect) {
      return tl::unexpected(Bad("TPMS_PCR_SELECTION", fmt::format("sizeofSelect {}", n)));
    }
    VTPM_ASSIGN_OR_RETURN(ByteSpan b, r.Take(n));
    sel.select.assign(b.begin(), b.end());
    out.push_back(std::move(sel));
  }
  return out;
}

PcrSelection SelectPcrs(uint16_t hash, std::initializer_list<uint32_t> pcrs) {
  PcrSelection sel{hash, Bytes(kPcrSelectMin, 0)};
  for (uint32_t pcr : pcrs) {
    if (pcr / 8 >= sel.select.size()) sel.select.resize(pcr / 8 + 1, 0);
    sel.select[pcr / 8] |= static_cast<uint8_t>(1u << (pcr % 8));
  }
  return sel;
}

void MarshalDigestValues(ByteWriter& w, const std::vector<TaggedHash>& digests) {
  w.U32(static_cast<uint32_t>(digests.size()));
  for (const auto& d : digests) {
    w.U16(d.hash_alg);
    w.Append(d.digest);
  }
}

Result<std::vector<Bytes>> UnmarshalDigestList(ByteReader& r) {
  VTPM_ASSIGN_OR_RETURN(uint32_t count, r.U32());
  if (count > kMaxDigestList) {
    return tl::unexpected(Bad("TPML_DIGEST", fmt::format("{} digests", count)));
  }
  std::vector<Bytes> out(count);
  for (auto& d : out) {
    VTPM_ASSIGN_OR_RETURN(d, Get2b(r, kMaxDigest, "TPML_DIGEST digest"));
  }
  return out;
}

void MarshalHashcheckTicket(ByteWriter& w, const HashcheckTicket& t) {
  w.U16(kStHashcheck);
  w.U32(t.hierarchy);
  Put2b(w, t.digest);
}

Result<Signature> UnmarshalSignature(ByteReader& r) {
  Signature sig;
  VTPM_ASSIGN_OR_RETURN(sig.sig_alg, r.U16());
  if (!IsRsaSignature(sig.sig_alg) && !IsEccSignature(sig.sig_alg)) {
    return Fail(Errc::kUnsupported,
                fmt::format("signature of scheme 0x{:04x} is not supported (only RSA and ECC "
                            "signatures)",
                            sig.sig_alg));
  }
  VTPM_ASSIGN_OR_RETURN(sig.hash_alg, r.U16());
  if (IsRsaSignature(sig.sig_alg)) {
    VTPM_ASSIGN_OR_RETURN(Bytes s, Get2b(r, kMaxRsaKeyBytes, "RSA signature"));
    sig.signature = std::move(s);
    return sig;
  }
  EccSignature ecc;
  VTPM_ASSIGN_OR_RETURN(ecc.r, Get2b(r, kMaxEccKeyBytes, "ECC signature r"));
  VTPM_ASSIGN_OR_RETURN(ecc.s, Get2b(r, kMaxEccKeyBytes, "ECC signature s"));
  sig.signature = std::move(ecc);
  return sig;
}

}  // namespace vtpm::tpmcmd
