// The saved-state codecs on their own, without a device: golden payloads (the same bytes the
// models save in device_state_test.cc), round trips, every truncation, and every field out of
// range refused with a message that names it.
#include <gtest/gtest.h>

#include <functional>
#include <string>

#include "device/crb_state.h"
#include "device/tis_state.h"

namespace vtpm::device {
namespace {

Bytes Hex(std::string_view hex) { return FromHex(hex).value(); }

// What DeviceStateGolden.TisMidResponse saves, as a struct and as a payload.
TisState BusyTis() {
  TisState s;
  s.family = TpmFamily::kTpm20;
  s.irq_level = true;
  TisRegisters& r = s.regs;
  r.active = 2;
  r.owner = 2;
  r.state = TisCommandState::kCompletion;
  r.selftest_done = true;
  r.intf_sel_lock = true;
  r.localities = {{{false, true, 0x08, 0},
                   {true, false, 0x08, 0},
                   {false, false, 0x80000091, 0x83},
                   {false, false, 0x08, 0},
                   {false, false, 0x08, 0}}};
  r.last_command_code = 0x143;
  r.command = Hex("80010000000b0000014300");
  r.response = Hex("80010000000b0000000000");
  r.response_pos = 3;
  return s;
}

constexpr std::string_view kBusyTisPayload =
    "01 02 02 04 01 01 01"
    "02 00000008 00000000  01 00000008 00000000  00 80000091 00000083"
    "00 00000008 00000000  00 00000008 00000000"
    "00000143"
    "0000000b 80010000000b0000014300"
    "0000000b 80010000000b0000000000"
    "00000003";

// What DeviceStateGolden.CrbWithExternalBuffer saves.
CrbState BusyCrb() {
  CrbState s;
  s.locality_count = 5;
  CrbRegisters& r = s.regs;
  r.active = 3;
  r.idle = false;
  r.fatal = true;
  r.cancel = 1;
  r.int_enable = 0x80000003;
  r.int_status = 3;
  r.localities[0].been_seized = true;
  r.localities[1].pending = true;
  return s;
}

constexpr std::string_view kBusyCrbPayload =
    "05 03 02 00000001 80000003 00000003"
    "02 01 00 00 00"
    "00000000";

// |payload| with |at| set to |value|.
Bytes With(std::string_view payload, size_t at, uint8_t value) {
  Bytes b = Hex(payload);
  b.at(at) = value;
  return b;
}

// Refused as corrupt, naming |field|.
template <class Decoded>
void ExpectRefused(const Result<Decoded>& r, std::string_view field) {
  ASSERT_FALSE(r) << field;
  EXPECT_EQ(r.error().code, Errc::kCorrupt) << r.error().message;
  EXPECT_NE(r.error().message.find(field), std::string::npos) << r.error().message;
}

TEST(TisStateCodec, GoldenPayload) {
  EXPECT_EQ(ToHex(EncodeTisState(BusyTis())), ToHex(Hex(kBusyTisPayload)));
  auto decoded = DecodeTisState(Hex(kBusyTisPayload));
  ASSERT_TRUE(decoded) << decoded.error().message;
  EXPECT_EQ(*decoded, BusyTis());
}

TEST(TisStateCodec, RoundTrips) {
  TisState full = BusyTis();
  full.family = TpmFamily::kTpm12;
  full.regs.state = TisCommandState::kReception;
  full.regs.command = Bytes(kTisMaxBuffer, 0xA5);
  full.regs.response = Bytes(kTisMaxBuffer, 0x5A);
  full.regs.response_pos = kTisMaxBuffer;
  full.regs.localities[4] = {true, true, 0x8000009F, 0x87};
  for (const TisState& s : {TisState{}, BusyTis(), full}) {
    auto decoded = DecodeTisState(EncodeTisState(s));
    ASSERT_TRUE(decoded) << decoded.error().message;
    EXPECT_EQ(*decoded, s);
  }
}

TEST(TisStateCodec, EveryTruncationAndTrailingBytesRefused) {
  const Bytes payload = Hex(kBusyTisPayload);
  for (size_t n = 0; n < payload.size(); ++n) {
    EXPECT_FALSE(DecodeTisState(ByteSpan(payload).first(n))) << n;
  }
  Bytes longer = payload;
  longer.push_back(0);
  ExpectRefused(DecodeTisState(longer), "after the end");
}

TEST(TisStateCodec, FieldsOutOfRangeRefused) {
  // Offsets: header 0..6, locality records of 9 bytes from 7, response position at 86..89.
  ExpectRefused(DecodeTisState(With(kBusyTisPayload, 0, 2)), "family");
  ExpectRefused(DecodeTisState(With(kBusyTisPayload, 1, 5)), "active locality");
  ExpectRefused(DecodeTisState(With(kBusyTisPayload, 2, 0xFE)), "owner");
  ExpectRefused(DecodeTisState(With(kBusyTisPayload, 3, 3)), "Execution");
  ExpectRefused(DecodeTisState(With(kBusyTisPayload, 3, 5)), "command state");
  ExpectRefused(DecodeTisState(With(kBusyTisPayload, 4, 2)), "selfTestDone");
  ExpectRefused(DecodeTisState(With(kBusyTisPayload, 5, 2)), "selector lock");
  ExpectRefused(DecodeTisState(With(kBusyTisPayload, 6, 2)), "interrupt level");
  ExpectRefused(DecodeTisState(With(kBusyTisPayload, 7, 4)), "locality flags");
  ExpectRefused(DecodeTisState(With(kBusyTisPayload, 8, 0x40)), "INT_ENABLE");
  ExpectRefused(DecodeTisState(With(kBusyTisPayload, 15, 0x08)), "INT_STATUS");
  ExpectRefused(DecodeTisState(With(kBusyTisPayload, 89, 12)), "response position");
  TisState big = BusyTis();
  big.regs.command = Bytes(kTisMaxBuffer + 1, 0);
  ExpectRefused(DecodeTisState(EncodeTisState(big)), "command");
  big = BusyTis();
  big.regs.response = Bytes(kTisMaxBuffer + 1, 0);
  ExpectRefused(DecodeTisState(EncodeTisState(big)), "response");
}

TEST(CrbStateCodec, GoldenPayload) {
  EXPECT_EQ(ToHex(EncodeCrbState(BusyCrb())), ToHex(Hex(kBusyCrbPayload)));
  auto decoded = DecodeCrbState(Hex(kBusyCrbPayload));
  ASSERT_TRUE(decoded) << decoded.error().message;
  EXPECT_EQ(*decoded, BusyCrb());
}

TEST(CrbStateCodec, RoundTrips) {
  CrbState internal;
  internal.regs.active = 0;
  internal.regs.buffer = Bytes(crb::kDataBufferSize, 0x3C);
  internal.regs.int_enable = 0x8000000F;
  internal.regs.int_status = 0xF;
  for (const CrbState& s : {CrbState{}, BusyCrb(), internal}) {
    auto decoded = DecodeCrbState(EncodeCrbState(s));
    ASSERT_TRUE(decoded) << decoded.error().message;
    EXPECT_EQ(*decoded, s);
  }
}

TEST(CrbStateCodec, EveryTruncationAndTrailingBytesRefused) {
  CrbState internal;
  internal.regs.buffer = Bytes(crb::kDataBufferSize, 0x3C);
  for (const Bytes& payload : {Hex(kBusyCrbPayload), EncodeCrbState(internal)}) {
    for (size_t n = 0; n < payload.size(); ++n) {
      ASSERT_FALSE(DecodeCrbState(ByteSpan(payload).first(n))) << n;
    }
    Bytes longer = payload;
    longer.push_back(0);
    ExpectRefused(DecodeCrbState(longer), "after the end");
  }
}

TEST(CrbStateCodec, FieldsOutOfRangeRefused) {
  // Offsets: count 0, active 1, flags 2, CTRL_CANCEL 3..6, INT_ENABLE 7..10, INT_STS 11..14,
  // locality flags 15..19, buffer length 20..23.
  ExpectRefused(DecodeCrbState(With(kBusyCrbPayload, 0, 6)), "locality count");
  ExpectRefused(DecodeCrbState(With(kBusyCrbPayload, 0, 2)), "locality count");
  ExpectRefused(DecodeCrbState(With(kBusyCrbPayload, 0, 1)), "active locality");
  ExpectRefused(DecodeCrbState(With(kBusyCrbPayload, 1, 5)), "active locality");
  ExpectRefused(DecodeCrbState(With(kBusyCrbPayload, 2, 4)), "CTRL_STS");
  ExpectRefused(DecodeCrbState(With(kBusyCrbPayload, 6, 2)), "CTRL_CANCEL");
  ExpectRefused(DecodeCrbState(With(kBusyCrbPayload, 7, 0x40)), "INT_ENABLE");
  ExpectRefused(DecodeCrbState(With(kBusyCrbPayload, 14, 0x10)), "INT_STS");
  ExpectRefused(DecodeCrbState(With(kBusyCrbPayload, 17, 4)), "locality flags");
  CrbState one;
  one.regs.localities[1].pending = true;
  ExpectRefused(DecodeCrbState(EncodeCrbState(one)), "does not have");
  CrbState partial;
  partial.regs.buffer = Bytes(100, 0);
  ExpectRefused(DecodeCrbState(EncodeCrbState(partial)), "data buffer");
  partial.regs.buffer = Bytes(crb::kDataBufferSize + 1, 0);
  ExpectRefused(DecodeCrbState(EncodeCrbState(partial)), "data buffer");
}

}  // namespace
}  // namespace vtpm::device
