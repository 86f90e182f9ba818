// libFuzzer targets for the daemon's protocol sessions, on the real libtpms engine over an
// in-memory store (FUZZ_SESSION: 1 control channel, 2 data channel, 3 MS-simulator port).
// The input is split into reads (byte 0 picks the read size, so reassembly across reads is
// exercised) and fed to a fresh session on a TPM that was started and sent TPM2_Startup. Checks,
// besides "no crash, hang, leak or UB": the session's output stays bounded by what the protocol
// allows per input byte, and the TPM is still usable afterwards (GetRandom answers) unless the
// input legitimately stopped it.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>

#include "daemon/ctrl_session.h"
#include "daemon/data_session.h"
#include "daemon/mssim_session.h"
#include "daemon/tpm_service.h"
#include "engine/engine.h"
#include "provision/mem_store.h"
#include "wire/tpm_header.h"

namespace {

using namespace vtpm;  // NOLINT: a fuzz harness

#define FUZZ_CHECK(cond)                                     \
  do {                                                       \
    if (!(cond)) {                                           \
      std::fprintf(stderr, "invariant failed: %s\n", #cond); \
      std::abort();                                          \
    }                                                        \
  } while (0)

struct Hooks : daemon::ServerHooks {
  bool AdoptDataFd(UniqueFd) override { return false; }
  void RequestExit() override {}
};

// One engine per process (libtpms is process-global): made once, restarted per input.
struct World {
  provision::MemStore store;
  std::unique_ptr<engine::Engine> engine;
  std::unique_ptr<daemon::TpmService> service;
  Hooks hooks;
  World() {
    auto e = engine::Engine::Create({}, &store, NullLogger());
    if (!e) std::abort();
    engine = std::move(*e);
    daemon::ServiceOptions o;
    o.startup = daemon::StartupType::kClear;
    o.allow_set_locality = true;
    service = std::make_unique<daemon::TpmService>(engine.get(), &store, o, NullLogger());
    service->set_hooks(&hooks);
  }
};

World& TheWorld() {
  static World* w = new World();  // never destroyed: libtpms outlives every input
  return *w;
}

std::unique_ptr<daemon::Session> MakeSession(daemon::TpmService* s) {
#if FUZZ_SESSION == 1
  return std::make_unique<daemon::CtrlSession>(s, /*fd_passing=*/false);
#elif FUZZ_SESSION == 2
  return std::make_unique<daemon::DataSession>(s);
#else
  return std::make_unique<daemon::MssimSession>(s);
#endif
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  World& w = TheWorld();
  if (!w.engine->running()) {
    if (!w.service->Start(false, /*send_startup=*/true)) return 0;
  }
  const size_t read_size = 1 + data[0] % 64;
  Bytes input(data + 1, data + size);
  auto session = MakeSession(w.service.get());
  Bytes out;
  for (size_t pos = 0; pos < input.size() && !session->wants_close(); pos += read_size) {
    const size_t n = std::min(read_size, input.size() - pos);
    const size_t before = out.size();
    session->OnChunk(std::span<uint8_t>(input.data() + pos, n), out);
    // Per read, a reply is at most one TPM response (+ framing) or a state blob / info chunk.
    FUZZ_CHECK(out.size() - before <= 600 * 1024);
  }
  if (w.engine->running()) {
    Bytes getrandom = {0x80, 0x01, 0, 0, 0, 0x0c, 0, 0, 0x01, 0x7b, 0, 8};
    const ByteSpan r = w.service->Execute(getrandom);
    FUZZ_CHECK(r.size() >= wire::kTpmHeaderSize);
  }
  return 0;
}
