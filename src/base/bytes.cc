#include "base/bytes.h"

#include <fmt/format.h>

namespace vtpm {

Status ByteReader::Need(size_t n) const {
  if (n > remaining()) {
    return Fail(
        Errc::kInvalidArgument,
        fmt::format("truncated input: need {} bytes at offset {}, have {}", n, pos_, remaining()));
  }
  return Ok();
}

Result<uint8_t> ByteReader::U8() {
  VTPM_RETURN_IF_ERROR(Need(1));
  return in_[pos_++];
}

Result<uint16_t> ByteReader::U16() {
  VTPM_RETURN_IF_ERROR(Need(2));
  uint16_t v = LoadBe16(in_.data() + pos_);
  pos_ += 2;
  return v;
}

Result<uint32_t> ByteReader::U32() {
  VTPM_RETURN_IF_ERROR(Need(4));
  uint32_t v = LoadBe32(in_.data() + pos_);
  pos_ += 4;
  return v;
}

Result<uint64_t> ByteReader::U64() {
  VTPM_RETURN_IF_ERROR(Need(8));
  uint64_t v = (uint64_t{LoadBe32(in_.data() + pos_)} << 32) | LoadBe32(in_.data() + pos_ + 4);
  pos_ += 8;
  return v;
}

Result<ByteSpan> ByteReader::Take(size_t n) {
  VTPM_RETURN_IF_ERROR(Need(n));
  ByteSpan s = in_.subspan(pos_, n);
  pos_ += n;
  return s;
}

ByteSpan ByteReader::Rest() {
  ByteSpan s = in_.subspan(pos_);
  pos_ = in_.size();
  return s;
}

void ByteWriter::U16(uint16_t v) {
  out_.push_back(static_cast<uint8_t>(v >> 8));
  out_.push_back(static_cast<uint8_t>(v));
}

void ByteWriter::U32(uint32_t v) {
  uint8_t b[4];
  StoreBe32(b, v);
  out_.insert(out_.end(), b, b + 4);
}

void ByteWriter::U64(uint64_t v) {
  U32(static_cast<uint32_t>(v >> 32));
  U32(static_cast<uint32_t>(v));
}

void ByteWriter::PatchU32(size_t pos, uint32_t v) {
  if (pos + 4 <= out_.size()) StoreBe32(out_.data() + pos, v);
}

std::string ToHex(ByteSpan b) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string s;
  s.reserve(b.size() * 2);
  for (uint8_t c : b) {
    s.push_back(kDigits[c >> 4]);
    s.push_back(kDigits[c & 0xf]);
  }
  return s;
}

Result<Bytes> FromHex(std::string_view hex) {
  Bytes out;
  int hi = -1;
  for (char c : hex) {
    int v;
    if (c >= '0' && c <= '9') {
      v = c - '0';
    } else if (c >= 'a' && c <= 'f') {
      v = c - 'a' + 10;
    } else if (c >= 'A' && c <= 'F') {
      v = c - 'A' + 10;
    } else if (c == ' ' || c == '\n' || c == '\t' || c == '|') {
      continue;
    } else {
      return Fail(Errc::kInvalidArgument, fmt::format("not a hex digit: '{}'", c));
    }
    if (hi < 0) {
      hi = v;
    } else {
      out.push_back(static_cast<uint8_t>((hi << 4) | v));
      hi = -1;
    }
  }
  if (hi >= 0) return Fail(Errc::kInvalidArgument, "odd number of hex digits");
  return out;
}

}  // namespace vtpm
