#include "state/state_key.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "base/options.h"
#include "base/unique_fd.h"

namespace vtpm::state {
namespace {

// Key files and passphrases larger than this are refused: a hex key is under 70 bytes, and a
// passphrase (libvirt sends a secret's value) is not a document.
constexpr size_t kMaxKeyMaterial = 4096;
constexpr size_t kGcmNonce = 12, kGcmTag = 16;
constexpr size_t kHmacSize = 32;

// A buffer wiped when it goes away: everything that held key material.
struct Wiped {
  Bytes bytes;
  ~Wiped() {
    if (!bytes.empty()) OPENSSL_cleanse(bytes.data(), bytes.size());
  }
};

[[noreturn]] void CryptoAbort(const char* what) {
  // Only allocation failure or a broken OpenSSL gets here: never write state half-encrypted.
  std::fprintf(stderr, "vtpm: OpenSSL failed to %s (out of memory?)\n", what);
  std::abort();
}

struct CipherCtx {
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  CipherCtx() {
    if (ctx == nullptr) CryptoAbort("allocate a cipher context");
  }
  ~CipherCtx() { EVP_CIPHER_CTX_free(ctx); }
  CipherCtx(const CipherCtx&) = delete;
  CipherCtx& operator=(const CipherCtx&) = delete;
};

const EVP_CIPHER* CbcCipher(size_t key_size) {
  return key_size == 32 ? EVP_aes_256_cbc() : EVP_aes_128_cbc();
}

std::array<uint8_t, kHmacSize> Hmac(const StateKey& key, ByteSpan a, ByteSpan b) {
  Bytes input(a.begin(), a.end());  // ciphertext || IV: nothing secret
  input.insert(input.end(), b.begin(), b.end());
  std::array<uint8_t, kHmacSize> out{};
  unsigned int len = 0;
  if (HMAC(EVP_sha256(), key.bytes().data(), static_cast<int>(key.size()), input.data(),
           input.size(), out.data(), &len) == nullptr ||
      len != out.size()) {
    CryptoAbort("compute HMAC-SHA256");
  }
  return out;
}

void RandomBytes(uint8_t* p, size_t n) {
  if (RAND_bytes(p, static_cast<int>(n)) != 1) CryptoAbort("generate random bytes");
}

Result<Wiped> ReadMaterial(const KeySpec& spec, std::string_view option) {
  UniqueFd fd;
  std::string what;
  if (spec.fd) {
    fd.reset(*spec.fd);  // ours now: closed after reading, whatever happens
    what = fmt::format("fd {}", *spec.fd);
  } else {
    fd.reset(open(spec.path->c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
    what = fmt::format("'{}'", *spec.path);
    if (!fd.valid()) return SysFail(fmt::format("{}: cannot open {}", option, what), errno);
  }
  Wiped m;
  m.bytes.resize(kMaxKeyMaterial + 1);
  size_t got = 0;
  while (got < m.bytes.size()) {
    const ssize_t n = read(fd.get(), m.bytes.data() + got, m.bytes.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return SysFail(fmt::format("{}: cannot read {}", option, what), errno);
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  if (got > kMaxKeyMaterial) {
    return Fail(Errc::kInvalidArgument, fmt::format("{}: {} holds more than {} bytes; a key or "
                                                    "passphrase is expected",
                                                    option, what, kMaxKeyMaterial));
  }
  OPENSSL_cleanse(m.bytes.data() + got, m.bytes.size() - got);
  m.bytes.resize(got);
  if (spec.remove && spec.path && unlink(spec.path->c_str()) != 0) {
    return SysFail(fmt::format("{}: cannot remove {} (remove=true)", option, what), errno);
  }
  return m;
}

int HexDigit(uint8_t c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

Result<Wiped> ParseHexKey(ByteSpan text, size_t want, std::string_view option) {
  size_t i = text.size() >= 2 && text[0] == '0' && (text[1] == 'x' || text[1] == 'X') ? 2 : 0;
  Wiped key;
  while (i < text.size() && !std::isspace(text[i])) {
    const int hi = HexDigit(text[i]);
    const int lo = i + 1 < text.size() ? HexDigit(text[i + 1]) : -1;
    if (hi < 0 || lo < 0 || key.bytes.size() == 32) {
      return Fail(Errc::kInvalidArgument,
                  fmt::format("{}: the key file is not 32 or 64 hex digits (optionally after "
                              "0x, then whitespace or the end)",
                              option));
    }
    key.bytes.push_back(static_cast<uint8_t>(hi << 4 | lo));
    i += 2;
  }
  if (key.bytes.size() != want) {
    return Fail(Errc::kInvalidArgument,
                fmt::format("{}: the key has {} hex digits but the cipher needs {} ({} bits); "
                            "set mode= to match the key",
                            option, 2 * key.bytes.size(), 2 * want, 8 * want));
  }
  return key;
}

Result<Wiped> DeriveFromPassphrase(ByteSpan pass, const KeySpec& spec) {
  Wiped key;
  key.bytes.resize(CipherKeySize(spec.cipher));
  if (spec.pbkdf2) {
    static constexpr char kSalt[] = "swtpm";
    if (PKCS5_PBKDF2_HMAC(reinterpret_cast<const char*>(pass.data()), static_cast<int>(pass.size()),
                          reinterpret_cast<const unsigned char*>(kSalt), sizeof(kSalt) - 1, 1000,
                          EVP_sha512(), static_cast<int>(key.bytes.size()),
                          key.bytes.data()) != 1) {
      CryptoAbort("derive a key with PBKDF2");
    }
    return key;
  }
  std::array<uint8_t, 64> digest{};
  unsigned int len = 0;
  if (EVP_Digest(pass.data(), pass.size(), digest.data(), &len, EVP_sha512(), nullptr) != 1) {
    CryptoAbort("compute SHA-512");
  }
  std::memcpy(key.bytes.data(), digest.data(), key.bytes.size());
  OPENSSL_cleanse(digest.data(), digest.size());
  return key;
}

Status ApplyKeyParam(KeySpec& spec, const KeyValue& kv, std::string_view option) {
  auto bad = [&](std::string_view allowed) {
    return Fail(Errc::kInvalidArgument, fmt::format("{}: {}={} is not one of {}", option, kv.key,
                                                    kv.value.value_or(""), allowed));
  };
  const std::string v = kv.value.value_or("");
  if (kv.key == "format") {
    if (v != "hex" && v != "binary") return bad("hex, binary");
    spec.binary = v == "binary";
  } else if (kv.key == "mode") {
    auto c = CipherFromName(v);
    if (!c) return bad("aes-cbc, aes-256-cbc, aes-256-gcm");
    spec.cipher = *c;
  } else if (kv.key == "kdf") {
    if (v != "pbkdf2" && v != "sha512") return bad("pbkdf2, sha512");
    spec.pbkdf2 = v == "pbkdf2";
  } else if (kv.key == "remove") {
    if (kv.value && v != "true" && v != "false") return bad("true, false");
    spec.remove = !kv.value || v == "true";
  } else {
    return UnknownOption(option, kv);
  }
  return Ok();
}

}  // namespace

std::string_view CipherName(StateCipher cipher) {
  switch (cipher) {
    case StateCipher::kAes128Cbc:
      return "aes-cbc";
    case StateCipher::kAes256Cbc:
      return "aes-256-cbc";
    case StateCipher::kAes256Gcm:
      return "aes-256-gcm";
  }
  return "?";
}

size_t CipherKeySize(StateCipher cipher) { return cipher == StateCipher::kAes128Cbc ? 16 : 32; }

std::optional<StateCipher> CipherFromName(std::string_view name) {
  if (name == "aes-cbc" || name == "aes-128-cbc") return StateCipher::kAes128Cbc;
  if (name == "aes-256-cbc") return StateCipher::kAes256Cbc;
  if (name == "aes-256-gcm") return StateCipher::kAes256Gcm;
  return std::nullopt;
}

Result<StateKey> StateKey::FromBytes(ByteSpan key, StateCipher cipher) {
  if (key.size() != CipherKeySize(cipher)) {
    return Fail(Errc::kInvalidArgument,
                fmt::format("a {}-byte key does not fit {} (needs {} bytes)", key.size(),
                            CipherName(cipher), CipherKeySize(cipher)));
  }
  StateKey k;
  std::memcpy(k.key_.data(), key.data(), key.size());
  k.size_ = key.size();
  k.cipher_ = cipher;
  return k;
}

StateKey::~StateKey() { OPENSSL_cleanse(key_.data(), key_.size()); }

StateKey::StateKey(StateKey&& other) noexcept
    : key_(other.key_), size_(other.size_), cipher_(other.cipher_) {
  OPENSSL_cleanse(other.key_.data(), other.key_.size());
  other.size_ = 0;
}

StateKey& StateKey::operator=(StateKey&& other) noexcept {
  if (this != &other) {
    key_ = other.key_;
    size_ = other.size_;
    cipher_ = other.cipher_;
    OPENSSL_cleanse(other.key_.data(), other.key_.size());
    other.size_ = 0;
  }
  return *this;
}

Result<KeySpec> ParseKeyOption(std::string_view value, std::string_view option) {
  KeySpec spec;
  int sources = 0;
  for (const KeyValue& kv : SplitOptions(value)) {
    const bool pwd = kv.key == "pwdfile" || kv.key == "pwdfd";
    if (pwd || kv.key == "file" || kv.key == "fd") {
      if (!kv.value || kv.value->empty()) {
        return Fail(Errc::kInvalidArgument, fmt::format("{}: {}= needs a value", option, kv.key));
      }
      ++sources;
      spec.kind = pwd ? KeySpec::Kind::kPassphrase : KeySpec::Kind::kKey;
      if (kv.key == "fd" || kv.key == "pwdfd") {
        VTPM_ASSIGN_OR_RETURN(const uint64_t fd, ParseNumber(option, kv, 10, 1 << 20));
        spec.fd = static_cast<int>(fd);
      } else {
        spec.path = *kv.value;
      }
      continue;
    }
    VTPM_RETURN_IF_ERROR(ApplyKeyParam(spec, kv, option));
  }
  if (sources != 1) {
    return Fail(Errc::kInvalidArgument,
                fmt::format("{}: give exactly one of file=, fd=, pwdfile=, pwdfd=", option));
  }
  if (spec.kind == KeySpec::Kind::kPassphrase && spec.binary) {
    return Fail(Errc::kInvalidArgument,
                fmt::format("{}: format= applies to key files, not passphrases", option));
  }
  return spec;
}

Result<StateKey> LoadKey(const KeySpec& spec, std::string_view option) {
  VTPM_ASSIGN_OR_RETURN(const Wiped material, ReadMaterial(spec, option));
  const size_t want = CipherKeySize(spec.cipher);
  if (spec.kind == KeySpec::Kind::kPassphrase) {
    VTPM_ASSIGN_OR_RETURN(const Wiped key, DeriveFromPassphrase(material.bytes, spec));
    return StateKey::FromBytes(key.bytes, spec.cipher);
  }
  if (spec.binary) {
    if (material.bytes.size() != want) {
      return Fail(Errc::kInvalidArgument,
                  fmt::format("{}: the binary key has {} bytes but {} needs {}", option,
                              material.bytes.size(), CipherName(spec.cipher), want));
    }
    return StateKey::FromBytes(material.bytes, spec.cipher);
  }
  VTPM_ASSIGN_OR_RETURN(const Wiped key, ParseHexKey(material.bytes, want, option));
  return StateKey::FromBytes(key.bytes, spec.cipher);
}

Result<SharedStateKey> LoadKeyOption(std::string_view value, std::string_view option) {
  VTPM_ASSIGN_OR_RETURN(const KeySpec spec, ParseKeyOption(value, option));
  VTPM_ASSIGN_OR_RETURN(StateKey key, LoadKey(spec, option));
  return std::make_shared<const StateKey>(std::move(key));
}

CbcSealed CbcEncrypt(const StateKey& key, ByteSpan plain) {
  const size_t block = key.size();  // swtpm pads to the key size, not the AES block
  const size_t pad = block - plain.size() % block;
  Wiped padded;
  padded.bytes.reserve(plain.size() + pad);
  padded.bytes.assign(plain.begin(), plain.end());
  padded.bytes.insert(padded.bytes.end(), pad, static_cast<uint8_t>(pad));
  CbcSealed out;
  out.iv.resize(key.size());
  RandomBytes(out.iv.data(), out.iv.size());
  out.ciphertext.resize(padded.bytes.size());
  CipherCtx c;
  int n1 = 0, n2 = 0;
  if (EVP_EncryptInit_ex(c.ctx, CbcCipher(key.size()), nullptr, key.bytes().data(),
                         out.iv.data()) != 1 ||
      EVP_CIPHER_CTX_set_padding(c.ctx, 0) != 1 ||
      EVP_EncryptUpdate(c.ctx, out.ciphertext.data(), &n1, padded.bytes.data(),
                        static_cast<int>(padded.bytes.size())) != 1 ||
      EVP_EncryptFinal_ex(c.ctx, out.ciphertext.data() + n1, &n2) != 1 ||
      static_cast<size_t>(n1 + n2) != out.ciphertext.size()) {
    CryptoAbort("encrypt with AES-CBC");
  }
  const auto mac = Hmac(key, out.ciphertext, out.iv);
  out.hmac.assign(mac.begin(), mac.end());
  return out;
}

Result<Bytes> CbcDecrypt(const StateKey& key, ByteSpan ciphertext, ByteSpan hmac, ByteSpan iv) {
  const size_t block = key.size();
  if (hmac.size() < kHmacSize || ciphertext.empty() || ciphertext.size() % block != 0 ||
      iv.size() != key.size()) {
    return Fail(Errc::kCorrupt,
                fmt::format("the encrypted records do not fit a {}-bit key ({} bytes of "
                            "ciphertext, {} of HMAC, {} of IV)",
                            8 * key.size(), ciphertext.size(), hmac.size(), iv.size()));
  }
  const auto mac = Hmac(key, ciphertext, iv);
  if (CRYPTO_memcmp(mac.data(), hmac.data(), kHmacSize) != 0) {
    return Fail(Errc::kWrongKey, "its HMAC does not verify under the given key");
  }
  Wiped plain;
  plain.bytes.resize(ciphertext.size());
  CipherCtx c;
  int n1 = 0, n2 = 0;
  if (EVP_DecryptInit_ex(c.ctx, CbcCipher(key.size()), nullptr, key.bytes().data(), iv.data()) !=
          1 ||
      EVP_CIPHER_CTX_set_padding(c.ctx, 0) != 1 ||
      EVP_DecryptUpdate(c.ctx, plain.bytes.data(), &n1, ciphertext.data(),
                        static_cast<int>(ciphertext.size())) != 1 ||
      EVP_DecryptFinal_ex(c.ctx, plain.bytes.data() + n1, &n2) != 1) {
    CryptoAbort("decrypt with AES-CBC");
  }
  const size_t pad = plain.bytes.back();
  if (pad == 0 || pad > block) return Fail(Errc::kCorrupt, "the decrypted data has bad padding");
  for (size_t i = plain.bytes.size() - pad; i < plain.bytes.size(); ++i) {
    if (plain.bytes[i] != pad) return Fail(Errc::kCorrupt, "the decrypted data has bad padding");
  }
  Bytes out(plain.bytes.begin(), plain.bytes.end() - static_cast<ptrdiff_t>(pad));
  return out;
}

Bytes GcmSeal(const StateKey& key, ByteSpan plain, ByteSpan aad) {
  Bytes out(kGcmNonce + plain.size() + kGcmTag);
  RandomBytes(out.data(), kGcmNonce);
  CipherCtx c;
  int n = 0, n2 = 0;
  if (EVP_EncryptInit_ex(c.ctx, EVP_aes_256_gcm(), nullptr, key.bytes().data(), out.data()) != 1 ||
      EVP_EncryptUpdate(c.ctx, nullptr, &n, aad.data(), static_cast<int>(aad.size())) != 1 ||
      EVP_EncryptUpdate(c.ctx, out.data() + kGcmNonce, &n, plain.data(),
                        static_cast<int>(plain.size())) != 1 ||
      EVP_EncryptFinal_ex(c.ctx, out.data() + kGcmNonce + n, &n2) != 1 ||
      EVP_CIPHER_CTX_ctrl(c.ctx, EVP_CTRL_GCM_GET_TAG, kGcmTag,
                          out.data() + kGcmNonce + plain.size()) != 1) {
    CryptoAbort("encrypt with AES-256-GCM");
  }
  return out;
}

Result<Bytes> GcmOpen(const StateKey& key, ByteSpan sealed, ByteSpan aad) {
  if (sealed.size() < kGcmNonce + kGcmTag) {
    return Fail(Errc::kCorrupt,
                fmt::format("{} bytes is too short for AES-256-GCM data", sealed.size()));
  }
  const size_t len = sealed.size() - kGcmNonce - kGcmTag;
  Bytes plain(len);
  CipherCtx c;
  int n = 0, n2 = 0;
  Bytes tag(sealed.end() - kGcmTag, sealed.end());
  if (EVP_DecryptInit_ex(c.ctx, EVP_aes_256_gcm(), nullptr, key.bytes().data(), sealed.data()) !=
          1 ||
      EVP_DecryptUpdate(c.ctx, nullptr, &n, aad.data(), static_cast<int>(aad.size())) != 1 ||
      EVP_DecryptUpdate(c.ctx, plain.data(), &n, sealed.data() + kGcmNonce,
                        static_cast<int>(len)) != 1 ||
      EVP_CIPHER_CTX_ctrl(c.ctx, EVP_CTRL_GCM_SET_TAG, kGcmTag, tag.data()) != 1) {
    CryptoAbort("decrypt with AES-256-GCM");
  }
  if (EVP_DecryptFinal_ex(c.ctx, plain.data() + n, &n2) != 1) {
    OPENSSL_cleanse(plain.data(), plain.size());
    return Fail(Errc::kWrongKey,
                "its AES-256-GCM tag does not verify: a different key, or the file was changed, "
                "moved between blobs or instances");
  }
  return plain;
}

}  // namespace vtpm::state
