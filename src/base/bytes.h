// Bounds-checked big-endian readers and writers for wire formats.
//
// ByteReader is a cursor over borrowed bytes: every read checks the remaining length first and
// the cursor moves only on success (tpm2-tss MU style), so a failed parse leaves it where it was.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "base/result.h"

namespace vtpm {

using Bytes = std::vector<uint8_t>;
using ByteSpan = std::span<const uint8_t>;

inline uint16_t LoadBe16(const uint8_t* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }
inline uint32_t LoadBe32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}
inline void StoreBe32(uint8_t* p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v >> 24);
  p[1] = static_cast<uint8_t>(v >> 16);
  p[2] = static_cast<uint8_t>(v >> 8);
  p[3] = static_cast<uint8_t>(v);
}

// Appends |v| big-endian to |out|.
inline void AppendBe32(Bytes& out, uint32_t v) {
  uint8_t b[4];
  StoreBe32(b, v);
  out.insert(out.end(), b, b + 4);
}

class ByteReader {
 public:
  explicit ByteReader(ByteSpan in) : in_(in) {}

  size_t remaining() const { return in_.size() - pos_; }
  size_t position() const { return pos_; }
  bool empty() const { return remaining() == 0; }

  Result<uint8_t> U8();
  Result<uint16_t> U16();
  Result<uint32_t> U32();
  Result<uint64_t> U64();
  Result<ByteSpan> Take(size_t n);
  ByteSpan Rest();

 private:
  Status Need(size_t n) const;
  ByteSpan in_;
  size_t pos_ = 0;
};

class ByteWriter {
 public:
  ByteWriter() = default;
  void U8(uint8_t v) { out_.push_back(v); }
  void U16(uint16_t v);
  void U32(uint32_t v);
  void U64(uint64_t v);
  void Append(ByteSpan b) { out_.insert(out_.end(), b.begin(), b.end()); }
  size_t size() const { return out_.size(); }
  // Overwrites four bytes at |pos| (e.g. a size field filled in afterwards).
  void PatchU32(size_t pos, uint32_t v);
  const Bytes& bytes() const { return out_; }
  Bytes Take() && { return std::move(out_); }

 private:
  Bytes out_;
};

// "0a1b..." lowercase, for logs and test diagnostics.
std::string ToHex(ByteSpan b);
// Parses hex (whitespace ignored); fails on odd length or a non-hex character.
Result<Bytes> FromHex(std::string_view hex);

}  // namespace vtpm
