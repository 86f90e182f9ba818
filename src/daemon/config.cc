#include "daemon/config.h"

#include <fmt/format.h>

#include <charconv>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <vector>

namespace vtpm::daemon {

namespace {

struct KeyValue {
  std::string key;
  std::optional<std::string> value;
};

std::vector<KeyValue> SplitOptions(std::string_view s) {
  std::vector<KeyValue> out;
  size_t pos = 0;
  while (pos <= s.size()) {
    size_t comma = s.find(',', pos);
    if (comma == std::string_view::npos) comma = s.size();
    std::string_view item = s.substr(pos, comma - pos);
    if (!item.empty()) {
      size_t eq = item.find('=');
      if (eq == std::string_view::npos) {
        out.push_back({std::string(item), std::nullopt});
      } else {
        out.push_back({std::string(item.substr(0, eq)), std::string(item.substr(eq + 1))});
      }
    }
    pos = comma + 1;
  }
  return out;
}

Result<uint64_t> ParseNumber(const std::string& option, const std::string& key,
                             const std::optional<std::string>& v, int base, uint64_t max) {
  if (!v || v->empty()) {
    return Fail(Errc::kInvalidArgument, fmt::format("{}: '{}' needs a value", option, key));
  }
  uint64_t n = 0;
  const char* first = v->data();
  const char* last = v->data() + v->size();
  if (base == 16 && v->size() > 2 && (*v)[0] == '0' && ((*v)[1] == 'x' || (*v)[1] == 'X')) {
    first += 2;
  }
  auto [p, ec] = std::from_chars(first, last, n, base);
  if (ec != std::errc() || p != last || n > max) {
    return Fail(
        Errc::kInvalidArgument,
        fmt::format("{}: '{}={}' is not a valid number (at most {})", option, key, *v, max));
  }
  return n;
}

Status Unknown(const std::string& option, const KeyValue& kv) {
  return Fail(Errc::kInvalidArgument,
              fmt::format("{}: unknown or unsupported parameter '{}'", option, kv.key));
}

Status ParseEndpoint(const std::string& option, std::string_view value, Endpoint& ep,
                     bool allow_clientfd, bool allow_terminate) {
  auto kvs = SplitOptions(value);
  std::string type;
  for (const auto& kv : kvs) {
    if (kv.key == "type" && kv.value) type = *kv.value;
  }
  if (type == "unixio") {
    ep.kind = Endpoint::Kind::kUnix;
  } else if (type == "tcp") {
    ep.kind = Endpoint::Kind::kTcp;
  } else {
    return Fail(Errc::kInvalidArgument,
                fmt::format("{}: type must be 'unixio' or 'tcp' (got '{}')", option, type));
  }
  for (const auto& kv : kvs) {
    if (kv.key == "type") continue;
    if (kv.key == "path" && ep.kind == Endpoint::Kind::kUnix && kv.value) {
      ep.path = *kv.value;
    } else if (kv.key == "port" && ep.kind == Endpoint::Kind::kTcp) {
      VTPM_ASSIGN_OR_RETURN(uint64_t port, ParseNumber(option, kv.key, kv.value, 10, 65535));
      ep.port = static_cast<uint16_t>(port);
    } else if (kv.key == "bindaddr" && ep.kind == Endpoint::Kind::kTcp && kv.value) {
      ep.bindaddr = *kv.value;
    } else if (kv.key == "mode" && ep.kind == Endpoint::Kind::kUnix) {
      VTPM_ASSIGN_OR_RETURN(uint64_t mode, ParseNumber(option, kv.key, kv.value, 8, 07777));
      ep.mode = static_cast<mode_t>(mode);
    } else if (kv.key == "fd") {
      VTPM_ASSIGN_OR_RETURN(uint64_t fd, ParseNumber(option, kv.key, kv.value, 10, 1 << 20));
      ep.kind = Endpoint::Kind::kListenFd;
      ep.fd = static_cast<int>(fd);
    } else if (kv.key == "clientfd" && allow_clientfd) {
      VTPM_ASSIGN_OR_RETURN(uint64_t fd, ParseNumber(option, kv.key, kv.value, 10, 1 << 20));
      ep.kind = Endpoint::Kind::kClientFd;
      ep.fd = static_cast<int>(fd);
    } else if (kv.key == "terminate" && allow_terminate && !kv.value) {
      ep.terminate = true;
    } else {
      return Unknown(option, kv);
    }
  }
  if (ep.kind == Endpoint::Kind::kUnix && ep.path.empty()) {
    return Fail(Errc::kInvalidArgument, option + ": type=unixio needs path=<socket path>");
  }
  if (ep.kind == Endpoint::Kind::kTcp && ep.port == 0) {
    return Fail(Errc::kInvalidArgument, option + ": type=tcp needs port=<1-65535>");
  }
  return Ok();
}

}  // namespace

Status ParseCtrl(std::string_view value, DaemonConfig& cfg) {
  return ParseEndpoint("--ctrl", value, cfg.ctrl, /*allow_clientfd=*/true,
                       /*allow_terminate=*/true);
}

Status ParseServer(std::string_view value, DaemonConfig& cfg) {
  return ParseEndpoint("--server", value, cfg.server, /*allow_clientfd=*/false,
                       /*allow_terminate=*/false);
}

Status ParseTpmState(std::string_view value, DaemonConfig& cfg) {
  for (const auto& kv : SplitOptions(value)) {
    if (kv.key == "dir" && kv.value) {
      cfg.state_dir = *kv.value;
    } else if (kv.key == "backend-uri" && kv.value && kv.value->rfind("dir://", 0) == 0) {
      cfg.state_dir = kv.value->substr(6);
    } else if (kv.key == "mode") {
      VTPM_ASSIGN_OR_RETURN(uint64_t mode, ParseNumber("--tpmstate", kv.key, kv.value, 8, 0777));
      cfg.state_mode = static_cast<mode_t>(mode);
    } else if (kv.key == "fsync" && kv.value && *kv.value == "false") {
      // For throw-away TPMs on tmpfs: state still survives a vtpm crash, not a host crash.
      cfg.state_fsync = false;
    } else if (kv.key == "backup" && (!kv.value || *kv.value == "true")) {
      cfg.state_backup = true;
    } else if (kv.key == "backup" && *kv.value == "false") {
      cfg.state_backup = false;
    } else if ((kv.key == "lock" || kv.key == "fsync") && (!kv.value || *kv.value == "true")) {
      // the directory backend always locks and fsyncs
    } else {
      return Unknown("--tpmstate", kv);
    }
  }
  if (cfg.state_dir.empty()) {
    return Fail(Errc::kInvalidArgument, "--tpmstate: dir=<directory> is required");
  }
  return Ok();
}

Status ParseFlags(std::string_view value, DaemonConfig& cfg) {
  for (const auto& kv : SplitOptions(value)) {
    if (kv.value) return Unknown("--flags", kv);
    if (kv.key == "not-need-init") {
      cfg.not_need_init = true;
    } else if (kv.key == "startup-clear") {
      cfg.startup = StartupType::kClear;
      cfg.not_need_init = true;
    } else if (kv.key == "startup-state") {
      cfg.startup = StartupType::kState;
      cfg.not_need_init = true;
    } else if (kv.key == "startup-deactivated") {
      cfg.startup = StartupType::kDeactivated;
      cfg.not_need_init = true;
    } else if (kv.key == "startup-none") {
      cfg.startup = StartupType::kNone;
      cfg.not_need_init = true;
    } else if (kv.key == "disable-auto-shutdown") {
      cfg.auto_shutdown = false;
    } else {
      return Unknown("--flags", kv);
    }
  }
  return Ok();
}

Status ParseLog(std::string_view value, DaemonConfig& cfg) {
  for (const auto& kv : SplitOptions(value)) {
    if (kv.key == "file" && kv.value) {
      cfg.log_file = *kv.value;
    } else if (kv.key == "fd") {
      VTPM_ASSIGN_OR_RETURN(uint64_t fd, ParseNumber("--log", kv.key, kv.value, 10, 1 << 20));
      cfg.log_fd = static_cast<int>(fd);
    } else if (kv.key == "level") {
      VTPM_ASSIGN_OR_RETURN(uint64_t lvl, ParseNumber("--log", kv.key, kv.value, 10, 1000));
      cfg.log_level = static_cast<int>(lvl);
    } else if (kv.key == "truncate" && !kv.value) {
      cfg.log_truncate = true;
    } else if (kv.key == "prefix") {
      // accepted for compatibility; our log lines carry their own prefix
    } else {
      return Unknown("--log", kv);
    }
  }
  if (cfg.log_level == 0 && (!cfg.log_file.empty() || cfg.log_fd >= 0)) cfg.log_level = 1;
  return Ok();
}

Status ParsePid(std::string_view value, DaemonConfig& cfg) {
  for (const auto& kv : SplitOptions(value)) {
    if (kv.key == "file" && kv.value) {
      cfg.pid_file = *kv.value;
    } else if (kv.key == "fd") {
      VTPM_ASSIGN_OR_RETURN(uint64_t fd, ParseNumber("--pid", kv.key, kv.value, 10, 1 << 20));
      cfg.pid_fd = static_cast<int>(fd);
    } else {
      return Unknown("--pid", kv);
    }
  }
  return Ok();
}

Status ParseLocality(std::string_view value, DaemonConfig& cfg) {
  for (const auto& kv : SplitOptions(value)) {
    if (kv.key == "reject-locality-4" && !kv.value) {
      cfg.reject_locality_4 = true;
    } else if (kv.key == "allow-set-locality" && !kv.value) {
      cfg.allow_set_locality = true;
    } else {
      return Unknown("--locality", kv);
    }
  }
  return Ok();
}

Status ParseMssim(std::string_view value, DaemonConfig& cfg) {
  for (const auto& kv : SplitOptions(value)) {
    if (kv.key == "port") {
      VTPM_ASSIGN_OR_RETURN(uint64_t port, ParseNumber("--mssim", kv.key, kv.value, 10, 65534));
      if (port == 0) return Fail(Errc::kInvalidArgument, "--mssim: port must be 1-65534");
      cfg.mssim_port = static_cast<uint16_t>(port);
    } else if (kv.key == "bindaddr" && kv.value) {
      cfg.mssim_bindaddr = *kv.value;
    } else {
      return Unknown("--mssim", kv);
    }
  }
  if (!cfg.mssim_port) {
    return Fail(Errc::kInvalidArgument, "--mssim: port=<command port> is required");
  }
  return Ok();
}

Status Validate(const DaemonConfig& cfg) {
  if (cfg.state_dir.empty()) {
    return Fail(Errc::kInvalidArgument,
                "no state directory: pass --tpmstate dir=<directory> (it must exist)");
  }
  if (cfg.ctrl.kind == Endpoint::Kind::kNone && cfg.server.kind == Endpoint::Kind::kNone &&
      !cfg.mssim_port) {
    return Fail(Errc::kInvalidArgument,
                "no channel to serve: pass --ctrl, --server and/or --mssim");
  }
  if (cfg.ctrl.kind == Endpoint::Kind::kNone && cfg.server.kind != Endpoint::Kind::kNone &&
      !cfg.not_need_init) {
    return Fail(Errc::kInvalidArgument,
                "without --ctrl nothing can initialise the TPM: add --flags not-need-init "
                "(or startup-clear)");
  }
  if (cfg.startup == StartupType::kDeactivated && cfg.version == engine::TpmVersion::kTpm20) {
    return Fail(Errc::kInvalidArgument, "--flags startup-deactivated applies to TPM 1.2 only");
  }
  return Ok();
}

std::string CapabilitiesJson(const std::string& version) {
  nlohmann::json j;
  j["type"] = "swtpm";
  j["implementation"] = "vtpm";
  j["features"] = {"tpm-1.2",
                   "tpm-2.0",
                   "tpm-send-command-header",
                   "flags-opt-startup",
                   "flags-opt-disable-auto-shutdown",
                   "nvram-backend-dir",
                   "tpmstate-opt-lock",
                   "tpmstate-dir-backend-opt-backup",
                   "tpmstate-dir-backend-opt-fsync",
                   "cmdarg-mssim"};
  j["version"] = version;
  return j.dump();
}

}  // namespace vtpm::daemon
