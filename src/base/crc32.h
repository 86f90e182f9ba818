// CRC-32 as IEEE 802.3, zlib, gzip and PNG compute it: reflected polynomial 0xEDB88320, initial
// value and final XOR 0xFFFFFFFF. A checksum against accidental damage (truncation, torn writes,
// flipped bits), not an authenticator.
#pragma once

#include <cstdint>

#include "base/bytes.h"

namespace vtpm {

// CRC-32 of |data|. For data that comes in pieces, pass the CRC of what came before as |crc|:
// Crc32(b, Crc32(a)) == Crc32(a followed by b), as zlib's crc32().
uint32_t Crc32(ByteSpan data, uint32_t crc = 0);

}  // namespace vtpm
