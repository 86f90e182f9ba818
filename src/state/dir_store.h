// DirStore: libtpms' state blobs as files in a directory, interchangeable with swtpm's dir backend
// (`swtpm --tpmstate dir=<dir>`).
//
// Files: <dir>/tpm2-00.permall, tpm2-00.volatilestate, tpm2-00.savestate (TPM 1.2: tpm-00.*), in
// swtpm's file blob format (state/blob.h), so Debian's swtpm opens a directory we wrote and we
// open theirs. Next to each file DirStore keeps the previous generation, <file>.bak (hard link to
// the file that was replaced), and, after it has refused the newest generation of a blob,
// <file>.rejected (see Store()). Every file vtpm writes carries a seal (state/blob.h), so damage
// anywhere in a file is detected; a damaged state is refused unless the user consented to the
// previous generation (DirStoreOptions::use_previous_on_damage, `vtpm state rollback`). Locking
// uses <dir>/.lock exactly like swtpm, so a vtpm and an swtpm never run on the same directory at
// the same time.
//
// Thread-safe (one mutex); the engine calls it from its libtpms thread, the daemon from others.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "base/bytes.h"
#include "base/log.h"
#include "base/result.h"
#include "base/unique_fd.h"
#include "state/blob.h"
#include "state/nv_store.h"
#include "wire/tpm_header.h"

namespace vtpm::state {

using TpmVersion = wire::TpmVersion;

// Files larger than this are refused on load: no TPM state is anywhere near it, and it bounds
// what a damaged or hostile file can make us allocate.
inline constexpr size_t kMaxStateFileSize = 16 * 1024 * 1024;

// The names libtpms uses for its blobs.
inline constexpr std::string_view kPermallName = "permall";
inline constexpr std::string_view kVolatileStateName = "volatilestate";
inline constexpr std::string_view kSaveStateName = "savestate";

struct DirStoreOptions {
  std::string directory;  // must exist
  TpmVersion tpm_version = TpmVersion::kTpm20;
  // Mode of the files we create (set with fchmod, so the umask does not narrow it). Must include
  // owner read+write and nothing beyond 0777. swtpm's default is 0640.
  mode_t file_mode = 0600;
  // Make every Store durable before it returns (fsync; see "Durability" in dir_store.cc).
  // Turning it off trades durability for speed (tests, tmpfs).
  bool fsync = true;
  // Consent to older state. Without it (the default) the store fails closed: a damaged newest
  // file, or a permanent state libtpms refuses, makes Load()/FallBackToPreviousGeneration() fail
  // with a message naming the file and the recovery (`vtpm state rollback`), so a TPM never runs
  // on older state -- NV counters, DA lockout, policy NV going backwards -- unless someone
  // decided it. With it (`--tpmstate ...,backup`, as in swtpm 0.11) the previous generation
  // (<file>.bak) is used with a warning.
  bool use_previous_on_damage = false;
  // Two syncs per write even where one suffices (see dir_store.cc): for tests, and for a file
  // system that the one-sync rule misjudges.
  bool strict_sync = false;
  // State encryption (--key): files are written encrypted with it, and read with it. Plain files
  // are still read (so encryption can be turned on for existing state; `vtpm state encrypt`
  // rewrites them at once). Null: files are written plain; encrypted ones are refused with
  // Errc::kWrongKey.
  SharedStateKey key;
};

// "tpm2-00." or "tpm-00.": swtpm's file name prefix for the version
// (SWTPM_NVRAM_GetFilenameForName).
std::string_view StateFilePrefix(TpmVersion version);

// One file of a blob's generations, as found on disk.
struct StateFileInfo {
  std::string file;  // relative to the state directory, e.g. "tpm2-00.permall.bak"
  bool present = false;
  uint64_t size = 0;  // bytes on disk (blob header included), as `swtpm --print-states`
  std::chrono::system_clock::time_point mtime;
  bool sealed = false;                 // carries vtpm's seal (blob.h), verified
  std::optional<uint64_t> generation;  // from the seal
  std::optional<StateCipher> cipher;   // encrypted with; nullopt: plain (or unknown when damaged)
  std::optional<Error> damage;         // present but unusable: framing, seal, I/O, not a file

  bool usable() const { return present && !damage; }
};

// A blob's files: the newest generation, the previous one (.bak) and a refused one (.rejected).
struct BlobGenerations {
  std::string name;  // "permall", "volatilestate", "savestate"
  StateFileInfo newest, previous, rejected;
};

// Reads and checks every state file of |version| in |directory| (no lock needed: files are only
// ever replaced by rename), in the order permall, volatilestate, savestate; blobs with none of
// their three files are left out. Fails only if the directory cannot be read.
// With |key|, encrypted files are opened too (a key that does not open one is reported as its
// damage, with Errc::kWrongKey); without, their seal alone is checked.
Result<std::vector<BlobGenerations>> InspectStateDir(const std::string& directory,
                                                     TpmVersion version,
                                                     const StateKey* key = nullptr);

class DirStore final : public NvStore {
 public:
  // Opens (does not create) the state directory; takes no lock yet (see Lock()).
  static Result<std::unique_ptr<DirStore>> Open(const DirStoreOptions& options, Logger logger);
  ~DirStore() override;

  DirStore(const DirStore&) = delete;
  DirStore& operator=(const DirStore&) = delete;

  // Write lock on <dir>/.lock (created O_WRONLY|O_CREAT|O_NOFOLLOW, mode 0660, like swtpm) over
  // the whole file. We take it as an open-file-description lock (F_OFD_SETLK): it conflicts with
  // the classic fcntl(F_SETLK) lock swtpm takes, and unlike a classic lock it also conflicts with
  // a second DirStore on the same directory in this process, and is not dropped when some other
  // descriptor of the file is closed. Falls back to F_SETLK on kernels without OFD locks.
  // Errc::kBusy when another process (or DirStore) holds it. After locking, removes temporary
  // files a crashed writer left behind and, with options.key, encrypts every plain state file
  // (each generation, in place).
  Status Lock() override;
  void Unlock() override;
  bool locked() const;

  // Reads <prefix><name>, checking its framing and seal. If that file is damaged (bad blob or
  // seal, oversized, EIO) -- or, for permall, missing while a permall.bak exists (a TPM whose
  // state was lost must not silently become a new TPM) -- then:
  //  * by default the result is an Errc::kCorrupt error naming the file, what is wrong, the
  //    previous generation and the commands that recover (fail closed);
  //  * with options.use_previous_on_damage, a damaged permall is replaced by an intact
  //    permall.bak as by FallBackToPreviousGeneration(), and a damaged volatilestate/savestate
  //    is set aside (std::nullopt: the TPM starts without it); both with a warning.
  // Symlinks and non-regular files are refused (Errc::kFailedPrecondition), never followed.
  Result<std::optional<Bytes>> Load(std::string_view name) override;

  // Atomically replaces <prefix><name> with a sealed file, keeping the replaced file as
  // <file>.bak; durable on return when options.fsync. Bytes identical to what the file already
  // holds are not written again (so the .bak stays a genuinely older generation). Refuses to
  // replace a symlink or other non-regular file. The crash analysis is in dir_store.cc.
  Status Store(std::string_view name, ByteSpan data) override;

  // Removes <file>.bak and then <file> (a deleted blob must not come back through
  // FallBackToPreviousGeneration). A <file>.rejected is left for inspection.
  Status Delete(std::string_view name, bool must_exist) override;

  // Removes <file>.bak (when a new TPM replaced an old one: no fallback may bring the old one
  // back). Absent is fine.
  Status DeletePreviousGeneration(std::string_view name);

  // After libtpms refused the newest permanent state. Without options.use_previous_on_damage:
  // logs why the TPM does not start and how to recover, returns false. With it: from now on
  // Load("permall") serves permall.bak and the other blobs of the refused generation are set
  // aside (std::nullopt; an older volatile state is never mixed in), until Store(name) writes a
  // new generation of that name; that first Store moves the refused newest file to
  // <file>.rejected and leaves the .bak in place. Logs a warning. Returns false (and changes
  // nothing) when there is no intact permall.bak, or when already fallen back.
  bool FallBackToPreviousGeneration() override;

  // Whether the permall file exists (i.e. this is not a new TPM).
  Result<bool> HasState();

  // InspectStateDir() of this store's directory and version.
  Result<std::vector<BlobGenerations>> Inspect() const;

  // Whether the TPM can start from this directory under the options (each newest file intact,
  // or replaceable by consent): the check a daemon makes before it serves anything, so that a
  // damaged state makes it refuse to start instead of failing later at CMD_INIT. The error is
  // Load()'s.
  Status CheckStartable() const;

  // The consented rollback (`vtpm state rollback`): makes permall.bak the newest permall, keeping
  // the replaced newest file as permall.rejected, and sets the newest volatilestate/savestate
  // aside as *.rejected (they belong to the generation rolled back from). Requires Lock() and
  // an intact permall.bak. DescribeRollback() says what it would do and what would be lost.
  Result<std::string> DescribeRollback() const;
  Status RollBackToPrevious();

  const std::string& directory() const { return options_.directory; }
  // "<dir>/<prefix><name>", for messages and tests.
  std::string PathFor(std::string_view name) const;

 private:
  DirStore(DirStoreOptions options, Logger logger, UniqueFd dir_fd);

  std::string FileName(std::string_view name) const;
  std::string Path(const std::string& file) const;
  std::string LinkName(const std::string& file);
  bool ServesPrevious(const std::string& name) const;

  Result<std::optional<StateFile>> ReadStateFile(const std::string& file,
                                                 std::string_view name) const;
  Result<std::optional<Bytes>> LoadDamaged(const std::string& name, Error damage);
  Error Refused(const std::string& name, Error damage) const;
  bool FallBackLocked(std::string_view why);
  uint64_t NextGeneration(const std::string& name);
  Result<UniqueFd> WriteTempFile(const std::string& file, std::string_view kind, ByteSpan contents,
                                 std::string* tmp);
  Status Install(const std::string& tmp, const std::string& file, const std::string& keep_as);
  Status PreserveCurrent(const std::string& file, const std::string& as);
  Status SetAside(const std::string& file, const std::string& as);
  Status SyncDir();
  void RemoveStaleTemps();
  void EncryptPlainFiles();

  const DirStoreOptions options_;
  const Logger logger_;
  const UniqueFd dir_fd_;
  // The file system makes a file's fsync after its rename durable for the rename too (ext4,
  // xfs, btrfs, tmpfs): one sync per write instead of two (see dir_store.cc).
  const bool one_sync_;

  mutable std::mutex mu_;
  UniqueFd lock_fd_;
  uint64_t link_counter_ = 0;
  bool fallen_back_ = false;
  // Names stored or deleted since the fallback: their newest file is current.
  std::set<std::string, std::less<>> written_since_fallback_;
  // Names whose newest file Load() found damaged and set aside (or replaced by the .bak).
  std::set<std::string, std::less<>> newest_rejected_;
  // The blob each newest file holds, as last read from or written to it by us (we hold the
  // lock, so nobody else writes). A Store of identical bytes is skipped: libtpms rewrites an
  // unchanged permall on TPM2_Startup and elsewhere, and each write costs an fsync.
  std::map<std::string, Bytes, std::less<>> on_disk_;
  // The highest seal generation seen per name (newest or .bak); the next Store writes one more.
  std::map<std::string, uint64_t, std::less<>> generation_;
};

}  // namespace vtpm::state
