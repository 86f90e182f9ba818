// swtpm's state blob format: a 10-byte header followed by tag-length-value records.
//
// Every state file swtpm's dir backend writes (tpm2-00.permall, ...) and every blob that crosses
// swtpm's control channel (CMD_GET_STATEBLOB / CMD_SET_STATEBLOB) is framed like this, so the
// codec here is what lets swtpm open our state directories, us open theirs, and QEMU migrate
// between the two. All integers are big-endian.
//
//   header:  u8 version (2) | u8 min_version (1) | u16 hdrsize (10) | u16 flags | u32 totlen
//   records: u16 tag | u32 length | length bytes          (repeated up to totlen)
//
// totlen counts everything including the header. Layouts swtpm 0.7.1 produces (verified live
// against the Debian 12 packages, swtpm 0.7.1 + libtpms 0.9.2, fresh TPM 2 permall of 1299 B):
//
//   file, unencrypted (tpm2-00.permall, 1315 B):
//     02 01 000a 0000 00000523 | 0001 00000513 | <1299 bytes of libtpms PERSISTENT_ALL>
//   CMD_GET_STATEBLOB(permanent) / `swtpm_ioctl --save permanent F` (1321 B, "migration form"):
//     02 01 000a 0004 00000529 | 0004 00000519 | 0001 00000513 | <the same 1299 bytes>
//
// i.e. the migration form wraps the file's record list in one MIGRATION_DATA record and sets the
// MIGRATION_DATA header flag.
//
// Encryption (state_key.h has the keys and primitives). swtpm's (verified against swtpm 0.7.1,
// tests/integration/test_state_encryption.sh): the DATA record is replaced by
//   ENCRYPTED_DATA(AES-CBC ciphertext) | HMAC(HMAC-SHA256 over ciphertext || IV) |
//   IVEC_ENCRYPTED_DATA(IV, as long as the key)
// with header flag ENCRYPTED (| ENCRYPTED_256BIT_KEY for a 256-bit key). In a migration blob the
// MIGRATION_DATA record is replaced the same way by ENCRYPTED_MIGRATION_DATA | HMAC |
// IVEC_ENCRYPTED_MIGRATION_DATA (flags MIGRATION_ENCRYPTED | MIGRATION_256BIT_KEY), over the
// inner record list, which holds DATA or the state-key records above.
//
// vtpm's AEAD mode (aes-256-gcm, not readable by swtpm): header flags ENCRYPTED |
// ENCRYPTED_256BIT_KEY (so swtpm refuses the file instead of misreading it) and one record
//   VTPM_AEAD (tag 0x7602): u8 version (1) | u64 generation | nonce(12) | ciphertext | tag(16)
// whose additional data is "vtpm-state-aead-v1" || the blob's name (permall, ...) || u64
// generation || the 10-byte header. A file moved to another blob's name, given another
// generation number, or re-headed fails to open; a file moved to another instance fails unless
// that instance has the same key. An older generation of the same file is still a valid
// ciphertext: that rollback is caught only by an anchor outside the file (docs/ARCHITECTURE.md).
//
// How swtpm reads records (src/swtpm/tlv.c, tlv_data_find_tag(); swtpm_nvstore.c): it searches
// the record list for the one tag it wants and SKIPS every other record, so unknown tags are
// ignored (verified: an unknown tag 99 before DATA in a permall file, and unknown tags both
// around and inside MIGRATION_DATA on CMD_SET_STATEBLOB, are accepted by swtpm 0.7.1). Anything
// after the wanted record is never looked at, and the first of two equal tags wins. We ignore
// unknown tags too (so a future writer may add records), but are stricter about structure: the
// records must exactly fill totlen, and a known tag may appear only once, because a blob that
// is torn or ambiguous should fail here with a clear message, not later inside libtpms.
//
// vtpm's seal record. The state files vtpm writes carry one more record after DATA, which swtpm
// skips like any unknown tag (verified against swtpm 0.7.1 in tests/unit/state/swtpm_compat_test
// and tests/integration/test_state_compat.sh), so the files stay swtpm's format:
//
//   file, as vtpm writes it:  header | DATA(libtpms blob) | SEAL (tag 0x7601, 44 bytes):
//     u8 seal_version (1) | u8 digest_alg (1 = SHA-256) | u16 reserved (0) | u64 generation |
//     u8[32] SHA-256("vtpm-state-seal-v1" || u64 generation || the payload record's value)
//   where the payload record is DATA, or ENCRYPTED_DATA / VTPM_AEAD in an encrypted file: the
//   seal is checked without the key, so damage is told apart from a wrong key.
//
// The seal detects what the framing cannot: a bit flipped anywhere in the blob, a block of
// zeroes, a file cut at a record boundary and re-framed. It is a checksum against storage damage,
// not an authenticator (anyone who can write the directory can write a matching seal; state
// encryption is the answer to that). Files without a seal (written by swtpm, or by vtpm before
// seals) are read as before: only their framing is checked. The generation counts the writes of
// one blob in one directory; `vtpm state show` prints it so an operator sees how far apart the
// newest file and its .bak are.
//
// Header checks, compared with swtpm 0.7.1's SWTPM_NVRAM_CheckHeader():
//   * totlen must equal the blob size (same as swtpm);
//   * min_version > 2 is refused: a newer writer said we cannot read it (same as swtpm);
//   * hdrsize must be >= 10 and <= size; bytes between 10 and hdrsize are a header extension
//     we skip. swtpm 0.7.1 insists on hdrsize == 10 ("bad header size: 12 != 10", verified), so
//     we are more lenient there; nothing writes hdrsize != 10 today.
//   * version 1 (swtpm before the TLV format, 2018) means "the payload follows the header
//     unframed"; swtpm still reads it and so do we. version >= 2 means records. version 0, or
//     min_version > version, is refused as corrupt.
#pragma once

#include <cstdint>
#include <optional>

#include "base/bytes.h"
#include "base/result.h"
#include "state/state_key.h"

namespace vtpm::state {

inline constexpr uint8_t kBlobVersion = 2;
inline constexpr uint8_t kBlobMinVersion = 1;
inline constexpr uint16_t kBlobHeaderSize = 10;
inline constexpr size_t kTlvHeaderSize = 6;
// Largest libtpms blob the encoders accept: big enough for any TPM state (a TPM 2 permall is a
// few KiB, its NV image at most ~170 KiB) and far below the 4 GiB the u32 totlen could express.
inline constexpr size_t kMaxBlobPayload = 16 * 1024 * 1024 - 128;

// Record tags.
enum BlobTag : uint16_t {
  kTagData = 1,
  kTagEncryptedData = 2,
  kTagHmac = 3,
  kTagMigrationData = 4,
  kTagEncryptedMigrationData = 5,
  kTagIvecEncryptedData = 6,
  kTagIvecEncryptedMigrationData = 7,
  kTagVtpmSeal = 0x7601,  // ours (see above); swtpm ignores it
  kTagVtpmAead = 0x7602,  // ours: the AEAD mode's record
};

inline constexpr size_t kSealSize = 44;

// Header flags.
enum BlobFlag : uint16_t {
  kFlagEncrypted = 0x01,
  kFlagMigrationEncrypted = 0x02,
  kFlagMigrationData = 0x04,
  kFlagEncrypted256BitKey = 0x08,
  kFlagMigration256BitKey = 0x10,
};

// Header + DATA(libtpms_blob): byte for byte what swtpm 0.7.1 writes for an unencrypted state
// file. Precondition: libtpms_blob.size() <= kMaxBlobPayload (aborts otherwise; callers that
// take sizes from outside check first).
Bytes EncodeFileBlob(ByteSpan libtpms_blob);

// Header + DATA(libtpms_blob) + SEAL(generation): what DirStore writes. With |key|, the
// encrypted form of |key|'s cipher (and |name|, the blob's name, bound into an AEAD file).
// Same precondition.
Bytes EncodeSealedFileBlob(ByteSpan libtpms_blob, uint64_t generation,
                           const StateKey* key = nullptr, std::string_view name = {});

struct StateFile {
  Bytes blob;                          // the libtpms blob (the DATA record), decrypted
  std::optional<uint64_t> generation;  // from the seal; nullopt: the file has none
  std::optional<StateCipher> cipher;   // how the file was encrypted; nullopt: plain
  bool locked = false;  // encrypted and no key was given: |blob| is empty, the seal checked
};

// A state file in swtpm's format, its seal verified when it has one. Errors: kCorrupt for any
// header or record inconsistency, a seal that does not match (damage after the write), and a
// migration-form blob (which swtpm does not accept as a file either); kUnsupported for a blob
// that needs a newer format version; kWrongKey for an encrypted file that |key| does not open
// (a different key or cipher; the seal, when there is one, said the file is intact). An
// encrypted file decodes without a key to a StateFile with |locked| set. A plain file decodes
// whatever |key| is (turning encryption on for existing state). A seal of an unknown version is
// ignored (a newer vtpm wrote it): the file is then checked like an unsealed one.
Result<StateFile> DecodeStateFile(ByteSpan file, const StateKey* key = nullptr,
                                  std::string_view name = {});
// DecodeStateFile(file).blob; kWrongKey for an encrypted file.
Result<Bytes> DecodeFileBlob(ByteSpan file);

// Header(flags = MIGRATION_DATA) + MIGRATION_DATA(DATA(libtpms_blob)): what swtpm 0.7.1 answers to
// CMD_GET_STATEBLOB when no migration key and no state key are configured. With |state_key| (a
// CBC key: the caller did not ask for the decrypted blob) the inner records are its encryption;
// with |migration_key| the outer record is encrypted with it. Same precondition as
// EncodeFileBlob.
Bytes EncodeMigrationBlob(ByteSpan libtpms_blob, const StateKey* state_key = nullptr,
                          const StateKey* migration_key = nullptr);

// The libtpms blob inside a blob received with CMD_SET_STATEBLOB. Accepts the migration form and,
// more leniently than swtpm 0.7.1 (which answers TPM_FAIL, verified), the file form. A blob
// that is only a header (no records) decodes to an empty result: swtpm treats it as "no blob"
// (TPMLIB_SetState(type, NULL, 0)), and callers should too. Encrypted layers are opened with
// |migration_key| / |state_key|; a missing key is Errc::kNotFound (swtpm: TPM_KEYNOTFOUND), one
// that does not open the blob Errc::kWrongKey. |flagged_encrypted|: the request's state_flags
// said ENCRYPTED (swtpm honours it like the header flag). Other errors as for DecodeFileBlob.
Result<Bytes> DecodeStateBlob(ByteSpan blob, const StateKey* state_key = nullptr,
                              const StateKey* migration_key = nullptr,
                              bool flagged_encrypted = false);

}  // namespace vtpm::state
