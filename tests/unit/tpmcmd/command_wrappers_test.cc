// bench/tpm_commands.h and tests/fakes/tpm_commands.h, the thin wrappers over tpmcmd: they send
// the bytes their hand-encoded predecessors sent (the goldens of tpm2_bench_commands_test.cc), and
// the benchmarks' response checks accept what libtpms answers and refuse what it did not ask for.
#include <gtest/gtest.h>

#include "bench/tpm_commands.h"
#include "fakes/tpm_commands.h"

namespace vtpm {
namespace {

namespace fakes = testing::cmd;

Bytes Hex(std::string_view h) {
  auto b = FromHex(h);
  EXPECT_TRUE(b.has_value()) << h;
  return b ? *b : Bytes{};
}

std::string CountingHex(uint8_t first) { return ToHex(bench::Counting(first)); }

TEST(CommandWrappers, BenchSendsTheGoldenBytes) {
  EXPECT_EQ(ToHex(bench::Startup().bytes), "80010000000c000001440000");
  EXPECT_EQ(ToHex(bench::GetRandom(32).bytes), "80010000000c0000017b0020");
  EXPECT_EQ(ToHex(bench::PcrRead().bytes), "8001000000140000017e00000001000b03010000");
  EXPECT_EQ(
      ToHex(bench::PcrExtend().bytes),
      "80020000004100000182000000100000000940000009000000000000000001000b" + CountingHex(0x00));
  EXPECT_EQ(ToHex(bench::CreatePrimary(false).bytes),
            "80020000004100000131400000010000000940000009000000000000040000000000180023000b0004"
            "0072000000100018000b0003001000000000000000000000");
  EXPECT_EQ(ToHex(bench::CreatePrimary(true).bytes),
            "80020000004100000131400000010000000940000009000000000000040000000000180001000b0004"
            "0072000000100014000b0800000000000000000000000000");
  EXPECT_TRUE(bench::CreatePrimary(true).flush_handle);
  EXPECT_EQ(ToHex(bench::Sign(0x80000001, true).bytes),
            "8002000000470000015d80000001000000094000000900000000000020" + CountingHex(0xa0) +
                "00108024400000070000");
  EXPECT_EQ(bench::Sign(0x80000001, true).bytes, bench::Sign(0x80000001, false).bytes);
  EXPECT_EQ(ToHex(bench::NvDefineCounter(0x01500030).bytes),
            "80020000002d0000012a40000001000000094000000900000000000000000e01500030000b02040014"
            "00000008");
  EXPECT_EQ(ToHex(bench::NvIncrement(0x01500030).bytes),
            "80020000001f00000134015000300150003000000009400000090000000000");
  EXPECT_EQ(ToHex(bench::FlushContext(0x80000000).bytes), "80010000000e0000016580000000");
}

TEST(CommandWrappers, FakesSendTheGoldenBytes) {
  EXPECT_EQ(ToHex(fakes::Startup()), "80010000000c000001440000");
  EXPECT_EQ(ToHex(fakes::Startup(1)), "80010000000c000001440001");
  EXPECT_EQ(ToHex(fakes::SelfTest()), "80010000000b0000014301");
  EXPECT_EQ(ToHex(fakes::GetRandom(48)), "80010000000c0000017b0030");
  EXPECT_EQ(fakes::PcrExtend(16, bench::Counting(0x00)), bench::PcrExtend().bytes);
  EXPECT_EQ(ToHex(fakes::PcrRead(0)), "8001000000140000017e00000001000b03010000");
  EXPECT_EQ(ToHex(fakes::PcrRead(17)), "8001000000140000017e00000001000b03000002");
  EXPECT_EQ(ToHex(fakes::CreatePrimaryEcc()),
            "800200000043000001314000000100000009400000090000000000000400000000001a0023000b0003"
            "0072000000060080004300100003001000000000000000000000");
  EXPECT_EQ(ToHex(fakes::GetCapability(1, 0x81000000, 20)),
            "8001000000160000017a000000018100000000000014");
  EXPECT_EQ(ToHex(fakes::FixedProperties()), "8001000000160000017a000000060000010000000008");
  EXPECT_EQ(ToHex(fakes::FixedProperties(20)), "8001000000160000017a000000060000010000000014");
  EXPECT_EQ(ToHex(fakes::FlushContext(0x80000001)), "80010000000e0000016580000001");
  EXPECT_EQ(ToHex(fakes::NvDefine(0x01500042, 1024)),
            "80020000002d0000012a40000001000000094000000900000000000000000e01500042000b02060006"
            "00000400");
  EXPECT_EQ(ToHex(fakes::NvWrite(0x01500042, Hex("01020304"))),
            "800200000027000001370150004201500042000000094000000900000000000004010203040000");
  EXPECT_EQ(ToHex(fakes::NvWrite(0x01500042, Hex("01020304"), 0x10)),
            "800200000027000001370150004201500042000000094000000900000000000004010203040010");
  EXPECT_EQ(ToHex(fakes::NvRead(0x01500042, 1024)),
            "8002000000230000014e01500042015000420000000940000009000000000004000000");
  EXPECT_EQ(ToHex(fakes::NvRead(0x01500042, 4, 2)),
            "8002000000230000014e01500042015000420000000940000009000000000000040002");
  EXPECT_EQ(ToHex(fakes::UnknownCommand(0x999)), "80010000000a00000999");
}

TEST(CommandWrappers, BenchChecksResponses) {
  const Bytes random8 = Hex("800100000014000000000008a69f1d8bf459f272");
  EXPECT_TRUE(bench::GetRandom(8).check(random8).has_value());
  EXPECT_FALSE(bench::GetRandom(32).check(random8).has_value());  // asked for 32 bytes
  EXPECT_FALSE(bench::GetRandom(8).check(Hex("80010000000a00000922")).has_value());  // RETRY

  const Bytes pcr0 =
      Hex("80010000003e000000000000001400000001000b03010000000000010020" + std::string(64, '0'));
  EXPECT_TRUE(bench::PcrRead().check(pcr0).has_value());

  const Bytes ecdsa =
      Hex("80020000005b00000000000000480018000b0020c898de1ee30cebebeb840bf0196848e09c91f6c4e8a4e2"
          "18ab9ae72aff4526cb002087df79ec07f417ed222f3a4d1dcef1d580d92dd88e963c6b6c46aee57bbcfcb9"
          "0000010000");
  EXPECT_TRUE(bench::Sign(0x80000000, false).check(ecdsa).has_value());
  EXPECT_FALSE(bench::Sign(0x80000000, true).check(ecdsa).has_value());  // not RSASSA

  const Bytes session = Hex("80020000001300000000000000000000010000");
  EXPECT_TRUE(bench::PcrExtend().check(session).has_value());
  EXPECT_TRUE(bench::NvDefineCounter(0x01500030).check(session).has_value());
  EXPECT_TRUE(bench::NvIncrement(0x01500030).check(session).has_value());
  EXPECT_FALSE(bench::NvIncrement(0x01500030).check(Hex("80020000000e0000000000000000")));

  // libtpms' answer to bench::CreatePrimary(false)
  const Bytes created =
      Hex("80020000013800000000800000000000012100580023000b00040072000000100018000b0003001000207d"
          "11faed8428216e26df7f2c8d3635bb51f0a20f71fecc0ffdc51179a73a0b360020bf59eb305c83a82940da"
          "6f4479c23be17d4612519bae83e6bf27ebc4e3e0ae530037000000000020e3b0c44298fc1c149afbf4c899"
          "6fb92427ae41e4649b934ca495991b7852b855010010000440000001000440000001000000205da041bac0"
          "ee3135aebb0cadfba497c6a1877fae832dd3d1f8f7a871b825e8548021400000010040d6d35fd42972738e"
          "99f64fef1ff5c48e9545820f5bad36594a1a783a437fa1df3b6f43690ad2ae16b2e788e059fa92647ecb72"
          "ae94a148b68415379b08a756ce0022000ba1d1d7a3313544bac52fb3ea940afc4fe160b56cbbd06223e24d"
          "12e2b44b48240000010000");
  EXPECT_TRUE(bench::CreatePrimary(false).check(created).has_value());
  EXPECT_FALSE(bench::CreatePrimary(true).check(created).has_value());  // not an RSA key
  EXPECT_EQ(bench::ObjectHandle(created), 0x80000000u);

  const Bytes plain = Hex("80010000000a00000000");
  EXPECT_TRUE(bench::Startup().check(plain).has_value());
  EXPECT_TRUE(bench::FlushContext(0x80000000).check(plain).has_value());
  EXPECT_FALSE(bench::FlushContext(0x80000000).check(Hex("80010000000b0000000000")));
  EXPECT_EQ(bench::ObjectHandle(plain), 0u);  // not a CreatePrimary response
}

TEST(CommandWrappers, FakesPcrValue) {
  const Bytes pcr16 =
      Hex("80010000003e000000000000001500000001000b03000001000000010020" + CountingHex(0x40));
  EXPECT_EQ(fakes::PcrValue(pcr16), bench::Counting(0x40));
  EXPECT_EQ(fakes::PcrValue(Hex("80010000000a0000018b")), Bytes{});  // an error
  EXPECT_EQ(fakes::Rc(Hex("80010000000a0000018b")), 0x18bu);
}

}  // namespace
}  // namespace vtpm
