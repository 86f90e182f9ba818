// DirStore: libtpms' state blobs as files in a directory, interchangeable with swtpm's dir backend
// (`swtpm --tpmstate dir=<dir>`).
//
// Files: <dir>/tpm2-00.permall, tpm2-00.volatilestate, tpm2-00.savestate (TPM 1.2: tpm-00.*), in
// swtpm's file blob format (state/blob.h), so Debian's swtpm opens a directory we wrote and we
// open theirs. Next to each file DirStore keeps the previous generation, <file>.bak (hard link to
// the file that was replaced), and, after it has refused the newest generation of a blob,
// <file>.rejected (see Store()). Locking uses <dir>/.lock exactly like swtpm, so a vtpm and an
// swtpm never run on the same directory at the same time.
//
// Thread-safe (one mutex); the engine calls it from its libtpms thread, the daemon from others.
#pragma once

#include <sys/types.h>

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
#include "state/nv_store.h"

namespace vtpm::state {

enum class TpmVersion { kTpm12, kTpm2 };

// Files larger than this are refused on load: no TPM state is anywhere near it, and it bounds
// what a damaged or hostile file can make us allocate.
inline constexpr size_t kMaxStateFileSize = 16 * 1024 * 1024;

// The names libtpms uses for its blobs.
inline constexpr std::string_view kPermallName = "permall";
inline constexpr std::string_view kVolatileStateName = "volatilestate";
inline constexpr std::string_view kSaveStateName = "savestate";

struct DirStoreOptions {
  std::string directory;  // must exist
  TpmVersion tpm_version = TpmVersion::kTpm2;
  // Mode of the files we create (set with fchmod, so the umask does not narrow it). Must include
  // owner read+write and nothing beyond 0777. swtpm's default is 0640.
  mode_t file_mode = 0600;
  // fsync each new file and the directory (on return from Store the data survives power loss).
  // Turning it off trades durability for speed (tests, tmpfs).
  bool fsync = true;
};

// "tpm2-00." or "tpm-00.": swtpm's file name prefix for the version
// (SWTPM_NVRAM_GetFilenameForName).
std::string_view StateFilePrefix(TpmVersion version);

struct StateBlobInfo {
  std::string name;   // "permall", "volatilestate", "savestate"
  std::string file;   // e.g. "tpm2-00.permall", relative to the directory
  uint64_t size = 0;  // file size in bytes (blob header included), as `swtpm --print-states`
  std::optional<uint64_t> previous_generation_size;  // size of <file>.bak if there is one
};

// The state blobs present in |directory|, in the order permall, volatilestate, savestate; like
// `swtpm --print-states` (which reports {"name": ..., "size": ...} for each). Fails if the
// directory cannot be opened or a state file is not a regular file.
Result<std::vector<StateBlobInfo>> ListStateBlobs(const std::string& directory, TpmVersion version);

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
  // files a crashed writer left behind.
  Status Lock() override;
  void Unlock() override;
  bool locked() const;

  // Reads <prefix><name>. If that file is damaged (bad blob, oversized, EIO) and <file>.bak is
  // intact, logs a warning naming both and returns the .bak contents; a later Store(name) then
  // moves the damaged file to <file>.rejected instead of making it the new .bak. An absent
  // newest file is std::nullopt even if a .bak exists (the state was deleted or never written).
  // Symlinks and non-regular files are refused (Errc::kFailedPrecondition), never followed.
  Result<std::optional<Bytes>> Load(std::string_view name) override;

  // Atomically replaces <prefix><name>, keeping the replaced file as <file>.bak; durable on
  // return when options.fsync. Bytes identical to what the file already holds are not written
  // again (so the .bak stays a genuinely older generation). Refuses to replace a symlink or other
  // non-regular file. The crash analysis is in dir_store.cc.
  Status Store(std::string_view name, ByteSpan data) override;

  // Removes <file>.bak and then <file> (a deleted blob must not come back through
  // FallBackToPreviousGeneration). A <file>.rejected is left for inspection.
  Status Delete(std::string_view name, bool must_exist) override;

  // From now on Load(name) serves <file>.bak (std::nullopt when a name has no .bak: generations
  // are not mixed), until Store(name) writes a new generation of that name; that first Store
  // moves the refused newest file to <file>.rejected and leaves the .bak in place. Logs a warning.
  // Returns false (and changes nothing) when there is no permall .bak, or when already fallen back.
  bool FallBackToPreviousGeneration() override;

  // Whether the permall file exists (i.e. this is not a new TPM).
  Result<bool> HasState();

  const std::string& directory() const { return options_.directory; }
  // "<dir>/<prefix><name>", for messages and tests.
  std::string PathFor(std::string_view name) const;

 private:
  DirStore(DirStoreOptions options, Logger logger, UniqueFd dir_fd);

  std::string FileName(std::string_view name) const;
  std::string Path(const std::string& file) const;
  std::string TempName(const std::string& file, std::string_view kind);
  bool ServesPrevious(const std::string& name) const;

  Result<std::optional<Bytes>> ReadBlobFile(const std::string& file);
  Result<UniqueFd> CreateTemp(const std::string& file, std::string_view kind, std::string* tmp);
  Status WriteTempFile(const std::string& file, std::string_view kind, ByteSpan contents,
                       std::string* tmp);
  Status PreserveCurrent(const std::string& file, const std::string& as);
  Status SyncDir();
  void RemoveStaleTemps();

  const DirStoreOptions options_;
  const Logger logger_;
  const UniqueFd dir_fd_;

  mutable std::mutex mu_;
  UniqueFd lock_fd_;
  uint64_t temp_counter_ = 0;
  bool fallen_back_ = false;
  // Names stored or deleted since FallBackToPreviousGeneration(): their newest file is current.
  std::set<std::string, std::less<>> written_since_fallback_;
  // Names whose newest file Load() found damaged and replaced by the .bak.
  std::set<std::string, std::less<>> newest_rejected_;
  // The blob each newest file holds, as last read from or written to it by us (we hold the
  // lock, so nobody else writes). A Store of identical bytes is skipped: libtpms rewrites an
  // unchanged permall on TPM2_Startup and elsewhere, and each write costs two fsyncs.
  std::map<std::string, Bytes, std::less<>> on_disk_;
};

}  // namespace vtpm::state
