#include "daemon/config.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace vtpm::daemon {
namespace {

TEST(Config, LibvirtCommandLineParses) {
  DaemonConfig c;
  ASSERT_TRUE(ParseCtrl("type=unixio,path=/run/x-swtpm.sock,mode=0600", c).has_value());
  ASSERT_TRUE(ParseTpmState("dir=/var/lib/libvirt/swtpm/u/tpm2,mode=0600", c).has_value());
  ASSERT_TRUE(ParseLog("file=/var/log/swtpm/x.log", c).has_value());
  EXPECT_EQ(c.ctrl.kind, Endpoint::Kind::kUnix);
  EXPECT_EQ(c.ctrl.path, "/run/x-swtpm.sock");
  EXPECT_EQ(c.ctrl.mode, 0600u);
  EXPECT_EQ(c.state_dir, "/var/lib/libvirt/swtpm/u/tpm2");
  EXPECT_EQ(c.state_mode, 0600u);
  EXPECT_EQ(c.log_level, 1);
  EXPECT_TRUE(Validate(c).has_value());
}

TEST(Config, CtrlTerminateAndTcp) {
  DaemonConfig c;
  ASSERT_TRUE(ParseCtrl("type=unixio,path=/x,terminate", c).has_value());
  EXPECT_TRUE(c.ctrl.terminate);
  DaemonConfig t;
  ASSERT_TRUE(ParseCtrl("type=tcp,port=2322,bindaddr=::1", t).has_value());
  EXPECT_EQ(t.ctrl.port, 2322);
  EXPECT_EQ(t.ctrl.bindaddr, "::1");
}

TEST(Config, BadValuesNameTheProblem) {
  DaemonConfig c;
  auto e = ParseCtrl("type=tcp,port=70000", c);
  ASSERT_FALSE(e.has_value());
  EXPECT_NE(e.error().message.find("port=70000"), std::string::npos);
  auto u = ParseServer("type=unixio,path=/x,bogus=1", c);
  ASSERT_FALSE(u.has_value());
  EXPECT_NE(u.error().message.find("'bogus'"), std::string::npos);
  EXPECT_FALSE(ParseCtrl("type=unixio", c).has_value());
  EXPECT_FALSE(ParseFlags("startup-sometimes", c).has_value());
  EXPECT_FALSE(ParseTpmState("mode=0600", c).has_value());
}

TEST(Config, MssimTcpOrUnixEndpointsAndLocked) {
  DaemonConfig t;
  ASSERT_TRUE(ParseMssim("port=2321,bindaddr=::1", t).has_value());
  EXPECT_EQ(t.mssim_port, 2321);
  EXPECT_EQ(t.mssim_bindaddr, "::1");
  EXPECT_FALSE(t.mssim_locked);
  EXPECT_TRUE(t.mssim());
  DaemonConfig u;
  ASSERT_TRUE(ParseMssim("path=/run/vtpm/sim,mode=0660,locked", u).has_value());
  EXPECT_EQ(u.mssim_path, "/run/vtpm/sim");
  EXPECT_EQ(u.mssim_mode, 0660u);
  EXPECT_TRUE(u.mssim_locked);
  EXPECT_FALSE(u.mssim_port);
  DaemonConfig both, neither, bad;
  auto e = ParseMssim("port=2321,path=/x", both);
  ASSERT_FALSE(e.has_value());
  EXPECT_NE(e.error().message.find("either port="), std::string::npos);
  EXPECT_FALSE(ParseMssim("locked", neither).has_value());
  EXPECT_FALSE(ParseMssim("path=/x,locked=yes", bad).has_value());
}

TEST(Config, TpmStateFsyncIsOnUnlessTurnedOff) {
  DaemonConfig c;
  ASSERT_TRUE(ParseTpmState("dir=/x,fsync", c).has_value());
  EXPECT_TRUE(c.state_fsync);
  ASSERT_TRUE(ParseTpmState("dir=/x,fsync=false", c).has_value());
  EXPECT_FALSE(c.state_fsync);
}

TEST(Config, StartupFlagsImplyNotNeedInit) {
  DaemonConfig c;
  ASSERT_TRUE(ParseFlags("startup-clear,disable-auto-shutdown", c).has_value());
  EXPECT_TRUE(c.not_need_init);
  EXPECT_EQ(c.startup, StartupType::kClear);
  EXPECT_FALSE(c.auto_shutdown);
}

TEST(Config, ServerWithoutCtrlNeedsNotNeedInit) {
  DaemonConfig c;
  ASSERT_TRUE(ParseTpmState("dir=/tmp", c).has_value());
  ASSERT_TRUE(ParseServer("type=tcp,port=2321", c).has_value());
  EXPECT_FALSE(Validate(c).has_value());
  ASSERT_TRUE(ParseFlags("not-need-init", c).has_value());
  EXPECT_TRUE(Validate(c).has_value());
}

TEST(Config, CapabilitiesAreJsonWithFeatures) {
  auto j = nlohmann::json::parse(CapabilitiesJson("1.2.3"));
  EXPECT_EQ(j["type"], "swtpm");
  EXPECT_EQ(j["version"], "1.2.3");
  auto features = j["features"].get<std::vector<std::string>>();
  EXPECT_NE(std::find(features.begin(), features.end(), "tpm-2.0"), features.end());
  EXPECT_NE(std::find(features.begin(), features.end(), "flags-opt-startup"), features.end());
  // What libvirt looks for before it passes an encryption secret (--key pwdfd=N).
  EXPECT_NE(std::find(features.begin(), features.end(), "cmdarg-key-fd"), features.end());
  EXPECT_NE(std::find(features.begin(), features.end(), "cmdarg-pwd-fd"), features.end());
}

}  // namespace
}  // namespace vtpm::daemon
