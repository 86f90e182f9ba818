// Internal to the device models: backend calls decided under the device lock and issued after it
// is released (a backend may complete inline, and the completion takes the device lock), and the
// anchor that lets a late completion find out that its device is gone.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "base/bytes.h"
#include "device/tpm_backend.h"

namespace vtpm::device::internal {

struct BackendOp {
  enum Kind { kSubmit, kCancel, kHashStart, kHashData, kHashEnd, kResetEstablished };
  BackendOp(Kind k) : kind(k) {}  // NOLINT(google-explicit-constructor): used as {kind}
  Kind kind;
  uint8_t locality = 0;
  uint64_t seq = 0;
  Bytes data;
};

// Shared between a device and the completions it handed out. |mu| is the device lock.
template <class Device>
struct Anchor {
  std::mutex mu;
  Device* device = nullptr;  // nulled (under mu) when the device is destroyed
};

// Issues |ops| in order; submissions complete into Device::OnCompletionLocked(seq, response).
template <class Device>
void RunBackendOps(std::vector<BackendOp>& ops, TpmBackend* backend,
                   const std::shared_ptr<Anchor<Device>>& anchor) {
  for (BackendOp& op : ops) {
    switch (op.kind) {
      case BackendOp::kSubmit: {
        std::weak_ptr<Anchor<Device>> weak = anchor;
        const uint64_t seq = op.seq;
        backend->Submit(op.locality, std::move(op.data), [weak, seq](Bytes response) {
          auto a = weak.lock();
          if (!a) return;
          std::lock_guard lock(a->mu);
          if (a->device != nullptr) a->device->OnCompletionLocked(seq, std::move(response));
        });
        break;
      }
      case BackendOp::kCancel:
        backend->Cancel();
        break;
      case BackendOp::kHashStart:
        backend->HashStart();
        break;
      case BackendOp::kHashData:
        backend->HashData(std::move(op.data));
        break;
      case BackendOp::kHashEnd:
        backend->HashEnd();
        break;
      case BackendOp::kResetEstablished:
        backend->ResetEstablished(op.locality);
        break;
    }
  }
  ops.clear();
}

}  // namespace vtpm::device::internal
