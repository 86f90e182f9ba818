// InProcessBackend: the TPM engine (libtpms) on a worker thread of the VMM process.
//
// The engine is created and started (power-on, like swtpm's CMD_INIT) by Create() and is then
// used only by the worker thread; every TpmBackend call queues work and returns. Completions run
// on the worker thread. One per process (libtpms is process-global; Engine::Create enforces it).
//
// Cancel() calls TPMLIB_CancelCommand only while the worker is inside a command, which libtpms
// honours at its cancellation points (key generation); a cancel that races with the end of a
// command may still be seen by the next long operation (libtpms keeps the flag) — guests only
// cancel commands that have been running for a long time, so this is benign in practice.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <optional>

#include "backend/queued_backend.h"
#include "base/log.h"
#include "device/tpm_backend.h"
#include "engine/engine.h"
#include "state/nv_store.h"

namespace vtpm::backend {

struct InProcessOptions {
  engine::EngineOptions engine;
  // libtpms buffer size (TPMLIB_SetBufferSize) set before power-on; 0 keeps the default (4096).
  // A CRB device's buffer is 3968 bytes: pass that so the TPM never answers more.
  uint32_t buffer_size = 0;
};

class InProcessBackend final : public QueuedBackend {
 public:
  // |store| holds the TPM's state (e.g. state::DirStore); the backend owns it.
  static Result<std::unique_ptr<InProcessBackend>> Create(std::unique_ptr<state::NvStore> store,
                                                          const InProcessOptions& options,
                                                          Logger log);
  ~InProcessBackend() override;  // drains the queue, then Engine::Stop (orderly shutdown)

  void Cancel() override;
  uint32_t BufferSize() const override { return buffer_size_; }

  // Control plane (never from a vCPU): runs |fn| on the worker thread, after everything queued
  // before it, and waits for it. For VM reset (engine Stop/Start), snapshots (GetState), tests.
  Status RunOnEngine(const std::function<Status(engine::Engine&)>& fn);

 private:
  InProcessBackend(std::unique_ptr<state::NvStore> store, std::unique_ptr<engine::Engine> eng,
                   Logger log);
  Bytes RunCommand(uint8_t locality, Bytes& command) override;
  void RunHashStart() override;
  void RunHashData(ByteSpan data) override;
  void RunHashEnd() override;
  void RunResetEstablished(uint8_t locality) override;
  std::optional<bool> QueryEstablished() override;
  void Warn(const char* what, const Status& st);

  std::unique_ptr<state::NvStore> store_;
  std::unique_ptr<engine::Engine> engine_;  // worker thread only (after Create)
  uint32_t buffer_size_ = 4096;
  std::atomic<bool> executing_{false};
};

}  // namespace vtpm::backend
