// Engine: the TPM itself, libtpms behind our own interface.
//
// libtpms is process-global (one TPM per process; its callbacks carry no context pointer), so
// exactly one Engine may exist in a process at a time: Create() fails with Errc::kAlreadyExists
// while another lives. All libtpms calls live in libtpms_engine.cc, the one file with mutable
// globals. An Engine is not thread-safe: call it from one thread, except Cancel().
//
// Lifecycle (mirrors swtpm's control channel): Create() -> Start() (CMD_INIT / power on) ->
// Process()... -> Stop() (CMD_STOP) -> Start() ... ; the destructor Stop()s.
// Stop() first sends TPM2_Shutdown(SU_STATE), falling back to SU_CLEAR, unless the last command
// already was a TPM2_Shutdown or auto-shutdown is disabled: abrupt resets otherwise count as
// dictionary-attack events and drive guests into lockout (TPM_RC_LOCKOUT, 0x921).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "base/bytes.h"
#include "base/log.h"
#include "base/result.h"
#include "state/nv_store.h"
#include "wire/tpm_header.h"

namespace vtpm::engine {

using TpmVersion = wire::TpmVersion;

// libtpms' state blob types (TPMLIB_StateType values).
enum class StateType : uint32_t { kPermanent = 1, kVolatile = 2, kSaveState = 4 };
// The libtpms NVRAM name of a blob type: "permall", "volatilestate", "savestate".
std::string_view StateName(StateType type);

struct BufferSizes {
  uint32_t current;
  uint32_t min;
  uint32_t max;
};

struct EngineOptions {
  TpmVersion version = TpmVersion::kTpm20;
  bool auto_shutdown = true;
  // Localities 0-4 are valid; with reject_locality_4, 4 is refused (swtpm --locality
  // reject-locality-4).
  bool reject_locality_4 = false;
};

class Engine {
 public:
  // |store| must outlive the Engine (not owned).
  static Result<std::unique_ptr<Engine>> Create(const EngineOptions& options, state::NvStore* store,
                                                Logger log);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  TpmVersion version() const;
  bool tpm2() const { return version() == TpmVersion::kTpm20; }
  bool running() const;

  // Locks the store and initialises the TPM from it (TPMLIB_MainInit), or from the blobs given
  // to SetState() since the last start; a given permanent state is stored (replacing the stored
  // one) only after the TPM started from it. If the newest stored permanent state cannot be
  // loaded, retries once with the store's previous generation when the store allows it
  // (NvStore::FallBackToPreviousGeneration; a DirStore only with the user's consent).
  // |delete_volatile| removes the stored volatile state after it was read (PTM_INIT_FLAG).
  // On failure the Error's tpm_rc carries libtpms' result (e.g. 0x101 in failure mode).
  Status Start(bool delete_volatile);
  // Orderly shutdown (see above), then TPMLIB_Terminate. No-op when not running.
  void Stop();

  // Executes one command at the current locality. Never fails: before Start() it answers the
  // 10-byte fatal error; a malformed command gets the TPM's own error. libtpms decrypts
  // parameters in place, so |command| may be modified. The returned bytes stay valid until the
  // next call into the Engine.
  ByteSpan Process(std::span<uint8_t> command);

  // Locality used for the following commands (the getlocality callback).
  Status SetLocality(uint8_t locality);
  uint8_t locality() const;

  // Requests cancellation of a running command (TPMLIB_CancelCommand). Thread-safe.
  void Cancel();

  // H-CRTM "locality 4 hash" sequence (TPM_IO_Hash_Start/Data/End). Require running.
  Status HashStart();
  Status HashData(ByteSpan data);
  Status HashEnd();

  Result<bool> GetEstablished();
  // Resets tpmEstablished as if from |locality| (only 3 and 4 may).
  Status ResetEstablished(uint8_t locality);

  // The raw libtpms blob: from the running TPM, or (stopped) from the store.
  Result<Bytes> GetState(StateType type);
  // Provides a blob for the next Start() (stopped only), e.g. from CMD_SET_STATEBLOB. libtpms
  // checks it first; a refused blob is an Errc::kTpm error with libtpms' code in tpm_rc (what
  // swtpm answers, e.g. 0x1e TPM_RC_BAD_TAG for random bytes) and changes nothing, neither the
  // blobs given before nor the store. An accepted blob is held in memory until Start() (as
  // swtpm does): the store changes only once the TPM started from it. An empty |blob| hides the
  // stored one.
  Status SetState(StateType type, ByteSpan blob);
  // Writes the volatile state to the store (CMD_STORE_VOLATILE).
  Status StoreVolatile();

  // TPMLIB_SetBufferSize: |wanted| 0 queries. Setting requires a stopped TPM.
  Result<BufferSizes> SetBufferSize(uint32_t wanted);
  uint32_t buffer_size() const;
  // TPMLIB_GetInfo JSON (flags: TPMLIB_INFO_*).
  Result<std::string> GetInfo(uint64_t flags);

  void set_auto_shutdown(bool on);

  class Impl;

 private:
  explicit Engine(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace vtpm::engine
