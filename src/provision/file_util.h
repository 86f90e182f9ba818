// Small, careful file operations for provisioning: bounded reads, atomic durable writes,
// advisory locks with a bounded wait.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>
#include <string_view>

#include "base/bytes.h"
#include "base/files.h"
#include "base/result.h"
#include "base/unique_fd.h"

namespace vtpm::provision {

// Reads a regular file of at most |max_size| bytes. |what| names it in errors ("the CA
// signing key"); errors say whether it is missing, unreadable (and as whom) or too large.
Result<std::string> ReadSmallFile(const std::string& path, size_t max_size, std::string_view what);

// WriteFileAtomic: base/files.h.
using vtpm::WriteFileAtomic;

// mkdir -p with |mode| for the directories it creates.
Status MakeDirs(const std::string& path, mode_t mode);

// Exclusive flock(2) on |path| (created 0600 if absent), waiting at most |timeout|.
class FileLock {
 public:
  static Result<FileLock> Acquire(const std::string& path, std::chrono::milliseconds timeout);
  FileLock(FileLock&&) = default;
  FileLock& operator=(FileLock&&) = default;

 private:
  explicit FileLock(UniqueFd fd) : fd_(std::move(fd)) {}
  UniqueFd fd_;  // closing it releases the lock
};

bool FileExists(const std::string& path);
// "<name> (uid N)" of the effective user, for "cannot read ... as <user>" messages.
std::string CurrentUserName();

}  // namespace vtpm::provision
