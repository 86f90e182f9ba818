// DirStore implementation.
//
// Write sequence and crash analysis
// ---------------------------------
// Store(name) with F = <prefix><name> (e.g. tpm2-00.permall), generation n+1 replacing n:
//
//   1. T = .F.vtpm-tmp-<pid>-<k>: openat(O_CREAT|O_EXCL|O_NOFOLLOW|O_CLOEXEC, mode), fchmod(mode),
//      write everything, fsync(T), close.
//   2. If F exists: linkat(F -> L), L = .F.vtpm-link-<pid>-<k>; renameat(L -> F.bak).
//      (link() cannot replace an existing F.bak, rename() can; and F itself is never renamed away,
//      so there is no instant at which F is missing.) If the file system has no hard links
//      (EPERM/EOPNOTSUPP/EMLINK), F's bytes are copied to a fsync'ed temp file instead, which is
//      renamed to F.bak the same way.
//   3. renameat(T -> F).
//   4. fsync(directory).
//
// Invariant: at every instant F is absent (never written), or a complete generation (n before
// step 3, n+1 after, rename being atomic), and F.bak, if present, is a complete older
// generation. A crash
//   * during/after 1: a stray T (removed by the next Lock()); F and F.bak untouched;
//   * after the link in 2: additionally a stray L (removed by the next Lock());
//   * after the rename in 2: F.bak == F == generation n (generation n-1 is dropped; still valid);
//   * after 3 but before 4: the directory may come back with any subset of steps 2 and 3 on
//     disk. T's data was fsync'ed before the rename, so F is n or n+1, complete either way; and
//     even if the file system persisted 3 but not 2 (POSIX promises no order without an fsync
//     between them; ext4 and xfs journal them in order in practice), F.bak is generation n-1,
//     older but complete. So no fsync between 2 and 3 is needed for the invariant.
// After 4 returns, n+1 (and the .bak) survive a power loss. With options.fsync == false steps 1
// and 4 skip fsync: the rename can then reach the disk before T's data (ext4's auto_da_alloc
// narrows but does not close that window), which is the trade-off that option makes.
//
// If F and F.bak are already the same inode (a crash right after step 2), rename(L -> F.bak) is a
// no-op that leaves L behind (POSIX: renaming between two links of the same file does nothing), so
// L is unlinked afterwards in any case.
//
// Refused generations: when Load() found F damaged and served F.bak instead, or after
// FallBackToPreviousGeneration(), step 2 must not make the refused F the new F.bak (that would
// destroy the one good generation left): it links F to F.rejected instead, keeping F.bak. Keeping
// the refused file matters e.g. after a libtpms downgrade: the newer libtpms can still read it.
//
// Delete(name) unlinks F.bak first, then F, then fsyncs the directory. A crash in between leaves
// F with no .bak (as if the delete had not started, minus the old generation); the other order
// could leave only F.bak, which FallBackToPreviousGeneration() would resurrect -- wrong for a
// deleted volatilestate (resuming a consumed suspend image) and for a deliberately deleted TPM.

#include "state/dir_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "state/blob.h"

namespace vtpm::state {
namespace {

constexpr std::string_view kLockFile = ".lock";
constexpr std::string_view kBakSuffix = ".bak";
constexpr std::string_view kRejectedSuffix = ".rejected";
// Marks our temporary files: ".<state file>.vtpm-<kind>-<pid>-<counter>".
constexpr std::string_view kTempInfix = ".vtpm-";
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

Status WriteAll(int fd, ByteSpan data, const std::string& path) {
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return IoError(fmt::format("cannot write {}", path), errno,
                     "check free space and quota of the file system holding the state directory");
    }
    done += static_cast<size_t>(n);
  }
  return Ok();
}

// Reads a regular file opened from |dir_fd| without following symlinks; nullopt if absent.
// Refuses more than kMaxStateFileSize bytes (Errc::kCorrupt).
Result<std::optional<Bytes>> ReadRawFile(int dir_fd, const std::string& file,
                                         const std::string& path) {
  // O_NONBLOCK: opening a FIFO planted under the name must not hang us.
  UniqueFd fd(openat(dir_fd, file.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK));
  if (!fd) {
    const int err = errno;
    if (err == ENOENT) return std::optional<Bytes>();
    if (err == ELOOP) {
      return Fail(Errc::kFailedPrecondition,
                  fmt::format("{} is a symbolic link; vtpm does not follow symlinks in the state "
                              "directory: replace it by the regular file it points to",
                              path));
    }
    return IoError(fmt::format("cannot open {}", path), err,
                   "check that this user may read the state directory and its files");
  }
  struct stat st {};
  if (fstat(fd.get(), &st) != 0) {
    return IoError(fmt::format("cannot stat {}", path), errno, "check the file system");
  }
  if (!S_ISREG(st.st_mode)) return NotRegular(path, st, "refusing to read it");
  if (st.st_size < 0 || static_cast<uint64_t>(st.st_size) > kMaxStateFileSize) {
    return Fail(Errc::kCorrupt,
                fmt::format("{} is {} bytes, more than the {} a TPM state file can have; it is "
                            "not a TPM state file (restore the right file or remove it)",
                            path, st.st_size, kMaxStateFileSize));
  }
  Bytes buf(static_cast<size_t>(st.st_size) + 1);  // +1: notice a file that grew meanwhile
  size_t got = 0;
  while (got < buf.size()) {
    const ssize_t n = ::read(fd.get(), buf.data() + got, buf.size() - got);
    if (n < 0) {
      if (errno == EINTR) continue;
      return IoError(fmt::format("cannot read {}", path), errno,
                     "the file or its storage is damaged; check the system log");
    }
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  if (got > static_cast<size_t>(st.st_size)) {
    return Fail(Errc::kBusy, fmt::format("{} grew while being read: another process is writing "
                                         "the state directory; stop it (see <dir>/.lock)",
                                         path));
  }
  buf.resize(got);
  return std::optional<Bytes>(std::move(buf));
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

}  // namespace

std::string_view StateFilePrefix(TpmVersion version) {
  return version == TpmVersion::kTpm2 ? "tpm2-00." : "tpm-00.";
}

Result<std::vector<StateBlobInfo>> ListStateBlobs(const std::string& directory,
                                                  TpmVersion version) {
  UniqueFd dir(::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir) {
    return IoError(fmt::format("cannot open state directory {}", directory), errno,
                   "check that it exists and that this user may read it");
  }
  std::vector<StateBlobInfo> out;
  for (std::string_view name : kAllNames) {
    StateBlobInfo info;
    info.name = std::string(name);
    info.file = fmt::format("{}{}", StateFilePrefix(version), name);
    const std::string path = JoinPath(directory, info.file);
    VTPM_ASSIGN_OR_RETURN(auto st, StatNoFollow(dir.get(), info.file, path));
    if (!st) continue;
    if (!S_ISREG(st->st_mode)) return NotRegular(path, *st, "cannot list it");
    info.size = static_cast<uint64_t>(st->st_size);
    const std::string bak = info.file + std::string(kBakSuffix);
    VTPM_ASSIGN_OR_RETURN(auto bst, StatNoFollow(dir.get(), bak, JoinPath(directory, bak)));
    if (bst && S_ISREG(bst->st_mode)) {
      info.previous_generation_size = static_cast<uint64_t>(bst->st_size);
    }
    out.push_back(std::move(info));
  }
  return out;
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
    : options_(std::move(options)), logger_(std::move(logger)), dir_fd_(std::move(dir_fd)) {}

DirStore::~DirStore() { Unlock(); }

std::string DirStore::FileName(std::string_view name) const {
  return fmt::format("{}{}", StateFilePrefix(options_.tpm_version), name);
}

std::string DirStore::Path(const std::string& file) const {
  return JoinPath(options_.directory, file);
}

std::string DirStore::PathFor(std::string_view name) const { return Path(FileName(name)); }

std::string DirStore::TempName(const std::string& file, std::string_view kind) {
  return fmt::format(".{}{}{}-{}-{}", file, kTempInfix, kind, ::getpid(), temp_counter_++);
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
  return Ok();
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

Result<std::optional<Bytes>> DirStore::ReadBlobFile(const std::string& file) {
  const std::string path = Path(file);
  VTPM_ASSIGN_OR_RETURN(std::optional<Bytes> raw, ReadRawFile(dir_fd_.get(), file, path));
  if (!raw) return std::optional<Bytes>();
  Result<Bytes> blob = DecodeFileBlob(*raw);
  if (!blob) return tl::unexpected<Error>(WithPath(path, std::move(blob.error())));
  return std::optional<Bytes>(std::move(*blob));
}

Result<std::optional<Bytes>> DirStore::Load(std::string_view name_view) {
  VTPM_RETURN_IF_ERROR(ValidateName(name_view));
  std::lock_guard lock(mu_);
  const std::string name(name_view);
  const std::string file = FileName(name);
  const std::string bak = file + std::string(kBakSuffix);
  if (ServesPrevious(name)) return ReadBlobFile(bak);

  Result<std::optional<Bytes>> newest = ReadBlobFile(file);
  if (newest) {
    if (*newest) {
      on_disk_[name] = **newest;
    } else {
      on_disk_.erase(name);
    }
    return newest;
  }
  if (!IsDamage(newest.error())) return newest;

  Result<std::optional<Bytes>> previous = ReadBlobFile(bak);
  if (!previous) {
    newest.error().message +=
        fmt::format("; the previous generation is unusable too: {}", previous.error().message);
    return newest;
  }
  if (!*previous) {
    newest.error().message +=
        fmt::format("; there is no previous generation ({}) to fall back to", Path(bak));
    return newest;
  }
  logger_->warn(
      "{}; using the previous generation {} instead (older TPM state). The damaged file "
      "will be moved to {}{} when this blob is next written",
      newest.error().message, Path(bak), Path(file), kRejectedSuffix);
  newest_rejected_.insert(name);
  return previous;
}

Result<UniqueFd> DirStore::CreateTemp(const std::string& file, std::string_view kind,
                                      std::string* tmp) {
  for (int attempt = 0; attempt < 100; ++attempt) {
    *tmp = TempName(file, kind);
    UniqueFd fd(openat(dir_fd_.get(), tmp->c_str(),
                       O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, options_.file_mode));
    if (fd) return fd;
    if (errno != EEXIST) {
      return IoError(fmt::format("cannot create {}", Path(*tmp)), errno,
                     "check that this user may write the state directory");
    }
  }
  return Fail(Errc::kIo, fmt::format("cannot create a temporary file in {}: 100 names taken; "
                                     "remove the .{}*{}* files there",
                                     options_.directory, file, kTempInfix));
}

Status DirStore::WriteTempFile(const std::string& file, std::string_view kind, ByteSpan contents,
                               std::string* tmp) {
  VTPM_ASSIGN_OR_RETURN(UniqueFd fd, CreateTemp(file, kind, tmp));
  const std::string path = Path(*tmp);
  Status s = [&]() -> Status {
    // The umask applied to openat's mode; set the requested mode exactly.
    if (fchmod(fd.get(), options_.file_mode) != 0) {
      return IoError(fmt::format("cannot chmod {}", path), errno, "check the file system");
    }
    VTPM_RETURN_IF_ERROR(WriteAll(fd.get(), contents, path));
    if (options_.fsync && fsync(fd.get()) != 0) {
      return IoError(fmt::format("cannot fsync {}", path), errno,
                     "check the file system, and the AppArmor/SELinux policy (or disable fsync)");
    }
    if (::close(fd.release()) != 0) {
      return IoError(fmt::format("cannot write {}", path), errno,
                     "check free space and the file system");
    }
    return Ok();
  }();
  if (!s) unlinkat(dir_fd_.get(), tmp->c_str(), 0);
  return s;
}

Status DirStore::PreserveCurrent(const std::string& file, const std::string& as) {
  std::string tmp = TempName(file, "link");
  if (linkat(dir_fd_.get(), file.c_str(), dir_fd_.get(), tmp.c_str(), 0) != 0) {
    const int err = errno;
    if (err != EPERM && err != EOPNOTSUPP && err != EMLINK && err != ENOSYS) {
      return IoError(fmt::format("cannot link {} to {}", Path(file), Path(tmp)), err,
                     "check that this user may write the state directory");
    }
    // No hard links on this file system: copy the bytes instead.
    VTPM_ASSIGN_OR_RETURN(std::optional<Bytes> raw, ReadRawFile(dir_fd_.get(), file, Path(file)));
    if (!raw) return Ok();  // vanished meanwhile: nothing to preserve
    VTPM_RETURN_IF_ERROR(WriteTempFile(file, "copy", *raw, &tmp));
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

  std::string tmp;
  VTPM_RETURN_IF_ERROR(WriteTempFile(file, "tmp", EncodeFileBlob(data), &tmp));

  if (st) {
    const bool refused = newest_rejected_.contains(name) || ServesPrevious(name);
    const std::string keep_as = file + std::string(refused ? kRejectedSuffix : kBakSuffix);
    if (Status s = PreserveCurrent(file, keep_as); !s) {
      unlinkat(dir_fd_.get(), tmp.c_str(), 0);
      return s;
    }
    if (refused) {
      logger_->warn("moved the refused state file {} to {}; {}{} stays the previous generation",
                    path, Path(keep_as), path, kBakSuffix);
    }
  }
  if (renameat(dir_fd_.get(), tmp.c_str(), dir_fd_.get(), file.c_str()) != 0) {
    const int err = errno;
    unlinkat(dir_fd_.get(), tmp.c_str(), 0);
    return IoError(fmt::format("cannot rename {} to {}", Path(tmp), path), err,
                   "check that this user may write the state directory");
  }
  newest_rejected_.erase(name);
  if (fallen_back_) written_since_fallback_.insert(name);
  VTPM_RETURN_IF_ERROR(SyncDir());
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

bool DirStore::FallBackToPreviousGeneration() {
  std::lock_guard lock(mu_);
  if (fallen_back_) {
    logger_->error("state in {}: already using the previous generation; there is no older one",
                   options_.directory);
    return false;
  }
  const std::string bak = FileName(kPermallName) + std::string(kBakSuffix);
  Result<std::optional<struct stat>> st = StatNoFollow(dir_fd_.get(), bak, Path(bak));
  if (!st || !*st || !S_ISREG((*st)->st_mode)) {
    logger_->error("cannot fall back to the previous generation of the TPM state: {} {}", Path(bak),
                   st ? "does not exist (or is not a regular file)" : st.error().message);
    return false;
  }
  fallen_back_ = true;
  written_since_fallback_.clear();
  logger_->warn(
      "falling back to the previous generation of the TPM state ({}, older than {}); the "
      "newer files will be kept as *{} when overwritten",
      Path(bak), Path(FileName(kPermallName)), kRejectedSuffix);
  return true;
}

Result<bool> DirStore::HasState() {
  std::lock_guard lock(mu_);
  const std::string file = FileName(kPermallName);
  VTPM_ASSIGN_OR_RETURN(const auto st, StatNoFollow(dir_fd_.get(), file, Path(file)));
  if (!st) return false;
  if (!S_ISREG(st->st_mode)) return NotRegular(Path(file), *st, "cannot use it");
  return true;
}

}  // namespace vtpm::state
