#include "base/crc32.h"

#include <array>

namespace vtpm {

namespace {

constexpr std::array<uint32_t, 256> kCrc32Table = [] {
  std::array<uint32_t, 256> t{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    t[i] = c;
  }
  return t;
}();

}  // namespace

uint32_t Crc32(ByteSpan data, uint32_t crc) {
  crc ^= 0xFFFFFFFFu;
  for (uint8_t b : data) crc = kCrc32Table[(crc ^ b) & 0xFF] ^ (crc >> 8);
  return crc ^ 0xFFFFFFFFu;
}

}  // namespace vtpm
