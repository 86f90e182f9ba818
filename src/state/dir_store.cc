// DirStore implementation.
//
// Write sequence and crash analysis
// ---------------------------------
// Store(name) with F = <prefix><name> (e.g. tpm2-00.permall), generation n+1 replacing n:
//
//   1. T = .F.vtpm-tmp-<pid>-<k>: openat(O_CREAT|O_EXCL|O_NOFOLLOW|O_CLOEXEC, mode), fchmod(mode),
//      write the sealed blob (header, DATA, SEAL; state/blob.h). The descriptor stays open.
//   2. If F exists: renameat2(T, F, RENAME_EXCHANGE) -- F is now n+1 and T holds n -- then
//      renameat(T -> F.bak). If F does not exist: renameat(T -> F).
//      (Where the file system has no RENAME_EXCHANGE: linkat(F -> L), renameat(L -> F.bak),
//      renameat(T -> F); without hard links either, F's bytes are copied to a temp file that is
//      renamed to F.bak.) F itself is never renamed away, so there is no instant without F.
//   3. Durability (options.fsync), one sync per write where the file system allows:
//      * ext4, xfs, btrfs, tmpfs ("one sync"): fsync(T's descriptor), i.e. of the new F, after
//        the rename. These file systems journal metadata in order, and the rename changed the
//        new F's inode (ctime), so the journal commit that fsync waits for contains the rename
//        and everything before it: on return both the data and the name F -> n+1 are durable.
//      * any other file system ("strict", POSIX alone): fsync(T) before step 2 and fsync of the
//        directory after it -- two syncs, nothing assumed.
//
// Invariant: at every instant F is absent (never written), or a complete generation: n before
// the exchange/rename, n+1 after (both atomic), and F.bak, if present, is a complete older
// generation. A process crash (kill -9) at any point loses nothing that Store() returned for:
// the page cache outlives the process. A power loss or kernel crash
//   * before step 2: a stray T (removed by the next Lock()); F and F.bak untouched;
//   * between the exchange and the rename to F.bak: F = n+1, a stray T holding n (removed by
//     the next Lock(); F.bak stays n-1, older but complete);
//   * after step 2, before step 3 returned: n+1 was not acknowledged. Strict mode: T's data was
//     synced before the rename, so F is n or n+1, complete. One-sync mode: ext4 (auto_da_alloc,
//     on by default) writes a file renamed over another before committing the rename, so F is
//     n or n+1; on a file system without that guarantee F could come back torn -- and is then
//     refused by its seal, never served (fail closed; nothing acknowledged is lost: F.bak is n).
// After step 3 returns, n+1 survives a power loss. With options.fsync == false nothing is synced:
// state still survives a vtpm crash, not a host crash (the trade-off that option makes).
//
// Refused generations: when Load() found F damaged and served F.bak instead, or after
// FallBackToPreviousGeneration(), step 2 must not make the refused F the new F.bak (that would
// destroy the one good generation left): it is moved to F.rejected instead, keeping F.bak.
// Keeping the refused file matters e.g. after a libtpms downgrade: the newer libtpms can still
// read it.
//
// Delete(name) unlinks F.bak first, then F, then fsyncs the directory. A crash in between leaves
// F with no .bak (as if the delete had not started, minus the old generation); the other order
// could leave only F.bak, which a fallback would resurrect -- wrong for a deleted
// volatilestate (resuming a consumed suspend image) and for a deliberately deleted TPM.
//
// Failing closed: Load() and FallBackToPreviousGeneration() never serve an older generation
// unless options.use_previous_on_damage says the user consented; otherwise the error names the
// damaged file and the recovery (`vtpm state show/rollback`, or `--tpmstate ...,backup`).

#include "state/dir_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <fmt/chrono.h>
#include <fmt/format.h>
#include <linux/magic.h>
#include <stdio.h>  // renameat2
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "base/files.h"

namespace vtpm::state {
namespace {

constexpr std::string_view kLockFile = ".lock";
constexpr std::string_view kBakSuffix = ".bak";
constexpr std::string_view kRejectedSuffix = ".rejected";
// Marks our temporary files: ".<state file>.vtpm-<kind>-<pid>-<counter>".
constexpr std::string_view kAllNames[] = {kPermallName, kVolatileStateName, kSaveStateName};

tl::unexpected<Error> IoError(const std::string& what, int err, std::string_view hint) {
  return Fail(Errc::kIo, fmt::format("{}: {}; {}", what, std::strerror(err), hint), err);
}

std::string JoinPath(const std::string& dir, std::string_view file) {
  if (!dir.empty() && dir.back() == '/') return fmt::format("{}{}", dir, file);
  return fmt::format("{}/{}", dir, file);
}

Status ValidateName(std::string_view name) {
  bool ok = !name.empty() && name.size() <= 64;
  for (char c : name) {
    ok = ok && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                c == '_' || c == '-');
  }
  if (!ok) {
    return Fail(Errc::kInvalidArgument,
                fmt::format("invalid state blob name '{}': expected letters, digits, '_' or '-' "
                            "(libtpms uses permall, volatilestate, savestate)",
                            name));
  }
  return Ok();
}

// lstat relative to |dir_fd|: nullopt if absent.
Result<std::optional<struct stat>> StatNoFollow(int dir_fd, const std::string& file,
                                                const std::string& path) {
  struct stat st {};
  if (fstatat(dir_fd, file.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return std::optional<struct stat>();
    return IoError(fmt::format("cannot stat {}", path), errno,
                   "check the permissions of the state directory");
  }
  return std::optional<struct stat>(st);
}

tl::unexpected<Error> NotRegular(const std::string& path, const struct stat& st,
                                 std::string_view action) {
  return Fail(
      Errc::kFailedPrecondition,
      fmt::format("{} is {}, not a regular file; {}. vtpm does not follow symlinks in the "
                  "state directory: put the regular file there (or remove the entry to "
                  "start without this state)",
                  path, S_ISLNK(st.st_mode) ? "a symbolic link" : "a special file", action));
}

// Damage that the previous generation can stand in for. Not: absent files, symlinks, permission
// problems, encrypted or newer-format blobs -- those need the user, not an older state.
bool IsDamage(const Error& e) {
  return e.code == Errc::kCorrupt || (e.code == Errc::kIo && e.sys_errno == EIO);
}

Error WithPath(const std::string& path, Error e) {
  e.message = fmt::format("{}: {}", path, e.message);
  return e;
}

// Where a file's key and AEAD name come from: the store's key (may be null) and the blob name.
struct FileKey {
  const StateKey* key = nullptr;
  std::string_view name;
};

// Reads one state file and checks its framing and seal (and, with a key, opens it); nullopt if
// absent.
Result<std::optional<StateFile>> ReadStateFileAt(int dir_fd, const std::string& file,
                                                 const std::string& path, FileKey fk) {
  VTPM_ASSIGN_OR_RETURN(std::optional<Bytes> raw,
                        ReadFileAt(dir_fd, file, path, kMaxStateFileSize));
  if (!raw) return std::optional<StateFile>();
  Result<StateFile> f = DecodeStateFile(*raw, fk.key, fk.name);
  if (!f) return tl::unexpected<Error>(WithPath(path, std::move(f.error())));
  return std::optional<StateFile>(std::move(*f));
}

StateFileInfo InspectFile(int dir_fd, const std::string& dir, const std::string& file, FileKey fk) {
  StateFileInfo info;
  info.file = file;
  const std::string path = JoinPath(dir, file);
  Result<std::optional<struct stat>> st = StatNoFollow(dir_fd, file, path);
  if (st && !*st) return info;
  info.present = true;
  if (!st) {
    info.damage = std::move(st.error());
    return info;
  }
  info.size = static_cast<uint64_t>((*st)->st_size);
  info.mtime = std::chrono::system_clock::time_point(
      std::chrono::duration_cast<std::chrono::system_clock::duration>(
          std::chrono::seconds((*st)->st_mtim.tv_sec) +
          std::chrono::nanoseconds((*st)->st_mtim.tv_nsec)));
  Result<std::optional<StateFile>> f = ReadStateFileAt(dir_fd, file, path, fk);
  if (!f) {
    info.damage = std::move(f.error());
  } else if (!*f) {
    info.present = false;  // removed meanwhile
  } else {
    info.generation = (*f)->generation;
    info.sealed = info.generation.has_value();
    info.cipher = (*f)->cipher;
  }
  return info;
}

Result<std::vector<BlobGenerations>> InspectDirFd(int dir_fd, const std::string& dir,
                                                  TpmVersion version, const StateKey* key) {
  std::vector<BlobGenerations> out;
  for (std::string_view name : kAllNames) {
    BlobGenerations g;
    g.name = std::string(name);
    const std::string file = fmt::format("{}{}", StateFilePrefix(version), name);
    const FileKey fk{key, name};
    g.newest = InspectFile(dir_fd, dir, file, fk);
    g.previous = InspectFile(dir_fd, dir, file + std::string(kBakSuffix), fk);
    g.rejected = InspectFile(dir_fd, dir, file + std::string(kRejectedSuffix), fk);
    if (g.newest.present || g.previous.present || g.rejected.present) out.push_back(std::move(g));
  }
  return out;
}

// "generation 42, 1359 bytes, written 2026-12-02 13:00:01 UTC".
std::string Describe(const StateFileInfo& f) {
  if (!f.present) return "absent";
  std::string gen = f.generation ? fmt::format("generation {}", *f.generation)
                                 : std::string(f.damage ? "generation unknown" : "no seal");
  return fmt::format("{}, {} bytes, written {:%Y-%m-%d %H:%M:%S} UTC", gen, f.size,
                     std::chrono::floor<std::chrono::seconds>(f.mtime));
}

// A newest permall that is missing while its .bak exists: the state was lost (deleted by hand,
// or moved to lost+found by a file system repair). vtpm never deletes permall but through
// Delete(), which removes the .bak first, so this is never a state vtpm left.
Error MissingNewest(const std::string& path, const std::string& bak_path) {
  return Error{Errc::kCorrupt,
               fmt::format("{} is missing but its previous generation {} exists: the newest TPM "
                           "state was lost (deleted, or moved away by a file system repair), and "
                           "starting would make a new TPM with new keys",
                           path, bak_path)};
}

// The file system persists a rename together with a later fsync of the renamed file (see the
// crash analysis above).
bool OneSyncFileSystem(int dir_fd) {
  struct statfs sf {};
  if (fstatfs(dir_fd, &sf) != 0) return false;
  switch (static_cast<unsigned long>(sf.f_type)) {
    case EXT4_SUPER_MAGIC:  // also ext2/ext3 (same magic; the ext4 driver serves them)
    case XFS_SUPER_MAGIC:
    case BTRFS_SUPER_MAGIC:
    case TMPFS_MAGIC:
      return true;
    default:
      return false;
  }
}

}  // namespace

std::string_view StateFilePrefix(TpmVersion version) {
  return version == TpmVersion::kTpm20 ? "tpm2-00." : "tpm-00.";
}

Result<std::vector<BlobGenerations>> InspectStateDir(const std::string& directory,
                                                     TpmVersion version, const StateKey* key) {
  UniqueFd dir(::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir) {
    return IoError(fmt::format("cannot open state directory {}", directory), errno,
                   "check that it exists and that this user may read it");
  }
  return InspectDirFd(dir.get(), directory, version, key);
}

Result<std::unique_ptr<DirStore>> DirStore::Open(const DirStoreOptions& options, Logger logger) {
  if (options.directory.empty()) {
    return Fail(Errc::kInvalidArgument, "no state directory given (--tpmstate dir=<directory>)");
  }
  if ((options.file_mode & ~mode_t{0777}) != 0 || (options.file_mode & 0600) != 0600) {
    return Fail(Errc::kInvalidArgument,
                fmt::format("state file mode 0{:o} is invalid: it must include owner read and "
                            "write (0600) and use only permission bits (at most 0777)",
                            options.file_mode));
  }
  UniqueFd dir(::open(options.directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir) {
    const int err = errno;
    if (err == ENOENT) {
      return Fail(Errc::kNotFound,
                  fmt::format("state directory {} does not exist; create it first (e.g. "
                              "`mkdir -m 0700 {}`), vtpm does not create it (neither does swtpm)",
                              options.directory, options.directory),
                  err);
    }
    if (err == ENOTDIR) {
      return Fail(Errc::kInvalidArgument,
                  fmt::format("state path {} is not a directory; give the directory that holds "
                              "(or will hold) the tpm2-00.* files",
                              options.directory),
                  err);
    }
    return IoError(fmt::format("cannot open state directory {}", options.directory), err,
                   "check that this user may read and write it");
  }
  if (!logger) logger = NullLogger();
  return std::unique_ptr<DirStore>(new DirStore(options, std::move(logger), std::move(dir)));
}

DirStore::DirStore(DirStoreOptions options, Logger logger, UniqueFd dir_fd)
    : options_(std::move(options)),
      logger_(std::move(logger)),
      dir_fd_(std::move(dir_fd)),
      one_sync_(!options_.strict_sync && OneSyncFileSystem(dir_fd_.get())) {}

DirStore::~DirStore() { Unlock(); }

std::string DirStore::FileName(std::string_view name) const {
  return fmt::format("{}{}", StateFilePrefix(options_.tpm_version), name);
}

std::string DirStore::Path(const std::string& file) const {
  return JoinPath(options_.directory, file);
}

std::string DirStore::PathFor(std::string_view name) const { return Path(FileName(name)); }

std::string DirStore::LinkName(const std::string& file) {
  return fmt::format(".{}{}link-{}-{}", file, kTempInfix, ::getpid(), link_counter_++);
}

bool DirStore::ServesPrevious(const std::string& name) const {
  return fallen_back_ && !written_since_fallback_.contains(name);
}

bool DirStore::locked() const {
  std::lock_guard lock(mu_);
  return lock_fd_.valid();
}

Status DirStore::Lock() {
  std::lock_guard lock(mu_);
  if (lock_fd_) return Ok();
  const std::string path = Path(std::string(kLockFile));
  UniqueFd fd(openat(dir_fd_.get(), std::string(kLockFile).c_str(),
                     O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0660));
  if (!fd) {
    const int err = errno;
    if (err == ELOOP) {
      return Fail(Errc::kFailedPrecondition,
                  fmt::format("lock file {} is a symbolic link; remove it (vtpm and swtpm create "
                              "it as a regular file)",
                              path));
    }
    return IoError(fmt::format("cannot open lock file {}", path), err,
                   "check that this user may write the state directory");
  }
  struct flock fl {};
  fl.l_type = F_WRLCK;
  fl.l_whence = SEEK_SET;
  fl.l_start = 0;
  fl.l_len = 0;  // whole file, like swtpm
  int rc = fcntl(fd.get(), F_OFD_SETLK, &fl);
  if (rc != 0 && errno == EINVAL) rc = fcntl(fd.get(), F_SETLK, &fl);  // kernel < 3.15
  if (rc != 0) {
    const int err = errno;
    if (err == EAGAIN || err == EACCES) {
      std::string holder;
      struct flock q {};
      q.l_type = F_WRLCK;
      q.l_whence = SEEK_SET;
      // A classic lock (swtpm's) reports its owner's pid; an OFD lock reports -1.
      if (fcntl(fd.get(), F_OFD_GETLK, &q) == 0 && q.l_type != F_UNLCK && q.l_pid > 0) {
        holder = fmt::format(" (process {})", q.l_pid);
      }
      return Fail(Errc::kBusy,
                  fmt::format("state directory {} is in use by another vtpm or swtpm process{}: "
                              "it holds the lock on {}. Stop that process, or give this TPM its "
                              "own state directory",
                              options_.directory, holder, path),
                  err);
    }
    return IoError(fmt::format("cannot lock {}", path), err,
                   "the file system may not support fcntl locks; use a local file system");
  }
  lock_fd_ = std::move(fd);
  RemoveStaleTemps();
  if (options_.key) EncryptPlainFiles();
  return Ok();
}

void DirStore::EncryptPlainFiles() {
  // Turning encryption on for existing state: every plain generation of every blob is rewritten
  // encrypted at once (same content, same generation; one atomic rename per file), so no plain
  // copy of the TPM's secrets stays behind in a .bak. A failure leaves that file plain and valid.
  for (std::string_view n : kAllNames) {
    const std::string file = FileName(n);
    for (const std::string& f :
         {file, file + std::string(kBakSuffix), file + std::string(kRejectedSuffix)}) {
      Result<std::optional<StateFile>> r = ReadStateFile(f, n);
      if (!r || !*r || (*r)->cipher) continue;
      const uint64_t generation = (*r)->generation.value_or(0);
      std::string tmp;
      Result<UniqueFd> fd = WriteTempFile(
          f, "enc", EncodeSealedFileBlob((*r)->blob, generation, options_.key.get(), n), &tmp);
      const bool ok = fd && (!options_.fsync || fsync(fd->get()) == 0) &&
                      renameat(dir_fd_.get(), tmp.c_str(), dir_fd_.get(), f.c_str()) == 0 &&
                      SyncDir();
      if (!ok) {
        if (!tmp.empty()) unlinkat(dir_fd_.get(), tmp.c_str(), 0);
        logger_->warn(
            "could not encrypt the plain state file {}; it stays plain until it is "
            "next written",
            Path(f));
        continue;
      }
      logger_->info("encrypted the plain state file {} ({})", Path(f),
                    CipherName(options_.key->cipher()));
    }
  }
}

void DirStore::Unlock() {
  std::lock_guard lock(mu_);
  lock_fd_.reset();  // closing the open file description drops its lock
}

void DirStore::RemoveStaleTemps() {
  // Only called with the lock held: no other writer of this directory is alive.
  const int fd = ::dup(dir_fd_.get());
  if (fd < 0) return;
  DIR* d = fdopendir(fd);
  if (d == nullptr) {
    ::close(fd);
    return;
  }
  rewinddir(d);
  const std::string ours = fmt::format(".{}", StateFilePrefix(options_.tpm_version));
  std::vector<std::string> stale;
  while (const dirent* e = readdir(d)) {
    const std::string_view n(e->d_name);
    if (n.starts_with(ours) && n.find(kTempInfix) != std::string_view::npos) {
      stale.emplace_back(n);
    }
  }
  closedir(d);
  for (const std::string& n : stale) {
    if (unlinkat(dir_fd_.get(), n.c_str(), 0) == 0) {
      logger_->info("removed {}, a temporary file left by an interrupted write", Path(n));
    }
  }
}

Result<std::optional<StateFile>> DirStore::ReadStateFile(const std::string& file,
                                                         std::string_view name) const {
  Result<std::optional<StateFile>> f =
      ReadStateFileAt(dir_fd_.get(), file, Path(file), FileKey{options_.key.get(), name});
  if (f && *f && (*f)->locked) {
    return Fail(Errc::kWrongKey,
                fmt::format("{} is encrypted ({}) and no key was given: give the key it "
                            "was written with (--key ...)",
                            Path(file), CipherName(*(*f)->cipher)));
  }
  return f;
}

Error DirStore::Refused(const std::string& name, Error damage) const {
  const std::string file = FileName(name);
  const std::string bak = file + std::string(kBakSuffix);
  const StateFileInfo previous =
      InspectFile(dir_fd_.get(), options_.directory, bak, FileKey{options_.key.get(), name});
  const std::string& dir = options_.directory;
  std::string msg =
      fmt::format("{}. The TPM does not start from older state without consent", damage.message);
  if (name != kPermallName) {
    msg += fmt::format(
        ": to start without this {} (a suspended TPM state; the guest then boots as after a power "
        "cut), run `vtpm state rollback --tpmstate dir={}` or start with `--tpmstate "
        "dir={},backup`",
        name, dir, dir);
  } else if (previous.usable()) {
    msg += fmt::format(
        ". The previous generation {} ({}) is intact: to start from it, losing what the TPM "
        "changed after it was written, run `vtpm state rollback --tpmstate dir={}` or start "
        "with `--tpmstate dir={},backup`. `vtpm state show --tpmstate dir={}` lists the "
        "generations",
        Path(bak), Describe(previous), dir, dir, dir);
  } else {
    msg += fmt::format(
        ", and there is no intact previous generation ({}: {}). Restore the state directory from "
        "a backup; to give this TPM up instead (its keys and sealed data are lost), move the "
        "{}* files away and a new TPM is made",
        Path(bak), previous.present ? previous.damage->message : "absent",
        Path(StateFilePrefix(options_.tpm_version).data()));
  }
  return Error{Errc::kCorrupt, std::move(msg), damage.sys_errno, 0};
}

bool DirStore::FallBackLocked(std::string_view why) {
  const std::string bak = FileName(kPermallName) + std::string(kBakSuffix);
  fallen_back_ = true;
  written_since_fallback_.clear();
  on_disk_.clear();
  logger_->warn(
      "{}; using the previous generation {} instead, as --tpmstate ...,backup allows (older TPM "
      "state: what changed after it was written is lost). The volatile state of the newer "
      "generation is set aside; the refused files will be kept as *{} when overwritten",
      why, Path(bak), kRejectedSuffix);
  return true;
}

Result<std::optional<Bytes>> DirStore::Load(std::string_view name_view) {
  VTPM_RETURN_IF_ERROR(ValidateName(name_view));
  std::lock_guard lock(mu_);
  const std::string name(name_view);
  const std::string file = FileName(name);
  const std::string bak = file + std::string(kBakSuffix);
  if (ServesPrevious(name)) {
    // Only permall has a usable previous generation; the newer generation's other blobs are set
    // aside, never mixed with it.
    if (name != kPermallName) return std::optional<Bytes>();
    VTPM_ASSIGN_OR_RETURN(std::optional<StateFile> prev, ReadStateFile(bak, name));
    if (!prev) {
      return Fail(Errc::kNotFound, fmt::format("{} disappeared while the TPM was using it; "
                                               "another process changed the state directory",
                                               Path(bak)));
    }
    return std::optional<Bytes>(std::move(prev->blob));
  }

  Result<std::optional<StateFile>> newest = ReadStateFile(file, name);
  if (newest && *newest) {
    on_disk_[name] = (*newest)->blob;
    return std::optional<Bytes>(std::move((*newest)->blob));
  }
  if (newest) {  // absent
    on_disk_.erase(name);
    if (name == kPermallName) {
      VTPM_ASSIGN_OR_RETURN(const auto bst, StatNoFollow(dir_fd_.get(), bak, Path(bak)));
      if (bst) return LoadDamaged(name, MissingNewest(Path(file), Path(bak)));
    }
    return std::optional<Bytes>();
  }
  if (!IsDamage(newest.error())) return tl::unexpected<Error>(std::move(newest.error()));
  return LoadDamaged(name, std::move(newest.error()));
}

Result<std::optional<Bytes>> DirStore::LoadDamaged(const std::string& name, Error damage) {
  on_disk_.erase(name);
  if (!options_.use_previous_on_damage)
    return tl::unexpected<Error>(Refused(name, std::move(damage)));
  const std::string file = FileName(name);
  if (name != kPermallName) {
    logger_->warn(
        "{}; setting it aside, as --tpmstate ...,backup allows: the TPM starts without it. It "
        "will be moved to {}{} when this blob is next written",
        damage.message, Path(file), kRejectedSuffix);
    newest_rejected_.insert(name);
    return std::optional<Bytes>();
  }
  const std::string bak = file + std::string(kBakSuffix);
  Result<std::optional<StateFile>> prev = ReadStateFile(bak, name);
  if (!prev || !*prev) {
    damage.message +=
        prev ? fmt::format("; there is no previous generation ({}) to fall back to", Path(bak))
             : fmt::format("; the previous generation is unusable too: {}", prev.error().message);
    return tl::unexpected<Error>(std::move(damage));
  }
  FallBackLocked(damage.message);
  return std::optional<Bytes>(std::move((*prev)->blob));
}

uint64_t DirStore::NextGeneration(const std::string& name) {
  auto it = generation_.find(name);
  if (it == generation_.end()) {
    // First write of this blob by this process: continue after every generation in the directory.
    uint64_t highest = 0;
    const std::string file = FileName(name);
    for (const std::string& f :
         {file, file + std::string(kBakSuffix), file + std::string(kRejectedSuffix)}) {
      Result<std::optional<StateFile>> r = ReadStateFile(f, name);
      if (r && *r && (*r)->generation) highest = std::max(highest, *(*r)->generation);
    }
    it = generation_.emplace(name, highest).first;
  }
  return it->second + 1;
}

Result<UniqueFd> DirStore::WriteTempFile(const std::string& file, std::string_view kind,
                                         ByteSpan contents, std::string* tmp) {
  VTPM_ASSIGN_OR_RETURN(UniqueFd fd, CreateTempAt(dir_fd_.get(), options_.directory, file, kind,
                                                  options_.file_mode, tmp));
  const std::string path = Path(*tmp);
  Status s = [&]() -> Status {
    VTPM_RETURN_IF_ERROR(WriteAll(fd.get(), contents, path));
    // Strict mode: the data is durable before any rename makes it visible.
    if (options_.fsync && !one_sync_ && fsync(fd.get()) != 0) {
      return IoError(fmt::format("cannot fsync {}", path), errno,
                     "check the file system, and the AppArmor/SELinux policy (or disable fsync)");
    }
    return Ok();
  }();
  if (!s) {
    unlinkat(dir_fd_.get(), tmp->c_str(), 0);
    return tl::unexpected<Error>(std::move(s.error()));
  }
  return fd;
}

Status DirStore::PreserveCurrent(const std::string& file, const std::string& as) {
  std::string tmp = LinkName(file);
  if (linkat(dir_fd_.get(), file.c_str(), dir_fd_.get(), tmp.c_str(), 0) != 0) {
    const int err = errno;
    if (err != EPERM && err != EOPNOTSUPP && err != EMLINK && err != ENOSYS) {
      return IoError(fmt::format("cannot link {} to {}", Path(file), Path(tmp)), err,
                     "check that this user may write the state directory");
    }
    // No hard links on this file system: copy the bytes instead.
    VTPM_ASSIGN_OR_RETURN(std::optional<Bytes> raw,
                          ReadFileAt(dir_fd_.get(), file, Path(file), kMaxStateFileSize));
    if (!raw) return Ok();  // vanished meanwhile: nothing to preserve
    VTPM_ASSIGN_OR_RETURN(UniqueFd copy, WriteTempFile(file, "copy", *raw, &tmp));
  }
  Status s;
  if (renameat(dir_fd_.get(), tmp.c_str(), dir_fd_.get(), as.c_str()) != 0) {
    s = IoError(fmt::format("cannot rename {} to {}", Path(tmp), Path(as)), errno,
                "check that this user may write the state directory");
  }
  // Gone after a successful rename, except when |as| already was a link to the same file.
  unlinkat(dir_fd_.get(), tmp.c_str(), 0);
  return s;
}

Status DirStore::Install(const std::string& tmp, const std::string& file,
                         const std::string& keep_as) {
  auto rename_error = [&](const std::string& from, const std::string& to) {
    return IoError(fmt::format("cannot rename {} to {}", Path(from), Path(to)), errno,
                   "check that this user may write the state directory");
  };
  if (keep_as.empty()) {
    if (renameat(dir_fd_.get(), tmp.c_str(), dir_fd_.get(), file.c_str()) != 0) {
      return rename_error(tmp, file);
    }
    return Ok();
  }
  if (renameat2(dir_fd_.get(), tmp.c_str(), dir_fd_.get(), file.c_str(), RENAME_EXCHANGE) == 0) {
    // |file| is the new generation now; |tmp| holds the one it replaced.
    if (renameat(dir_fd_.get(), tmp.c_str(), dir_fd_.get(), keep_as.c_str()) != 0) {
      logger_->warn("{} is written, but the generation it replaced could not be kept as {}: {}",
                    Path(file), Path(keep_as), std::strerror(errno));
    }
    // Gone after the rename, except when |keep_as| already was a link to the same file (a
    // rename between two links of one file does nothing).
    unlinkat(dir_fd_.get(), tmp.c_str(), 0);
    return Ok();
  }
  if (errno != EINVAL && errno != ENOSYS && errno != EOPNOTSUPP) return rename_error(tmp, file);
  // No RENAME_EXCHANGE on this file system: keep a hard link (or a copy), then replace.
  VTPM_RETURN_IF_ERROR(PreserveCurrent(file, keep_as));
  if (renameat(dir_fd_.get(), tmp.c_str(), dir_fd_.get(), file.c_str()) != 0) {
    return rename_error(tmp, file);
  }
  return Ok();
}

Status DirStore::SyncDir() {
  if (options_.fsync && fsync(dir_fd_.get()) != 0) {
    return IoError(fmt::format("cannot fsync state directory {}", options_.directory), errno,
                   "check the file system, and the AppArmor/SELinux policy (or disable fsync)");
  }
  return Ok();
}

Status DirStore::Store(std::string_view name_view, ByteSpan data) {
  VTPM_RETURN_IF_ERROR(ValidateName(name_view));
  if (data.size() > kMaxBlobPayload) {
    return Fail(Errc::kInvalidArgument,
                fmt::format("state blob '{}' is {} bytes; state files are limited to {} bytes",
                            name_view, data.size(), kMaxStateFileSize));
  }
  std::lock_guard lock(mu_);
  const std::string name(name_view);
  const std::string file = FileName(name);
  const std::string path = Path(file);

  if (auto it = on_disk_.find(name);
      it != on_disk_.end() && !ServesPrevious(name) && !newest_rejected_.contains(name) &&
      std::equal(it->second.begin(), it->second.end(), data.begin(), data.end())) {
    return Ok();  // the newest file already holds exactly these bytes
  }
  on_disk_.erase(name);  // until the new file is in place, we do not know what it holds

  VTPM_ASSIGN_OR_RETURN(const std::optional<struct stat> st,
                        StatNoFollow(dir_fd_.get(), file, path));
  if (st && !S_ISREG(st->st_mode)) return NotRegular(path, *st, "refusing to replace it");

  const uint64_t generation = NextGeneration(name);
  std::string tmp;
  VTPM_ASSIGN_OR_RETURN(
      UniqueFd fd,
      WriteTempFile(file, "tmp", EncodeSealedFileBlob(data, generation, options_.key.get(), name),
                    &tmp));
  const bool refused = st && (newest_rejected_.contains(name) || ServesPrevious(name));
  const std::string keep_as =
      st ? file + std::string(refused ? kRejectedSuffix : kBakSuffix) : std::string();
  if (Status s = Install(tmp, file, keep_as); !s) {
    unlinkat(dir_fd_.get(), tmp.c_str(), 0);
    return s;
  }
  if (refused) {
    logger_->warn("moved the refused state file {} to {}; {}{} stays the previous generation", path,
                  Path(keep_as), path, kBakSuffix);
  }
  newest_rejected_.erase(name);
  if (fallen_back_) written_since_fallback_.insert(name);
  generation_[name] = generation;
  if (options_.fsync) {
    if (one_sync_ ? fsync(fd.get()) != 0 : !SyncDir()) {
      return IoError(fmt::format("cannot make {} durable (fsync)", path), errno,
                     "check the file system, and the AppArmor/SELinux policy (or disable fsync)");
    }
  }
  if (::close(fd.release()) != 0) {
    return IoError(fmt::format("cannot write {}", path), errno,
                   "check free space and the file system");
  }
  on_disk_[name].assign(data.begin(), data.end());
  return Ok();
}

Status DirStore::Delete(std::string_view name_view, bool must_exist) {
  VTPM_RETURN_IF_ERROR(ValidateName(name_view));
  std::lock_guard lock(mu_);
  const std::string name(name_view);
  const std::string file = FileName(name);
  const std::string bak = file + std::string(kBakSuffix);
  const std::string& visible = ServesPrevious(name) ? bak : file;

  VTPM_ASSIGN_OR_RETURN(const auto st, StatNoFollow(dir_fd_.get(), visible, Path(visible)));
  if (must_exist && !st) {
    return Fail(Errc::kNotFound, fmt::format("cannot delete {}: it does not exist", Path(visible)));
  }
  on_disk_.erase(name);
  for (const std::string& f : {bak, file}) {  // .bak first, see the crash analysis above
    if (unlinkat(dir_fd_.get(), f.c_str(), 0) != 0 && errno != ENOENT) {
      return IoError(fmt::format("cannot delete {}", Path(f)), errno,
                     "check that this user may write the state directory");
    }
  }
  newest_rejected_.erase(name);
  if (fallen_back_) written_since_fallback_.insert(name);
  return SyncDir();
}

Status DirStore::DeletePreviousGeneration(std::string_view name_view) {
  VTPM_RETURN_IF_ERROR(ValidateName(name_view));
  std::lock_guard lock(mu_);
  const std::string bak = FileName(name_view) + std::string(kBakSuffix);
  if (unlinkat(dir_fd_.get(), bak.c_str(), 0) != 0 && errno != ENOENT) {
    return IoError(fmt::format("cannot remove the previous generation {}", Path(bak)), errno,
                   "check that this user may write the state directory");
  }
  return SyncDir();
}

bool DirStore::FallBackToPreviousGeneration() {
  std::lock_guard lock(mu_);
  const std::string file = FileName(kPermallName);
  if (fallen_back_) {
    logger_->error("state in {}: already using the previous generation; there is no older one",
                   options_.directory);
    return false;
  }
  const Error refused{Errc::kCorrupt,
                      fmt::format("libtpms refused {} (its reason is logged above: state from a "
                                  "newer libtpms, or damage its seal cannot show)",
                                  Path(file))};
  if (!options_.use_previous_on_damage) {
    logger_->error("{}", Refused(std::string(kPermallName), refused).message);
    return false;
  }
  const std::string bak = file + std::string(kBakSuffix);
  Result<std::optional<StateFile>> prev = ReadStateFile(bak, kPermallName);
  if (!prev || !*prev) {
    logger_->error("cannot fall back to the previous generation of the TPM state: {}",
                   prev ? Path(bak) + " does not exist" : prev.error().message);
    return false;
  }
  return FallBackLocked(refused.message);
}

Result<bool> DirStore::HasState() {
  std::lock_guard lock(mu_);
  const std::string file = FileName(kPermallName);
  VTPM_ASSIGN_OR_RETURN(const auto st, StatNoFollow(dir_fd_.get(), file, Path(file)));
  if (!st) return false;
  if (!S_ISREG(st->st_mode)) return NotRegular(Path(file), *st, "cannot use it");
  return true;
}

Result<std::vector<BlobGenerations>> DirStore::Inspect() const {
  return InspectDirFd(dir_fd_.get(), options_.directory, options_.tpm_version, options_.key.get());
}

Status DirStore::CheckStartable() const {
  // Only what a start reads: each newest file, and the previous generation where it matters.
  for (std::string_view n : kAllNames) {
    const std::string name(n);
    const std::string file = FileName(name);
    const std::string bak = file + std::string(kBakSuffix);
    const bool permall = name == kPermallName;
    const FileKey fk{options_.key.get(), name};
    const StateFileInfo newest = InspectFile(dir_fd_.get(), options_.directory, file, fk);
    if (newest.usable() && newest.cipher && !options_.key) {
      return Fail(Errc::kWrongKey,
                  fmt::format("{} is encrypted ({}) and no key was given: give the key it "
                              "was written with (--key ...)",
                              Path(file), CipherName(*newest.cipher)));
    }
    std::optional<Error> damage = newest.damage;
    if (!newest.present && permall) {
      VTPM_ASSIGN_OR_RETURN(const auto bst, StatNoFollow(dir_fd_.get(), bak, Path(bak)));
      if (bst) damage = MissingNewest(Path(file), Path(bak));
    }
    if (!damage) continue;
    if (!IsDamage(*damage)) return tl::unexpected<Error>(*damage);
    if (!options_.use_previous_on_damage) return tl::unexpected<Error>(Refused(name, *damage));
    const StateFileInfo previous = InspectFile(dir_fd_.get(), options_.directory, bak, fk);
    if (permall && !previous.usable()) {
      return Fail(
          Errc::kCorrupt,
          fmt::format("{}; the previous generation {} is {} too, so even "
                      "--tpmstate ...,backup cannot start this TPM: restore the state "
                      "directory from a backup",
                      damage->message, Path(bak), previous.present ? "damaged" : "missing"));
    }
  }
  return Ok();
}

Result<std::string> DirStore::DescribeRollback() const {
  VTPM_ASSIGN_OR_RETURN(const std::vector<BlobGenerations> blobs, Inspect());
  const BlobGenerations* perm = nullptr;
  for (const BlobGenerations& b : blobs) {
    if (b.name == kPermallName) perm = &b;
  }
  if (perm == nullptr || !perm->previous.usable()) {
    return Fail(
        Errc::kFailedPrecondition,
        fmt::format("there is nothing to roll back to: {} {}",
                    Path(FileName(kPermallName) + std::string(kBakSuffix)),
                    perm && perm->previous.present ? "is damaged: " + perm->previous.damage->message
                                                   : std::string("does not exist")));
  }
  std::string out = fmt::format("Roll back the TPM state in {} to its previous generation:\n",
                                options_.directory);
  if (perm->newest.present) {
    out += fmt::format("  {} ({}{}) -> kept as {}{}\n", perm->newest.file, Describe(perm->newest),
                       perm->newest.damage ? ", DAMAGED" : ", intact", perm->newest.file,
                       kRejectedSuffix);
  }
  out += fmt::format("  {} ({}) -> becomes {}\n", perm->previous.file, Describe(perm->previous),
                     FileName(kPermallName));
  for (const BlobGenerations& b : blobs) {
    if (b.name != kPermallName && b.newest.present) {
      out += fmt::format("  {} ({}) -> set aside as {}{}: it belongs to the newer generation\n",
                         b.newest.file, Describe(b.newest), b.newest.file, kRejectedSuffix);
    }
  }
  std::string span;
  if (perm->newest.generation && perm->previous.generation &&
      *perm->newest.generation > *perm->previous.generation) {
    span = fmt::format(" ({} write(s) of the permanent state)",
                       *perm->newest.generation - *perm->previous.generation);
  }
  out += fmt::format(
      "Lost: everything the TPM changed after {:%Y-%m-%d %H:%M:%S} UTC{} -- NV indices and "
      "counters written since, keys made persistent or evicted, hierarchy and lockout changes, "
      "dictionary-attack state. The guest sees a TPM that went back in time.\n",
      std::chrono::floor<std::chrono::seconds>(perm->previous.mtime), span);
  return out;
}

Status DirStore::SetAside(const std::string& file, const std::string& as) {
  if (renameat(dir_fd_.get(), file.c_str(), dir_fd_.get(), as.c_str()) != 0 && errno != ENOENT) {
    return IoError(fmt::format("cannot rename {} to {}", Path(file), Path(as)), errno,
                   "check that this user may write the state directory");
  }
  return Ok();
}

Status DirStore::RollBackToPrevious() {
  std::lock_guard lock(mu_);
  if (!lock_fd_) {
    return Fail(Errc::kFailedPrecondition, "the state directory must be locked to roll it back");
  }
  const std::string file = FileName(kPermallName);
  const std::string bak = file + std::string(kBakSuffix);
  const std::string rejected = file + std::string(kRejectedSuffix);
  VTPM_ASSIGN_OR_RETURN(const std::optional<StateFile> prev, ReadStateFile(bak, kPermallName));
  if (!prev) return Fail(Errc::kFailedPrecondition, fmt::format("{} does not exist", Path(bak)));
  // The other blobs of the newer generation go first: a crash after this leaves the newest
  // permall without its volatile state (no rollback yet), never older permall + newer volatile.
  for (std::string_view other : {kVolatileStateName, kSaveStateName}) {
    const std::string f = FileName(other);
    VTPM_RETURN_IF_ERROR(SetAside(f, f + std::string(kRejectedSuffix)));
  }
  VTPM_ASSIGN_OR_RETURN(const auto st, StatNoFollow(dir_fd_.get(), file, Path(file)));
  if (st &&
      renameat2(dir_fd_.get(), bak.c_str(), dir_fd_.get(), file.c_str(), RENAME_EXCHANGE) == 0) {
    VTPM_RETURN_IF_ERROR(SetAside(bak, rejected));  // |bak| holds the refused newest now
  } else {
    if (st) VTPM_RETURN_IF_ERROR(PreserveCurrent(file, rejected));
    if (renameat(dir_fd_.get(), bak.c_str(), dir_fd_.get(), file.c_str()) != 0) {
      return IoError(fmt::format("cannot rename {} to {}", Path(bak), Path(file)), errno,
                     "check that this user may write the state directory");
    }
  }
  if (fsync(dir_fd_.get()) != 0) {
    return IoError(fmt::format("cannot fsync state directory {}", options_.directory), errno,
                   "check the file system");
  }
  on_disk_.clear();
  generation_.clear();
  newest_rejected_.clear();
  written_since_fallback_.clear();
  fallen_back_ = false;
  logger_->warn(
      "rolled the TPM state in {} back to its previous generation ({} -> {}; the "
      "replaced file is {})",
      options_.directory, Path(bak), Path(file), Path(rejected));
  return Ok();
}

}  // namespace vtpm::state
