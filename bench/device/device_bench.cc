// Device-model costs: one MMIO access through the TIS model, and a whole TPM2_GetRandom
// transaction through the registers (Linux's access pattern: byte-wide FIFO, busy polling of
// STS) against each backend: the in-process engine, vtpm's daemon and Debian's swtpm (socket
// backend). Run: build/bench/device/device_bench. vtpm_compare's "device" section measures the
// same transaction with the three backends paired, next to the other figures.
#include <benchmark/benchmark.h>

#include <cstdlib>

#include "backend/in_process_backend.h"
#include "backend/swtpm_socket_backend.h"
#include "device/tis.h"
#include "fakes/fake_backend.h"
#include "fakes/tpm_commands.h"
#include "fakes/tpm_fixture.h"
#include "fakes/tpm_process.h"
#include "state/dir_store.h"
#include "tis_driver.h"

namespace vtpm {
namespace {

namespace cmd = testing::cmd;

void BM_TisStsDwordRead(benchmark::State& state) {
  testing::FakeBackend backend;
  auto tis = std::move(*device::Tis::Create({}, {&backend, nullptr, {}}));
  uint8_t b[4] = {2, 0, 0, 0};
  tis->Write({0, 0, 0}, std::span<const uint8_t>(b, 1));
  for (auto _ : state) {
    tis->Read({0x18, 0, 0}, std::span<uint8_t>(b, 4));
    benchmark::DoNotOptimize(b);
  }
}
BENCHMARK(BM_TisStsDwordRead);

// One GetRandom(32) through the TIS registers, busy-polling STS for completion (bench/tis_driver.h,
// shared with vtpm_compare's "device" section). Counters: MMIO accesses per command (what a KVM
// guest pays in exits) and polls while executing.
void RunGetRandom(benchmark::State& state, device::TpmBackend* backend) {
  auto tis = std::move(*device::Tis::Create({}, {backend, nullptr, {}}));
  bench::TisDriver driver(*tis);
  driver.RequestLocality();
  if (cmd::Rc(driver.Transact(cmd::Startup())) != 0) {
    state.SkipWithError("TPM2_Startup failed");
    return;
  }
  driver.ResetCounters();
  const Bytes get_random = cmd::GetRandom(32);
  for (auto _ : state) {
    Bytes r = driver.Transact(get_random);
    if (r.size() != 44) state.SkipWithError("bad GetRandom response");
  }
  state.counters["mmio_per_cmd"] = benchmark::Counter(driver.accesses_per_command());
  state.counters["polls_per_cmd"] = benchmark::Counter(driver.polls_per_command());
}

void BM_TisGetRandom_InProcess(benchmark::State& state) {
  testing::TempDir dir;
  state::DirStoreOptions so;
  so.directory = dir.path();
  so.fsync = false;
  auto backend = backend::InProcessBackend::Create(
      std::move(*state::DirStore::Open(so, NullLogger())), {}, NullLogger());
  if (!backend) {
    state.SkipWithError(backend.error().message.c_str());
    return;
  }
  RunGetRandom(state, backend->get());
}
BENCHMARK(BM_TisGetRandom_InProcess)->UseRealTime();

void SocketBench(benchmark::State& state, const std::string& binary) {
  testing::TpmProcess proc(binary);
  if (!proc.started()) {
    state.SkipWithError(("cannot start " + binary).c_str());
    return;
  }
  backend::SwtpmSocketOptions o;
  o.ctrl_path = proc.ctrl_path();
  auto backend = backend::SwtpmSocketBackend::Create(o, NullLogger());
  if (!backend) {
    state.SkipWithError(backend.error().message.c_str());
    return;
  }
  RunGetRandom(state, backend->get());
}
void BM_TisGetRandom_VtpmSocket(benchmark::State& state) { SocketBench(state, VTPM_BINARY); }
void BM_TisGetRandom_SwtpmSocket(benchmark::State& state) { SocketBench(state, "swtpm"); }
BENCHMARK(BM_TisGetRandom_VtpmSocket)->UseRealTime();
BENCHMARK(BM_TisGetRandom_SwtpmSocket)->UseRealTime();

}  // namespace
}  // namespace vtpm

BENCHMARK_MAIN();
