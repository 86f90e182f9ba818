#include "state/tpmstate.h"

#include <fmt/format.h>

#include "base/options.h"

namespace vtpm::state {
namespace {

Result<bool> ParseBool(std::string_view option, const KeyValue& kv) {
  if (!kv.value || *kv.value == "true") return true;
  if (*kv.value == "false") return false;
  return Fail(Errc::kInvalidArgument,
              fmt::format("{}: '{}={}' must be true or false", option, kv.key, *kv.value));
}

}  // namespace

Result<DirStoreOptions> ParseTpmState(std::string_view value, bool plain_path,
                                      std::string_view option) {
  DirStoreOptions o;
  constexpr std::string_view kDirUri = "dir://";
  if (value.starts_with("file://") || value.find("backend-uri=file://") != std::string_view::npos) {
    return Fail(Errc::kUnsupported,
                fmt::format("{} file://...: swtpm's linear-file backend is not supported; give a "
                            "directory (dir=DIR)",
                            option));
  }
  if (plain_path && value.find('=') == std::string_view::npos) {
    o.directory = std::string(value.starts_with(kDirUri) ? value.substr(kDirUri.size()) : value);
    if (o.directory.empty()) {
      return Fail(Errc::kInvalidArgument, fmt::format("{}: no directory given", option));
    }
    return o;
  }
  for (const KeyValue& kv : SplitOptions(value)) {
    if (kv.key == "dir" && kv.value) {
      o.directory = *kv.value;
    } else if (kv.key == "backend-uri" && kv.value && kv.value->starts_with(kDirUri)) {
      o.directory = kv.value->substr(kDirUri.size());
    } else if (kv.key == "mode") {
      VTPM_ASSIGN_OR_RETURN(const uint64_t mode, ParseNumber(option, kv, 8, 0777));
      if ((mode & 0600) != 0600) {
        return Fail(
            Errc::kInvalidArgument,
            fmt::format("{}: mode=0{:o} must include owner read and write (0600)", option, mode));
      }
      o.file_mode = static_cast<mode_t>(mode);
    } else if (kv.key == "fsync") {
      // Off: for throw-away TPMs on tmpfs; state survives a vtpm crash, not a host crash.
      VTPM_ASSIGN_OR_RETURN(o.fsync, ParseBool(option, kv));
    } else if (kv.key == "backup") {
      VTPM_ASSIGN_OR_RETURN(o.use_previous_on_damage, ParseBool(option, kv));
    } else if (kv.key == "lock" && (!kv.value || *kv.value == "true")) {
      // the directory backend always locks
    } else {
      return UnknownOption(option, kv);
    }
  }
  if (o.directory.empty()) {
    return Fail(Errc::kInvalidArgument, fmt::format("{}: dir=<directory> is required", option));
  }
  return o;
}

}  // namespace vtpm::state
