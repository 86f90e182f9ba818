#include "base/log.h"

#include <fcntl.h>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/null_sink.h>
#include <spdlog/sinks/stdout_sinks.h>

#include <cerrno>
#include <cstring>

#include "base/unique_fd.h"

namespace vtpm {

Logger NullLogger() {
  return std::make_shared<spdlog::logger>("null", std::make_shared<spdlog::sinks::null_sink_mt>());
}

Logger StderrLogger(const std::string& name, spdlog::level::level_enum level) {
  auto logger =
      std::make_shared<spdlog::logger>(name, std::make_shared<spdlog::sinks::stderr_sink_mt>());
  logger->set_level(level);
  return logger;
}

Result<Logger> FileLogger(const std::string& name, const std::string& path,
                          spdlog::level::level_enum level, bool truncate) {
  // Open it ourselves so a symlink planted at |path| is refused (swtpm CVE-2020-28407), then
  // hand spdlog the open file through /proc/self/fd.
  UniqueFd fd(open(
      path.c_str(),
      O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC | (truncate ? O_TRUNC : 0), 0640));
  if (!fd) {
    return Fail(Errc::kIo, "cannot open log file " + path + ": " + std::strerror(errno) +
                               "; check that its directory exists and is writable (symlinks are "
                               "refused)");
  }
  try {
    auto logger = std::make_shared<spdlog::logger>(
        name, std::make_shared<spdlog::sinks::basic_file_sink_mt>(
                  "/proc/self/fd/" + std::to_string(fd.get()), false));
    logger->set_level(level);
    // Every line that is logged reaches the file at once: a daemon killed -9 (or a VMM reading
    // the log of a vTPM that failed) must not lose the lines before it.
    logger->flush_on(level);
    return logger;
  } catch (const spdlog::spdlog_ex& e) {
    return Fail(Errc::kIo, "cannot open log file " + path + ": " + e.what() +
                               "; check that its directory exists and is writable");
  }
}

}  // namespace vtpm
