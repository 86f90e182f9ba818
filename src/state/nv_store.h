// NvStore: where the engine keeps libtpms' named state blobs.
//
// libtpms asks for three blobs by name through its NVRAM callbacks: "permall" (permanent state:
// seeds, NV indices, persistent objects), "volatilestate" (written only on request, for suspend
// and migration) and "savestate" (TPM 1.2 only). An NvStore maps those names to storage.
// The blobs given to and returned from an NvStore are libtpms' own bytes; the store decides how
// they are framed on disk (the directory store uses swtpm's blob header + TLV format).
#pragma once

#include <optional>
#include <string_view>

#include "base/bytes.h"
#include "base/result.h"

namespace vtpm::state {

class NvStore {
 public:
  virtual ~NvStore() = default;

  // Takes exclusive use of the state (e.g. an fcntl lock), so two daemons never share it.
  // Idempotent. Fails with Errc::kBusy when another process holds it.
  virtual Status Lock() = 0;
  virtual void Unlock() = 0;

  // The blob |name|, std::nullopt if it does not exist, an Error if it exists but cannot be read.
  virtual Result<std::optional<Bytes>> Load(std::string_view name) = 0;
  // Stores |data| as |name| durably (on return it survives a crash or power loss).
  virtual Status Store(std::string_view name, ByteSpan data) = 0;
  // Deletes |name|; absent is an error only when |must_exist|.
  virtual Status Delete(std::string_view name, bool must_exist) = 0;

  // After the engine could not start from the newest generation of the blobs: switch Load() to
  // the previous generation (logging a warning). Returns false when there is none to fall back to.
  virtual bool FallBackToPreviousGeneration() = 0;
};

}  // namespace vtpm::state
