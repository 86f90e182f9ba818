// libFuzzer target for the command-line option parsers that take swtpm's "key=value,..." syntax
// (--tpmstate, --ctrl, --server, --flags, --log, --pid, --locality, --mssim, --seccomp, --key): never
// crash, and whatever --tpmstate accepts has a directory.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "daemon/config.h"
#include "sandbox/sandbox.h"
#include "state/state_key.h"
#include "state/tpmstate.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view s(reinterpret_cast<const char*>(data), size);
  vtpm::daemon::DaemonConfig cfg;
  (void)vtpm::daemon::ParseTpmState(s, cfg);
  (void)vtpm::daemon::ParseCtrl(s, cfg);
  (void)vtpm::daemon::ParseServer(s, cfg);
  (void)vtpm::daemon::ParseFlags(s, cfg);
  (void)vtpm::daemon::ParseLog(s, cfg);
  (void)vtpm::daemon::ParsePid(s, cfg);
  (void)vtpm::daemon::ParseLocality(s, cfg);
  (void)vtpm::daemon::ParseMssim(s, cfg);
  (void)vtpm::daemon::Validate(cfg);
  (void)vtpm::sandbox::ParseSeccompOption(s);
  // --key / --migration-key: parsed only (loading would open files and fds named by the input).
  if (auto k = vtpm::state::ParseKeyOption(s, "--key")) {
    if (k->path.has_value() == k->fd.has_value()) std::abort();  // exactly one source
  }
  for (bool plain : {false, true}) {
    auto o = vtpm::state::ParseTpmState(s, plain);
    if (o && o->directory.empty()) std::abort();
  }
  return 0;
}
