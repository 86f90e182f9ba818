#include "device/state_codec.h"

#include <fmt/format.h>

#include "device/regs.h"

namespace vtpm::device {

void StateReader::Reject(std::string message) {
  if (!error_) error_ = std::move(message);
}

std::optional<uint32_t> StateReader::Read(std::string_view field, size_t bytes) {
  if (error_) return std::nullopt;
  auto v = bytes == 1 ? in_.U8().map([](uint8_t b) { return uint32_t{b}; }) : in_.U32();
  if (!v) {
    Reject(fmt::format("truncated at {}", field));
    return std::nullopt;
  }
  return *v;
}

uint32_t StateReader::AtMost(std::string_view field, size_t bytes, uint32_t max) {
  auto v = Read(field, bytes);
  if (!v) return 0;
  if (*v > max) {
    Reject(fmt::format("{} is {} (at most {})", field, *v, max));
    return 0;
  }
  return *v;
}

uint32_t StateReader::Bits(std::string_view field, size_t bytes, uint32_t allowed) {
  auto v = Read(field, bytes);
  if (!v) return 0;
  if ((*v & ~allowed) != 0) {
    Reject(fmt::format("{} is 0x{:x} (undefined bits 0x{:x})", field, *v, *v & ~allowed));
    return 0;
  }
  return *v;
}

uint32_t StateReader::U32(std::string_view field) { return Read(field, 4).value_or(0); }

uint8_t StateReader::U8Max(std::string_view field, uint8_t max) {
  return static_cast<uint8_t>(AtMost(field, 1, max));
}

uint32_t StateReader::U32Max(std::string_view field, uint32_t max) { return AtMost(field, 4, max); }

uint8_t StateReader::Bits8(std::string_view field, uint8_t allowed) {
  return static_cast<uint8_t>(Bits(field, 1, allowed));
}

uint32_t StateReader::Bits32(std::string_view field, uint32_t allowed) {
  return Bits(field, 4, allowed);
}

uint8_t StateReader::Locality(std::string_view field, uint8_t count) {
  auto v = Read(field, 1);
  if (!v) return kNoLocality;
  if (*v >= count && *v != kNoLocality) {
    Reject(fmt::format("{} is {} (this state has {} localities)", field, *v, count));
    return kNoLocality;
  }
  return static_cast<uint8_t>(*v);
}

Bytes StateReader::Sized(std::string_view field, uint32_t max) {
  const uint32_t n = U32Max(field, max);
  if (error_) return {};
  auto bytes = in_.Take(n);
  if (!bytes) {
    Reject(fmt::format("truncated in {}", field));
    return {};
  }
  return Bytes(bytes->begin(), bytes->end());
}

void StateReader::Check(bool ok, std::string_view problem) {
  if (!ok) Reject(std::string(problem));
}

Status StateReader::Finish() const {
  if (error_) return Fail(Errc::kCorrupt, fmt::format("{}: {}", what_, *error_));
  if (!in_.empty()) {
    return Fail(Errc::kCorrupt, fmt::format("{}: {} bytes after the end", what_, in_.remaining()));
  }
  return Ok();
}

void AppendSized(ByteWriter& w, ByteSpan bytes) {
  w.U32(static_cast<uint32_t>(bytes.size()));
  w.Append(bytes);
}

}  // namespace vtpm::device
