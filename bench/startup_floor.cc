// startup_floor: the least a libtpms-based TPM process can do between its start and answering
// TPM2_Startup from an existing state, as a floor for vtpm_compare's start-up row.
//
// It execs, loads libtpms and libcrypto, reads the state directory through the same DirStore as
// the daemon, starts our Engine (TPMLIB_MainInit), runs TPM2_Startup(CLEAR) and writes the
// response to stdout. No sockets, no event loop, no logging, and nothing is written back to the
// directory (every Store is dropped), so it is a lower bound for any daemon that must at least
// exec, load libtpms and let it start; it is linked like the vtpm binary (cmake/Runtime.cmake).
//
// Usage: startup_floor STATE_DIR   (exit 0 after writing the 10-byte response)
#include <unistd.h>

#include <cstdio>
#include <memory>

#include "base/bytes.h"
#include "base/log.h"
#include "engine/engine.h"
#include "state/dir_store.h"
#include "tpm_commands.h"

namespace {

// Forwards reads and the lock to a DirStore and drops every write.
class ReadOnlyStore final : public vtpm::state::NvStore {
 public:
  explicit ReadOnlyStore(vtpm::state::NvStore* inner) : inner_(inner) {}
  vtpm::Status Lock() override { return inner_->Lock(); }
  void Unlock() override { inner_->Unlock(); }
  vtpm::Result<std::optional<vtpm::Bytes>> Load(std::string_view name) override {
    return inner_->Load(name);
  }
  vtpm::Status Store(std::string_view, vtpm::ByteSpan) override { return {}; }
  vtpm::Status Delete(std::string_view, bool) override { return {}; }
  bool FallBackToPreviousGeneration() override { return inner_->FallBackToPreviousGeneration(); }

 private:
  vtpm::state::NvStore* inner_;
};

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: startup_floor STATE_DIR\n");
    return 2;
  }
  vtpm::state::DirStoreOptions so;
  so.directory = argv[1];
  auto dir = vtpm::state::DirStore::Open(so, vtpm::NullLogger());
  if (!dir) {
    std::fprintf(stderr, "startup_floor: %s\n", dir.error().message.c_str());
    return 1;
  }
  ReadOnlyStore store(dir->get());
  vtpm::engine::EngineOptions eo;
  eo.auto_shutdown = false;  // nothing is stored anyway
  auto engine = vtpm::engine::Engine::Create(eo, &store, vtpm::NullLogger());
  if (!engine || !(*engine)->Start(false)) {
    std::fprintf(stderr, "startup_floor: the engine did not start from %s\n", argv[1]);
    return 1;
  }
  vtpm::Bytes startup = vtpm::bench::Startup().bytes;  // TPM2_Startup(CLEAR)
  vtpm::ByteSpan r = (*engine)->Process(startup);
  if (write(STDOUT_FILENO, r.data(), r.size()) != static_cast<ssize_t>(r.size())) return 1;
  // Exit without the orderly teardown: the measurement ends when the response is read.
  std::fflush(nullptr);
  _exit(0);
}
