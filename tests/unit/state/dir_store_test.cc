#include "state/dir_store.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/unique_fd.h"
#include "state/blob.h"
#include "test_util.h"

namespace vtpm::state {
namespace {

using testing::CapturingLogger;
using testing::Exists;
using testing::ListDir;
using testing::Pattern;
using testing::ReadFileOrDie;
using testing::TempDir;
using testing::WriteFileOrDie;

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

class DirStoreTest : public ::testing::Test {
 protected:
  DirStoreOptions Options() const {
    DirStoreOptions o;
    o.directory = dir_.path();
    o.fsync = true;  // the real thing; the tests write a few KiB
    return o;
  }
  std::unique_ptr<DirStore> OpenStore(DirStoreOptions o) {
    auto s = DirStore::Open(o, log_.logger());
    EXPECT_TRUE(s.has_value()) << s.error().message;
    return s ? std::move(*s) : nullptr;
  }
  std::unique_ptr<DirStore> OpenStore() { return OpenStore(Options()); }
  // The libtpms blob inside a state file on disk.
  Bytes Inner(const TempDir& dir, const std::string& file) {
    auto r = DecodeFileBlob(ReadFileOrDie(dir / file));
    EXPECT_TRUE(r.has_value()) << file << ": " << r.error().message;
    return r.value_or(Bytes{});
  }
  Bytes Inner(const std::string& file) { return Inner(dir_, file); }

  TempDir dir_;
  CapturingLogger log_;
  const Bytes a_ = Pattern(1299, 1), b_ = Pattern(1400, 2), c_ = Pattern(900, 3);
};

TEST_F(DirStoreTest, OpenRequiresAnExistingDirectory) {
  DirStoreOptions o = Options();
  o.directory = dir_ / "missing";
  auto s = DirStore::Open(o, log_.logger());
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, Errc::kNotFound);
  EXPECT_TRUE(Contains(s.error().message, o.directory)) << s.error().message;
  EXPECT_TRUE(Contains(s.error().message, "mkdir")) << s.error().message;

  WriteFileOrDie(dir_ / "plainfile", Bytes{1});
  o.directory = dir_ / "plainfile";
  s = DirStore::Open(o, log_.logger());
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, Errc::kInvalidArgument);
}

TEST_F(DirStoreTest, OpenRejectsBadModes) {
  for (mode_t mode : {mode_t{0200}, mode_t{0400}, mode_t{04600}, mode_t{01600}}) {
    DirStoreOptions o = Options();
    o.file_mode = mode;
    auto s = DirStore::Open(o, log_.logger());
    ASSERT_FALSE(s) << std::oct << mode;
    EXPECT_EQ(s.error().code, Errc::kInvalidArgument);
  }
}

TEST_F(DirStoreTest, StoreWritesSwtpmFileFormatAndLoadReadsIt) {
  auto store = OpenStore();
  EXPECT_EQ(store->Load("permall").value(), std::nullopt);
  EXPECT_FALSE(store->HasState().value());

  ASSERT_TRUE(store->Store("permall", a_)) << "store";
  EXPECT_EQ(ReadFileOrDie(dir_ / "tpm2-00.permall"), EncodeSealedFileBlob(a_, 1));
  EXPECT_EQ(store->Load("permall").value(), a_);
  EXPECT_TRUE(store->HasState().value());
  EXPECT_EQ(store->PathFor("permall"), dir_ / "tpm2-00.permall");

  ASSERT_TRUE(store->Store("volatilestate", c_));
  EXPECT_EQ(store->Load("volatilestate").value(), c_);
  EXPECT_EQ(ListDir(dir_.path()),
            (std::vector<std::string>{"tpm2-00.permall", "tpm2-00.volatilestate"}));
}

TEST_F(DirStoreTest, Tpm12UsesItsPrefix) {
  DirStoreOptions o = Options();
  o.tpm_version = TpmVersion::kTpm12;
  auto store = OpenStore(o);
  ASSERT_TRUE(store->Store("permall", a_));
  EXPECT_EQ(Inner("tpm-00.permall"), a_);
  EXPECT_FALSE(Exists(dir_ / "tpm2-00.permall"));
}

TEST_F(DirStoreTest, FilesGetExactlyTheConfiguredMode) {
  struct stat st {};
  auto store = OpenStore();
  ASSERT_TRUE(store->Store("permall", a_));
  ASSERT_EQ(::stat((dir_ / "tpm2-00.permall").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);

  DirStoreOptions o = Options();
  o.file_mode = 0640;
  auto store2 = OpenStore(o);
  const mode_t old = ::umask(077);  // would narrow 0640 to 0600 without the fchmod
  const bool ok = store2->Store("volatilestate", a_).has_value();
  ::umask(old);
  ASSERT_TRUE(ok);
  ASSERT_EQ(::stat((dir_ / "tpm2-00.volatilestate").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0640u);
}

TEST_F(DirStoreTest, InvalidNamesAreRefused) {
  auto store = OpenStore();
  const std::string too_long(65, 'x');
  const std::string_view names[] = {
      "", "../permall", "a/b", "permall.bak", std::string_view("a\0b", 3), too_long};
  for (std::string_view name : names) {
    auto r = store->Store(name, a_);
    ASSERT_FALSE(r) << name;
    EXPECT_EQ(r.error().code, Errc::kInvalidArgument);
    EXPECT_FALSE(store->Load(name));
    EXPECT_FALSE(store->Delete(name, false));
  }
  EXPECT_TRUE(ListDir(dir_.path()).empty());
}

TEST_F(DirStoreTest, EachStoreKeepsThePreviousGeneration) {
  auto store = OpenStore();
  ASSERT_TRUE(store->Store("permall", a_));
  EXPECT_FALSE(Exists(dir_ / "tpm2-00.permall.bak"));
  ASSERT_TRUE(store->Store("permall", b_));
  EXPECT_EQ(Inner("tpm2-00.permall"), b_);
  EXPECT_EQ(Inner("tpm2-00.permall.bak"), a_);
  ASSERT_TRUE(store->Store("permall", c_));
  EXPECT_EQ(Inner("tpm2-00.permall"), c_);
  EXPECT_EQ(Inner("tpm2-00.permall.bak"), b_);
  EXPECT_EQ(store->Load("permall").value(), c_);
  // No temporary files or links left over.
  EXPECT_EQ(ListDir(dir_.path()),
            (std::vector<std::string>{"tpm2-00.permall", "tpm2-00.permall.bak"}));
}

// libtpms rewrites an unchanged permall (e.g. on every TPM2_Startup): identical bytes cost no I/O,
// and the .bak stays the genuinely previous generation.
TEST_F(DirStoreTest, StoringIdenticalBytesAgainWritesNothing) {
  auto store = OpenStore();
  ASSERT_TRUE(store->Store("permall", a_));
  ASSERT_TRUE(store->Store("permall", b_));
  struct stat before {};
  ASSERT_EQ(::stat((dir_ / "tpm2-00.permall").c_str(), &before), 0);
  ASSERT_TRUE(store->Store("permall", b_));
  struct stat after {};
  ASSERT_EQ(::stat((dir_ / "tpm2-00.permall").c_str(), &after), 0);
  EXPECT_EQ(before.st_ino, after.st_ino);
  EXPECT_EQ(Inner("tpm2-00.permall.bak"), a_);
  // The same holds for bytes first seen through Load() by a new store.
  store.reset();
  auto again = OpenStore();
  ASSERT_EQ(again->Load("permall").value(), b_);
  ASSERT_TRUE(again->Store("permall", b_));
  ASSERT_EQ(::stat((dir_ / "tpm2-00.permall").c_str(), &after), 0);
  EXPECT_EQ(before.st_ino, after.st_ino);
  // Different bytes are written as usual.
  ASSERT_TRUE(again->Store("permall", c_));
  EXPECT_EQ(Inner("tpm2-00.permall"), c_);
  EXPECT_EQ(Inner("tpm2-00.permall.bak"), b_);
}

// After a crash between "rename link to .bak" and "rename temp to file", file and .bak are the
// same inode; rename(link, .bak) is then a no-op that must not leave the link behind.
TEST_F(DirStoreTest, StoreWhenBakIsAHardLinkOfTheFile) {
  auto store = OpenStore();
  ASSERT_TRUE(store->Store("permall", a_));
  ASSERT_EQ(::link((dir_ / "tpm2-00.permall").c_str(), (dir_ / "tpm2-00.permall.bak").c_str()), 0);
  ASSERT_TRUE(store->Store("permall", b_));
  EXPECT_EQ(Inner("tpm2-00.permall"), b_);
  EXPECT_EQ(Inner("tpm2-00.permall.bak"), a_);
  EXPECT_EQ(ListDir(dir_.path()),
            (std::vector<std::string>{"tpm2-00.permall", "tpm2-00.permall.bak"}));
}

TEST_F(DirStoreTest, SymlinkAtTheTargetIsNeitherFollowedNorReplaced) {
  TempDir elsewhere;
  const std::string target = elsewhere / "victim";
  WriteFileOrDie(target, EncodeFileBlob(a_));  // a valid blob: following the link would "work"
  ASSERT_EQ(::symlink(target.c_str(), (dir_ / "tpm2-00.permall").c_str()), 0);
  auto store = OpenStore();

  auto loaded = store->Load("permall");
  ASSERT_FALSE(loaded);
  EXPECT_EQ(loaded.error().code, Errc::kFailedPrecondition);
  EXPECT_TRUE(Contains(loaded.error().message, "symbolic link")) << loaded.error().message;

  auto stored = store->Store("permall", b_);
  ASSERT_FALSE(stored);
  EXPECT_EQ(stored.error().code, Errc::kFailedPrecondition);
  EXPECT_EQ(ReadFileOrDie(target), EncodeFileBlob(a_));
  struct stat st {};
  ASSERT_EQ(::lstat((dir_ / "tpm2-00.permall").c_str(), &st), 0);
  EXPECT_TRUE(S_ISLNK(st.st_mode));
  EXPECT_FALSE(store->HasState());
  EXPECT_EQ(ListDir(dir_.path()), (std::vector<std::string>{"tpm2-00.permall"}));  // no temps
}

TEST_F(DirStoreTest, FifoIsRefusedWithoutBlocking) {
  ASSERT_EQ(::mkfifo((dir_ / "tpm2-00.permall").c_str(), 0600), 0);
  auto store = OpenStore();
  auto r = store->Load("permall");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::kFailedPrecondition);
}

// Writes a_ then b_ (b_ newest, a_ the .bak), then damages the newest file with |damage|.
template <class F>
void WriteTwoGenerationsAndDamage(DirStore& store, const TempDir& dir, const Bytes& a,
                                  const Bytes& b, F damage) {
  ASSERT_TRUE(store.Store("permall", a));
  ASSERT_TRUE(store.Store("permall", b));
  Bytes file = ReadFileOrDie(dir / "tpm2-00.permall");
  damage(file);
  WriteFileOrDie(dir / "tpm2-00.permall", file);
}

void Truncate(Bytes& f) { f.resize(f.size() / 2); }         // torn write
void FlipAMiddleBit(Bytes& f) { f[f.size() / 2] ^= 0x10; }  // the framing stays valid

// Fail closed: the default never serves older state in place of a damaged newest one.
TEST_F(DirStoreTest, DamagedNewestIsRefusedByDefaultNamingFileAndRecovery) {
  for (auto damage : {Truncate, FlipAMiddleBit}) {
    TempDir dir;
    DirStoreOptions o = Options();
    o.directory = dir.path();
    auto store = OpenStore(o);
    WriteTwoGenerationsAndDamage(*store, dir, a_, b_, damage);
    const Bytes damaged = ReadFileOrDie(dir / "tpm2-00.permall");

    auto r = store->Load("permall");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, Errc::kCorrupt);
    const std::string& m = r.error().message;
    EXPECT_TRUE(Contains(m, dir / "tpm2-00.permall:")) << m;
    EXPECT_TRUE(Contains(m, dir / "tpm2-00.permall.bak (generation 1,")) << m;
    EXPECT_TRUE(Contains(m, "vtpm state rollback --tpmstate dir=" + dir.path())) << m;
    EXPECT_TRUE(Contains(m, "--tpmstate dir=" + dir.path() + ",backup")) << m;
    EXPECT_FALSE(store->FallBackToPreviousGeneration());
    EXPECT_TRUE(Contains(log_.text(), "vtpm state rollback")) << log_.text();
    EXPECT_FALSE(store->CheckStartable());
    // Nothing changed on disk.
    EXPECT_EQ(ReadFileOrDie(dir / "tpm2-00.permall"), damaged);
    EXPECT_EQ(Inner(dir, "tpm2-00.permall.bak"), a_);
  }
}

TEST_F(DirStoreTest, FlippedBitIsNamedAsSealMismatch) {
  auto store = OpenStore();
  WriteTwoGenerationsAndDamage(*store, dir_, a_, b_, FlipAMiddleBit);
  auto r = store->Load("permall");
  ASSERT_FALSE(r);
  EXPECT_TRUE(Contains(r.error().message, "seal does not match")) << r.error().message;
}

TEST_F(DirStoreTest, DamagedNewestFallsBackToBakWithConsent) {
  DirStoreOptions o = Options();
  o.use_previous_on_damage = true;
  auto store = OpenStore(o);
  WriteTwoGenerationsAndDamage(*store, dir_, a_, b_, Truncate);
  const Bytes broken = ReadFileOrDie(dir_ / "tpm2-00.permall");
  ASSERT_TRUE(store->Store("volatilestate", c_));
  ASSERT_TRUE(store->CheckStartable());

  EXPECT_EQ(store->Load("permall").value(), a_);
  const std::string log = log_.text();
  EXPECT_TRUE(Contains(log, "warn")) << log;
  EXPECT_TRUE(Contains(log, dir_ / "tpm2-00.permall:")) << log;
  EXPECT_TRUE(Contains(log, dir_ / "tpm2-00.permall.bak")) << log;
  // The volatile state belongs to the newer generation: never mixed with the older one.
  EXPECT_EQ(store->Load("volatilestate").value(), std::nullopt);

  // The next write must not rotate the damaged file into .bak.
  ASSERT_TRUE(store->Store("permall", c_));
  EXPECT_EQ(Inner("tpm2-00.permall"), c_);
  EXPECT_EQ(Inner("tpm2-00.permall.bak"), a_);
  EXPECT_EQ(ReadFileOrDie(dir_ / "tpm2-00.permall.rejected"), broken);
  // And after that, back to normal rotation.
  ASSERT_TRUE(store->Store("permall", b_));
  EXPECT_EQ(Inner("tpm2-00.permall.bak"), c_);
}

TEST_F(DirStoreTest, DamagedVolatileStateIsRefusedOrSetAsideWithConsent) {
  {
    auto store = OpenStore();
    ASSERT_TRUE(store->Store("permall", a_));
    ASSERT_TRUE(store->Store("volatilestate", c_));
  }
  Bytes vol = ReadFileOrDie(dir_ / "tpm2-00.volatilestate");
  FlipAMiddleBit(vol);
  WriteFileOrDie(dir_ / "tpm2-00.volatilestate", vol);

  auto strict = OpenStore();
  auto r = strict->Load("volatilestate");
  ASSERT_FALSE(r);
  EXPECT_TRUE(Contains(r.error().message, "vtpm state rollback")) << r.error().message;
  EXPECT_FALSE(strict->CheckStartable());
  strict.reset();

  DirStoreOptions o = Options();
  o.use_previous_on_damage = true;
  auto lenient = OpenStore(o);
  EXPECT_TRUE(lenient->CheckStartable());
  EXPECT_EQ(lenient->Load("permall").value(), a_);
  EXPECT_EQ(lenient->Load("volatilestate").value(), std::nullopt);
  ASSERT_TRUE(lenient->Store("volatilestate", b_));
  EXPECT_EQ(ReadFileOrDie(dir_ / "tpm2-00.volatilestate.rejected"), vol);
  EXPECT_FALSE(Exists(dir_ / "tpm2-00.volatilestate.bak"));
}

// A TPM whose permall vanished must not silently become a new TPM (new EK, sealed data lost).
TEST_F(DirStoreTest, MissingNewestWithABakIsRefused) {
  {
    auto store = OpenStore();
    ASSERT_TRUE(store->Store("permall", a_));
    ASSERT_TRUE(store->Store("permall", b_));
  }
  ASSERT_EQ(::unlink((dir_ / "tpm2-00.permall").c_str()), 0);
  auto store = OpenStore();
  auto r = store->Load("permall");
  ASSERT_FALSE(r);
  EXPECT_TRUE(Contains(r.error().message, "is missing but its previous generation"))
      << r.error().message;
  EXPECT_FALSE(store->CheckStartable());

  DirStoreOptions o = Options();
  o.use_previous_on_damage = true;
  EXPECT_EQ(OpenStore(o)->Load("permall").value(), a_);
}

TEST_F(DirStoreTest, DamagedNewestWithoutBakIsAnError) {
  WriteFileOrDie(dir_ / "tpm2-00.permall", Bytes{2, 1, 0, 10});
  auto r = OpenStore()->Load("permall");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::kCorrupt);
  EXPECT_TRUE(Contains(r.error().message, dir_ / "tpm2-00.permall")) << r.error().message;
  EXPECT_TRUE(Contains(r.error().message, "no intact previous generation")) << r.error().message;
  EXPECT_TRUE(Contains(r.error().message, "Restore the state directory from a backup"))
      << r.error().message;

  DirStoreOptions o = Options();
  o.use_previous_on_damage = true;
  auto lenient = OpenStore(o);
  r = lenient->Load("permall");
  ASSERT_FALSE(r);
  EXPECT_TRUE(Contains(r.error().message, "no previous generation")) << r.error().message;
  EXPECT_FALSE(lenient->CheckStartable());
}

TEST_F(DirStoreTest, DamagedNewestAndDamagedBakNamesBoth) {
  WriteFileOrDie(dir_ / "tpm2-00.permall", Bytes{2, 1, 0, 10});
  WriteFileOrDie(dir_ / "tpm2-00.permall.bak", Bytes{9});
  for (bool consent : {false, true}) {
    DirStoreOptions o = Options();
    o.use_previous_on_damage = consent;
    auto r = OpenStore(o)->Load("permall");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, Errc::kCorrupt);
    EXPECT_TRUE(Contains(r.error().message, dir_ / "tpm2-00.permall:")) << r.error().message;
    EXPECT_TRUE(Contains(r.error().message, dir_ / "tpm2-00.permall.bak:")) << r.error().message;
  }
}

TEST_F(DirStoreTest, OversizedFileIsRefusedOrFallsBackWithConsent) {
  auto store = OpenStore();
  ASSERT_TRUE(store->Store("permall", a_));
  ASSERT_TRUE(store->Store("permall", b_));
  {
    UniqueFd fd(::open((dir_ / "tpm2-00.permall").c_str(), O_WRONLY | O_CLOEXEC));
    ASSERT_TRUE(fd);
    ASSERT_EQ(::ftruncate(fd.get(), off_t{kMaxStateFileSize} + 1), 0);  // sparse: cheap
  }
  auto r = OpenStore()->Load("permall");
  ASSERT_FALSE(r);
  EXPECT_TRUE(Contains(r.error().message, "more than the")) << r.error().message;
  DirStoreOptions o = Options();
  o.use_previous_on_damage = true;
  EXPECT_EQ(OpenStore(o)->Load("permall").value(), a_);
  EXPECT_TRUE(Contains(log_.text(), "more than the")) << log_.text();
}

TEST_F(DirStoreTest, EncryptedNewestDoesNotFallBack) {
  DirStoreOptions o = Options();
  o.use_previous_on_damage = true;
  auto store = OpenStore(o);
  ASSERT_TRUE(store->Store("permall", a_));
  ASSERT_TRUE(store->Store("permall", b_));
  Bytes enc = ReadFileOrDie(dir_ / "tpm2-00.permall");
  enc[5] = kFlagEncrypted;
  WriteFileOrDie(dir_ / "tpm2-00.permall", enc);
  auto r = store->Load("permall");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::kWrongKey);
  EXPECT_TRUE(Contains(r.error().message, "no key was given")) << r.error().message;
  EXPECT_FALSE(store->CheckStartable());
}

// The engine asks for the fallback after libtpms refused a permall whose framing and seal are
// fine (e.g. written by a newer libtpms): without consent that is refused and explained.
TEST_F(DirStoreTest, FallBackToPreviousGenerationNeedsConsent) {
  auto store = OpenStore();
  ASSERT_TRUE(store->Store("permall", a_));
  ASSERT_TRUE(store->Store("permall", b_));
  EXPECT_FALSE(store->FallBackToPreviousGeneration());
  EXPECT_TRUE(Contains(log_.text(), "libtpms refused")) << log_.text();
  EXPECT_TRUE(Contains(log_.text(), "vtpm state rollback")) << log_.text();
  EXPECT_EQ(store->Load("permall").value(), b_);
}

TEST_F(DirStoreTest, FallBackToPreviousGenerationWithConsent) {
  DirStoreOptions o = Options();
  o.use_previous_on_damage = true;
  auto store = OpenStore(o);
  EXPECT_FALSE(store->FallBackToPreviousGeneration());  // nothing at all
  ASSERT_TRUE(store->Store("permall", a_));
  EXPECT_FALSE(store->FallBackToPreviousGeneration());  // no .bak yet
  ASSERT_TRUE(store->Store("volatilestate", c_));
  ASSERT_TRUE(store->Store("volatilestate", b_));  // has a .bak, still never served
  ASSERT_TRUE(store->Store("permall", b_));
  EXPECT_EQ(store->Load("permall").value(), b_);

  ASSERT_TRUE(store->FallBackToPreviousGeneration());
  EXPECT_TRUE(Contains(log_.text(), dir_ / "tpm2-00.permall.bak")) << log_.text();
  EXPECT_EQ(store->Load("permall").value(), a_);
  EXPECT_EQ(store->Load("volatilestate").value(), std::nullopt);  // generations are not mixed
  EXPECT_FALSE(store->FallBackToPreviousGeneration());            // no older one

  // The engine runs from generation a_ and writes c_: the refused b_ is kept aside, a_ stays .bak.
  ASSERT_TRUE(store->Store("permall", c_));
  EXPECT_EQ(store->Load("permall").value(), c_);
  EXPECT_EQ(Inner("tpm2-00.permall"), c_);
  EXPECT_EQ(Inner("tpm2-00.permall.bak"), a_);
  EXPECT_EQ(Inner("tpm2-00.permall.rejected"), b_);
  ASSERT_TRUE(store->Store("permall", b_));
  EXPECT_EQ(Inner("tpm2-00.permall.bak"), c_);
  EXPECT_EQ(Inner("tpm2-00.permall.rejected"), b_);

  // A fresh store (restart) sees the newest generation again.
  EXPECT_EQ(OpenStore()->Load("volatilestate").value(), b_);
}

TEST_F(DirStoreTest, GenerationsCountEveryWriteAcrossRestarts) {
  auto gen = [&](const std::string& file) {
    return DecodeStateFile(ReadFileOrDie(dir_ / file)).value().generation;
  };
  {
    auto store = OpenStore();
    ASSERT_TRUE(store->Store("permall", a_));
    EXPECT_EQ(gen("tpm2-00.permall"), 1u);
    ASSERT_TRUE(store->Store("permall", b_));
    EXPECT_EQ(gen("tpm2-00.permall"), 2u);
    EXPECT_EQ(gen("tpm2-00.permall.bak"), 1u);
    ASSERT_TRUE(store->Store("permall", b_));  // identical: not a write
    EXPECT_EQ(gen("tpm2-00.permall"), 2u);
  }
  auto store = OpenStore();  // a restart continues the count, with or without a Load first
  ASSERT_TRUE(store->Store("permall", c_));
  EXPECT_EQ(gen("tpm2-00.permall"), 3u);
  // A file without a seal (swtpm wrote it) is read as before; the count goes on from the .bak.
  WriteFileOrDie(dir_ / "tpm2-00.permall", EncodeFileBlob(a_));
  auto after_swtpm = OpenStore();
  EXPECT_EQ(after_swtpm->Load("permall").value(), a_);
  ASSERT_TRUE(after_swtpm->Store("permall", b_));
  EXPECT_EQ(gen("tpm2-00.permall"), 3u);  // one past the .bak's generation 2
  EXPECT_EQ(gen("tpm2-00.permall.bak"), std::nullopt);
}

TEST_F(DirStoreTest, StrictSyncWritesTheSameFiles) {
  DirStoreOptions o = Options();
  o.strict_sync = true;
  auto store = OpenStore(o);
  ASSERT_TRUE(store->Store("permall", a_));
  ASSERT_TRUE(store->Store("permall", b_));
  EXPECT_EQ(Inner("tpm2-00.permall"), b_);
  EXPECT_EQ(Inner("tpm2-00.permall.bak"), a_);
  EXPECT_EQ(ListDir(dir_.path()),
            (std::vector<std::string>{"tpm2-00.permall", "tpm2-00.permall.bak"}));
}

TEST_F(DirStoreTest, RollBackToPreviousIsDescribedThenDone) {
  {
    auto store = OpenStore();
    ASSERT_TRUE(store->Store("permall", a_));
    ASSERT_TRUE(store->Store("permall", b_));
    ASSERT_TRUE(store->Store("permall", c_));
    ASSERT_TRUE(store->Store("volatilestate", a_));
  }
  auto store = OpenStore();
  auto plan = store->DescribeRollback();
  ASSERT_TRUE(plan) << plan.error().message;
  EXPECT_TRUE(Contains(*plan, "tpm2-00.permall (generation 3,")) << *plan;
  EXPECT_TRUE(Contains(*plan, "-> kept as tpm2-00.permall.rejected")) << *plan;
  EXPECT_TRUE(Contains(*plan, "tpm2-00.permall.bak (generation 2,")) << *plan;
  EXPECT_TRUE(Contains(*plan, "tpm2-00.volatilestate (generation 1,")) << *plan;
  EXPECT_TRUE(Contains(*plan, "(1 write(s) of the permanent state)")) << *plan;
  EXPECT_EQ(Inner("tpm2-00.permall"), c_);  // describing changes nothing

  EXPECT_FALSE(store->RollBackToPrevious());  // needs the lock
  ASSERT_TRUE(store->Lock());
  ASSERT_TRUE(store->RollBackToPrevious());
  EXPECT_EQ(Inner("tpm2-00.permall"), b_);
  EXPECT_EQ(Inner("tpm2-00.permall.rejected"), c_);
  EXPECT_EQ(Inner("tpm2-00.volatilestate.rejected"), a_);
  EXPECT_EQ(store->Load("permall").value(), b_);
  EXPECT_EQ(store->Load("volatilestate").value(), std::nullopt);
  EXPECT_EQ(ListDir(dir_.path()),
            (std::vector<std::string>{".lock", "tpm2-00.permall", "tpm2-00.permall.rejected",
                                      "tpm2-00.volatilestate.rejected"}));
  // There is no .bak now: nothing further to roll back to.
  auto again = store->DescribeRollback();
  ASSERT_FALSE(again);
  EXPECT_TRUE(Contains(again.error().message, "nothing to roll back to")) << again.error().message;
  EXPECT_FALSE(store->RollBackToPrevious());
  // Writes continue after the highest generation seen, and rotate normally again.
  ASSERT_TRUE(store->Store("permall", a_));
  EXPECT_EQ(DecodeStateFile(ReadFileOrDie(dir_ / "tpm2-00.permall")).value().generation, 4u);
  EXPECT_EQ(Inner("tpm2-00.permall.bak"), b_);
}

TEST_F(DirStoreTest, DeleteRemovesTheBlobAndItsPreviousGeneration) {
  auto store = OpenStore();
  ASSERT_TRUE(store->Store("volatilestate", a_));
  ASSERT_TRUE(store->Store("volatilestate", b_));
  ASSERT_TRUE(store->Store("permall", a_));
  ASSERT_TRUE(store->Delete("volatilestate", true));
  EXPECT_EQ(store->Load("volatilestate").value(), std::nullopt);
  EXPECT_EQ(ListDir(dir_.path()), (std::vector<std::string>{"tpm2-00.permall"}));

  auto r = store->Delete("volatilestate", true);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::kNotFound);
  EXPECT_TRUE(store->Delete("volatilestate", false));
}

TEST_F(DirStoreTest, InspectStateDir) {
  auto empty = InspectStateDir(dir_.path(), TpmVersion::kTpm20);
  ASSERT_TRUE(empty);
  EXPECT_TRUE(empty->empty());
  auto store = OpenStore();
  ASSERT_TRUE(store->Store("volatilestate", c_));
  ASSERT_TRUE(store->Store("permall", a_));
  ASSERT_TRUE(store->Store("permall", b_));
  auto list = InspectStateDir(dir_.path(), TpmVersion::kTpm20);
  ASSERT_TRUE(list);
  ASSERT_EQ(list->size(), 2u);
  const BlobGenerations& perm = (*list)[0];
  EXPECT_EQ(perm.name, "permall");
  EXPECT_EQ(perm.newest.file, "tpm2-00.permall");
  // header 10 + DATA record header 6 + seal record 6 + 44
  EXPECT_EQ(perm.newest.size, b_.size() + 66);
  EXPECT_TRUE(perm.newest.usable());
  EXPECT_TRUE(perm.newest.sealed);
  EXPECT_EQ(perm.newest.generation, 2u);
  EXPECT_EQ(perm.previous.file, "tpm2-00.permall.bak");
  EXPECT_EQ(perm.previous.size, a_.size() + 66);
  EXPECT_EQ(perm.previous.generation, 1u);
  EXPECT_FALSE(perm.rejected.present);
  EXPECT_EQ((*list)[1].name, "volatilestate");
  EXPECT_EQ((*list)[1].newest.size, c_.size() + 66);
  EXPECT_FALSE((*list)[1].previous.present);
  EXPECT_TRUE(store->Inspect().has_value());
  EXPECT_TRUE(InspectStateDir(dir_.path(), TpmVersion::kTpm12)->empty());
  EXPECT_FALSE(InspectStateDir(dir_ / "missing", TpmVersion::kTpm20));

  // Damage is reported per file, and the mtime is the file's.
  Bytes f = ReadFileOrDie(dir_ / "tpm2-00.permall");
  f.back() ^= 1;
  WriteFileOrDie(dir_ / "tpm2-00.permall", f);
  list = InspectStateDir(dir_.path(), TpmVersion::kTpm20);
  ASSERT_TRUE(list);
  EXPECT_FALSE((*list)[0].newest.usable());
  EXPECT_TRUE((*list)[0].newest.damage.has_value());
  EXPECT_TRUE((*list)[0].previous.usable());
  EXPECT_LT(std::chrono::system_clock::now() - (*list)[0].newest.mtime, std::chrono::minutes(5));
}

// ---- Locking --------------------------------------------------------------------------------

// A child process holding a classic fcntl lock on .lock, exactly as swtpm does
// (SWTPM_NVRAM_Lock_Dir); or testing whether it could take one.
class LockingChild {
 public:
  // |hold|: take the lock and keep it until Release(); else try once and exit 0 if it got it.
  explicit LockingChild(const std::string& lock_path, bool hold) {
    int ready[2], go[2];
    if (::pipe(ready) != 0 || ::pipe(go) != 0) return;
    pid_ = ::fork();
    if (pid_ == 0) {
      ::close(ready[0]);
      ::close(go[1]);
      const int fd = ::open(lock_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW, 0660);
      struct flock fl {};
      fl.l_type = F_WRLCK;
      fl.l_whence = SEEK_SET;
      const bool got = fd >= 0 && ::fcntl(fd, F_SETLK, &fl) == 0;
      const char c = got ? 'y' : 'n';
      if (::write(ready[1], &c, 1) != 1) ::_exit(3);
      if (hold) {
        char x;
        if (::read(go[0], &x, 1) < 0) ::_exit(4);
      }
      ::_exit(got ? 0 : 1);
    }
    ::close(ready[1]);
    ::close(go[0]);
    go_ = go[1];
    char c = 0;
    got_lock_ = ::read(ready[0], &c, 1) == 1 && c == 'y';
    ::close(ready[0]);
  }
  ~LockingChild() { Release(); }
  pid_t pid() const { return pid_; }
  bool got_lock() const { return got_lock_; }
  void Release() {
    if (go_ >= 0) {
      ::close(go_);  // EOF lets the child exit
      go_ = -1;
    }
    if (pid_ > 0) {
      int status = 0;
      ::waitpid(pid_, &status, 0);
      pid_ = -1;
    }
  }

 private:
  pid_t pid_ = -1;
  int go_ = -1;
  bool got_lock_ = false;
};

TEST_F(DirStoreTest, LockConflictsBetweenTwoStoresInOneProcess) {
  auto a = OpenStore();
  auto b = OpenStore();
  ASSERT_TRUE(a->Lock());
  ASSERT_TRUE(a->Lock());  // idempotent
  EXPECT_TRUE(a->locked());
  auto r = b->Lock();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::kBusy);
  EXPECT_TRUE(Contains(r.error().message, dir_.path())) << r.error().message;
  EXPECT_TRUE(Contains(r.error().message, "another vtpm or swtpm")) << r.error().message;
  EXPECT_FALSE(b->locked());
  a->Unlock();
  EXPECT_FALSE(a->locked());
  EXPECT_TRUE(b->Lock());
  // A failed Lock() opens and closes .lock; with classic fcntl locks that close would drop b's
  // lock (they are per process). b must still keep other processes out.
  EXPECT_FALSE(OpenStore()->Lock());
  LockingChild probe(dir_ / ".lock", /*hold=*/false);
  EXPECT_FALSE(probe.got_lock());
}

TEST_F(DirStoreTest, LockFileIsCreatedLikeSwtpms) {
  auto store = OpenStore();
  ASSERT_TRUE(store->Lock());
  struct stat st {};
  ASSERT_EQ(::lstat((dir_ / ".lock").c_str(), &st), 0);
  EXPECT_TRUE(S_ISREG(st.st_mode));
  EXPECT_EQ(st.st_mode & 0117, 0u);  // within 0660 (the umask may narrow it)
  store->Unlock();
  EXPECT_TRUE(Exists(dir_ / ".lock"));  // never unlinked (that would race with other lockers)
}

TEST_F(DirStoreTest, LockRefusesASymlinkedLockFile) {
  TempDir elsewhere;
  ASSERT_EQ(::symlink((elsewhere / "x").c_str(), (dir_ / ".lock").c_str()), 0);
  auto r = OpenStore()->Lock();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::kFailedPrecondition);
  EXPECT_FALSE(Exists(elsewhere / "x"));
}

TEST_F(DirStoreTest, LockConflictsWithAnotherProcessHoldingSwtpmsLock) {
  auto store = OpenStore();
  LockingChild child(dir_ / ".lock", /*hold=*/true);
  ASSERT_TRUE(child.got_lock());
  auto r = store->Lock();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::kBusy);
  EXPECT_TRUE(Contains(r.error().message, "process " + std::to_string(child.pid())))
      << r.error().message;
  child.Release();
  EXPECT_TRUE(store->Lock());
}

TEST_F(DirStoreTest, OurLockKeepsAnotherProcessOut) {
  auto store = OpenStore();
  {
    LockingChild probe(dir_ / ".lock", /*hold=*/false);
    EXPECT_TRUE(probe.got_lock());  // the probe works when nobody holds the lock
  }
  ASSERT_TRUE(store->Lock());
  {
    LockingChild probe(dir_ / ".lock", /*hold=*/false);
    EXPECT_FALSE(probe.got_lock());
  }
  store->Unlock();
  LockingChild probe(dir_ / ".lock", /*hold=*/false);
  EXPECT_TRUE(probe.got_lock());
}

TEST_F(DirStoreTest, LockRemovesStaleTemporaryFilesOnly) {
  const std::vector<std::string> keep = {"TMP2-00.permall", "notes", "tpm2-00.permall.rejected",
                                         ".tpm-00.permall.vtpm-tmp-1-0"};
  for (const auto& f : keep) WriteFileOrDie(dir_ / f, Bytes{1});
  WriteFileOrDie(dir_ / ".tpm2-00.permall.vtpm-tmp-999-0", Bytes{1});
  WriteFileOrDie(dir_ / ".tpm2-00.volatilestate.vtpm-link-999-1", Bytes{1});
  auto store = OpenStore();
  ASSERT_TRUE(store->Lock());
  std::vector<std::string> expected = keep;
  expected.push_back(".lock");
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(ListDir(dir_.path()), expected);
  EXPECT_TRUE(Contains(log_.text(), "interrupted write")) << log_.text();
}

}  // namespace
}  // namespace vtpm::state
