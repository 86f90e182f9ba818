// Bounded waits for tests: a backend that never completes, a stuck worker or a peer that never
// answers makes the test FAIL with a message instead of hanging until ctest's timeout.
#pragma once

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>

#include "base/bytes.h"
#include "device/tpm_backend.h"

namespace vtpm::testing {

// The longest a test waits for one TPM command, control call or peer answer. TPM commands in
// these tests take milliseconds; the margin is for a loaded 2-core machine and sanitizers.
inline constexpr std::chrono::seconds kWaitLimit{30};

// Submits |command| at |locality| and waits at most |limit| for the completion. nullopt if it
// did not come (the caller fails the test). The promise is shared with the completion, so a
// completion arriving after the timeout touches no dead stack frame.
inline std::optional<Bytes> SubmitAndWait(device::TpmBackend& backend, uint8_t locality,
                                          Bytes command,
                                          std::chrono::milliseconds limit = kWaitLimit) {
  auto done = std::make_shared<std::promise<Bytes>>();
  std::future<Bytes> got = done->get_future();
  backend.Submit(locality, std::move(command), [done](Bytes r) { done->set_value(std::move(r)); });
  if (got.wait_for(limit) != std::future_status::ready) return std::nullopt;
  return got.get();
}

// Runs |call| (a blocking call without a timeout of its own, e.g. InProcessBackend::RunOnEngine)
// on a helper thread and waits at most |limit|. A call still blocked after that means a stuck
// worker, which the test's destructors would wait for too: the process exits with a message
// naming |what| (a test failure for ctest) instead of hanging.
template <class T>
T CallWithin(const std::string& what, std::function<T()> call,
             std::chrono::milliseconds limit = kWaitLimit) {
  auto result = std::make_shared<std::promise<T>>();
  std::future<T> got = result->get_future();
  std::thread([result, call = std::move(call)] { result->set_value(call()); }).detach();
  if (got.wait_for(limit) != std::future_status::ready) {
    std::fprintf(stderr, "FATAL: %s did not return within %lld ms; exiting instead of hanging\n",
                 what.c_str(), static_cast<long long>(limit.count()));
    std::fflush(stderr);
    std::_Exit(1);
  }
  return got.get();
}

}  // namespace vtpm::testing
