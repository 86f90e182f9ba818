// The MS-simulator TPM_SEND_COMMAND framing, both directions (TpmTcpProtocol.h; the bytes the
// tpm2-tss mssim TCTI sends: u32 8, u8 locality, u32 size, command; reply u32 size, response,
// u32 0).
#include "wire/mssim.h"

#include <gtest/gtest.h>

namespace vtpm::wire {
namespace {

Bytes Hex(std::string_view h) { return FromHex(h).value_or(Bytes{}); }

const Bytes kGetRandom = Hex("8001 0000000c 0000017b 0008");

TEST(MssimCodec, SendCommandGolden) {
  EXPECT_EQ(ToHex(EncodeSendCommand(3, kGetRandom)), "00000008030000000c80010000000c0000017b0008");
}

TEST(MssimCodec, SendCommandParsesOnlyWhenComplete) {
  const Bytes frame = EncodeSendCommand(3, kGetRandom);
  for (size_t n = 0; n < frame.size(); ++n) {
    auto r = ParseSendCommand(ByteSpan(frame).first(n), 4096);
    ASSERT_TRUE(r) << n;
    EXPECT_FALSE(r->has_value()) << n;
  }
  Bytes two = frame;
  two.insert(two.end(), frame.begin(), frame.end());
  auto r = ParseSendCommand(two, 4096);
  ASSERT_TRUE(r && *r);
  EXPECT_EQ((*r)->locality, 3);
  EXPECT_EQ(Bytes((*r)->command.begin(), (*r)->command.end()), kGetRandom);
  EXPECT_EQ((*r)->consumed, frame.size());
}

TEST(MssimCodec, SendCommandRefusesBadFrames) {
  EXPECT_FALSE(ParseSendCommand(Hex("00000001 00 0000000c"), 4096));  // POWER_ON
  EXPECT_FALSE(ParseSendCommand(Hex("00000008 00 00000009"), 4096));  // below a header
  EXPECT_FALSE(ParseSendCommand(Hex("00000008 00 00001001"), 4096));  // above the max
  EXPECT_TRUE(ParseSendCommand(Hex("00000008 00 00001000"), 4096));   // the max: wait
}

TEST(MssimCodec, ReplyRoundTrip) {
  const Bytes rsp = Hex("8001 0000000a 00000000");
  Bytes out;
  AppendSendCommandResponse(out, rsp);
  EXPECT_EQ(ToHex(out), "0000000a80010000000a0000000000000000");
  for (size_t n = 0; n < out.size(); ++n) {
    auto r = ParseSendCommandReply(ByteSpan(out).first(n), 4096);
    ASSERT_TRUE(r);
    EXPECT_FALSE(r->has_value());
  }
  auto r = ParseSendCommandReply(out, 4096);
  ASSERT_TRUE(r && *r);
  EXPECT_EQ(Bytes((*r)->response.begin(), (*r)->response.end()), rsp);
  EXPECT_EQ((*r)->consumed, out.size());
  out.back() = 1;
  EXPECT_FALSE(ParseSendCommandReply(out, 4096));
  EXPECT_FALSE(ParseSendCommandReply(Hex("00002000"), 4096));
}

}  // namespace
}  // namespace vtpm::wire
