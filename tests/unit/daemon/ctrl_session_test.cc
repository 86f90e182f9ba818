// Golden bytes for every control command, as Debian's swtpm 0.7.1 answers them
// (docs/PROTOCOLS.md §1.3-§1.16, re-verified by tests/integration against swtpm itself).
#include "daemon/ctrl_session.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include "session_fixture.h"

namespace vtpm::daemon {
namespace {

using testing::Hex;

struct Ctrl : SessionFixture {
  CtrlSession s{&service, /*fd_passing=*/true};
  Bytes Do(std::initializer_list<std::string_view> chunks) { return Feed(s, chunks); }
};

TEST(CtrlSession, GetCapabilityListsEveryCommand) {
  Ctrl c;
  EXPECT_EQ(c.Do({"00000001"}), Hex("00000000 0001ffff"));
}

TEST(CtrlSession, OverTcpSetDatafdIsAdvertisedLikeSwtpmButFails) {
  SessionFixture f;
  CtrlSession s(&f.service, /*fd_passing=*/false);
  EXPECT_EQ(f.Feed(s, {"00000001"}), Hex("00000000 0001ffff"));
  EXPECT_EQ(f.Feed(s, {"00000010"}), Hex("0000001f"));  // TPM_IOERROR, as swtpm 0.7.1
}

TEST(CtrlSession, Tpm12CapabilityOmitsSendCommandHeader) {
  SessionFixture f(engine::TpmVersion::kTpm12);
  CtrlSession s(&f.service, true);
  EXPECT_EQ(f.Feed(s, {"00000001"}), Hex("00000000 00017fff"));
}

TEST(CtrlSession, UnknownCommandIsBadOrdinal) {
  Ctrl c;
  EXPECT_EQ(c.Do({"00000063"}), Hex("0000000a"));
  EXPECT_FALSE(c.s.mid_message());
  EXPECT_EQ(c.Do({"00000001"}), Hex("00000000 0001ffff"));  // still serving
}

TEST(CtrlSession, SetLocalityAcceptsOneAndFourByteBodies) {
  Ctrl c;
  EXPECT_EQ(c.Do({"00000005 03"}), Hex("00000000"));
  EXPECT_EQ(c.eng->locality(), 3);
  EXPECT_EQ(c.Do({"00000005 02000000"}), Hex("00000000"));  // QEMU's 4-byte union
  EXPECT_EQ(c.eng->locality(), 2);
  EXPECT_EQ(c.Do({"00000005 07"}), Hex("0000003d"));
  EXPECT_EQ(c.eng->locality(), 2);
}

TEST(CtrlSession, CommandsNeedingARunningTpmAnswerBadOrdinalInFourBytes) {
  Ctrl c;
  EXPECT_EQ(c.Do({"00000004"}), Hex("0000000a"));                             // GET_TPMESTABLISHED
  EXPECT_EQ(c.Do({"00000006"}), Hex("0000000a"));                             // HASH_START
  EXPECT_EQ(c.Do({"0000000a"}), Hex("0000000a"));                             // STORE_VOLATILE
  EXPECT_EQ(c.Do({"0000000c 00000001 00000001 00000000"}), Hex("0000000a"));  // GET_STATEBLOB
  EXPECT_EQ(c.Do({"00000007 00000002 aabb"}), Hex("0000000a"));  // HASH_DATA, payload consumed
  EXPECT_FALSE(c.s.mid_message());
}

TEST(CtrlSession, InitThenEstablishedAndHashSequence) {
  Ctrl c;
  EXPECT_EQ(c.Do({"00000002 00000000"}), Hex("00000000"));
  EXPECT_EQ(c.Do({"00000004"}), Hex("00000000 00000000"));
  EXPECT_EQ(c.Do({"00000006"}), Hex("00000000"));
  EXPECT_EQ(c.Do({"00000007 00000005 68656c6c6f"}), Hex("00000000"));
  EXPECT_EQ(c.Do({"00000008"}), Hex("00000000"));
  EXPECT_EQ(c.Do({"00000004"}), Hex("00000000 01000000"));
  EXPECT_EQ(c.Do({"0000000b 03000000"}), Hex("00000000"));  // RESET_TPMESTABLISHED(3)
  EXPECT_EQ(c.Do({"00000004"}), Hex("00000000 00000000"));
  EXPECT_EQ(c.Do({"0000000b 05"}), Hex("0000003d"));
}

TEST(CtrlSession, HashDataStreamsAcrossReads) {
  Ctrl c;
  c.Do({"00000002 00000000"});
  c.Do({"00000006"});
  EXPECT_EQ(c.Do({"00000007 0000", "0005 6865", "6c"}), Bytes{});
  EXPECT_TRUE(c.s.mid_message());
  EXPECT_EQ(c.Do({"6c6f"}), Hex("00000000"));
  EXPECT_FALSE(c.s.mid_message());
}

TEST(CtrlSession, InitWithSurplusBytesIsBadParameter) {
  Ctrl c;
  EXPECT_EQ(c.Do({"00000002 00000000 00"}), Hex("00000003"));
  EXPECT_FALSE(c.eng->running());
}

// swtpm 0.7.1: a command without a body followed by more bytes in the same read is refused with
// BAD_PARAMETER and not run -- after the "not running" check; GET_CAPABILITY ignores them.
TEST(CtrlSession, BodilessCommandsWithSurplusBytesAreRefusedAndNotRun) {
  Ctrl c;
  EXPECT_EQ(c.Do({"00000002 00000000"}), Hex("00000000"));
  for (const char* cmd : {"00000004 00", "00000006 00", "00000008 00", "00000009 00", "0000000a 00",
                          "0000000f 00", "0000000e 00", "00000003 00"}) {
    EXPECT_EQ(c.Do({cmd}), Hex("00000003")) << cmd;
  }
  EXPECT_TRUE(c.eng->running()) << "neither STOP nor SHUTDOWN ran";
  EXPECT_FALSE(c.hooks.exit_requested);
  EXPECT_FALSE(c.s.wants_close());
  EXPECT_EQ(c.Do({"00000001 00"}), Hex("00000000 0001ffff"));
  EXPECT_EQ(c.Do({"0000000e"}), Hex("00000000"));  // STOP
  EXPECT_EQ(c.Do({"00000004 00"}), Hex("0000000a")) << "not running comes first";
  EXPECT_EQ(c.Do({"0000000f 00"}), Hex("00000003"));
}

TEST(CtrlSession, CommandSplitAcrossReadsIsReassembled) {
  Ctrl c;
  EXPECT_EQ(c.Do({"0000", "0002 0000", "0000"}), Hex("00000000"));
  EXPECT_TRUE(c.eng->running());
}

TEST(CtrlSession, BufferSizeQueryAndSet) {
  Ctrl c;
  EXPECT_EQ(c.Do({"00000011 00000000"}), Hex("00000000 00001000 00000af8 00001000"));
  EXPECT_EQ(c.Do({"00000011 00000c00"}), Hex("00000000 00000c00 00000af8 00001000"));
  c.Do({"00000002 00000000"});
  EXPECT_EQ(c.Do({"00000011 00000800"}), Hex("0000000a"));
  EXPECT_EQ(c.Do({"00000011 00000000"}), Hex("00000000 00000c00 00000af8 00001000"));
}

TEST(CtrlSession, GetConfigReportsNoKeys) {
  Ctrl c;
  EXPECT_EQ(c.Do({"0000000f"}), Hex("00000000 00000000"));
}

TEST(CtrlSession, GetInfoReturnsJsonWithNulCountedInTotal) {
  Ctrl c;
  std::string json = R"({"TPMSpecification":{"family":"2.0","level":0,"revision":164}})";
  Bytes want = Hex("00000000");
  ByteWriter w;
  w.U32(static_cast<uint32_t>(json.size() + 1));
  w.U32(static_cast<uint32_t>(json.size() + 1));
  want.insert(want.end(), w.bytes().begin(), w.bytes().end());
  want.insert(want.end(), json.begin(), json.end());
  want.push_back(0);
  EXPECT_EQ(c.Do({"00000012 0000000000000001 00000000 00000000"}), want);
  EXPECT_EQ(c.Do({"00000012 0000000000000001 00001000 00000000"}), Hex("00000003"));
}

TEST(CtrlSession, SaveStateOfTpm2IsRetryWithEmptyBlob) {
  Ctrl c;
  c.Do({"00000002 00000000"});
  EXPECT_EQ(c.Do({"0000000c 00000001 00000003 00000000"}),
            Hex("00000800 00000000 00000000 00000000"));
}

TEST(CtrlSession, PermanentBlobRoundTripsInSwtpmMigrationFormat) {
  Ctrl c;
  c.Do({"00000002 00000000"});
  Bytes got = c.Do({"0000000c 00000001 00000001 00000000"});
  ASSERT_GT(got.size(), 16u + 16u);
  EXPECT_EQ(Bytes(got.begin(), got.begin() + 4), Hex("00000000"));
  EXPECT_EQ(LoadBe32(got.data() + 4), 0u);                         // not encrypted
  EXPECT_EQ(LoadBe32(got.data() + 8), LoadBe32(got.data() + 12));  // totlength == length
  EXPECT_EQ(LoadBe32(got.data() + 8), got.size() - 16);
  Bytes blob(got.begin() + 16, got.end());
  // swtpm blob header: version 2, min_version 1, hdrsize 10, flags MIGRATION_DATA (4).
  EXPECT_EQ(Bytes(blob.begin(), blob.begin() + 6), Hex("02 01 000a 0004"));

  EXPECT_EQ(c.Do({"0000000e"}), Hex("00000000"));  // STOP
  ByteWriter hdr;
  hdr.U32(0x0d);
  hdr.U32(0);
  hdr.U32(1);
  hdr.U32(static_cast<uint32_t>(blob.size()));
  Bytes out;
  Bytes h = hdr.bytes();
  c.s.OnChunk(h, out);  // QEMU writes the header and the blob separately
  EXPECT_TRUE(out.empty());
  c.s.OnChunk(blob, out);
  EXPECT_EQ(out, Hex("00000000"));
  EXPECT_EQ(c.Do({"00000002 00000001"}), Hex("00000000"));
}

TEST(CtrlSession, SetStateBlobWhileRunningIsBadOrdinal) {
  Ctrl c;
  c.Do({"00000002 00000000"});
  EXPECT_EQ(c.Do({"0000000d 00000000 00000001 00000002 0000"}), Hex("0000000a"));
}

TEST(CtrlSession, SetStateBlobWithGarbageIsBadParameter) {
  Ctrl c;
  EXPECT_EQ(c.Do({"0000000d 00000000 00000001 00000004 deadbeef"}), Hex("00000003"));
}

TEST(CtrlSession, OversizedStateBlobIsRefusedAndTheConnectionClosed) {
  Ctrl c;
  EXPECT_EQ(c.Do({"0000000d 00000000 00000001 00080001"}), Hex("00000009"));
  EXPECT_TRUE(c.s.wants_close());
}

TEST(CtrlSession, SetDatafdWithoutAnFdFails) {
  Ctrl c;
  EXPECT_EQ(c.Do({"00000010"}), Hex("0000001f"));  // swtpm 0.7.1: TPM_IOERROR
  EXPECT_TRUE(c.hooks.adopted.empty());
}

TEST(CtrlSession, SetDatafdHandsTheFdToTheServerOnce) {
  Ctrl c;
  int fds[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
  UniqueFd a(fds[0]), b(fds[1]);
  c.s.OnFd(std::move(a));
  EXPECT_EQ(c.Do({"00000010"}), Hex("00000000"));
  EXPECT_EQ(c.hooks.adopted.size(), 1u);
  c.s.OnFd(std::move(b));
  EXPECT_EQ(c.Do({"00000010"}), Hex("0000001f"));  // a data fd exists already
}

TEST(CtrlSession, ShutdownStopsTheTpmAndAsksTheServerToExit) {
  Ctrl c;
  c.Do({"00000002 00000000"});
  EXPECT_EQ(c.Do({"00000003"}), Hex("00000000"));
  EXPECT_FALSE(c.eng->running());
  EXPECT_TRUE(c.hooks.exit_requested);
}

TEST(CtrlSession, StoreVolatileWritesTheVolatileFile) {
  Ctrl c;
  c.Do({"00000002 00000000"});
  EXPECT_EQ(c.Do({"0000000a"}), Hex("00000000"));
  auto v = c.store->Load("volatilestate");
  ASSERT_TRUE(v.has_value());
  EXPECT_TRUE(v->has_value());
}

TEST(CtrlSession, CancelNeedsARunningTpm) {
  Ctrl c;
  EXPECT_EQ(c.Do({"00000009"}), Hex("0000000a"));
  c.Do({"00000002 00000000"});
  EXPECT_EQ(c.Do({"00000009"}), Hex("00000000"));
}

TEST(CtrlSession, StopWhenStoppedSucceedsAndInitRestarts) {
  Ctrl c;
  EXPECT_EQ(c.Do({"0000000e"}), Hex("00000000"));
  EXPECT_EQ(c.Do({"00000002 00000000"}), Hex("00000000"));
  EXPECT_EQ(c.Do({"00000002 00000000"}), Hex("00000000"));  // INIT while running restarts
  EXPECT_TRUE(c.eng->running());
}

TEST(CtrlSession, VolatileBlobComesFromTheRunningTpm) {
  Ctrl c;
  c.Do({"00000002 00000000"});
  Bytes got = c.Do({"0000000c 00000001 00000002 00000000"});
  ASSERT_GT(got.size(), 16u);
  EXPECT_EQ(Bytes(got.begin(), got.begin() + 8), Hex("00000000 00000000"));
  EXPECT_EQ(LoadBe32(got.data() + 8), got.size() - 16);
}

TEST(CtrlSession, GetStateBlobOffsetReturnsTheRemainder) {
  Ctrl c;
  c.Do({"00000002 00000000"});
  Bytes all = c.Do({"0000000c 00000001 00000001 00000000"});
  Bytes tail = c.Do({"0000000c 00000001 00000001 00000010"});
  ASSERT_EQ(tail.size(), all.size() - 16);
  EXPECT_EQ(LoadBe32(tail.data() + 12), LoadBe32(all.data() + 12) - 16);
  EXPECT_TRUE(std::equal(tail.begin() + 16, tail.end(), all.begin() + 32));
}

// On a running TPM, GET_STATEBLOB's reply always carries its 16-byte header. swtpm 0.7.1 answers
// an unknown blob type with TPM_RETRY and empty lengths (verified: 00000800 + 12 zero bytes);
// vtpm answered a bare 4-byte TPM_FAIL before, which leaves a client reading the header waiting.
TEST(CtrlSession, UnknownBlobTypeIsRetryWithAnEmptyHeaderLikeSwtpm) {
  Ctrl c;
  c.Do({"00000002 00000000"});
  EXPECT_EQ(c.Do({"0000000c 00000001 00000009 00000000"}),
            Hex("00000800 00000000 00000000 00000000"));
}

TEST(CtrlSession, LockStorageSucceedsWhenFree) {
  Ctrl c;
  EXPECT_EQ(c.Do({"00000013 00000000"}), Hex("00000000"));
}

}  // namespace
}  // namespace vtpm::daemon
