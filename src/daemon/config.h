// Daemon configuration and the parsers for swtpm's option syntax ("type=unixio,path=P,mode=0600"),
// so `vtpm socket` takes the command lines QEMU users and libvirt pass to `swtpm socket`.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>

#include "base/result.h"
#include "daemon/tpm_service.h"
#include "engine/engine.h"

namespace vtpm::daemon {

struct Endpoint {
  enum class Kind { kNone, kUnix, kTcp, kListenFd, kClientFd };
  Kind kind = Kind::kNone;
  std::string path;   // kUnix
  uint16_t port = 0;  // kTcp
  std::string bindaddr = "127.0.0.1";
  int fd = -1;             // kListenFd, kClientFd
  mode_t mode = 0770;      // kUnix socket file mode (swtpm's default)
  bool terminate = false;  // --ctrl ...,terminate: exit when the connection is lost
};

struct DaemonConfig {
  engine::TpmVersion version = engine::TpmVersion::kTpm12;  // swtpm's default; --tpm2 for 2.0
  std::string state_dir;
  mode_t state_mode = 0600;
  bool state_fsync = true;  // --tpmstate ...,fsync=false turns it off
  // --tpmstate ...,backup: the user consents to the previous generation when the newest state is
  // damaged or refused (as swtpm 0.11's option); without it the daemon fails closed.
  bool state_backup = false;
  Endpoint ctrl;
  Endpoint server;
  // --mssim: the MS-simulator command endpoint and, beside it, the platform endpoint: TCP port P
  // and P+1, or UNIX socket X and X.ctrl (as tpm2-tss' mssim TCTI names them: path=X).
  std::optional<uint16_t> mssim_port;
  std::string mssim_bindaddr = "127.0.0.1";
  std::string mssim_path;
  mode_t mssim_mode = 0600;
  // --mssim ...,locked: refuse the signals only hardware sends (power off, reset, TPM_STOP,
  // H-CRTM/DRTM hash, physical presence, NV off); what the TCTI sends at connect still works.
  bool mssim_locked = false;
  bool mssim() const { return mssim_port.has_value() || !mssim_path.empty(); }
  bool not_need_init = false;
  StartupType startup = StartupType::kNone;
  bool auto_shutdown = true;
  std::string log_file;
  int log_fd = -1;
  int log_level = 0;  // 0: warnings and errors only
  bool log_truncate = false;
  std::string pid_file;
  int pid_fd = -1;
  bool terminate = false;  // -t: exit when the data connection is lost
  bool daemonize = false;
  bool reject_locality_4 = false;
  bool allow_set_locality = false;
};

// Each parser fills its part of |cfg| from one option value; errors name the bad key.
Status ParseCtrl(std::string_view value, DaemonConfig& cfg);
Status ParseServer(std::string_view value, DaemonConfig& cfg);
Status ParseTpmState(std::string_view value, DaemonConfig& cfg);
Status ParseFlags(std::string_view value, DaemonConfig& cfg);
Status ParseLog(std::string_view value, DaemonConfig& cfg);
Status ParsePid(std::string_view value, DaemonConfig& cfg);
Status ParseLocality(std::string_view value, DaemonConfig& cfg);
Status ParseMssim(std::string_view value, DaemonConfig& cfg);
// Checks the combination (a state directory is given, some channel exists, ...).
Status Validate(const DaemonConfig& cfg);

// The --print-capabilities JSON: only features that work.
std::string CapabilitiesJson(const std::string& version);

}  // namespace vtpm::daemon
