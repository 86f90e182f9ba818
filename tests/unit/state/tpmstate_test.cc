#include "state/tpmstate.h"

#include <gtest/gtest.h>

namespace vtpm::state {
namespace {

TEST(TpmStateOption, SwtpmSocketSpellings) {
  auto o = ParseTpmState("dir=/v/tpm,mode=0640,fsync=false,backup,lock", false);
  ASSERT_TRUE(o) << o.error().message;
  EXPECT_EQ(o->directory, "/v/tpm");
  EXPECT_EQ(o->file_mode, 0640u);
  EXPECT_FALSE(o->fsync);
  EXPECT_TRUE(o->use_previous_on_damage);
  o = ParseTpmState("backend-uri=dir:///v/tpm", false);
  ASSERT_TRUE(o);
  EXPECT_EQ(o->directory, "/v/tpm");
  EXPECT_TRUE(o->fsync);
  EXPECT_FALSE(o->use_previous_on_damage);
  EXPECT_FALSE(ParseTpmState("/v/tpm", false));  // `vtpm socket` wants dir=
}

TEST(TpmStateOption, SwtpmSetupSpellings) {
  for (const char* v : {"/v/tpm", "dir:///v/tpm", "dir=/v/tpm"}) {
    auto o = ParseTpmState(v, true, "--tpm-state");
    ASSERT_TRUE(o) << v << ": " << o.error().message;
    EXPECT_EQ(o->directory, "/v/tpm") << v;
  }
}

TEST(TpmStateOption, RefusalsNameTheProblem) {
  auto r = ParseTpmState("file:///v/tpm.img", true, "--tpm-state");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::kUnsupported);
  EXPECT_NE(r.error().message.find("--tpm-state file://"), std::string::npos);
  r = ParseTpmState("dir=/v,mode=0400", false);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("0600"), std::string::npos) << r.error().message;
  r = ParseTpmState("dir=/v,colour=blue", false);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("'colour'"), std::string::npos) << r.error().message;
  EXPECT_FALSE(ParseTpmState("dir=/v,backup=maybe", false));
  EXPECT_FALSE(ParseTpmState("mode=0600", false));
  EXPECT_FALSE(ParseTpmState("", true));
}

}  // namespace
}  // namespace vtpm::state
