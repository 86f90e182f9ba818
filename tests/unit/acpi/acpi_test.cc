// ACPI builders: golden bytes (from iasl-compiled references in docs/DEVICES.md §4), and
// every table decompiled with iasl (Debian acpica-tools) and checked field by field.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <regex>
#include <sstream>

#include "acpi/tpm_tables.h"
#include "fakes/tpm_fixture.h"

namespace vtpm::acpi {
namespace {

using testing::Hex;

uint8_t Sum(const Bytes& b) {
  uint8_t s = 0;
  for (uint8_t x : b) s = static_cast<uint8_t>(s + x);
  return s;
}

TEST(Tpm2Table, MatchesTheIaslCompiledReferenceByteForByte) {
  // docs/DEVICES.md §4.1: `iasl -T TPM2` template, control 0xFED40040, start method 7, LAML
  // 0x10000.
  Tpm2TableConfig c;
  c.control_area = 0xFED40040;
  c.log_area_minimum_length = 0x10000;
  c.ids = {"VTPM", "VTPMTPM2", 1, "INTL", 0x20200925};
  // The hexdump in docs/DEVICES.md §4.1, line by line.
  EXPECT_EQ(ToHex(BuildTpm2Table(c)),
            "54504d324c00000004dc5654504d2020"
            "5654504d54504d3201000000494e544c"
            "2509202000000000400"
            "0d4fe00000000"
            "07000000000000000000000000000000"
            "000001000000000000000000");
}

TEST(Tpm2Table, LayoutsAndChecksums) {
  Tpm2TableConfig c;
  c.start_method = StartMethod::kTisFifo;
  Bytes t = BuildTpm2Table(c);
  EXPECT_EQ(t.size(), 76u);
  EXPECT_EQ(t[8], 4);  // revision
  EXPECT_EQ(Sum(t), 0);
  EXPECT_EQ(t[48], 6);
  c.log_fields = false;
  t = BuildTpm2Table(c);
  EXPECT_EQ(t.size(), 64u);
  EXPECT_EQ(Sum(t), 0);
  t = BuildTcpaTable({});
  EXPECT_EQ(t.size(), 50u);
  EXPECT_EQ(Sum(t), 0);
}

TEST(TpmDeviceAml, MatchesTheIaslCompiledReferenceByteForByte) {
  // docs/DEVICES.md §4.3: Device(TPM_) with _HID, _STR, _UID One, _STA 0x0F, _CRS
  // 0xFED40000/0x5000.
  auto aml = BuildTpmDeviceAml({});
  ASSERT_TRUE(aml);
  Bytes str;
  for (char ch : std::string("TPM 2.0 Device")) str.insert(str.end(), {uint8_t(ch), 0});
  Bytes expect =
      Hex("5b824006 54504d5f"
          "085f4849440d4d53465430313031 00"
          "085f535452 11210a1e");
  expect.insert(expect.end(), str.begin(), str.end());
  Bytes tail =
      Hex("0000 085f55494401 085f5354410a0f"
          "085f435253 11110a0e 860900010000d4fe00500000 7900");
  expect.insert(expect.end(), tail.begin(), tail.end());
  EXPECT_EQ(ToHex(*aml), ToHex(expect));
}

TEST(TpmDeviceAml, RejectsBadNamesAndRanges) {
  TpmDeviceConfig c;
  c.name = "tpm";
  EXPECT_FALSE(BuildTpmDeviceAml(c));
  c.name = "TPM0X";
  EXPECT_FALSE(BuildTpmDeviceAml(c));
  c.name = "TPM";
  c.base = 0x1'0000'0000;
  EXPECT_FALSE(BuildTpmDeviceAml(c));
}

// --- iasl -----------------------------------------------------------------------------------

class Iasl : public ::testing::Test {
 protected:
  void SetUp() override {
    if (std::system("command -v iasl >/dev/null 2>&1") != 0) {
      GTEST_SKIP() << "iasl not installed (Debian acpica-tools; ./dev.sh setup installs it)";
    }
  }
  // Writes |table|, decompiles it with `iasl -d`, returns the .dsl text.
  std::string Decompile(const Bytes& table, const std::string& name) {
    const std::string bin = dir_.path() + "/" + name + ".dat";
    std::ofstream(bin, std::ios::binary)
        .write(reinterpret_cast<const char*>(table.data()),
               static_cast<std::streamsize>(table.size()));
    const std::string cmd = "cd " + dir_.path() + " && iasl -d " + name + ".dat >iasl.log 2>&1";
    EXPECT_EQ(std::system(cmd.c_str()), 0) << "iasl failed on " << name;
    std::ifstream in(dir_.path() + "/" + name + ".dsl");
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  static bool Has(const std::string& text, const std::string& pattern) {
    return std::regex_search(text, std::regex(pattern));
  }
  testing::TempDir dir_;
};

TEST_F(Iasl, Tpm2TableForCrbDecompilesFieldByField) {
  Tpm2TableConfig c;
  c.control_area = 0xFED40040;
  c.log_area_minimum_length = 0x10000;
  c.log_area_start_address = 0x7FFF0000;
  std::string d = Decompile(BuildTpm2Table(c), "tpm2");
  EXPECT_TRUE(Has(d, R"(Signature : "TPM2")")) << d;
  EXPECT_TRUE(Has(d, R"(Table Length : 0000004C)"));
  EXPECT_TRUE(Has(d, R"(Revision : 04)"));
  EXPECT_TRUE(Has(d, R"(Platform Class : 0000)"));
  EXPECT_TRUE(Has(d, R"(Control Address : 00000000FED40040)"));
  EXPECT_TRUE(Has(d, R"(Start Method : 07 \[Command Response Buffer\])"));
  EXPECT_TRUE(Has(d, R"(Method Parameters : 00 00 00 00 00 00 00 00 00 00 00 00)"));
  EXPECT_TRUE(Has(d, R"(Minimum Log Length : 00010000)"));
  EXPECT_TRUE(Has(d, R"(Log Address : 000000007FFF0000)"));
  EXPECT_FALSE(Has(d, "[Ii]nvalid|[Ee]rror"));
}

TEST_F(Iasl, Tpm2TableForTisDecompilesFieldByField) {
  Tpm2TableConfig c;
  c.start_method = StartMethod::kTisFifo;
  std::string d = Decompile(BuildTpm2Table(c), "tpm2tis");
  EXPECT_TRUE(Has(d, R"(Control Address : 0000000000000000)")) << d;
  EXPECT_TRUE(Has(d, R"(Start Method : 06 \[Memory Mapped I/O\])")) << d;
}

TEST_F(Iasl, TcpaTableDecompilesFieldByField) {
  TcpaTableConfig c;
  c.log_area_start_address = 0x12345000;
  std::string d = Decompile(BuildTcpaTable(c), "tcpa");
  EXPECT_TRUE(Has(d, R"(Signature : "TCPA")")) << d;
  EXPECT_TRUE(Has(d, R"(Revision : 02)"));
  EXPECT_TRUE(Has(d, R"(Platform Class : 0000)"));
  EXPECT_TRUE(Has(d, R"(Min Event Log Length : 00010000)"));
  EXPECT_TRUE(Has(d, R"(Event Log Address : 0000000012345000)"));
}

TEST_F(Iasl, TisDeviceWithInterruptAndExtraRange) {
  TpmDeviceConfig c;
  c.irq = 5;
  c.extra_ranges = {{0x7F000000, 0x1000}};
  auto ssdt = BuildTpmSsdt(c);
  ASSERT_TRUE(ssdt);
  EXPECT_EQ(Sum(*ssdt), 0);
  std::string d = Decompile(*ssdt, "ssdt");
  EXPECT_TRUE(Has(d, R"(Scope \(\\_SB\))")) << d;
  EXPECT_TRUE(Has(d, R"(Device \(TPM\))"));
  EXPECT_TRUE(Has(d, R"(Name \(_HID, "MSFT0101")"));
  EXPECT_TRUE(Has(d, R"(Name \(_STR, Unicode \("TPM 2.0 Device"\)\))"));
  EXPECT_TRUE(Has(d, R"(Name \(_UID, One\))"));
  EXPECT_TRUE(Has(d, R"(Name \(_STA, 0x0F\))"));
  EXPECT_TRUE(
      Has(d, R"(Memory32Fixed \(ReadWrite,\s+0xFED40000,\s+// Address Base\s+0x00005000,)"));
  EXPECT_TRUE(
      Has(d, R"(Memory32Fixed \(ReadWrite,\s+0x7F000000,\s+// Address Base\s+0x00001000,)"));
  EXPECT_TRUE(Has(
      d,
      R"(Interrupt \(ResourceConsumer, Level, ActiveHigh, Exclusive, ,, \)\s+\{\s+0x00000005,)"));
}

TEST_F(Iasl, CrbDeviceWithoutInterrupt) {
  TpmDeviceConfig c;
  c.size = 0x1000;
  c.uid = 7;
  auto ssdt = BuildTpmSsdt(c);
  ASSERT_TRUE(ssdt);
  std::string d = Decompile(*ssdt, "ssdtcrb");
  EXPECT_TRUE(Has(d, R"(0xFED40000,\s+// Address Base\s+0x00001000,)")) << d;
  EXPECT_TRUE(Has(d, R"(Name \(_UID, 0x07\))"));
  EXPECT_FALSE(Has(d, "Interrupt"));
}

TEST_F(Iasl, Tpm12DeviceUsesPnp0c31) {
  TpmDeviceConfig c;
  c.tpm2 = false;
  auto ssdt = BuildTpmSsdt(c);
  ASSERT_TRUE(ssdt);
  std::string d = Decompile(*ssdt, "ssdt12");
  EXPECT_TRUE(Has(d, R"(Name \(_HID, EisaId \("PNP0C31"\)\))")) << d;
  EXPECT_TRUE(Has(d, R"(Unicode \("TPM 1.2 Device"\))"));
}

}  // namespace
}  // namespace vtpm::acpi
