// The swtpm control-channel codec: golden bytes for every command (requests as swtpm_ioctl and
// QEMU send them, responses as Debian's swtpm 0.7.1 answers; docs/PROTOCOLS.md §1.16 and the
// daemon tests, which run the same bytes through the server), the streaming response size, and
// a round trip client encode -> server decode -> server encode -> client decode for every command.
#include "wire/swtpm_ctrl.h"

#include <gtest/gtest.h>

#include <set>
#include <vector>

namespace vtpm::wire {
namespace {

Bytes Hex(std::string_view h) {
  auto b = FromHex(h);
  EXPECT_TRUE(b.has_value()) << h;
  return b.value_or(Bytes{});
}

struct Golden {
  CtrlRequest request;
  const char* request_hex;  // the code and the fixed body
  CtrlResponse response;
  const char* response_hex;
};

// One representative exchange per command.
std::vector<Golden> Goldens() {
  const std::string json = R"({"TPMSpecification":{"family":"2.0","level":0,"revision":164}})";
  Bytes info(json.begin(), json.end());
  info.push_back(0);  // the trailing NUL is sent and counted
  // swtpm's migration form of an empty permanent state (state/blob.h): 22 bytes.
  const CtrlStateBlobReply blob{0, 0x16, Hex("0201000a000400000016000400000006000100000000")};
  return {
      {{CtrlCmd::kGetCapability, {}}, "00000001", {0, CtrlU32Reply{0xffff}}, "00000000 0000ffff"},
      {{CtrlCmd::kInit, CtrlU32Body{1}}, "00000002 00000001", {0, {}}, "00000000"},
      {{CtrlCmd::kShutdown, {}}, "00000003", {0, {}}, "00000000"},
      {{CtrlCmd::kGetTpmEstablished, {}},
       "00000004",
       {0, CtrlEstablishedReply{true}},
       "00000000 01000000"},
      {{CtrlCmd::kSetLocality, CtrlU8Body{7}}, "00000005 07", {0x3d, {}}, "0000003d"},
      {{CtrlCmd::kHashStart, {}}, "00000006", {0, {}}, "00000000"},
      {{CtrlCmd::kHashData, CtrlU32Body{5}}, "00000007 00000005", {0, {}}, "00000000"},
      {{CtrlCmd::kHashEnd, {}}, "00000008", {0, {}}, "00000000"},
      {{CtrlCmd::kCancelTpmCmd, {}}, "00000009", {0, {}}, "00000000"},
      {{CtrlCmd::kStoreVolatile, {}}, "0000000a", {0, {}}, "00000000"},
      {{CtrlCmd::kResetTpmEstablished, CtrlU8Body{3}}, "0000000b 03", {0, {}}, "00000000"},
      {{CtrlCmd::kGetStateBlob, CtrlStateBlobBody{0, 3, 0}},
       "0000000c 00000000 00000003 00000000",
       {0x800, CtrlStateBlobReply{}},
       "00000800 00000000 00000000 00000000"},
      {{CtrlCmd::kGetStateBlob, CtrlStateBlobBody{1, 1, 0}},
       "0000000c 00000001 00000001 00000000",
       {0, blob},
       "00000000 00000000 00000016 00000016 0201000a000400000016000400000006000100000000"},
      {{CtrlCmd::kSetStateBlob, CtrlStateBlobBody{0, 1, 0x529}},
       "0000000d 00000000 00000001 00000529",
       {0x1e, {}},
       "0000001e"},
      {{CtrlCmd::kStop, {}}, "0000000e", {0, {}}, "00000000"},
      {{CtrlCmd::kGetConfig, {}}, "0000000f", {0, CtrlU32Reply{0}}, "00000000 00000000"},
      {{CtrlCmd::kSetDatafd, {}}, "00000010", {0x1f, {}}, "0000001f"},
      {{CtrlCmd::kSetBufferSize, CtrlU32Body{0}},
       "00000011 00000000",
       {0, CtrlBufferSizeReply{0x1000, 0xaf8, 0x1000}},
       "00000000 00001000 00000af8 00001000"},
      {{CtrlCmd::kGetInfo, CtrlGetInfoBody{1, 0, 0}},
       "00000012 0000000000000001 00000000 00000000",
       {0, CtrlInfoReply{0x3f, info}},
       "00000000 0000003f 0000003f "
       "7b2254504d53706563696669636174696f6e223a7b2266616d696c79223a22322e30222c226c6576656c22"
       "3a302c227265766973696f6e223a3136347d7d00"},
      {{CtrlCmd::kLockStorage, CtrlU32Body{300}}, "00000013 0000012c", {0, {}}, "00000000"},
  };
}

TEST(SwtpmCtrlCodec, RequestsEncodeAndDecodeToSwtpmsBytes) {
  for (const Golden& g : Goldens()) {
    const std::string name(CtrlCmdName(static_cast<uint32_t>(g.request.cmd)));
    const Bytes want = Hex(g.request_hex);
    EXPECT_EQ(ToHex(EncodeCtrlRequest(g.request)), ToHex(want)) << name;
    auto back = DecodeCtrlRequest(LoadBe32(want.data()), ByteSpan(want).subspan(4));
    ASSERT_TRUE(back) << name << ": " << back.error().message;
    EXPECT_EQ(back->cmd, g.request.cmd) << name;
    EXPECT_EQ(ToHex(EncodeCtrlRequest(*back)), ToHex(want)) << name;
  }
}

TEST(SwtpmCtrlCodec, ResponsesEncodeAndDecodeToSwtpmsBytes) {
  for (const Golden& g : Goldens()) {
    const std::string name(CtrlCmdName(static_cast<uint32_t>(g.request.cmd)));
    const Bytes want = Hex(g.response_hex);
    EXPECT_EQ(ToHex(EncodeCtrlResponse(g.response)), ToHex(want)) << name;
    auto back = DecodeCtrlResponse(g.request.cmd, want);
    ASSERT_TRUE(back) << name << ": " << back.error().message;
    EXPECT_EQ(back->result, g.response.result) << name;
    EXPECT_EQ(back->body.index(), g.response.body.index()) << name;
    EXPECT_EQ(ToHex(EncodeCtrlResponse(*back)), ToHex(want)) << name;
  }
}

// Client encode -> server decode -> server encode -> client decode, for every command.
TEST(SwtpmCtrlCodec, EveryCommandRoundTripsBetweenClientAndServer) {
  std::set<CtrlCmd> covered;
  for (const Golden& g : Goldens()) {
    const Bytes wire_request = EncodeCtrlRequest(g.request);
    auto server_sees =
        DecodeCtrlRequest(LoadBe32(wire_request.data()), ByteSpan(wire_request).subspan(4));
    ASSERT_TRUE(server_sees);
    ASSERT_EQ(server_sees->body.index(), g.request.body.index());
    const Bytes wire_response = EncodeCtrlResponse(g.response);
    // The client reads exactly what CtrlResponseSize asks for, in the pieces it asks for.
    Bytes got;
    for (size_t want = CtrlResponseSize(server_sees->cmd, got); got.size() < want;
         want = CtrlResponseSize(server_sees->cmd, got)) {
      ASSERT_LE(want, wire_response.size());
      got.assign(wire_response.begin(), wire_response.begin() + static_cast<ptrdiff_t>(want));
    }
    EXPECT_EQ(got.size(), wire_response.size());
    auto client_sees = DecodeCtrlResponse(server_sees->cmd, got);
    ASSERT_TRUE(client_sees);
    EXPECT_EQ(EncodeCtrlResponse(*client_sees), wire_response);
    covered.insert(g.request.cmd);
  }
  EXPECT_EQ(covered.size(), 19u) << "every control command 0x01-0x13";
}

TEST(SwtpmCtrlCodec, ErrorsAreOnlyTheResultExceptGetStateBlobOnARunningTpm) {
  EXPECT_EQ(CtrlResponseSize(CtrlCmd::kGetCapability, Hex("0000000a")), 4u);
  EXPECT_EQ(CtrlResponseSize(CtrlCmd::kSetBufferSize, Hex("0000000a")), 4u);
  EXPECT_EQ(CtrlResponseSize(CtrlCmd::kGetInfo, Hex("00000003")), 4u);
  EXPECT_EQ(CtrlResponseSize(CtrlCmd::kGetStateBlob, Hex("0000000a")), 4u);  // not running
  EXPECT_EQ(CtrlResponseSize(CtrlCmd::kGetStateBlob, Hex("00000800")), 16u);
  EXPECT_EQ(CtrlResponseSize(CtrlCmd::kGetStateBlob, Hex("00000000 00000000 00000529 00000529")),
            16u + 0x529);
  EXPECT_EQ(ToHex(EncodeCtrlResponse({0xa, {}})), "0000000a");
}

// Found by ctrl_response_fuzz: a peer's non-zero padding or a "bit" other than 1 was normalised
// away on decode, so what a client relayed was not what the server sent. Now every byte is kept,
// and any non-zero bit counts as established (as QEMU reads it).
TEST(SwtpmCtrlCodec, EstablishedReplyKeepsEveryByte) {
  for (const char* hex : {"00000000 00000006", "00000000 02000000", "00000000 01ffffff"}) {
    auto r = DecodeCtrlResponse(CtrlCmd::kGetTpmEstablished, Hex(hex));
    ASSERT_TRUE(r) << hex;
    EXPECT_EQ(ToHex(EncodeCtrlResponse(*r)), ToHex(Hex(hex)));
  }
  EXPECT_FALSE(std::get<CtrlEstablishedReply>(
                   DecodeCtrlResponse(CtrlCmd::kGetTpmEstablished, Hex("00000000 00000006"))->body)
                   .established());
  EXPECT_TRUE(std::get<CtrlEstablishedReply>(
                  DecodeCtrlResponse(CtrlCmd::kGetTpmEstablished, Hex("00000000 02000000"))->body)
                  .established());
}

TEST(SwtpmCtrlCodec, MalformedInputIsRefused) {
  EXPECT_FALSE(DecodeCtrlRequest(0x63, {}));                 // unknown code
  EXPECT_FALSE(DecodeCtrlRequest(0x02, Hex("000000")));      // INIT body too short
  EXPECT_FALSE(DecodeCtrlRequest(0x02, Hex("0000000000")));  // and too long
  EXPECT_FALSE(DecodeCtrlResponse(CtrlCmd::kGetCapability, Hex("00000000")));  // truncated
  EXPECT_FALSE(DecodeCtrlResponse(CtrlCmd::kInit, Hex("00000000 00")));        // trailing byte
  EXPECT_FALSE(
      DecodeCtrlResponse(CtrlCmd::kGetStateBlob, Hex("00000000 00000000 00000010 00000010 0102")));
  EXPECT_FALSE(DecodeCtrlResponse(CtrlCmd::kInit, {}));
}

}  // namespace
}  // namespace vtpm::wire
