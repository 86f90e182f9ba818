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

constexpr uint16_t kHighestKnownTag = kTagIvecEncryptedMigrationData;

// What every "this blob is broken" message ends with: the codec does not know where the blob
// came from, callers add the file name or the peer.
constexpr const char* kDamaged =
    "the blob is damaged or not in swtpm's state format; use an intact copy (e.g. a backup)";

tl::unexpected<Error> Corrupt(const std::string& what) {
  return Fail(Errc::kCorrupt, fmt::format("invalid swtpm state blob: {}; {}", what, kDamaged));
}

tl::unexpected<Error> KeyNeeded(const char* what) {
  return Fail(Errc::kNotFound,
              fmt::format("the swtpm state blob is encrypted ({}) and no key for it was given: "
                          "start with the key it was written with (--key / --migration-key)",
                          what));
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
  std::optional<Record> aead;

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
    } else if (tag == kTagVtpmAead) {
      slot = &records.aead;
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
Result<Bytes> PlainData(const Records& records, const char* where) {
  if (records[kTagData]) {
    const ByteSpan v = records[kTagData]->value;
    return Bytes(v.begin(), v.end());
  }
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

void WriteRecord(ByteWriter& w, uint16_t tag, ByteSpan value) {
  w.U16(tag);
  w.U32(static_cast<uint32_t>(value.size()));
  w.Append(value);
}

Bytes HeaderBytes(uint16_t flags, size_t totlen) {
  ByteWriter w;
  WriteHeader(w, flags, totlen);
  return std::move(w).Take();
}

Bytes Seal(uint64_t generation, ByteSpan payload) {
  ByteWriter w;
  w.U8(kSealVersion);
  w.U8(kSealSha256);
  w.U16(0);
  w.U64(generation);
  w.Append(SealDigest(generation, payload));
  return std::move(w).Take();
}

// The additional data of an AEAD file: domain, blob name, generation, header.
Bytes AeadAad(std::string_view name, uint64_t generation, ByteSpan header) {
  constexpr std::string_view kDomain = "vtpm-state-aead-v1";
  ByteWriter w;
  w.Append(ByteSpan(reinterpret_cast<const uint8_t*>(kDomain.data()), kDomain.size()));
  w.U8(static_cast<uint8_t>(name.size()));
  w.Append(ByteSpan(reinterpret_cast<const uint8_t*>(name.data()), name.size()));
  w.U64(generation);
  w.Append(header);
  return std::move(w).Take();
}

// |flag| when |key| is a 256-bit key (swtpm's ..._256BIT_KEY header flags), else 0.
uint16_t KeyFlag(const StateKey& key, BlobFlag flag) {
  return key.size() == 32 ? static_cast<uint16_t>(flag) : uint16_t{0};
}

constexpr uint8_t kAeadVersion = 1;
constexpr size_t kAeadOverhead = 1 + 8 + 12 + 16;

// swtpm's CBC records: ENCRYPTED(tag_data) | HMAC | IVEC(tag_iv).
Bytes CbcRecords(const StateKey& key, ByteSpan plain, uint16_t tag_data, uint16_t tag_iv) {
  const CbcSealed c = CbcEncrypt(key, plain);
  ByteWriter w;
  WriteRecord(w, tag_data, c.ciphertext);
  WriteRecord(w, kTagHmac, c.hmac);
  WriteRecord(w, tag_iv, c.iv);
  return std::move(w).Take();
}

Result<Bytes> OpenCbc(const Records& records, const StateKey& key, bool key_256, uint16_t tag_data,
                      uint16_t tag_iv, const char* what) {
  if (key.cipher() == StateCipher::kAes256Gcm || (key.size() == 32) != key_256) {
    return Fail(Errc::kWrongKey,
                fmt::format("the {} was encrypted by swtpm's {} mode; the key given is for {}",
                            what, key_256 ? "aes-256-cbc" : "aes-cbc", CipherName(key.cipher())));
  }
  if (!records[tag_data] || !records[kTagHmac]) {
    return Corrupt(
        fmt::format("the {} is flagged encrypted but lacks its encrypted data or HMAC", what));
  }
  const ByteSpan iv = records[tag_iv] ? records[tag_iv]->value : ByteSpan();
  auto plain = CbcDecrypt(key, records[tag_data]->value, records[kTagHmac]->value, iv);
  if (!plain && plain.error().code == Errc::kWrongKey) {
    plain.error().message =
        fmt::format("the {} does not open with the key given: {}", what, plain.error().message);
  }
  return plain;
}

Result<Bytes> OpenAead(const Record& aead, const StateKey& key, std::string_view name,
                       ByteSpan header, std::optional<uint64_t> sealed_generation) {
  if (key.cipher() != StateCipher::kAes256Gcm) {
    return Fail(Errc::kWrongKey,
                fmt::format("the state file was encrypted in vtpm's aes-256-gcm mode; the key "
                            "given is for {}",
                            CipherName(key.cipher())));
  }
  ByteReader r(aead.value);
  VTPM_ASSIGN_OR_RETURN(const uint8_t version, r.U8());
  VTPM_ASSIGN_OR_RETURN(const uint64_t generation, r.U64());
  if (version != kAeadVersion) {
    return Fail(Errc::kUnsupported,
                fmt::format("the state file's AEAD record has version {}; this vtpm reads {}",
                            version, kAeadVersion));
  }
  if (sealed_generation && *sealed_generation != generation) {
    return Corrupt("the AEAD record and the seal name different generations");
  }
  return GcmOpen(key, r.Rest(), AeadAad(name, generation, header));
}

// The payload record a seal covers: DATA, ENCRYPTED_DATA or VTPM_AEAD.
const std::optional<Record>& PayloadRecord(const Records& records) {
  if (records.aead) return records.aead;
  if (records[kTagEncryptedData]) return records[kTagEncryptedData];
  return records[kTagData];
}

Bytes EncodeEncryptedFile(ByteSpan libtpms_blob, uint64_t generation, const StateKey& key,
                          std::string_view name) {
  const uint16_t flags = kFlagEncrypted | KeyFlag(key, kFlagEncrypted256BitKey);
  Bytes payload_records;
  ByteSpan payload;
  if (key.cipher() == StateCipher::kAes256Gcm) {
    const size_t record = kAeadOverhead + libtpms_blob.size();
    const size_t total = kBlobHeaderSize + 2 * kTlvHeaderSize + record + kSealSize;
    const Bytes aad = AeadAad(name, generation, HeaderBytes(flags, total));
    ByteWriter inner;
    inner.U8(kAeadVersion);
    inner.U64(generation);
    inner.Append(GcmSeal(key, libtpms_blob, aad));
    ByteWriter w;
    WriteRecord(w, kTagVtpmAead, inner.bytes());
    payload_records = std::move(w).Take();
    payload = ByteSpan(payload_records).subspan(kTlvHeaderSize, record);
  } else {
    payload_records = CbcRecords(key, libtpms_blob, kTagEncryptedData, kTagIvecEncryptedData);
    ByteReader r(payload_records);
    (void)r.U16();
    const uint32_t len = r.U32().value();
    payload = ByteSpan(payload_records).subspan(kTlvHeaderSize, len);
  }
  const Bytes seal = Seal(generation, payload);
  ByteWriter w;
  WriteHeader(w, flags, kBlobHeaderSize + payload_records.size() + kTlvHeaderSize + seal.size());
  w.Append(payload_records);
  WriteRecord(w, kTagVtpmSeal, seal);
  return std::move(w).Take();
}

}  // namespace

Bytes EncodeFileBlob(ByteSpan libtpms_blob) {
  CheckPayloadSize(libtpms_blob.size());
  ByteWriter w;
  WriteHeader(w, 0, kBlobHeaderSize + kTlvHeaderSize + libtpms_blob.size());
  WriteRecord(w, kTagData, libtpms_blob);
  return std::move(w).Take();
}

Bytes EncodeMigrationBlob(ByteSpan libtpms_blob, const StateKey* state_key,
                          const StateKey* migration_key) {
  CheckPayloadSize(libtpms_blob.size());
  uint16_t flags = kFlagMigrationData;
  Bytes inner;
  if (state_key != nullptr && state_key->cipher() != StateCipher::kAes256Gcm) {
    inner = CbcRecords(*state_key, libtpms_blob, kTagEncryptedData, kTagIvecEncryptedData);
    flags = static_cast<uint16_t>(flags | kFlagEncrypted |
                                  KeyFlag(*state_key, kFlagEncrypted256BitKey));
  } else {
    ByteWriter w;
    WriteRecord(w, kTagData, libtpms_blob);
    inner = std::move(w).Take();
  }
  Bytes outer;
  if (migration_key != nullptr) {
    outer = CbcRecords(*migration_key, inner, kTagEncryptedMigrationData,
                       kTagIvecEncryptedMigrationData);
    flags = static_cast<uint16_t>(flags | kFlagMigrationEncrypted |
                                  KeyFlag(*migration_key, kFlagMigration256BitKey));
  } else {
    ByteWriter w;
    WriteRecord(w, kTagMigrationData, inner);
    outer = std::move(w).Take();
  }
  ByteWriter w;
  WriteHeader(w, flags, kBlobHeaderSize + outer.size());
  w.Append(outer);
  return std::move(w).Take();
}

Bytes EncodeSealedFileBlob(ByteSpan libtpms_blob, uint64_t generation, const StateKey* key,
                           std::string_view name) {
  CheckPayloadSize(libtpms_blob.size());
  if (key != nullptr) return EncodeEncryptedFile(libtpms_blob, generation, *key, name);
  ByteWriter w;
  WriteHeader(w, 0, kBlobHeaderSize + 2 * kTlvHeaderSize + libtpms_blob.size() + kSealSize);
  WriteRecord(w, kTagData, libtpms_blob);
  WriteRecord(w, kTagVtpmSeal, Seal(generation, libtpms_blob));
  return std::move(w).Take();
}

Result<Bytes> DecodeFileBlob(ByteSpan file) {
  VTPM_ASSIGN_OR_RETURN(StateFile f, DecodeStateFile(file));
  if (f.locked) return KeyNeeded("state file");
  return std::move(f.blob);
}

Result<StateFile> DecodeStateFile(ByteSpan file, const StateKey* key, std::string_view name) {
  VTPM_ASSIGN_OR_RETURN(const Header h, ParseHeader(file));
  const ByteSpan body = file.subspan(h.hdrsize);
  const bool encrypted = (h.flags & kFlagEncrypted) != 0;
  if (h.version == 1) {
    if (encrypted) {
      return Fail(Errc::kUnsupported,
                  "the state file is encrypted in swtpm's version-1 format (before 2018); open "
                  "it with swtpm and let it write the current format");
    }
    return StateFile{Bytes(body.begin(), body.end()), std::nullopt, std::nullopt, false};
  }
  VTPM_ASSIGN_OR_RETURN(const Records records, ParseRecords(body, h.hdrsize));
  if (!records[kTagData] && (records[kTagMigrationData] || records[kTagEncryptedMigrationData])) {
    return Fail(Errc::kCorrupt,
                "this is a migration blob (as CMD_GET_STATEBLOB / `swtpm_ioctl --save` produce), "
                "not a state file: swtpm does not accept it as a file either. Send it to a "
                "stopped TPM with CMD_SET_STATEBLOB (`swtpm_ioctl --load`) instead");
  }
  StateFile out;
  if (records.seal) {
    const auto& payload = PayloadRecord(records);
    if (!payload) return Corrupt("a seal but no data record");
    VTPM_ASSIGN_OR_RETURN(out.generation, VerifySeal(*records.seal, payload->value));
  }
  if (!encrypted) {
    VTPM_ASSIGN_OR_RETURN(out.blob, PlainData(records, "the state file"));
    return out;
  }
  const bool key_256 = (h.flags & kFlagEncrypted256BitKey) != 0;
  out.cipher = records.aead ? StateCipher::kAes256Gcm
                            : (key_256 ? StateCipher::kAes256Cbc : StateCipher::kAes128Cbc);
  if (key == nullptr) {
    out.locked = true;
    return out;
  }
  if (records.aead) {
    VTPM_ASSIGN_OR_RETURN(
        out.blob, OpenAead(*records.aead, *key, name, file.first(kBlobHeaderSize), out.generation));
  } else {
    VTPM_ASSIGN_OR_RETURN(out.blob, OpenCbc(records, *key, key_256, kTagEncryptedData,
                                            kTagIvecEncryptedData, "state file"));
  }
  return out;
}

Result<Bytes> DecodeStateBlob(ByteSpan blob, const StateKey* state_key,
                              const StateKey* migration_key, bool flagged_encrypted) {
  VTPM_ASSIGN_OR_RETURN(const Header h, ParseHeader(blob));
  const ByteSpan body = blob.subspan(h.hdrsize);
  if (body.empty()) return Bytes{};  // swtpm: "no blob" (TPMLIB_SetState(type, NULL, 0))
  if (h.version == 1) {
    if (h.flags & (kFlagEncrypted | kFlagMigrationEncrypted)) {
      return Fail(Errc::kUnsupported, "encrypted blobs in swtpm's version-1 format are not read");
    }
    return Bytes(body.begin(), body.end());
  }
  VTPM_ASSIGN_OR_RETURN(const Records records, ParseRecords(body, h.hdrsize));
  Bytes inner_bytes;
  Records inner;
  if (h.flags & kFlagMigrationEncrypted) {
    if (migration_key == nullptr) return KeyNeeded("with a migration key");
    VTPM_ASSIGN_OR_RETURN(
        inner_bytes,
        OpenCbc(records, *migration_key, (h.flags & kFlagMigration256BitKey) != 0,
                kTagEncryptedMigrationData, kTagIvecEncryptedMigrationData, "migration blob"));
    VTPM_ASSIGN_OR_RETURN(inner, ParseRecords(inner_bytes, 0));
  } else if (records[kTagMigrationData]) {
    if (records[kTagData]) {
      return Corrupt("it has both a MIGRATION_DATA and a top-level DATA record");
    }
    const Record& mig = *records[kTagMigrationData];
    VTPM_ASSIGN_OR_RETURN(inner, ParseRecords(mig.value, mig.offset + kTlvHeaderSize));
  } else {
    inner = records;  // the file form (swtpm itself would refuse it here)
  }
  if (!(flagged_encrypted || (h.flags & kFlagEncrypted))) {
    return PlainData(inner, "the state blob");
  }
  if (state_key == nullptr) return KeyNeeded("with a state key");
  return OpenCbc(inner, *state_key, (h.flags & kFlagEncrypted256BitKey) != 0, kTagEncryptedData,
                 kTagIvecEncryptedData, "state blob");
}

}  // namespace vtpm::state
