#include "provision/file_util.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <openssl/rand.h>
#include <pwd.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

namespace vtpm::provision {

std::string CurrentUserName() {
  uid_t uid = geteuid();
  struct passwd pw;
  struct passwd* found = nullptr;
  char buf[1024];
  if (getpwuid_r(uid, &pw, buf, sizeof(buf), &found) == 0 && found != nullptr) {
    return fmt::format("{} (uid {})", found->pw_name, uid);
  }
  return fmt::format("uid {}", uid);
}

bool FileExists(const std::string& path) {
  struct stat st;
  return lstat(path.c_str(), &st) == 0;
}

Result<std::string> ReadSmallFile(const std::string& path, size_t max_size, std::string_view what) {
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) {
    int err = errno;
    if (err == ENOENT) {
      return Fail(Errc::kNotFound, fmt::format("{} {} does not exist", what, path), err);
    }
    if (err == EACCES) {
      return Fail(Errc::kIo,
                  fmt::format("cannot read {} {}: permission denied for {}; fix its permissions "
                              "or run as its owner",
                              what, path, CurrentUserName()),
                  err);
    }
    return SysFail(fmt::format("cannot open {} {}", what, path), err);
  }
  struct stat st;
  if (fstat(fd.get(), &st) != 0)
    return SysFail(fmt::format("cannot stat {} {}", what, path), errno);
  if (!S_ISREG(st.st_mode)) {
    return Fail(Errc::kInvalidArgument, fmt::format("{} {} is not a regular file", what, path));
  }
  if (static_cast<uint64_t>(st.st_size) > max_size) {
    return Fail(Errc::kInvalidArgument, fmt::format("{} {} is too large ({} bytes, at most {})",
                                                    what, path, st.st_size, max_size));
  }
  std::string out(static_cast<size_t>(st.st_size), '\0');
  size_t done = 0;
  while (done < out.size()) {
    ssize_t n = read(fd.get(), out.data() + done, out.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      return SysFail(fmt::format("cannot read {} {}", what, path), err);
    }
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  out.resize(done);
  return out;
}

Status MakeDirs(const std::string& path, mode_t mode) {
  if (path.empty()) return Fail(Errc::kInvalidArgument, "empty directory name");
  for (size_t pos = 1; pos <= path.size(); ++pos) {
    if (pos != path.size() && path[pos] != '/') continue;
    std::string part = path.substr(0, pos);
    if (mkdir(part.c_str(), mode) == 0) continue;
    if (errno != EEXIST) return SysFail("cannot create directory " + part, errno);
  }
  struct stat st;
  if (stat(path.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return Fail(Errc::kInvalidArgument, fmt::format("{} is not a directory", path));
  }
  return Ok();
}

Result<FileLock> FileLock::Acquire(const std::string& path, std::chrono::milliseconds timeout) {
  UniqueFd fd(open(path.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!fd) return SysFail("cannot open lock file " + path, errno);
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno != EWOULDBLOCK && errno != EINTR) return SysFail("cannot lock " + path, errno);
    if (std::chrono::steady_clock::now() >= deadline) {
      return Fail(Errc::kBusy, fmt::format("{} stayed locked by another process for {} ms", path,
                                           timeout.count()));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return FileLock(std::move(fd));
}

}  // namespace vtpm::provision
