// Interoperability with the real swtpm (Debian's swtpm 0.7.1 on the development machines): a
// state directory swtpm wrote is one DirStore reads, and the other way round; and the lock is
// mutually exclusive. Skipped when swtpm or swtpm_ioctl is not on $PATH.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include "state/blob.h"
#include "state/dir_store.h"
#include "test_util.h"

namespace vtpm::state {
namespace {

using namespace std::chrono_literals;
using testing::Child;
using testing::FindOnPath;
using testing::Pattern;
using testing::ReadFileOrDie;
using testing::TempDir;
using testing::WriteFileOrDie;

class SwtpmCompatTest : public ::testing::Test {
 protected:
  void SetUp() override {
    swtpm_ = FindOnPath("swtpm");
    ioctl_ = FindOnPath("swtpm_ioctl");
    if (!swtpm_ || !ioctl_) {
      GTEST_SKIP() << "swtpm and swtpm_ioctl are not both on PATH (Debian: apt install swtpm "
                      "swtpm-tools); skipping the swtpm compatibility tests";
    }
  }

  // Starts `swtpm socket --tpm2` on |state_dir|; |flags| e.g. "not-need-init,startup-clear".
  std::unique_ptr<Child> StartSwtpm(const std::string& state_dir, const std::string& flags) {
    ::unlink(Ctrl().c_str());
    std::vector<std::string> argv = {*swtpm_,
                                     "socket",
                                     "--tpm2",
                                     "--tpmstate",
                                     "dir=" + state_dir,
                                     "--ctrl",
                                     "type=unixio,path=" + Ctrl(),
                                     "--server",
                                     "type=unixio,path=" + (work_ / "data")};
    if (!flags.empty()) {
      argv.push_back("--flags");
      argv.push_back(flags);
    }
    auto child = Child::Spawn(argv, Log());
    EXPECT_TRUE(child) << "cannot start " << *swtpm_;
    if (child && !testing::WaitForPath(Ctrl(), 2000ms)) {
      ADD_FAILURE() << "swtpm did not create its control socket; log:\n" << LogText();
      return nullptr;
    }
    return child;
  }

  // swtpm_ioctl --unix <ctrl> <args...>; true on exit status 0.
  bool Ioctl(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {*ioctl_, "--unix", Ctrl()};
    argv.insert(argv.end(), args.begin(), args.end());
    return testing::Run(argv, Log()) == 0;
  }

  void Shutdown(std::unique_ptr<Child>& swtpm) {
    EXPECT_TRUE(Ioctl({"-s"})) << LogText();
    EXPECT_EQ(swtpm->Wait(2000ms), 0) << LogText();
  }

  std::unique_ptr<DirStore> Store(const std::string& dir) {
    DirStoreOptions o;
    o.directory = dir;
    auto s = DirStore::Open(o, NullLogger());
    EXPECT_TRUE(s) << s.error().message;
    return s ? std::move(*s) : nullptr;
  }

  std::string MakeStateDir(const std::string& name) {
    const std::string d = work_ / name;
    EXPECT_EQ(::mkdir(d.c_str(), 0700), 0);
    return d;
  }

  // A fresh TPM 2 permall as libtpms made it (via swtpm; we have no engine at this layer):
  // `swtpm_ioctl --save permanent` output, in migration form.
  Bytes SwtpmMigrationBlob() {
    const std::string dir = MakeStateDir("source");
    auto swtpm = StartSwtpm(dir, "not-need-init,startup-clear");
    if (!swtpm) return {};
    EXPECT_TRUE(Ioctl({"--save", "permanent", work_ / "saved"})) << LogText();
    Shutdown(swtpm);
    return ReadFileOrDie(work_ / "saved");
  }

  std::string Ctrl() const { return work_ / "ctrl"; }
  std::string Log() const { return work_ / "swtpm.log"; }
  std::string LogText() const {
    return testing::Exists(Log())
               ? std::string(reinterpret_cast<const char*>(ReadFileOrDie(Log()).data()),
                             ReadFileOrDie(Log()).size())
               : "";
  }

  TempDir work_;
  std::optional<std::string> swtpm_, ioctl_;
};

TEST_F(SwtpmCompatTest, DirStoreReadsWhatSwtpmWrote) {
  const std::string dir = MakeStateDir("swtpm-written");
  auto swtpm = StartSwtpm(dir, "not-need-init,startup-clear");
  ASSERT_TRUE(swtpm);
  ASSERT_TRUE(Ioctl({"--save", "permanent", work_ / "saved"})) << LogText();

  // swtpm holds the lock now (classic fcntl lock): we must be refused, naming its pid.
  auto store = Store(dir);
  auto lock = store->Lock();
  ASSERT_FALSE(lock);
  EXPECT_EQ(lock.error().code, Errc::kBusy);
  EXPECT_NE(lock.error().message.find("process " + std::to_string(swtpm->pid())), std::string::npos)
      << lock.error().message;

  Shutdown(swtpm);
  ASSERT_TRUE(store->Lock()) << "lock still held after swtpm exited";

  auto inner = store->Load("permall");
  ASSERT_TRUE(inner) << inner.error().message;
  ASSERT_TRUE(inner->has_value());
  EXPECT_GT((*inner)->size(), 1000u);
  // Our encoders produce swtpm's bytes exactly: the file, and the GET_STATEBLOB answer.
  const Bytes file = ReadFileOrDie(dir + "/tpm2-00.permall");
  EXPECT_EQ(EncodeFileBlob(**inner), file);
  const Bytes saved = ReadFileOrDie(work_ / "saved");
  EXPECT_EQ(DecodeStateBlob(saved).value(), **inner);
  EXPECT_EQ(EncodeMigrationBlob(**inner), saved);
  EXPECT_EQ(ToHex(ByteSpan(saved).first(10)),
            "0201000a0004" + ToHex(ByteSpan(saved).subspan(6, 4)));

  auto list = InspectStateDir(dir, TpmVersion::kTpm20);
  ASSERT_TRUE(list);
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].newest.size, file.size());
  EXPECT_TRUE((*list)[0].newest.usable());
  EXPECT_FALSE((*list)[0].newest.sealed);  // swtpm does not write vtpm's seal
}

TEST_F(SwtpmCompatTest, SwtpmStartsFromStateDirStoreWrote) {
  const Bytes inner = DecodeStateBlob(SwtpmMigrationBlob()).value_or(Bytes{});
  ASSERT_GT(inner.size(), 1000u);

  const std::string dir = MakeStateDir("vtpm-written");
  {
    auto store = Store(dir);
    ASSERT_TRUE(store->Lock());
    ASSERT_TRUE(store->Store("permall", Pattern(100, 1)));  // so there is a .bak too
    ASSERT_TRUE(store->Store("permall", inner));
  }
  // What swtpm is given carries vtpm's seal record after DATA.
  ASSERT_TRUE(DecodeStateFile(ReadFileOrDie(dir + "/tpm2-00.permall")).value().generation);
  // No --flags: swtpm waits for CMD_INIT, which loads the permall (an unreadable one fails it).
  auto swtpm = StartSwtpm(dir, "");
  ASSERT_TRUE(swtpm);
  ASSERT_TRUE(Ioctl({"-i"})) << "swtpm refused the state DirStore wrote:\n" << LogText();
  ASSERT_TRUE(Ioctl({"--save", "permanent", work_ / "again"})) << LogText();
  EXPECT_FALSE(Store(dir)->Lock()) << "swtpm does not hold the lock DirStore uses";
  Shutdown(swtpm);
  EXPECT_EQ(DecodeStateBlob(ReadFileOrDie(work_ / "again")).value(), inner);
}

TEST_F(SwtpmCompatTest, SwtpmAcceptsOurMigrationBlob) {
  const Bytes inner = DecodeStateBlob(SwtpmMigrationBlob()).value_or(Bytes{});
  ASSERT_GT(inner.size(), 1000u);

  const std::string dir = MakeStateDir("target");
  auto swtpm = StartSwtpm(dir, "");
  ASSERT_TRUE(swtpm);
  WriteFileOrDie(work_ / "ours", EncodeMigrationBlob(inner));
  ASSERT_TRUE(Ioctl({"--load", "permanent", work_ / "ours"})) << LogText();  // CMD_SET_STATEBLOB
  ASSERT_TRUE(Ioctl({"-i"})) << LogText();
  ASSERT_TRUE(Ioctl({"--save", "permanent", work_ / "again"})) << LogText();
  Shutdown(swtpm);
  EXPECT_EQ(DecodeStateBlob(ReadFileOrDie(work_ / "again")).value(), inner);
  // And swtpm stored it in the file form we read.
  auto loaded = Store(dir)->Load("permall");
  ASSERT_TRUE(loaded && loaded->has_value());
  EXPECT_EQ(**loaded, inner);
}

}  // namespace
}  // namespace vtpm::state
