// A bounded FIFO of backend operations consumed by one worker thread. Bounded so that a guest
// hammering the locality-4 hash registers, or a stuck TPM, cannot grow memory without limit.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>

#include "base/bytes.h"
#include "device/tpm_backend.h"

namespace vtpm::backend {

struct Op {
  enum Kind { kSubmit, kHashStart, kHashData, kHashEnd, kResetEstablished, kCall };
  Op(Kind k) : kind(k) {}  // NOLINT(google-explicit-constructor)
  Kind kind;
  uint8_t locality = 0;
  Bytes data;
  device::TpmBackend::Completion done;  // kSubmit
  std::function<void()> call;           // kCall: control-plane work on the worker thread
};

class OpQueue {
 public:
  explicit OpQueue(size_t capacity) : capacity_(capacity) {}
  // False when full or closed (the op is not queued).
  bool Push(Op op) {
    std::lock_guard lock(mu_);
    if (closed_ || ops_.size() >= capacity_) return false;
    ops_.push_back(std::move(op));
    cv_.notify_one();
    return true;
  }
  // Blocks until an op is available; nullopt once closed and drained.
  std::optional<Op> Pop() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return closed_ || !ops_.empty(); });
    if (ops_.empty()) return std::nullopt;
    Op op = std::move(ops_.front());
    ops_.pop_front();
    return op;
  }
  // Counts a request that could not be queued; returns the total so far.
  uint64_t CountDrop() {
    std::lock_guard lock(mu_);
    return ++drops_;
  }
  void Close() {
    std::lock_guard lock(mu_);
    closed_ = true;
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Op> ops_;
  size_t capacity_;
  bool closed_ = false;
  uint64_t drops_ = 0;
};

// Limits the queue: enough for a burst of hash chunks, far below memory trouble.
inline constexpr size_t kQueueCapacity = 256;

}  // namespace vtpm::backend
