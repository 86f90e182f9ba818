// `vtpm socket`: composition root of the daemon.
//
//   [clients] -> Server (epoll; ctrl/data/mssim sessions) -> TpmService -> Engine (libtpms)
//                                                                     \-> DirStore (state dir)
//
// Order matters: sockets are bound before --daemon forks (they exist when the parent returns);
// the engine starts after the fork, because fcntl locks are not inherited by a child.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

#include "base/log.h"
#include "commands.h"
#include "daemon/config.h"
#include "daemon/server.h"
#include "daemon/tpm_service.h"
#include "engine/engine.h"
#include "sandbox/sandbox.h"
#include "state/dir_store.h"
#include "state/state_key.h"

namespace vtpm::tools {

namespace {

struct SocketArgs {
  bool tpm2 = false;
  std::string tpmstate, ctrl, server, flags, log, pid, locality, mssim, seccomp, runas, chroot;
  std::string key, migration_key;
  bool terminate = false, daemon = false, print_caps = false;
  int port = 0;  // legacy -p
};

int Die(const std::string& msg) {
  std::fprintf(stderr, "vtpm socket: %s\n", msg.c_str());
  return 1;
}

Status WritePidFile(const daemon::DaemonConfig& cfg) {
  std::string pid = std::to_string(getpid()) + "\n";
  if (cfg.pid_fd >= 0) {
    UniqueFd fd(cfg.pid_fd);
    if (write(fd.get(), pid.data(), pid.size()) != static_cast<ssize_t>(pid.size())) {
      return SysFail("cannot write the pid to fd " + std::to_string(cfg.pid_fd), errno);
    }
  }
  if (!cfg.pid_file.empty()) {
    UniqueFd fd(
        open(cfg.pid_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644));
    if (!fd || write(fd.get(), pid.data(), pid.size()) != static_cast<ssize_t>(pid.size())) {
      return SysFail("cannot write pid file " + cfg.pid_file, errno);
    }
  }
  return Ok();
}

Result<Logger> MakeLogger(const daemon::DaemonConfig& cfg) {
  spdlog::level::level_enum level = cfg.log_level >= 2   ? spdlog::level::debug
                                    : cfg.log_level == 1 ? spdlog::level::info
                                                         : spdlog::level::warn;
  if (!cfg.log_file.empty()) {
    return FileLogger("vtpm", cfg.log_file, level, cfg.log_truncate);
  }
  if (cfg.log_fd >= 0) {
    return FileLogger("vtpm", "/proc/self/fd/" + std::to_string(cfg.log_fd), level, false);
  }
  return StderrLogger("vtpm", level);
}

// Forks; the parent waits until the child reports that the TPM is serving, and exits with the
// child's verdict, so `vtpm socket --daemon` fails visibly when start-up fails.
class Daemonizer {
 public:
  Status Fork() {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) < 0) return SysFail("pipe", errno);
    UniqueFd rd(fds[0]), wr(fds[1]);
    pid_t pid = fork();
    if (pid < 0) return SysFail("fork", errno);
    if (pid > 0) {
      wr.reset();
      char verdict = 1;
      ssize_t n = read(rd.get(), &verdict, 1);
      _exit(n == 1 && verdict == 0 ? 0 : 1);
    }
    rd.reset();
    setsid();
    UniqueFd devnull(open("/dev/null", O_RDWR | O_CLOEXEC));
    if (devnull) {
      dup2(devnull.get(), STDIN_FILENO);
      dup2(devnull.get(), STDOUT_FILENO);
    }
    notify_ = std::move(wr);
    return Ok();
  }
  void Report(bool ok) {
    if (!notify_) return;
    char verdict = ok ? 0 : 1;
    (void)!write(notify_.get(), &verdict, 1);
    notify_.reset();
    if (ok) {
      UniqueFd devnull(open("/dev/null", O_RDWR | O_CLOEXEC));
      if (devnull) dup2(devnull.get(), STDERR_FILENO);
    }
  }

 private:
  UniqueFd notify_;
};

Status Confine(sandbox::SeccompAction seccomp) {
  VTPM_RETURN_IF_ERROR(sandbox::DropCapabilities());
  return sandbox::Confine(sandbox::Profile::kSocketDaemon, seccomp);
}

// --key and --migration-key, loaded (null where not given).
Result<std::pair<state::SharedStateKey, state::SharedStateKey>> LoadKeys(const SocketArgs& a) {
  state::SharedStateKey state_key, migration_key;
  if (!a.key.empty()) {
    VTPM_ASSIGN_OR_RETURN(state_key, state::LoadKeyOption(a.key, "--key"));
  }
  if (!a.migration_key.empty()) {
    VTPM_ASSIGN_OR_RETURN(migration_key, state::LoadKeyOption(a.migration_key, "--migration-key"));
    if (migration_key->cipher() == state::StateCipher::kAes256Gcm) {
      return Fail(Errc::kInvalidArgument,
                  "--migration-key: mode=aes-256-gcm is for state files; migration blobs use "
                  "swtpm's format (mode=aes-cbc or aes-256-cbc)");
    }
  }
  return std::make_pair(state_key, migration_key);
}

int RunSocket(const SocketArgs& a) {
  if (a.print_caps) {
    std::printf("%s\n", daemon::CapabilitiesJson(VTPM_VERSION).c_str());
    return 0;
  }
  daemon::DaemonConfig cfg;
  cfg.version = a.tpm2 ? engine::TpmVersion::kTpm20 : engine::TpmVersion::kTpm12;
  cfg.terminate = a.terminate;
  cfg.daemonize = a.daemon;
  const char* env_path = std::getenv("TPM_PATH");
  struct {
    const std::string& value;
    Status (*parse)(std::string_view, daemon::DaemonConfig&);
  } parsers[] = {
      {a.tpmstate, daemon::ParseTpmState}, {a.ctrl, daemon::ParseCtrl},
      {a.server, daemon::ParseServer},     {a.flags, daemon::ParseFlags},
      {a.log, daemon::ParseLog},           {a.pid, daemon::ParsePid},
      {a.locality, daemon::ParseLocality}, {a.mssim, daemon::ParseMssim},
  };
  for (const auto& p : parsers) {
    if (p.value.empty()) continue;
    if (auto st = p.parse(p.value, cfg); !st) return Die(st.error().message);
  }
  if (cfg.state_dir.empty() && env_path != nullptr) cfg.state_dir = env_path;
  if (a.port != 0 && cfg.server.kind == daemon::Endpoint::Kind::kNone) {
    cfg.server.kind = daemon::Endpoint::Kind::kTcp;
    cfg.server.port = static_cast<uint16_t>(a.port);
  }
  if (auto st = daemon::Validate(cfg); !st) return Die(st.error().message);
  auto seccomp =
      a.seccomp.empty() ? sandbox::DefaultSeccompAction() : sandbox::ParseSeccompOption(a.seccomp);
  if (!seccomp) return Die(seccomp.error().message);
  // Keys are read now: their files may lie outside the chroot, their fds are closed once read.
  auto keys = LoadKeys(a);
  if (!keys) return Die(keys.error().message);
  const auto& [state_key, migration_key] = *keys;
  std::optional<sandbox::Credentials> runas;
  if (!a.runas.empty()) {
    auto creds = sandbox::ResolveUser(a.runas);  // before the chroot: it reads /etc/passwd
    if (!creds) return Die(creds.error().message);
    runas = *creds;
  }
  if (!a.chroot.empty()) {
    if (auto st = sandbox::ChangeRoot(a.chroot); !st) return Die(st.error().message);
  }

  auto log = MakeLogger(cfg);
  if (!log) return Die(log.error().message);

  state::DirStoreOptions store_opts;
  store_opts.directory = cfg.state_dir;
  store_opts.tpm_version = cfg.version;
  store_opts.file_mode = cfg.state_mode;
  store_opts.fsync = cfg.state_fsync;
  store_opts.use_previous_on_damage = cfg.state_backup;
  store_opts.key = state_key;
  auto store = state::DirStore::Open(store_opts, *log);
  if (!store) return Die(store.error().message);
  // Fail closed before anything is bound: a damaged state is refused now, not at CMD_INIT.
  if (auto st = (*store)->CheckStartable(); !st) {
    // In the log too when there is one: libvirt shows the log of a vTPM that failed to start.
    if (!cfg.log_file.empty() || cfg.log_fd >= 0) {
      (*log)->error("refusing to start: {}", st.error().message);
    }
    return Die(st.error().message);
  }

  engine::EngineOptions eng_opts;
  eng_opts.version = cfg.version;
  eng_opts.auto_shutdown = cfg.auto_shutdown;
  eng_opts.reject_locality_4 = cfg.reject_locality_4;
  auto eng = engine::Engine::Create(eng_opts, store->get(), *log);
  if (!eng) return Die(eng.error().message);

  daemon::ServiceOptions svc_opts;
  svc_opts.startup = cfg.startup;
  svc_opts.allow_set_locality = cfg.allow_set_locality;
  svc_opts.state_key = state_key;
  svc_opts.migration_key = migration_key;
  daemon::TpmService service(eng->get(), store->get(), svc_opts, *log);

  if (cfg.not_need_init && !runas) {
    // The TPM runs from launch, so the state lock is needed now: take it before any socket is
    // bound or a stale one removed, so a second daemon for the same state leaves the first
    // one's sockets alone. (Without not-need-init the lock comes with CMD_INIT, as in swtpm;
    // with --runas it is taken as that user, once privileges are dropped, so the lock file is
    // the user's. Either way the server's probe refuses a socket a live process listens on.)
    if (auto st = (*store)->Lock(); !st) return Die(st.error().message);
  }
  auto server = daemon::Server::Create(cfg, &service, *log);
  if (!server) return Die(server.error().message);
  if (runas) {
    if (auto st = sandbox::DropPrivileges(*runas); !st) return Die(st.error().message);
  }

  // Signals are taken by the server's signalfd; block them before anything else runs.
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  sigaddset(&mask, SIGHUP);
  sigprocmask(SIG_BLOCK, &mask, nullptr);
  signal(SIGPIPE, SIG_IGN);

  Daemonizer daemonizer;
  if (cfg.daemonize) {
    if (auto st = daemonizer.Fork(); !st) return Die(st.error().message);
  }
  if (auto st = (*server)->Prepare(); !st) {
    daemonizer.Report(false);
    return Die(st.error().message);
  }
  if (cfg.not_need_init) {
    if (auto st = service.Start(/*delete_volatile=*/false, /*send_startup=*/true); !st) {
      (*log)->error("cannot start the TPM: {}", st.error().message);
      daemonizer.Report(false);
      return Die("cannot start the TPM: " + st.error().message);
    }
  }
  if (auto st = WritePidFile(cfg); !st) {
    daemonizer.Report(false);
    return Die(st.error().message);
  }
  // From here on a peer controls what happens: give up everything the daemon does not need.
  if (auto st = Confine(*seccomp); !st) {
    (*log)->error("{}", st.error().message);
    daemonizer.Report(false);
    return Die(st.error().message);
  }
  daemonizer.Report(true);
  (*log)->info("vtpm {} serving (TPM {}, state in {})", VTPM_VERSION, a.tpm2 ? "2.0" : "1.2",
               cfg.state_dir);
  auto st = (*server)->Run();
  (*eng)->Stop();  // orderly TPM2_Shutdown unless disabled; state is on disk after each change
  if (!cfg.pid_file.empty()) unlink(cfg.pid_file.c_str());
  if (!st) {
    (*log)->error("{}", st.error().message);
    return 1;
  }
  (*log)->info("exiting");
  return 0;
}

}  // namespace

Runner AddSocketCommand(CLI::App& app) {
  auto args = std::make_shared<SocketArgs>();
  CLI::App* sub = app.add_subcommand(
      "socket", "Run a TPM serving the swtpm control/data protocol (and optionally MS-simulator)");
  sub->add_flag("--tpm2", args->tpm2, "Emulate a TPM 2.0 (default: TPM 1.2, like swtpm)");
  sub->add_option("--tpmstate", args->tpmstate, "dir=<dir>[,mode=0600]: state directory");
  sub->add_option("--ctrl", args->ctrl,
                  "type=unixio,path=<p>[,mode=0770][,terminate] | type=tcp,port=<n>"
                  "[,bindaddr=127.0.0.1] | ...,fd=<n> | type=unixio,clientfd=<n>");
  sub->add_option("--server", args->server,
                  "type=tcp,port=<n>[,bindaddr=..] | type=unixio,path=<p>[,mode=..] | fd=<n>");
  sub->add_option("--mssim", args->mssim,
                  "port=<n>[,bindaddr=127.0.0.1] | path=<socket>[,mode=0600] [,locked]: serve "
                  "the MS-simulator protocol (command port n and platform port n+1, or UNIX "
                  "sockets <socket> and <socket>.ctrl as tpm2-tss' mssim:path= names them); "
                  "locked refuses power-off, reset, TPM_STOP, the H-CRTM hash and locality 4");
  sub->add_option("--key", args->key,
                  "file=<path>|fd=<n>[,format=hex|binary] | pwdfile=<path>|pwdfd=<n>"
                  "[,kdf=pbkdf2|sha512], [,mode=aes-cbc|aes-256-cbc|aes-256-gcm][,remove]: encrypt "
                  "the state files (swtpm's format; aes-256-gcm is vtpm's own AEAD mode)");
  sub->add_option("--migration-key", args->migration_key,
                  "as --key (mode=aes-cbc|aes-256-cbc): encrypt the blobs CMD_GET_STATEBLOB "
                  "hands out and decrypt those CMD_SET_STATEBLOB takes");
  sub->add_option("--flags", args->flags,
                  "not-need-init,startup-clear|startup-state|startup-deactivated|startup-none,"
                  "disable-auto-shutdown");
  sub->add_option("--log", args->log, "file=<path>|fd=<n>[,level=<n>][,truncate]");
  sub->add_option("--pid", args->pid, "file=<path>|fd=<n>");
  sub->add_option("--locality", args->locality, "reject-locality-4,allow-set-locality");
  sub->add_option("-p,--port", args->port, "Data channel TCP port (legacy; see --server)");
  sub->add_flag("-t,--terminate", args->terminate, "Exit when the data connection is lost");
  sub->add_flag("-d,--daemon", args->daemon, "Run in the background once serving");
  sub->add_option("--seccomp", args->seccomp,
                  "action=kill|log|none: the system-call filter once serving (default kill)");
  sub->add_option("-r,--runas", args->runas,
                  "USER[:GROUP]: run as this user once the sockets are bound (as root)");
  sub->add_option("-R,--chroot", args->chroot,
                  "DIR: chroot here first (as root); every path given is then inside DIR");
  sub->add_flag("--print-capabilities", args->print_caps,
                "Print the supported features as JSON and exit");
  return [args] { return RunSocket(*args); };
}

}  // namespace vtpm::tools
