// base/crc32.h (here because the envelope of the device state is its user; tests/unit has no
// base directory yet).
#include "base/crc32.h"

#include <gtest/gtest.h>

#include <string_view>

namespace vtpm {
namespace {

ByteSpan Ascii(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

TEST(Crc32, KnownVectors) {
  EXPECT_EQ(Crc32(Ascii("123456789")), 0xCBF43926u);  // the catalogue's check value
  EXPECT_EQ(Crc32(Ascii("")), 0u);
  EXPECT_EQ(Crc32(Ascii("a")), 0xE8B7BE43u);
  EXPECT_EQ(Crc32(Ascii("The quick brown fox jumps over the lazy dog")), 0x414FA339u);
  EXPECT_EQ(Crc32(Bytes(32, 0)), 0x190A55ADu);
  EXPECT_EQ(Crc32(Bytes(32, 0xFF)), 0xFF6CAB0Bu);
}

TEST(Crc32, ContinuesAcrossPieces) {
  const ByteSpan all = Ascii("123456789");
  for (size_t cut = 0; cut <= all.size(); ++cut) {
    EXPECT_EQ(Crc32(all.subspan(cut), Crc32(all.first(cut))), 0xCBF43926u) << cut;
  }
}

}  // namespace
}  // namespace vtpm
