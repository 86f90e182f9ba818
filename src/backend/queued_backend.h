// QueuedBackend: the shell both TPM backends share. Every device::TpmBackend call becomes an Op in
// a bounded queue (op_queue.h) that one worker thread runs in order; a full queue answers a
// command with the TPM's failure response and logs at a limited rate (a guest can fill it at
// will); the tpmEstablished flag is cached here and refreshed after the operations that can
// change it. Subclasses supply how an operation reaches the TPM -- the engine in this process, or
// a `vtpm socket`/`swtpm socket` over its sockets -- and nothing else.
//
// Lifecycle: the subclass constructor calls StartWorker() once it can run operations; its
// destructor calls StopWorker() first (drains the queue and joins), before its members go.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "base/log.h"
#include "device/tpm_backend.h"

namespace vtpm::backend {

struct Op;  // op_queue.h (private)

class QueuedBackend : public device::TpmBackend {
 public:
  ~QueuedBackend() override;

  void Submit(uint8_t locality, Bytes command, Completion done) final;
  bool TpmEstablished() final { return established_.load(std::memory_order_acquire); }
  void ResetEstablished(uint8_t locality) final;
  void HashStart() final;
  void HashData(Bytes data) final;
  void HashEnd() final;

 protected:
  // |name| says which backend a log line comes from; |tpm2| picks the failure response.
  QueuedBackend(std::string name, bool tpm2, Logger log);

  // The operations, on the worker thread, in issue order.
  // A command at |locality|; returns the response (well-formed; failures as the TPM's).
  virtual Bytes RunCommand(uint8_t locality, Bytes& command) = 0;
  // _TPM_Hash_Start/Data/End and resetEstablishment; failures are logged by the subclass.
  virtual void RunHashStart() = 0;
  virtual void RunHashData(ByteSpan data) = 0;
  virtual void RunHashEnd() = 0;
  virtual void RunResetEstablished(uint8_t locality) = 0;
  // The TPM's current tpmEstablished flag (nullopt: unknown, keep the cached value).
  virtual std::optional<bool> QueryEstablished() = 0;

  void StartWorker();
  void StopWorker();
  // Control plane: runs |fn| on the worker thread after everything queued before it, waits for
  // it, and refreshes the established flag. Errc::kBusy when the queue is full or closed.
  Status RunOnWorker(const std::function<Status()>& fn);
  void RefreshEstablished();
  // The TPM's response to a command that could not be run (TPM_RC_FAILURE / TPM_FAIL).
  Bytes FailureResponse() const;
  // The TPM's response to a command at a locality it refuses (TPM_RC_LOCALITY / TPM_BAD_LOCALITY).
  Bytes LocalityResponse() const;

  const std::string name_;
  const bool tpm2_;
  const Logger log_;

 private:
  struct Worker;  // the bounded queue of Ops (op_queue.h) and its thread; private to the .cc
  void Post(Op op);
  void Execute(Op& op);

  std::atomic<bool> established_{false};
  std::unique_ptr<Worker> worker_;
};

}  // namespace vtpm::backend
