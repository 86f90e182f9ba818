// CtrlClient: a client of the swtpm control channel (wire/swtpm_ctrl.h), for everything that
// drives a `vtpm socket` or `swtpm socket` from outside: the device models' socket backend, and
// tools and tests. One exchange at a time (calls from several threads are serialised); every
// exchange has a deadline; a transport failure closes the connection (later calls fail at once).
#pragma once

#include <chrono>
#include <mutex>
#include <string>

#include "base/result.h"
#include "base/socket_io.h"
#include "base/unique_fd.h"
#include "wire/swtpm_ctrl.h"

namespace vtpm::client {

class CtrlClient {
 public:
  CtrlClient(UniqueFd fd, std::chrono::milliseconds timeout)
      : fd_(std::move(fd)), timeout_(timeout) {}
  static Result<CtrlClient> ConnectUnix(const std::string& path, std::chrono::milliseconds timeout);

  CtrlClient(CtrlClient&& o) noexcept : fd_(std::move(o.fd_)), timeout_(o.timeout_) {}

  // Sends |request| (then |payload|: HASH_DATA's data, SET_STATEBLOB's blob; |pass_fd| rides
  // with CMD_SET_DATAFD) and reads the whole response, whatever its result.
  Result<wire::CtrlResponse> Call(const wire::CtrlRequest& request, ByteSpan payload = {},
                                  int pass_fd = -1);
  // Call() that also fails (Errc::kTpm, the result in tpm_rc) unless the result is 0.
  Result<wire::CtrlResponse> CallOk(const wire::CtrlRequest& request, ByteSpan payload = {},
                                    int pass_fd = -1);

  bool connected() const;

 private:
  Result<wire::CtrlResponse> Exchange(const wire::CtrlRequest& request, ByteSpan payload,
                                      int pass_fd);

  mutable std::mutex mu_;
  UniqueFd fd_;
  std::chrono::milliseconds timeout_;
};

}  // namespace vtpm::client
