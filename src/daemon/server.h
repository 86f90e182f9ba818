// Server: the daemon's one event loop (epoll, level-triggered, single thread). It owns the
// listening sockets and connections, feeds bytes to Sessions and writes their replies.
//
// Threading: everything, TPM commands included, runs on the thread that calls Run(); like swtpm,
// a long TPM command delays the control channel (CMD_CANCEL_TPM_CMD cannot interrupt it).
#pragma once

#include <memory>

#include "base/log.h"
#include "base/result.h"
#include "daemon/config.h"
#include "daemon/tpm_service.h"

namespace vtpm::daemon {

class Server {
 public:
  // Binds every configured endpoint (so they exist before a --daemon parent exits).
  static Result<std::unique_ptr<Server>> Create(const DaemonConfig& cfg, TpmService* service,
                                                Logger log);
  ~Server();
  // Creates the event loop's own descriptors (epoll, signalfd). Call it in the process that will
  // serve -- after a --daemon fork: an epoll set shares its signalfd's wake-ups with the process
  // that registered it -- and before the sandbox, which forbids creating descriptors. Run() calls
  // it if nobody did.
  Status Prepare();
  // Serves until CMD_SHUTDOWN, TPM_STOP, a terminate condition, or SIGTERM/SIGINT/SIGHUP
  // (which the caller must have blocked in every thread).
  Status Run();

  class Impl;

 private:
  explicit Server(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace vtpm::daemon
