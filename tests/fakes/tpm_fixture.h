// A real engine over a real DirStore in a fresh temporary directory, for tests of the layers
// above the engine. One per process at a time (libtpms is process-global).
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <string>

#include "base/bytes.h"
#include "base/log.h"
#include "engine/engine.h"
#include "state/dir_store.h"

namespace vtpm::testing {

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "vtpm-test-XXXXXX").string();
    char* p = mkdtemp(tmpl.data());
    if (p == nullptr) std::abort();
    path_ = p;
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

inline Bytes Hex(std::string_view hex) {
  auto b = FromHex(hex);
  if (!b) std::abort();
  return *b;
}

struct TpmFixture {
  explicit TpmFixture(engine::TpmVersion version = engine::TpmVersion::kTpm20,
                      bool auto_shutdown = true) {
    Open(version, auto_shutdown);
  }
  // |use_previous_on_damage|: the store's consent to older state (`--tpmstate ...,backup`).
  void Open(engine::TpmVersion version, bool auto_shutdown, bool use_previous_on_damage = false) {
    eng.reset();
    store.reset();
    state::DirStoreOptions so;
    so.directory = dir.path();
    so.tpm_version = version;
    so.fsync = false;
    so.use_previous_on_damage = use_previous_on_damage;
    auto s = state::DirStore::Open(so, log);
    if (!s) std::abort();
    store = std::move(*s);
    engine::EngineOptions eo;
    eo.version = version;
    eo.auto_shutdown = auto_shutdown;
    auto e = engine::Engine::Create(eo, store.get(), log);
    if (!e) std::abort();
    eng = std::move(*e);
  }
  // Runs |cmd| and returns the response bytes.
  Bytes Run(const Bytes& cmd) {
    Bytes copy = cmd;
    ByteSpan r = eng->Process(copy);
    return Bytes(r.begin(), r.end());
  }

  TempDir dir;
  Logger log = NullLogger();
  std::unique_ptr<state::DirStore> store;
  std::unique_ptr<engine::Engine> eng;
};

}  // namespace vtpm::testing
