#include "backend/queued_backend.h"

#include <future>
#include <thread>

#include "backend/op_queue.h"

#include "base/log_limit.h"
#include "wire/tpm_header.h"

namespace vtpm::backend {

struct QueuedBackend::Worker {
  OpQueue queue{kQueueCapacity};
  std::thread thread;
};

QueuedBackend::QueuedBackend(std::string name, bool tpm2, Logger log)
    : name_(std::move(name)),
      tpm2_(tpm2),
      log_(log ? std::move(log) : NullLogger()),
      worker_(std::make_unique<Worker>()) {}

QueuedBackend::~QueuedBackend() { StopWorker(); }

void QueuedBackend::StartWorker() {
  RefreshEstablished();
  worker_->thread = std::thread([this] {
    while (auto op = worker_->queue.Pop()) Execute(*op);
  });
}

void QueuedBackend::StopWorker() {
  worker_->queue.Close();
  if (worker_->thread.joinable()) worker_->thread.join();
}

Bytes QueuedBackend::FailureResponse() const { return wire::NotRunningResponse(tpm2_); }

Bytes QueuedBackend::LocalityResponse() const { return wire::LocalityErrorResponse(tpm2_); }

void QueuedBackend::Post(Op op) {
  const Completion done = op.kind == Op::kSubmit ? op.done : nullptr;
  if (!worker_->queue.Push(std::move(op))) {
    const uint64_t n = worker_->queue.CountDrop();
    if (ShouldLogOccurrence(n)) {
      log_->warn("{} backend: queue full or closed; dropped a request ({} so far)", name_, n);
    }
    if (done) done(FailureResponse());
  }
}

void QueuedBackend::Submit(uint8_t locality, Bytes command, Completion done) {
  Op op{Op::kSubmit};
  op.locality = locality;
  op.data = std::move(command);
  op.done = std::move(done);
  Post(std::move(op));
}

void QueuedBackend::ResetEstablished(uint8_t locality) {
  Op op{Op::kResetEstablished};
  op.locality = locality;
  Post(std::move(op));
}

void QueuedBackend::HashStart() { Post(Op{Op::kHashStart}); }

void QueuedBackend::HashData(Bytes data) {
  Op op{Op::kHashData};
  op.data = std::move(data);
  Post(std::move(op));
}

void QueuedBackend::HashEnd() { Post(Op{Op::kHashEnd}); }

Status QueuedBackend::RunOnWorker(const std::function<Status()>& fn) {
  std::promise<Status> result;
  Op op{Op::kCall};
  op.call = [&] { result.set_value(fn()); };
  auto fut = result.get_future();
  if (!worker_->queue.Push(std::move(op))) {
    return Fail(Errc::kBusy, name_ + " backend: shutting down or its queue is full");
  }
  return fut.get();
}

void QueuedBackend::RefreshEstablished() {
  if (auto est = QueryEstablished()) established_.store(*est, std::memory_order_release);
}

void QueuedBackend::Execute(Op& op) {
  switch (op.kind) {
    case Op::kSubmit:
      op.done(RunCommand(op.locality, op.data));
      break;
    case Op::kHashStart:
      RunHashStart();
      break;
    case Op::kHashData:
      RunHashData(op.data);
      break;
    case Op::kHashEnd:
      RunHashEnd();
      RefreshEstablished();
      break;
    case Op::kResetEstablished:
      RunResetEstablished(op.locality);
      RefreshEstablished();
      break;
    case Op::kCall:
      op.call();
      RefreshEstablished();
      break;
  }
}

}  // namespace vtpm::backend
