// Helpers for the state tests: scratch directories, files, captured logs, child processes.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "base/bytes.h"
#include "base/log.h"

namespace vtpm::state::testing {

// A fresh directory under $TMPDIR (or /tmp), removed with everything in it on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

Bytes ReadFileOrDie(const std::string& path);
void WriteFileOrDie(const std::string& path, ByteSpan data);
bool Exists(const std::string& path);  // lstat: also true for a dangling symlink
// Names in |dir| except "." and "..", sorted.
std::vector<std::string> ListDir(const std::string& dir);
Bytes Pattern(size_t n, uint8_t seed);  // deterministic test payload

// A logger whose messages (all levels) end up in text().
class CapturingLogger {
 public:
  CapturingLogger();
  const Logger& logger() const { return logger_; }
  std::string text() const;

 private:
  std::shared_ptr<std::ostringstream> out_;
  Logger logger_;
};

// Absolute path of |program| found on $PATH, or nullopt.
std::optional<std::string> FindOnPath(const std::string& program);

// A child process (posix_spawn), stdout+stderr appended to |log_path|. Killed (SIGKILL) and
// reaped on destruction if still running.
class Child {
 public:
  static std::unique_ptr<Child> Spawn(const std::vector<std::string>& argv,
                                      const std::string& log_path);
  ~Child();
  pid_t pid() const { return pid_; }
  // Exit status (WEXITSTATUS, or 128+signal), or nullopt on timeout.
  std::optional<int> Wait(std::chrono::milliseconds timeout);

 private:
  explicit Child(pid_t pid) : pid_(pid) {}
  pid_t pid_;
  bool reaped_ = false;
};

// Runs argv to completion (at most |timeout|); returns its exit status or -1 on timeout.
int Run(const std::vector<std::string>& argv, const std::string& log_path,
        std::chrono::milliseconds timeout = std::chrono::milliseconds(3000));

// Polls until |path| exists; false after |timeout|.
bool WaitForPath(const std::string& path, std::chrono::milliseconds timeout);

}  // namespace vtpm::state::testing
