#include "backend/in_process_backend.h"

namespace vtpm::backend {

Result<std::unique_ptr<InProcessBackend>> InProcessBackend::Create(
    std::unique_ptr<state::NvStore> store, const InProcessOptions& options, Logger log) {
  if (!store) return Fail(Errc::kInvalidArgument, "the in-process backend needs a state store");
  if (!log) log = NullLogger();
  VTPM_ASSIGN_OR_RETURN(auto eng, engine::Engine::Create(options.engine, store.get(), log));
  if (options.buffer_size != 0) {
    VTPM_ASSIGN_OR_RETURN(auto sizes, eng->SetBufferSize(options.buffer_size));
    if (sizes.current != options.buffer_size) {
      log->info("libtpms adjusted the buffer size from {} to {}", options.buffer_size,
                sizes.current);
    }
  }
  VTPM_RETURN_IF_ERROR(eng->Start(/*delete_volatile=*/false));
  return std::unique_ptr<InProcessBackend>(
      new InProcessBackend(std::move(store), std::move(eng), std::move(log)));
}

InProcessBackend::InProcessBackend(std::unique_ptr<state::NvStore> store,
                                   std::unique_ptr<engine::Engine> eng, Logger log)
    : QueuedBackend("TPM", eng->tpm2(), std::move(log)),
      store_(std::move(store)),
      engine_(std::move(eng)) {
  buffer_size_ = engine_->buffer_size();
  StartWorker();
}

InProcessBackend::~InProcessBackend() {
  StopWorker();
  engine_.reset();  // Engine::Stop: orderly TPM2_Shutdown, state written
}

void InProcessBackend::Cancel() {
  if (executing_.load(std::memory_order_acquire)) engine_->Cancel();  // thread-safe
}

Status InProcessBackend::RunOnEngine(const std::function<Status(engine::Engine&)>& fn) {
  return RunOnWorker([&] { return fn(*engine_); });
}

Bytes InProcessBackend::RunCommand(uint8_t locality, Bytes& command) {
  if (!engine_->SetLocality(locality)) return LocalityResponse();
  executing_.store(true, std::memory_order_release);
  ByteSpan r = engine_->Process(command);
  executing_.store(false, std::memory_order_release);
  return Bytes(r.begin(), r.end());
}

void InProcessBackend::Warn(const char* what, const Status& st) {
  if (!st) log_->warn("TPM backend: {} failed: {}", what, st.error().message);
}

void InProcessBackend::RunHashStart() { Warn("_TPM_Hash_Start", engine_->HashStart()); }
void InProcessBackend::RunHashData(ByteSpan data) {
  Warn("_TPM_Hash_Data", engine_->HashData(data));
}
void InProcessBackend::RunHashEnd() { Warn("_TPM_Hash_End", engine_->HashEnd()); }
void InProcessBackend::RunResetEstablished(uint8_t locality) {
  Warn("resetEstablishment", engine_->ResetEstablished(locality));
}

std::optional<bool> InProcessBackend::QueryEstablished() {
  if (!engine_->running()) return false;
  auto est = engine_->GetEstablished();
  return est && *est;
}

}  // namespace vtpm::backend
