#include "state/blob.h"

#include <fmt/format.h>
#include <openssl/evp.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <optional>

namespace vtpm::state {
namespace {

struct Header {
  uint8_t version;
  uint8_t min_version;
  uint16_t hdrsize;
  uint16_t flags;
  uint32_t totlen;
};

constexpr uint16_t kEncryptionFlags = kFlagEncrypted | kFlagMigrationEncrypted;
constexpr uint16_t kHighestKnownTag = kTagIvecEncryptedMigrationData;

// What every "this blob is broken" message ends with: the codec does not know where the blob
// came from, callers add the file name or the peer.
constexpr const char* kDamaged =
    "the blob is damaged or not in swtpm's state format; use an intact copy (e.g. a backup)";

tl::unexpected<Error> Corrupt(const std::string& what) {
  return Fail(Errc::kCorrupt, fmt::format("invalid swtpm state blob: {}; {}", what, kDamaged));
}

tl::unexpected<Error> Encrypted(uint16_t flags) {
  return Fail(
      Errc::kUnsupported,
      fmt::format("the swtpm state blob is encrypted (header flags 0x{:02x}); vtpm does not "
                  "support state or migration encryption keys yet. Decrypt it with swtpm "
                  "(e.g. `swtpm_ioctl --save` from an swtpm started with the key) and use "
                  "the plain blob",
                  flags));
}

Result<Header> ParseHeader(ByteSpan blob) {
  if (blob.size() < kBlobHeaderSize) {
    return Corrupt(
        fmt::format("{} bytes is shorter than the {}-byte header", blob.size(), kBlobHeaderSize));
  }
  ByteReader r(blob);
  // The reads cannot fail: 10 bytes are there. Still go through the checked reader.
  Header h{};
  VTPM_ASSIGN_OR_RETURN(h.version, r.U8());
  VTPM_ASSIGN_OR_RETURN(h.min_version, r.U8());
  VTPM_ASSIGN_OR_RETURN(h.hdrsize, r.U16());
  VTPM_ASSIGN_OR_RETURN(h.flags, r.U16());
  VTPM_ASSIGN_OR_RETURN(h.totlen, r.U32());

  if (h.totlen != blob.size()) {
    return Corrupt(
        fmt::format("the header says {} bytes in total but the blob has {} (truncated "
                    "or followed by other data)",
                    h.totlen, blob.size()));
  }
  if (h.min_version > kBlobVersion) {
    return Fail(Errc::kUnsupported,
                fmt::format("the swtpm state blob needs a reader for format version {} or newer; "
                            "vtpm reads version {}. It was written by a newer swtpm/vtpm: use that",
                            h.min_version, kBlobVersion));
  }
  if (h.version == 0 || h.min_version > h.version) {
    return Corrupt(
        fmt::format("header version {} with minimum version {}", h.version, h.min_version));
  }
  if (h.hdrsize < kBlobHeaderSize || h.hdrsize > blob.size()) {
    return Corrupt(fmt::format("header size field {} is outside [{}, {}]", h.hdrsize,
                               kBlobHeaderSize, blob.size()));
  }
  return h;
}

struct Record {
  ByteSpan value;
  size_t offset;  // of the record's tag, from the start of the outermost blob (for messages)
};

// The known records of a record list: swtpm's (index = tag) and our seal. Unknown tags are
// skipped, as swtpm does.
struct Records {
  std::array<std::optional<Record>, kHighestKnownTag + 1> swtpm;
  std::optional<Record> seal;

  const std::optional<Record>& operator[](uint16_t tag) const { return swtpm[tag]; }
};

Result<Records> ParseRecords(ByteSpan list, size_t base_offset) {
  Records records;
  ByteReader r(list);
  while (!r.empty()) {
    const size_t offset = base_offset + r.position();
    if (r.remaining() < kTlvHeaderSize) {
      return Corrupt(
          fmt::format("{} stray bytes at offset {} where a record header ({} bytes) "
                      "should start",
                      r.remaining(), offset, kTlvHeaderSize));
    }
    VTPM_ASSIGN_OR_RETURN(const uint16_t tag, r.U16());
    VTPM_ASSIGN_OR_RETURN(const uint32_t length, r.U32());
    if (length > r.remaining()) {
      return Corrupt(
          fmt::format("the record with tag {} at offset {} claims {} bytes but only {} "
                      "remain",
                      tag, offset, length, r.remaining()));
    }
    VTPM_ASSIGN_OR_RETURN(const ByteSpan value, r.Take(length));
    std::optional<Record>* slot = nullptr;
    if (tag == kTagVtpmSeal) {
      slot = &records.seal;
    } else if (tag != 0 && tag <= kHighestKnownTag) {
      slot = &records.swtpm[tag];
    } else {
      continue;  // unknown: ignored, like swtpm does
    }
    if (*slot) {
      return Corrupt(
          fmt::format("tag {} appears twice (offsets {} and {})", tag, (*slot)->offset, offset));
    }
    *slot = Record{value, offset};
  }
  return records;
}

constexpr uint8_t kSealVersion = 1;
constexpr uint8_t kSealSha256 = 1;
constexpr std::string_view kSealDomain = "vtpm-state-seal-v1";

// SHA-256(domain || u64 generation || data), through OpenSSL.
std::array<uint8_t, 32> SealDigest(uint64_t generation, ByteSpan data) {
  std::array<uint8_t, 8> gen{};
  for (size_t i = 0; i < gen.size(); ++i) gen[i] = static_cast<uint8_t>(generation >> (56 - 8 * i));
  std::array<uint8_t, 32> out{};
  unsigned int len = 0;
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  const bool ok = ctx != nullptr && EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr) == 1 &&
                  EVP_DigestUpdate(ctx, kSealDomain.data(), kSealDomain.size()) == 1 &&
                  EVP_DigestUpdate(ctx, gen.data(), gen.size()) == 1 &&
                  EVP_DigestUpdate(ctx, data.data(), data.size()) == 1 &&
                  EVP_DigestFinal_ex(ctx, out.data(), &len) == 1 && len == out.size();
  EVP_MD_CTX_free(ctx);
  if (!ok) {
    // Only allocation failure gets here; a state write must not go out unsealed or half-sealed.
    std::fprintf(stderr, "vtpm: OpenSSL could not compute SHA-256 (out of memory?)\n");
    std::abort();
  }
  return out;
}

// The generation of a verified seal; nullopt for a seal of a version we do not know.
Result<std::optional<uint64_t>> VerifySeal(const Record& seal, ByteSpan data) {
  ByteReader r(seal.value);
  if (seal.value.empty())
    return Corrupt(fmt::format("empty seal record at offset {}", seal.offset));
  VTPM_ASSIGN_OR_RETURN(const uint8_t version, r.U8());
  if (version != kSealVersion) return std::optional<uint64_t>();
  if (seal.value.size() != kSealSize) {
    return Corrupt(fmt::format("the seal record at offset {} has {} bytes instead of {}",
                               seal.offset, seal.value.size(), kSealSize));
  }
  VTPM_ASSIGN_OR_RETURN(const uint8_t alg, r.U8());
  VTPM_ASSIGN_OR_RETURN(const uint16_t reserved, r.U16());
  VTPM_ASSIGN_OR_RETURN(const uint64_t generation, r.U64());
  VTPM_ASSIGN_OR_RETURN(const ByteSpan digest, r.Take(32));
  if (alg != kSealSha256 || reserved != 0) {
    return Corrupt(fmt::format("the seal record at offset {} names digest {} (reserved 0x{:x})",
                               seal.offset, alg, reserved));
  }
  const auto want = SealDigest(generation, data);
  if (!std::equal(want.begin(), want.end(), digest.begin(), digest.end())) {
    return Corrupt(fmt::format(
        "its SHA-256 seal does not match the data: the file changed after it was written "
        "(a flipped bit, zeroed or torn blocks, or an edit) -- generation {} as written",
        generation));
  }
  return std::optional<uint64_t>(generation);
}

// The DATA record of a list holding the plain state (file form, or inside MIGRATION_DATA).
Result<Bytes> PlainData(const Records& records, uint16_t flags, const char* where) {
  if (records[kTagData]) {
    const ByteSpan v = records[kTagData]->value;
    return Bytes(v.begin(), v.end());
  }
  if (records[kTagEncryptedData]) return Encrypted(flags);
  return Corrupt(fmt::format("no DATA record (tag {}) in {}", static_cast<int>(kTagData), where));
}

void CheckPayloadSize(size_t size) {
  if (size > kMaxBlobPayload) {
    std::fprintf(stderr, "vtpm: internal error: a %zu-byte state blob exceeds the %zu-byte limit\n",
                 size, kMaxBlobPayload);
    std::abort();
  }
}

void WriteHeader(ByteWriter& w, uint16_t flags, size_t totlen) {
  w.U8(kBlobVersion);
  w.U8(kBlobMinVersion);
  w.U16(kBlobHeaderSize);
  w.U16(flags);
  w.U32(static_cast<uint32_t>(totlen));
}

void WriteRecordHeader(ByteWriter& w, uint16_t tag, size_t length) {
  w.U16(tag);
  w.U32(static_cast<uint32_t>(length));
}

}  // namespace

Bytes EncodeFileBlob(ByteSpan libtpms_blob) {
  CheckPayloadSize(libtpms_blob.size());
  ByteWriter w;
  WriteHeader(w, 0, kBlobHeaderSize + kTlvHeaderSize + libtpms_blob.size());
  WriteRecordHeader(w, kTagData, libtpms_blob.size());
  w.Append(libtpms_blob);
  return std::move(w).Take();
}

Bytes EncodeMigrationBlob(ByteSpan libtpms_blob) {
  CheckPayloadSize(libtpms_blob.size());
  const size_t inner = kTlvHeaderSize + libtpms_blob.size();
  ByteWriter w;
  WriteHeader(w, kFlagMigrationData, kBlobHeaderSize + kTlvHeaderSize + inner);
  WriteRecordHeader(w, kTagMigrationData, inner);
  WriteRecordHeader(w, kTagData, libtpms_blob.size());
  w.Append(libtpms_blob);
  return std::move(w).Take();
}

Bytes EncodeSealedFileBlob(ByteSpan libtpms_blob, uint64_t generation) {
  CheckPayloadSize(libtpms_blob.size());
  ByteWriter w;
  WriteHeader(w, 0, kBlobHeaderSize + 2 * kTlvHeaderSize + libtpms_blob.size() + kSealSize);
  WriteRecordHeader(w, kTagData, libtpms_blob.size());
  w.Append(libtpms_blob);
  WriteRecordHeader(w, kTagVtpmSeal, kSealSize);
  w.U8(kSealVersion);
  w.U8(kSealSha256);
  w.U16(0);
  w.U64(generation);
  w.Append(SealDigest(generation, libtpms_blob));
  return std::move(w).Take();
}

Result<Bytes> DecodeFileBlob(ByteSpan file) {
  VTPM_ASSIGN_OR_RETURN(StateFile f, DecodeStateFile(file));
  return std::move(f.blob);
}

Result<StateFile> DecodeStateFile(ByteSpan file) {
  VTPM_ASSIGN_OR_RETURN(const Header h, ParseHeader(file));
  if (h.flags & kEncryptionFlags) return Encrypted(h.flags);
  const ByteSpan body = file.subspan(h.hdrsize);
  if (h.version == 1) return StateFile{Bytes(body.begin(), body.end()), std::nullopt};

  VTPM_ASSIGN_OR_RETURN(const Records records, ParseRecords(body, h.hdrsize));
  if (!records[kTagData] && (records[kTagMigrationData] || records[kTagEncryptedMigrationData])) {
    return Fail(Errc::kCorrupt,
                "this is a migration blob (as CMD_GET_STATEBLOB / `swtpm_ioctl --save` produce), "
                "not a state file: swtpm does not accept it as a file either. Send it to a "
                "stopped TPM with CMD_SET_STATEBLOB (`swtpm_ioctl --load`) instead");
  }
  VTPM_ASSIGN_OR_RETURN(Bytes blob, PlainData(records, h.flags, "the state file"));
  std::optional<uint64_t> generation;
  if (records.seal) {
    VTPM_ASSIGN_OR_RETURN(generation, VerifySeal(*records.seal, blob));
  }
  return StateFile{std::move(blob), generation};
}

Result<Bytes> DecodeStateBlob(ByteSpan blob) {
  VTPM_ASSIGN_OR_RETURN(const Header h, ParseHeader(blob));
  if (h.flags & kEncryptionFlags) return Encrypted(h.flags);
  const ByteSpan body = blob.subspan(h.hdrsize);
  if (body.empty()) return Bytes{};  // swtpm: "no blob" (TPMLIB_SetState(type, NULL, 0))
  if (h.version == 1) return Bytes(body.begin(), body.end());

  VTPM_ASSIGN_OR_RETURN(const Records records, ParseRecords(body, h.hdrsize));
  if (records[kTagMigrationData]) {
    if (records[kTagData]) {
      return Corrupt("it has both a MIGRATION_DATA and a top-level DATA record");
    }
    const Record& mig = *records[kTagMigrationData];
    VTPM_ASSIGN_OR_RETURN(const Records inner,
                          ParseRecords(mig.value, mig.offset + kTlvHeaderSize));
    return PlainData(inner, h.flags, "the MIGRATION_DATA record");
  }
  if (records[kTagEncryptedMigrationData]) return Encrypted(h.flags);
  // Not a migration blob: the file form (swtpm itself would refuse it here).
  return PlainData(records, h.flags, "the state blob");
}

}  // namespace vtpm::state
