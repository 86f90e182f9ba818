#include "base/files.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace vtpm {

Result<std::optional<Bytes>> ReadFileAt(int dir_fd, const std::string& name,
                                        const std::string& path, size_t max_size) {
  // O_NONBLOCK: opening a FIFO planted under the name must not hang us.
  UniqueFd fd(openat(dir_fd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK));
  if (!fd) {
    const int err = errno;
    if (err == ENOENT) return std::optional<Bytes>();
    if (err == ELOOP) {
      return Fail(Errc::kFailedPrecondition,
                  fmt::format("{} is a symbolic link; vtpm does not follow symlinks here: "
                              "replace it by the regular file it points to",
                              path));
    }
    return SysFail(fmt::format("cannot open {} (check that this user may read it)", path), err);
  }
  struct stat st {};
  if (fstat(fd.get(), &st) != 0) return SysFail(fmt::format("cannot stat {}", path), errno);
  if (!S_ISREG(st.st_mode)) {
    return Fail(Errc::kFailedPrecondition,
                fmt::format("{} is a special file, not a regular file; refusing to read it. "
                            "vtpm does not follow symlinks here: put the regular file there "
                            "(or remove the entry)",
                            path));
  }
  if (st.st_size < 0 || static_cast<uint64_t>(st.st_size) > max_size) {
    return Fail(Errc::kCorrupt, fmt::format("{} is {} bytes, more than the {} it may have; it is "
                                            "not the file it should be (restore the right file "
                                            "or remove it)",
                                            path, st.st_size, max_size));
  }
  Bytes buf(static_cast<size_t>(st.st_size) + 1);  // +1: notice a file that grew meanwhile
  size_t got = 0;
  while (got < buf.size()) {
    const ssize_t n = ::read(fd.get(), buf.data() + got, buf.size() - got);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Fail(Errc::kIo,
                  fmt::format("cannot read {}: {}; the file or its storage is damaged; check the "
                              "system log",
                              path, std::strerror(errno)),
                  errno);
    }
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  if (got > static_cast<size_t>(st.st_size)) {
    return Fail(Errc::kBusy, fmt::format("{} grew while being read: another process is writing "
                                         "it; stop that process",
                                         path));
  }
  buf.resize(got);
  return std::optional<Bytes>(std::move(buf));
}

Status WriteAll(int fd, ByteSpan data, const std::string& path) {
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Fail(Errc::kIo,
                  fmt::format("cannot write {}: {}; check free space and quota of its file system",
                              path, std::strerror(errno)),
                  errno);
    }
    done += static_cast<size_t>(n);
  }
  return Ok();
}

Result<UniqueFd> CreateTempAt(int dir_fd, const std::string& dir, const std::string& target,
                              std::string_view kind, mode_t mode, std::string* tmp) {
  for (int attempt = 0; attempt < 100; ++attempt) {
    uint8_t rnd[6] = {};
    if (getrandom(rnd, sizeof(rnd), 0) != sizeof(rnd)) return SysFail("getrandom", errno);
    *tmp = fmt::format(".{}{}{}-{}", target, kTempInfix, kind, ToHex(rnd));
    UniqueFd fd(
        openat(dir_fd, tmp->c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode));
    if (!fd) {
      if (errno == EEXIST) continue;
      return SysFail(
          fmt::format("cannot create a file in {} (check that this user may write it)", dir),
          errno);
    }
    // The umask applied to openat's mode; set the requested mode exactly.
    if (fchmod(fd.get(), mode) != 0) {
      const int err = errno;
      unlinkat(dir_fd, tmp->c_str(), 0);
      return SysFail(fmt::format("cannot chmod {}/{}", dir, *tmp), err);
    }
    return fd;
  }
  return Fail(Errc::kIo, fmt::format("cannot create a temporary file in {}: 100 names taken", dir));
}

Status WriteFileAtomic(const std::string& dir, std::string_view name, ByteSpan data, mode_t mode,
                       bool durable) {
  UniqueFd dfd(open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dfd) return SysFail("cannot open directory " + dir, errno);
  const std::string target(name);
  const std::string path = fmt::format("{}/{}", dir, target);
  struct stat st {};
  if (fstatat(dfd.get(), target.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode)) {
    return Fail(Errc::kFailedPrecondition,
                fmt::format("{} is a symbolic link; refusing to replace it", path));
  }
  std::string tmp;
  VTPM_ASSIGN_OR_RETURN(UniqueFd fd, CreateTempAt(dfd.get(), dir, target, "tmp", mode, &tmp));
  Status s = WriteAll(fd.get(), data, fmt::format("{}/{}", dir, tmp));
  if (s && durable && fsync(fd.get()) != 0) s = SysFail("cannot fsync " + tmp, errno);
  if (s && renameat(dfd.get(), tmp.c_str(), dfd.get(), target.c_str()) != 0) {
    s = SysFail(fmt::format("cannot rename {}/{} to {}", dir, tmp, path), errno);
  }
  if (!s) {
    unlinkat(dfd.get(), tmp.c_str(), 0);
    return s;
  }
  if (durable && fsync(dfd.get()) != 0) return SysFail("cannot fsync directory " + dir, errno);
  return Ok();
}

}  // namespace vtpm
