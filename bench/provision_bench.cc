// Where `vtpm setup`'s time goes, phase by phase (Google Benchmark):
//   build/bench/provision_bench [--benchmark_filter=...]
// The CA numbers justify the local CA's default key type (docs/ARCHITECTURE.md).
#include <benchmark/benchmark.h>

#include <filesystem>

#include "engine/engine.h"
#include "provision/ca.h"
#include "provision/cert.h"
#include "provision/ek_profile.h"
#include "provision/engine_transport.h"
#include "provision/mem_store.h"
#include "provision/tpm2_manufacture.h"
#include "tpmcmd/tpm2_commands.h"

namespace vtpm::provision {
namespace {

struct FreshTpm {
  MemStore mem;
  std::unique_ptr<engine::Engine> eng;
  std::unique_ptr<EngineTransport> tpm;
  FreshTpm() {
    eng = std::move(*engine::Engine::Create(engine::EngineOptions{}, &mem, NullLogger()));
    (void)eng->Start(false);
    tpm = std::make_unique<EngineTransport>(eng.get());
    (void)tpmcmd::Execute(*tpm, tpmcmd::Startup{tpmcmd::kSuClear});
  }
};

// Manufacturing a new TPM 2 (seeds, NV) and TPM2_Startup.
void BM_ManufactureTpm2(benchmark::State& state) {
  for (auto _ : state) {
    FreshTpm t;
    benchmark::DoNotOptimize(t.mem.stores());
  }
}
BENCHMARK(BM_ManufactureTpm2)->Unit(benchmark::kMillisecond);

// CreatePrimary of an EK on a new TPM each time (a new seed: the RSA prime search varies).
void BM_CreateEk(benchmark::State& state) {
  EkAlg alg = static_cast<EkAlg>(state.range(0));
  for (auto _ : state) {
    state.PauseTiming();
    FreshTpm t;
    tpmcmd::CreatePrimary cp;
    cp.in_public = EkTemplate(alg);
    state.ResumeTiming();
    auto r = tpmcmd::Execute(*t.tpm, cp);
    if (!r) state.SkipWithError(r.error().message.c_str());
  }
  state.SetLabel(std::string(GetEkProfile(alg).name));
}
BENCHMARK(BM_CreateEk)
    ->Arg(static_cast<int>(EkAlg::kRsa2048))
    ->Arg(static_cast<int>(EkAlg::kEccP256))
    ->Arg(static_cast<int>(EkAlg::kEccP384))
    ->Unit(benchmark::kMillisecond)
    ->Iterations(30);

CaKeyType CaType(int i) { return static_cast<CaKeyType>(i); }

std::string TempDir() {
  std::string tmpl = (std::filesystem::temp_directory_path() / "vtpm-bench-XXXXXX").string();
  return mkdtemp(tmpl.data());
}

// First use of the local CA: two key pairs, two certificates, four durable files.
void BM_CreateLocalCa(benchmark::State& state) {
  for (auto _ : state) {
    state.PauseTiming();
    std::string dir = TempDir();
    state.ResumeTiming();
    auto ca = Ca::OpenLocal(dir + "/ca", CaType(static_cast<int>(state.range(0))), SystemClock(),
                            SystemRandom(), NullLogger());
    if (!ca) state.SkipWithError(ca.error().message.c_str());
    state.PauseTiming();
    std::filesystem::remove_all(dir);
    state.ResumeTiming();
  }
  state.SetLabel(std::string(CaKeyTypeName(CaType(static_cast<int>(state.range(0))))));
}
BENCHMARK(BM_CreateLocalCa)->DenseRange(0, 3)->Unit(benchmark::kMillisecond)->Iterations(3);

// Issuing one EK certificate (building, signing, encoding) with each CA key type.
void BM_IssueEkCertificate(benchmark::State& state) {
  std::string dir = TempDir();
  auto ca = Ca::OpenLocal(dir + "/ca", CaType(static_cast<int>(state.range(0))), SystemClock(),
                          SystemRandom(), NullLogger());
  EvpPkeyPtr ek(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(2048)));
  CertFields f{"bench", Bytes{1}, 1700000000};
  for (auto _ : state) {
    auto der = IssueEkCertificate(ca->issuer(), ek.get(), TpmInfo{}, f);
    benchmark::DoNotOptimize(der);
  }
  state.SetLabel(std::string(CaKeyTypeName(CaType(static_cast<int>(state.range(0))))));
  std::filesystem::remove_all(dir);
}
BENCHMARK(BM_IssueEkCertificate)->DenseRange(0, 3)->Unit(benchmark::kMicrosecond);

// Loading the CA (PEM key and certificates) as every `vtpm setup` with certificates does.
void BM_LoadLocalCa(benchmark::State& state) {
  std::string dir = TempDir();
  auto type = CaType(static_cast<int>(state.range(0)));
  (void)Ca::OpenLocal(dir + "/ca", type, SystemClock(), SystemRandom(), NullLogger());
  for (auto _ : state) {
    auto ca = Ca::OpenLocal(dir + "/ca", type, SystemClock(), SystemRandom(), NullLogger());
    benchmark::DoNotOptimize(ca);
  }
  state.SetLabel(std::string(CaKeyTypeName(type)));
  std::filesystem::remove_all(dir);
}
BENCHMARK(BM_LoadLocalCa)->DenseRange(0, 3)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace vtpm::provision

BENCHMARK_MAIN();
