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

#include "backend/op_queue.h"
#include "base/log.h"
#include "base/unique_fd.h"
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

class SwtpmSocketBackend final : public device::TpmBackend {
 public:
  static Result<std::unique_ptr<SwtpmSocketBackend>> Create(const SwtpmSocketOptions& options,
                                                            Logger log);
  ~SwtpmSocketBackend() override;

  void Submit(uint8_t locality, Bytes command, Completion done) override;
  void Cancel() override;
  bool TpmEstablished() override { return established_.load(std::memory_order_acquire); }
  void ResetEstablished(uint8_t locality) override;
  void HashStart() override;
  void HashData(Bytes data) override;
  void HashEnd() override;
  uint32_t BufferSize() const override { return buffer_size_; }

  // Control plane: CMD_SHUTDOWN (swtpm stores its state and exits). Waits for queued work.
  Status Shutdown();
  bool broken() const { return broken_.load(); }

 private:
  explicit SwtpmSocketBackend(const SwtpmSocketOptions& options, Logger log);
  Status Connect();
  // One control exchange: |request| (code + body), reads the 4-byte result and, on success,
  // |extra| more bytes. Returns the result code (0 = success) and the extra bytes.
  Result<std::pair<uint32_t, Bytes>> Ctrl(const Bytes& request, size_t extra, int pass_fd = -1);
  Status CtrlOk(const Bytes& request, const char* what);
  Result<Bytes> Transact(const Bytes& command);
  void Post(Op op);
  void WorkerMain();
  void CancellerMain();
  void Execute(Op& op);
  void RefreshEstablished();
  Bytes Failure() const;

  SwtpmSocketOptions options_;
  Logger log_;
  UniqueFd ctrl_;
  UniqueFd data_;
  std::mutex ctrl_mu_;  // the control socket is shared by the worker and the canceller
  uint32_t buffer_size_ = 4096;
  int locality_ = -1;  // last locality sent (worker only)
  std::atomic<bool> established_{false};
  std::atomic<bool> broken_{false};

  std::mutex cancel_mu_;  // guards the three below
  std::condition_variable cancel_cv_;
  bool outstanding_ = false;
  bool cancel_requested_ = false;
  bool stopping_ = false;

  OpQueue queue_{kQueueCapacity};
  std::thread worker_;
  std::thread canceller_;
};

}  // namespace vtpm::backend
