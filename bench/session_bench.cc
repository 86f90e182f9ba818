// Google Benchmark micro-benchmarks of the in-process paths: libtpms itself and the daemon's
// data-channel session on top of it (no sockets). The daemon-vs-swtpm comparison is vtpm_compare.
#include <benchmark/benchmark.h>

#include <filesystem>

#include "daemon/data_session.h"
#include "daemon/tpm_service.h"
#include "engine/engine.h"
#include "state/dir_store.h"
#include "tpm_commands.h"

namespace vtpm::bench {
namespace {

struct World {
  World() {
    char tmpl[] = "/tmp/vtpm-sbench.XXXXXX";
    dir = mkdtemp(tmpl);
    state::DirStoreOptions so;
    so.directory = dir;
    store = std::move(*state::DirStore::Open(so, NullLogger()));
    engine::EngineOptions eo;
    eng = std::move(*engine::Engine::Create(eo, store.get(), NullLogger()));
    (void)eng->Start(false);
    Bytes s = Startup().bytes;
    eng->Process(s);
    service = std::make_unique<daemon::TpmService>(eng.get(), store.get(), daemon::ServiceOptions{},
                                                   NullLogger());
  }
  ~World() {
    service.reset();
    eng.reset();
    store.reset();
    std::filesystem::remove_all(dir);
  }
  std::string dir;
  std::unique_ptr<state::DirStore> store;
  std::unique_ptr<engine::Engine> eng;
  std::unique_ptr<daemon::TpmService> service;
};

World& TheWorld() {
  static World w;  // one libtpms per process
  return w;
}

void BM_LibtpmsGetRandom32(benchmark::State& state) {
  World& w = TheWorld();
  Bytes cmd = GetRandom(32).bytes;
  for (auto _ : state) {
    Bytes copy = cmd;
    ByteSpan r = w.eng->Process(copy);
    if (r.size() != 44) state.SkipWithError("bad response");
    benchmark::DoNotOptimize(r.data());
  }
}
BENCHMARK(BM_LibtpmsGetRandom32);

void BM_DataSessionGetRandom32(benchmark::State& state) {
  World& w = TheWorld();
  daemon::DataSession session(w.service.get());
  Bytes cmd = GetRandom(32).bytes;
  Bytes out;
  for (auto _ : state) {
    Bytes copy = cmd;
    out.clear();
    session.OnChunk(copy, out);
    if (out.size() != 44) state.SkipWithError("bad response");
  }
}
BENCHMARK(BM_DataSessionGetRandom32);

void BM_LibtpmsPcrExtend(benchmark::State& state) {
  World& w = TheWorld();
  Bytes cmd = PcrExtend().bytes;
  for (auto _ : state) {
    Bytes copy = cmd;
    ByteSpan r = w.eng->Process(copy);
    if (r.size() != 19) state.SkipWithError("bad response");
  }
}
BENCHMARK(BM_LibtpmsPcrExtend);

}  // namespace
}  // namespace vtpm::bench

BENCHMARK_MAIN();
