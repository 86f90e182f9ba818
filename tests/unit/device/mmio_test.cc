#include "device/mmio.h"

#include <gtest/gtest.h>

#include <vector>

namespace vtpm::device {
namespace {

constexpr RegDef kRegs[] = {{0x00, 1, 0}, {0x04, 4, 1}, {0x10, 8, 2}};

std::vector<AccessPiece> Split(uint64_t offset, size_t length) {
  std::vector<AccessPiece> v;
  SplitAccess(offset, length, 0x20, 2, kRegs, [&](const AccessPiece& p) { v.push_back(p); });
  return v;
}

TEST(SplitAccess, PiecesFollowRegistersHolesAndWindows) {
  auto p = Split(0x00, 8);
  ASSERT_EQ(p.size(), 3u);
  EXPECT_EQ(p[0].reg->id, 0);
  EXPECT_EQ(p[0].count, 1u);
  EXPECT_EQ(p[1].reg, nullptr);  // hole 0x01..0x03
  EXPECT_EQ(p[1].count, 3u);
  EXPECT_EQ(p[2].reg->id, 1);
  EXPECT_EQ(p[2].count, 4u);
  EXPECT_EQ(p[2].pos, 4u);
  // Straddling a window boundary: 0x1E..0x21 -> window 0 hole, window 1 register 0 + hole.
  p = Split(0x1E, 4);
  ASSERT_EQ(p.size(), 3u);
  EXPECT_EQ(p[0].window, 0u);
  EXPECT_EQ(p[1].window, 1u);
  EXPECT_EQ(p[1].reg->id, 0);
  EXPECT_EQ(p[2].byte_offset, 1u);
  // Inside a register, at an odd byte.
  p = Split(0x13, 2);
  ASSERT_EQ(p.size(), 1u);
  EXPECT_EQ(p[0].byte_offset, 3u);
  // Past the end, and offsets that would overflow.
  p = Split(0x3E, 4);
  ASSERT_EQ(p.size(), 2u);
  EXPECT_EQ(p[1].window, 2u);
  EXPECT_EQ(p[1].count, 2u);
  p = Split(~uint64_t{0}, 8);
  ASSERT_EQ(p.size(), 1u);
  EXPECT_EQ(p[0].window, 2u);
}

TEST(StateEnvelope, RoundTripAndRejections) {
  Bytes payload = {1, 2, 3, 4, 5};
  Bytes blob = WrapState("VTPMTEST", 7, payload);
  auto out = UnwrapState("VTPMTEST", 7, blob);
  ASSERT_TRUE(out);
  EXPECT_EQ(Bytes(out->begin(), out->end()), payload);
  EXPECT_FALSE(UnwrapState("VTPMTEST", 8, blob));  // version
  EXPECT_FALSE(UnwrapState("VTPMOTHR", 7, blob));  // magic
  Bytes short_magic = WrapState("VTPMTIS", 1, payload);
  short_magic[7] = 'X';  // the padding byte of a 7-character magic is checked too
  EXPECT_FALSE(UnwrapState("VTPMTIS", 1, short_magic));
  Bytes flipped = blob;
  flipped[17] ^= 0x40;
  EXPECT_FALSE(UnwrapState("VTPMTEST", 7, flipped));  // checksum
  EXPECT_FALSE(UnwrapState("VTPMTEST", 7, ByteSpan(blob).first(blob.size() - 1)));
  EXPECT_EQ(Crc32(Bytes{'1', '2', '3', '4', '5', '6', '7', '8', '9'}), 0xCBF43926u);
}

}  // namespace
}  // namespace vtpm::device
