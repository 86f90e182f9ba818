// TpmService: the TPM as the daemon's protocols see it. Owns the semantics shared by the swtpm
// control channel, the data channel and the MS-simulator ports: start/stop with the configured
// startup type, the storage lock hand-off for migration, locality, "not running" replies.
// Single-threaded: called only from the event loop thread.
#pragma once

#include <cstdint>
#include <functional>

#include "base/log.h"
#include "base/unique_fd.h"
#include "engine/engine.h"
#include "state/nv_store.h"
#include "state/state_key.h"

namespace vtpm::daemon {

// What the daemon sends itself after the TPM starts (swtpm --flags startup-*).
enum class StartupType { kNone, kClear, kState, kDeactivated };

// Actions only the server can take, requested by sessions.
class ServerHooks {
 public:
  virtual ~ServerHooks() = default;
  // CMD_SET_DATAFD: make |fd| the data connection. False if one exists already.
  virtual bool AdoptDataFd(UniqueFd fd) = 0;
  // CMD_SHUTDOWN, TPM_STOP: leave the event loop (the TPM has been stopped).
  virtual void RequestExit() = 0;
};

struct ServiceOptions {
  StartupType startup = StartupType::kNone;
  // swtpm --locality allow-set-locality: the vendor command TPM2_CC_SET_LOCALITY (0x20001000).
  bool allow_set_locality = false;
  // --key: the state key (the store encrypts with it; GET_STATEBLOB hands out blobs encrypted
  // with it unless the caller asks for them decrypted). --migration-key: the key of the blobs
  // GET_STATEBLOB hands out and SET_STATEBLOB takes. Null: none (GET_CONFIG says which).
  state::SharedStateKey state_key;
  state::SharedStateKey migration_key;
};

class TpmService {
 public:
  // Neither pointer is owned; both must outlive the service.
  TpmService(engine::Engine* engine, state::NvStore* store, ServiceOptions options, Logger log);

  engine::Engine& engine() { return *engine_; }
  state::NvStore& store() { return *store_; }
  Logger& log() { return log_; }
  ServerHooks* hooks() { return hooks_; }
  const ServiceOptions& options() const { return options_; }
  void set_hooks(ServerHooks* hooks) { hooks_ = hooks; }

  // Starts the TPM. With |send_startup| (only the daemon's own start at launch, like swtpm; not
  // CMD_INIT, which is followed by the guest firmware's TPM2_Startup) it then sends the
  // configured startup command.
  Status Start(bool delete_volatile, bool send_startup = false);
  // Runs one TPM command at |locality| (nullopt: the current one). Always returns a response.
  ByteSpan Execute(std::span<uint8_t> command, std::optional<uint8_t> locality = std::nullopt);

  // After the outgoing side of a migration fetched the last state blob, the storage lock is
  // released so the destination can take it (shared storage); it is taken again before the
  // TPM is used or on CMD_LOCK_STORAGE.
  void ReleaseLockForMigration();
  Status Relock(uint32_t retries);

 private:
  engine::Engine* engine_;
  state::NvStore* store_;
  ServiceOptions options_;
  Logger log_;
  ServerHooks* hooks_ = nullptr;
  bool relock_needed_ = false;
  Bytes scratch_;
};

}  // namespace vtpm::daemon
