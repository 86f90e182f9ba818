#include "provision/swtpm_config.h"

#include <gtest/gtest.h>

#include <fstream>

#include "fakes/tpm_fixture.h"

namespace vtpm::provision {
namespace {

using vtpm::testing::TempDir;

void WriteText(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary);
  f << text;
}

TEST(SwtpmConfig, ParsesDebianDefaults) {
  TempDir tmp;
  // Debian 12's /etc/swtpm_setup.conf, /etc/swtpm-localca.conf and .options.
  WriteText(tmp.path() + "/swtpm_setup.conf",
            "# Program invoked for creating certificates\n"
            "create_certs_tool= /usr/bin/swtpm_localca\n"
            "create_certs_tool_config = " +
                tmp.path() +
                "/swtpm-localca.conf\n"
                "create_certs_tool_options = " +
                tmp.path() +
                "/swtpm-localca.options\n"
                "# Comma-separated list (no spaces) of PCR banks to activate by default\n"
                "active_pcr_banks = sha256\n");
  WriteText(tmp.path() + "/swtpm-localca.conf",
            "statedir = /var/lib/swtpm-localca\n"
            "signingkey = /var/lib/swtpm-localca/signkey.pem\n"
            "issuercert = /var/lib/swtpm-localca/issuercert.pem\n"
            "certserial = /var/lib/swtpm-localca/certserial\n");
  WriteText(tmp.path() + "/swtpm-localca.options",
            "--platform-manufacturer Fedora\n--platform-version 2.1\n--platform-model QEMU\n");
  auto c = LoadSwtpmSetupConfig(tmp.path() + "/swtpm_setup.conf");
  ASSERT_TRUE(c.has_value()) << c.error().message;
  EXPECT_EQ(c->active_pcr_banks, "sha256");
  EXPECT_FALSE(c->rsa_keysize.has_value());
  EXPECT_EQ(c->localca_config, tmp.path() + "/swtpm-localca.conf");
  auto l = LoadSwtpmLocalCaConfig(c->localca_config);
  ASSERT_TRUE(l.has_value());
  EXPECT_EQ(l->signing_key, "/var/lib/swtpm-localca/signkey.pem");
  EXPECT_EQ(l->issuer_cert, "/var/lib/swtpm-localca/issuercert.pem");
  auto o = LoadSwtpmLocalCaOptions(c->localca_options);
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(o->platform_manufacturer, "Fedora");
  EXPECT_EQ(o->platform_version, "2.1");
  EXPECT_EQ(o->platform_model, "QEMU");
}

TEST(SwtpmConfig, MissingFileIsAClearError) {
  auto c = LoadSwtpmSetupConfig("/nonexistent/swtpm_setup.conf");
  ASSERT_FALSE(c.has_value());
  EXPECT_NE(c.error().message.find("does not exist"), std::string::npos);
}

TEST(SwtpmConfig, FindsUserConfigFirst) {
  TempDir tmp;
  WriteText(tmp.path() + "/swtpm_setup.conf", "active_pcr_banks = sha1\n");
  EXPECT_EQ(FindSwtpmSetupConfig(tmp.path().c_str(), "/nonexistent"),
            tmp.path() + "/swtpm_setup.conf");
}

TEST(SwtpmConfig, ParseConfigTextIgnoresJunk) {
  auto kv = ParseConfigText("a=1\n  # c = 3\nnoequals\n b = two words \n\na = 4");
  EXPECT_EQ(kv.size(), 2u);
  EXPECT_EQ(kv["a"], "4");
  EXPECT_EQ(kv["b"], "two words");
}

}  // namespace
}  // namespace vtpm::provision
