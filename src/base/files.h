// Careful file I/O shared by the state store and provisioning: bounded reads that never follow
// a symlink or block on a FIFO, exclusive temporary files with an exact mode, full writes, and the
// atomic durable replace of a small file.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <string_view>

#include "base/bytes.h"
#include "base/result.h"
#include "base/unique_fd.h"

namespace vtpm {

// Reads the regular file |name| in the directory |dir_fd| (|path| names it in messages): nullopt
// when it does not exist. Refused: a symlink or special file (Errc::kFailedPrecondition), more
// than |max_size| bytes (Errc::kCorrupt), a file that grows while being read (Errc::kBusy).
Result<std::optional<Bytes>> ReadFileAt(int dir_fd, const std::string& name,
                                        const std::string& path, size_t max_size);

// Writes all of |data| to |fd| (|path| names it in messages).
Status WriteAll(int fd, ByteSpan data, const std::string& path);

// Creates ".<target>.vtpm-<kind>-<random>" in |dir_fd| (O_EXCL, O_NOFOLLOW, CLOEXEC) with exactly
// |mode| (fchmod, so the umask does not narrow it); its name goes to |tmp|. |dir| names the
// directory in messages. Files with ".vtpm-" in their name are ours to clean up.
Result<UniqueFd> CreateTempAt(int dir_fd, const std::string& dir, const std::string& target,
                              std::string_view kind, mode_t mode, std::string* tmp);
inline constexpr std::string_view kTempInfix = ".vtpm-";

// Replaces |dir|/|name| atomically with |data| (mode |mode|): a temporary file, then rename; with
// |durable| the file and the directory are fsync'ed first / after. Refuses to replace a symlink.
Status WriteFileAtomic(const std::string& dir, std::string_view name, ByteSpan data, mode_t mode,
                       bool durable);

}  // namespace vtpm
