#include "backend/in_process_backend.h"

#include <bit>
#include <future>

#include "wire/tpm_header.h"

namespace vtpm::backend {

namespace {
constexpr uint32_t kTpm2RcLocality = 0x907;
constexpr uint32_t kTpm12BadLocality = 0x3D;
}  // namespace

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
    : store_(std::move(store)), engine_(std::move(eng)), log_(std::move(log)) {
  buffer_size_ = engine_->buffer_size();
  tpm2_ = engine_->tpm2();
  RefreshEstablished();
  worker_ = std::thread([this] { WorkerMain(); });
}

InProcessBackend::~InProcessBackend() {
  queue_.Close();
  if (worker_.joinable()) worker_.join();
  engine_.reset();  // Engine::Stop: orderly TPM2_Shutdown, state written
}

void InProcessBackend::Post(Op op) {
  const Op::Kind kind = op.kind;
  device::TpmBackend::Completion done = op.kind == Op::kSubmit ? op.done : nullptr;
  if (!queue_.Push(std::move(op))) {
    const uint64_t n = queue_.CountDrop();
    if (n <= 10 || std::has_single_bit(n)) {  // a hostile guest must not flood the log
      log_->warn("TPM backend queue full or closed; dropped a request ({} so far)", n);
    }
    if (kind == Op::kSubmit && done) done(wire::NotRunningResponse(tpm2_));
  }
}

void InProcessBackend::Submit(uint8_t locality, Bytes command, Completion done) {
  Op op{Op::kSubmit};
  op.locality = locality;
  op.data = std::move(command);
  op.done = std::move(done);
  Post(std::move(op));
}

void InProcessBackend::Cancel() {
  if (executing_.load(std::memory_order_acquire)) engine_->Cancel();  // thread-safe
}

void InProcessBackend::ResetEstablished(uint8_t locality) {
  Op op{Op::kResetEstablished};
  op.locality = locality;
  Post(std::move(op));
}
void InProcessBackend::HashStart() { Post(Op{Op::kHashStart}); }
void InProcessBackend::HashData(Bytes data) {
  Op op{Op::kHashData};
  op.data = std::move(data);
  Post(std::move(op));
}
void InProcessBackend::HashEnd() { Post(Op{Op::kHashEnd}); }

Status InProcessBackend::RunOnEngine(const std::function<Status(engine::Engine&)>& fn) {
  std::promise<Status> result;
  Op op{Op::kCall};
  op.call = [&] { result.set_value(fn(*engine_)); };
  auto fut = result.get_future();
  if (!queue_.Push(std::move(op))) {
    return Fail(Errc::kBusy, "the TPM backend is shutting down or its queue is full");
  }
  return fut.get();
}

void InProcessBackend::WorkerMain() {
  while (auto op = queue_.Pop()) Execute(*op);
}

void InProcessBackend::RefreshEstablished() {
  auto est = engine_->running() ? engine_->GetEstablished() : Result<bool>(false);
  established_.store(est && *est, std::memory_order_release);
}

void InProcessBackend::Execute(Op& op) {
  auto warn = [&](const char* what, const Status& st) {
    if (!st) log_->warn("TPM backend: {} failed: {}", what, st.error().message);
  };
  switch (op.kind) {
    case Op::kSubmit: {
      Bytes response;
      if (auto st = engine_->SetLocality(op.locality); !st) {
        response = wire::ErrorResponse(tpm2_ ? wire::kTpmStNoSessions : wire::kTpm12TagRspCommand,
                                       tpm2_ ? kTpm2RcLocality : kTpm12BadLocality);
      } else {
        executing_.store(true, std::memory_order_release);
        ByteSpan r = engine_->Process(op.data);
        executing_.store(false, std::memory_order_release);
        response.assign(r.begin(), r.end());
      }
      op.done(std::move(response));
      break;
    }
    case Op::kHashStart:
      warn("_TPM_Hash_Start", engine_->HashStart());
      break;
    case Op::kHashData:
      warn("_TPM_Hash_Data", engine_->HashData(op.data));
      break;
    case Op::kHashEnd:
      warn("_TPM_Hash_End", engine_->HashEnd());
      RefreshEstablished();
      break;
    case Op::kResetEstablished:
      warn("resetEstablishment", engine_->ResetEstablished(op.locality));
      RefreshEstablished();
      break;
    case Op::kCall:
      op.call();
      RefreshEstablished();
      break;
  }
}

}  // namespace vtpm::backend
