// SwtpmSocketBackend: a client of the swtpm control + data socket protocol (swtpm
// man/man3/swtpm_ioctls.pod; our src/wire/swtpm_ctrl.h), driving `vtpm socket` or `swtpm socket`.
//
// Connects to the control socket; the data channel is either a socket path (swtpm --server
// type=unixio) or, as QEMU does it, one end of a socketpair handed over with CMD_SET_DATAFD.
// Create() runs QEMU's start-up sequence: GET_CAPABILITY, [STOP + SET_BUFFERSIZE], INIT,
// GET_TPMESTABLISHED. Then a worker thread performs every operation in order; per command it
// sends CMD_SET_LOCALITY when the locality changed, writes the command and reads the response.
// Cancel() sends CMD_CANCEL_TPM_CMD from a second thread (never the caller's), only while a
// command is outstanding.
//
// Failures: any I/O error, timeout or malformed reply completes the command with TPM_RC_FAILURE
// (TPM 1.2: TPM_FAIL) and marks the connection broken; later commands fail the same way at once.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "backend/queued_backend.h"
#include "base/log.h"
#include "base/unique_fd.h"
#include "client/ctrl_client.h"
#include "device/tpm_backend.h"

namespace vtpm::backend {

struct SwtpmSocketOptions {
  std::string ctrl_path;  // required: the control channel (--ctrl type=unixio,path=...)
  std::string data_path;  // optional: the data channel (--server type=unixio,path=...)
  bool tpm2 = true;
  // CMD_SET_BUFFERSIZE before CMD_INIT (QEMU sends it); 0 leaves the TPM's default.
  uint32_t buffer_size = 0;
  // Send CMD_INIT (power on). False for a TPM somebody else already started.
  bool init = true;
  // Longest a command or control exchange may take before the transport counts as failed.
  std::chrono::milliseconds io_timeout{std::chrono::minutes(5)};
};

class SwtpmSocketBackend final : public QueuedBackend {
 public:
  static Result<std::unique_ptr<SwtpmSocketBackend>> Create(const SwtpmSocketOptions& options,
                                                            Logger log);
  ~SwtpmSocketBackend() override;

  void Cancel() override;
  uint32_t BufferSize() const override { return buffer_size_; }

  // Control plane: CMD_SHUTDOWN (swtpm stores its state and exits). Waits for queued work.
  Status Shutdown();
  bool broken() const { return broken_.load(); }

 private:
  SwtpmSocketBackend(const SwtpmSocketOptions& options, client::CtrlClient ctrl, Logger log);
  Status Connect();
  // A control exchange on the worker thread; a transport failure marks the backend broken.
  void CtrlOp(const wire::CtrlRequest& request, ByteSpan payload = {});
  void MarkBroken(std::string_view what, const Error& e);
  Result<Bytes> Transact(const Bytes& command);
  void CancellerMain();

  Bytes RunCommand(uint8_t locality, Bytes& command) override;
  void RunHashStart() override;
  void RunHashData(ByteSpan data) override;
  void RunHashEnd() override;
  void RunResetEstablished(uint8_t locality) override;
  std::optional<bool> QueryEstablished() override;

  SwtpmSocketOptions options_;
  client::CtrlClient ctrl_;  // shared by the worker and the canceller (it serialises)
  UniqueFd data_;
  uint32_t buffer_size_ = 4096;
  int locality_ = -1;  // last locality sent (worker only)
  std::atomic<bool> broken_{false};

  std::mutex cancel_mu_;  // guards the three below
  std::condition_variable cancel_cv_;
  bool outstanding_ = false;
  bool cancel_requested_ = false;
  bool stopping_ = false;
  std::thread canceller_;
};

}  // namespace vtpm::backend
