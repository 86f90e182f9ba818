#include "daemon/config.h"

#include <fmt/format.h>

#include <charconv>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <vector>

#include "base/options.h"
#include "state/tpmstate.h"

namespace vtpm::daemon {

namespace {

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
      VTPM_ASSIGN_OR_RETURN(uint64_t port, ParseNumber(option, kv, 10, 65535));
      ep.port = static_cast<uint16_t>(port);
    } else if (kv.key == "bindaddr" && ep.kind == Endpoint::Kind::kTcp && kv.value) {
      ep.bindaddr = *kv.value;
    } else if (kv.key == "mode" && ep.kind == Endpoint::Kind::kUnix) {
      VTPM_ASSIGN_OR_RETURN(uint64_t mode, ParseNumber(option, kv, 8, 07777));
      ep.mode = static_cast<mode_t>(mode);
    } else if (kv.key == "fd") {
      VTPM_ASSIGN_OR_RETURN(uint64_t fd, ParseNumber(option, kv, 10, 1 << 20));
      ep.kind = Endpoint::Kind::kListenFd;
      ep.fd = static_cast<int>(fd);
    } else if (kv.key == "clientfd" && allow_clientfd) {
      VTPM_ASSIGN_OR_RETURN(uint64_t fd, ParseNumber(option, kv, 10, 1 << 20));
      ep.kind = Endpoint::Kind::kClientFd;
      ep.fd = static_cast<int>(fd);
    } else if (kv.key == "terminate" && allow_terminate && !kv.value) {
      ep.terminate = true;
    } else {
      return UnknownOption(option, kv);
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
  VTPM_ASSIGN_OR_RETURN(const state::DirStoreOptions o,
                        state::ParseTpmState(value, /*plain_path=*/false));
  cfg.state_dir = o.directory;
  cfg.state_mode = o.file_mode;
  cfg.state_fsync = o.fsync;
  cfg.state_backup = o.use_previous_on_damage;
  return Ok();
}

Status ParseFlags(std::string_view value, DaemonConfig& cfg) {
  for (const auto& kv : SplitOptions(value)) {
    if (kv.value) return UnknownOption("--flags", kv);
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
      return UnknownOption("--flags", kv);
    }
  }
  return Ok();
}

Status ParseLog(std::string_view value, DaemonConfig& cfg) {
  for (const auto& kv : SplitOptions(value)) {
    if (kv.key == "file" && kv.value) {
      cfg.log_file = *kv.value;
    } else if (kv.key == "fd") {
      VTPM_ASSIGN_OR_RETURN(uint64_t fd, ParseNumber("--log", kv, 10, 1 << 20));
      cfg.log_fd = static_cast<int>(fd);
    } else if (kv.key == "level") {
      VTPM_ASSIGN_OR_RETURN(uint64_t lvl, ParseNumber("--log", kv, 10, 1000));
      cfg.log_level = static_cast<int>(lvl);
    } else if (kv.key == "truncate" && !kv.value) {
      cfg.log_truncate = true;
    } else if (kv.key == "prefix") {
      // accepted for compatibility; our log lines carry their own prefix
    } else {
      return UnknownOption("--log", kv);
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
      VTPM_ASSIGN_OR_RETURN(uint64_t fd, ParseNumber("--pid", kv, 10, 1 << 20));
      cfg.pid_fd = static_cast<int>(fd);
    } else {
      return UnknownOption("--pid", kv);
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
      return UnknownOption("--locality", kv);
    }
  }
  return Ok();
}

Status ParseMssim(std::string_view value, DaemonConfig& cfg) {
  for (const auto& kv : SplitOptions(value)) {
    if (kv.key == "port") {
      VTPM_ASSIGN_OR_RETURN(uint64_t port, ParseNumber("--mssim", kv, 10, 65534));
      if (port == 0) return Fail(Errc::kInvalidArgument, "--mssim: port must be 1-65534");
      cfg.mssim_port = static_cast<uint16_t>(port);
    } else if (kv.key == "bindaddr" && kv.value) {
      cfg.mssim_bindaddr = *kv.value;
    } else if (kv.key == "path" && kv.value && !kv.value->empty()) {
      cfg.mssim_path = *kv.value;
    } else if (kv.key == "mode") {
      VTPM_ASSIGN_OR_RETURN(uint64_t mode, ParseNumber("--mssim", kv, 8, 07777));
      cfg.mssim_mode = static_cast<mode_t>(mode);
    } else if (kv.key == "locked" && !kv.value) {
      cfg.mssim_locked = true;
    } else {
      return UnknownOption("--mssim", kv);
    }
  }
  if (cfg.mssim_port.has_value() == !cfg.mssim_path.empty()) {
    return Fail(Errc::kInvalidArgument,
                "--mssim: give either port=<TCP command port> (the platform port is the next one)"
                " or path=<UNIX socket> (the platform socket is <path>.ctrl)");
  }
  return Ok();
}

Status Validate(const DaemonConfig& cfg) {
  if (cfg.state_dir.empty()) {
    return Fail(Errc::kInvalidArgument,
                "no state directory: pass --tpmstate dir=<directory> (it must exist)");
  }
  if (cfg.ctrl.kind == Endpoint::Kind::kNone && cfg.server.kind == Endpoint::Kind::kNone &&
      !cfg.mssim()) {
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
                   "cmdarg-mssim",
                   "cmdarg-seccomp",
                   "cmdarg-chroot",
                   "cmdarg-key-fd",
                   "cmdarg-pwd-fd"};
  j["version"] = version;
  return j.dump();
}

}  // namespace vtpm::daemon
