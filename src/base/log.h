// Logging: spdlog loggers are passed in (never the global default logger), so each component
// and each test decides where its messages go.
#pragma once

#include <spdlog/spdlog.h>

#include <memory>
#include <string>

#include "base/result.h"

namespace vtpm {

using Logger = std::shared_ptr<spdlog::logger>;

// A logger that drops everything (tests, library defaults).
Logger NullLogger();
// A logger writing to stderr.
Logger StderrLogger(const std::string& name, spdlog::level::level_enum level);
// A logger appending to |path| (opened O_NOFOLLOW-safe by spdlog's file sink).
Result<Logger> FileLogger(const std::string& name, const std::string& path,
                          spdlog::level::level_enum level, bool truncate);

}  // namespace vtpm
