#include "base/log.h"

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/null_sink.h>
#include <spdlog/sinks/stdout_sinks.h>

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
  try {
    auto logger = std::make_shared<spdlog::logger>(
        name, std::make_shared<spdlog::sinks::basic_file_sink_mt>(path, truncate));
    logger->set_level(level);
    logger->flush_on(spdlog::level::info);
    return logger;
  } catch (const spdlog::spdlog_ex& e) {
    return Fail(Errc::kIo, "cannot open log file " + path + ": " + e.what() +
                               "; check that its directory exists and is writable");
  }
}

}  // namespace vtpm
