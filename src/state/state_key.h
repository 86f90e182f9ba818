// State encryption keys: swtpm's --key / --migration-key (and swtpm_setup's --keyfile[-fd],
// --pwdfile[-fd], --cipher), the key material they name, and the ciphers the blob codec uses.
//
// Option syntax (swtpm 0.7.1's, plus our own AEAD mode):
//   file=PATH|fd=N[,format=hex|binary][,mode=CIPHER][,remove[=true|false]]
//   pwdfile=PATH|pwdfd=N[,mode=CIPHER][,kdf=pbkdf2|sha512][,remove[=true|false]]
//   CIPHER: aes-cbc (= aes-128-cbc, the default), aes-256-cbc, aes-256-gcm (vtpm only)
//
// Key material, as swtpm reads it (checked against Debian's swtpm 0.7.1 in
// tests/integration/test_state_encryption.sh):
//   * format=hex (the default): 32 or 64 hex digits, optionally after "0x", then whitespace or
//     the end; the digit count must match the cipher's key size.
//   * format=binary: exactly the key's bytes (16 or 32).
//   * a passphrase is the file's (or fd's) bytes as they are -- a trailing newline included --
//     turned into a key by kdf=pbkdf2 (the default: PBKDF2-HMAC-SHA512, salt "swtpm", 1000
//     iterations) or kdf=sha512 (the first bytes of SHA-512(passphrase)).
// An fd is read to its end and closed; remove=true unlinks the file after reading it. The key
// lives in a StateKey, whose bytes are wiped (OPENSSL_cleanse) when it goes away; intermediate
// buffers are wiped too. Nothing here logs key material.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "base/bytes.h"
#include "base/result.h"

namespace vtpm::state {

enum class StateCipher {
  kAes128Cbc,  // swtpm's "aes-cbc": AES-128-CBC + HMAC-SHA256 (encrypt-then-MAC)
  kAes256Cbc,  // swtpm's "aes-256-cbc"
  kAes256Gcm,  // vtpm's own AEAD mode (blob.h): not readable by swtpm
};

// "aes-cbc", "aes-256-cbc", "aes-256-gcm".
std::string_view CipherName(StateCipher cipher);
size_t CipherKeySize(StateCipher cipher);
// swtpm's names (aes-cbc, aes-128-cbc, aes-256-cbc) and ours (aes-256-gcm).
std::optional<StateCipher> CipherFromName(std::string_view name);

// A symmetric key of 16 or 32 bytes and the cipher it is for. Move-only; wiped on destruction.
class StateKey {
 public:
  // Errc::kInvalidArgument when |key|'s size does not fit |cipher|.
  static Result<StateKey> FromBytes(ByteSpan key, StateCipher cipher);
  ~StateKey();
  StateKey(StateKey&& other) noexcept;
  StateKey& operator=(StateKey&& other) noexcept;
  StateKey(const StateKey&) = delete;
  StateKey& operator=(const StateKey&) = delete;

  StateCipher cipher() const { return cipher_; }
  ByteSpan bytes() const { return {key_.data(), size_}; }
  size_t size() const { return size_; }

 private:
  StateKey() = default;
  std::array<uint8_t, 32> key_{};
  size_t size_ = 0;
  StateCipher cipher_ = StateCipher::kAes128Cbc;
};

using SharedStateKey = std::shared_ptr<const StateKey>;

// Where a key comes from: one parsed --key / --migration-key value.
struct KeySpec {
  enum class Kind { kKey, kPassphrase };
  Kind kind = Kind::kKey;
  std::optional<std::string> path;  // file= / pwdfile=
  std::optional<int> fd;            // fd= / pwdfd=
  bool binary = false;              // format=binary
  StateCipher cipher = StateCipher::kAes128Cbc;
  bool pbkdf2 = true;  // kdf=pbkdf2 (default) or sha512
  bool remove = false;
};

// Parses |value| (the text after --key). |option| names the option in errors.
Result<KeySpec> ParseKeyOption(std::string_view value, std::string_view option);

// Reads the key material |spec| names (closing its fd, removing its file if asked) and derives
// the key. Errors name |option| and the file or fd, never the material.
Result<StateKey> LoadKey(const KeySpec& spec, std::string_view option);

// ParseKeyOption + LoadKey, shared for the daemon's and setup's options.
Result<SharedStateKey> LoadKeyOption(std::string_view value, std::string_view option);

// The symmetric primitives the blob codec builds on (OpenSSL). swtpm's CBC mode: the plaintext
// padded to a multiple of the KEY size (16 or 32) with bytes equal to the pad length; an IV as
// long as the key, of which AES-CBC uses the first 16 bytes; HMAC-SHA256 under the same key over
// ciphertext || IV.
struct CbcSealed {
  Bytes ciphertext, hmac, iv;
};
CbcSealed CbcEncrypt(const StateKey& key, ByteSpan plain);
// Errc::kCorrupt with |what| when the pieces are malformed; kPermissionDenied-like
// Errc::kWrongKey when the HMAC does not verify.
Result<Bytes> CbcDecrypt(const StateKey& key, ByteSpan ciphertext, ByteSpan hmac, ByteSpan iv);

// AES-256-GCM with a 12-byte random nonce and a 16-byte tag; |aad| is authenticated, not
// encrypted. The output is nonce || ciphertext || tag.
Bytes GcmSeal(const StateKey& key, ByteSpan plain, ByteSpan aad);
// Errc::kWrongKey when the tag does not verify (wrong key, or data/aad changed).
Result<Bytes> GcmOpen(const StateKey& key, ByteSpan sealed, ByteSpan aad);

}  // namespace vtpm::state
