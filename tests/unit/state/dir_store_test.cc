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
  Bytes Inner(const std::string& file) {
    auto r = DecodeFileBlob(ReadFileOrDie(dir_ / file));
    EXPECT_TRUE(r.has_value()) << file << ": " << r.error().message;
    return r.value_or(Bytes{});
  }

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
  EXPECT_EQ(ReadFileOrDie(dir_ / "tpm2-00.permall"), EncodeFileBlob(a_));
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

TEST_F(DirStoreTest, CorruptNewestFallsBackToBakWithAWarning) {
  auto store = OpenStore();
  ASSERT_TRUE(store->Store("permall", a_));
  ASSERT_TRUE(store->Store("permall", b_));
  Bytes broken = ReadFileOrDie(dir_ / "tpm2-00.permall");
  broken.resize(broken.size() / 2);  // torn write
  WriteFileOrDie(dir_ / "tpm2-00.permall", broken);

  EXPECT_EQ(store->Load("permall").value(), a_);
  const std::string log = log_.text();
  EXPECT_TRUE(Contains(log, "warn")) << log;
  EXPECT_TRUE(Contains(log, dir_ / "tpm2-00.permall:")) << log;
  EXPECT_TRUE(Contains(log, dir_ / "tpm2-00.permall.bak")) << log;

  // The next write must not rotate the damaged file into .bak.
  ASSERT_TRUE(store->Store("permall", c_));
  EXPECT_EQ(Inner("tpm2-00.permall"), c_);
  EXPECT_EQ(Inner("tpm2-00.permall.bak"), a_);
  EXPECT_EQ(ReadFileOrDie(dir_ / "tpm2-00.permall.rejected"), broken);
  // And after that, back to normal rotation.
  ASSERT_TRUE(store->Store("permall", b_));
  EXPECT_EQ(Inner("tpm2-00.permall.bak"), c_);
}

TEST_F(DirStoreTest, CorruptNewestWithoutBakIsAnError) {
  WriteFileOrDie(dir_ / "tpm2-00.permall", Bytes{2, 1, 0, 10});
  auto store = OpenStore();
  auto r = store->Load("permall");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::kCorrupt);
  EXPECT_TRUE(Contains(r.error().message, dir_ / "tpm2-00.permall")) << r.error().message;
  EXPECT_TRUE(Contains(r.error().message, "no previous generation")) << r.error().message;
}

TEST_F(DirStoreTest, CorruptNewestAndCorruptBakNamesBoth) {
  WriteFileOrDie(dir_ / "tpm2-00.permall", Bytes{2, 1, 0, 10});
  WriteFileOrDie(dir_ / "tpm2-00.permall.bak", Bytes{9});
  auto store = OpenStore();
  auto r = store->Load("permall");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::kCorrupt);
  EXPECT_TRUE(Contains(r.error().message, dir_ / "tpm2-00.permall:")) << r.error().message;
  EXPECT_TRUE(Contains(r.error().message, dir_ / "tpm2-00.permall.bak:")) << r.error().message;
}

TEST_F(DirStoreTest, OversizedFileIsRefusedAndFallsBack) {
  auto store = OpenStore();
  ASSERT_TRUE(store->Store("permall", a_));
  ASSERT_TRUE(store->Store("permall", b_));
  {
    UniqueFd fd(::open((dir_ / "tpm2-00.permall").c_str(), O_WRONLY | O_CLOEXEC));
    ASSERT_TRUE(fd);
    ASSERT_EQ(::ftruncate(fd.get(), off_t{kMaxStateFileSize} + 1), 0);  // sparse: cheap
  }
  EXPECT_EQ(store->Load("permall").value(), a_);
  EXPECT_TRUE(Contains(log_.text(), "more than the")) << log_.text();
}

TEST_F(DirStoreTest, EncryptedNewestDoesNotFallBack) {
  auto store = OpenStore();
  ASSERT_TRUE(store->Store("permall", a_));
  ASSERT_TRUE(store->Store("permall", b_));
  Bytes enc = ReadFileOrDie(dir_ / "tpm2-00.permall");
  enc[5] = kFlagEncrypted;
  WriteFileOrDie(dir_ / "tpm2-00.permall", enc);
  auto r = store->Load("permall");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::kUnsupported);
  EXPECT_TRUE(Contains(r.error().message, "encryption keys")) << r.error().message;
}

TEST_F(DirStoreTest, FallBackToPreviousGeneration) {
  auto store = OpenStore();
  EXPECT_FALSE(store->FallBackToPreviousGeneration());  // nothing at all
  ASSERT_TRUE(store->Store("permall", a_));
  EXPECT_FALSE(store->FallBackToPreviousGeneration());  // no .bak yet
  ASSERT_TRUE(store->Store("volatilestate", c_));       // one generation only
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
  EXPECT_EQ(OpenStore()->Load("volatilestate").value(), c_);
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

TEST_F(DirStoreTest, ListStateBlobs) {
  auto empty = ListStateBlobs(dir_.path(), TpmVersion::kTpm2);
  ASSERT_TRUE(empty);
  EXPECT_TRUE(empty->empty());
  auto store = OpenStore();
  ASSERT_TRUE(store->Store("volatilestate", c_));
  ASSERT_TRUE(store->Store("permall", a_));
  ASSERT_TRUE(store->Store("permall", b_));
  auto list = ListStateBlobs(dir_.path(), TpmVersion::kTpm2);
  ASSERT_TRUE(list);
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0].name, "permall");
  EXPECT_EQ((*list)[0].file, "tpm2-00.permall");
  EXPECT_EQ((*list)[0].size, b_.size() + 16);
  EXPECT_EQ((*list)[0].previous_generation_size, a_.size() + 16);
  EXPECT_EQ((*list)[1].name, "volatilestate");
  EXPECT_EQ((*list)[1].size, c_.size() + 16);
  EXPECT_EQ((*list)[1].previous_generation_size, std::nullopt);
  EXPECT_TRUE(ListStateBlobs(dir_.path(), TpmVersion::kTpm12)->empty());
  EXPECT_FALSE(ListStateBlobs(dir_ / "missing", TpmVersion::kTpm2));
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
