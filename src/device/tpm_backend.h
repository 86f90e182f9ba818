// TpmBackend: how a device model reaches the TPM. The device never sees the engine, a socket or
// a thread; it only submits work and is told when a command completed.
//
// Contract (every implementation, including test fakes):
//  - Submit() returns at once; the command runs elsewhere. |done| is called exactly once with a
//    well-formed TPM response (>= 10 bytes, header size == length). A transport or engine failure
//    becomes a TPM_RC_FAILURE response (TPM 1.2: TPM_FAIL), never silence. |done| may run on any
//    thread, including inline inside Submit() (fakes); devices therefore call Submit() without
//    holding their own lock.
//  - Operations (Submit, Hash*, ResetEstablished) execute in the order they were issued.
//  - Cancel() asks the TPM to abandon the command now executing, if any; the command still
//    completes (typically with TPM_RC_CANCELED). Never blocks.
//  - TpmEstablished() returns a cached value and never blocks.
//  - Calls may come from any thread; implementations serialise internally.
#pragma once

#include <cstdint>
#include <functional>

#include "base/bytes.h"

namespace vtpm::device {

class TpmBackend {
 public:
  using Completion = std::function<void(Bytes response)>;
  virtual ~TpmBackend() = default;

  virtual void Submit(uint8_t locality, Bytes command, Completion done) = 0;
  virtual void Cancel() = 0;

  // The TPM's tpmEstablished flag (TIS ACCESS bit 0 / CRB LOC_STATE bit 0 read its inverse).
  virtual bool TpmEstablished() = 0;
  // TPM_ACCESS/TPM_LOC_CTRL resetEstablishment from |locality| (the TPM honours 3 and 4).
  virtual void ResetEstablished(uint8_t locality) = 0;

  // The locality-4 H-CRTM/DRTM sequence (_TPM_Hash_Start/_Data/_End), fire and forget; failures
  // are logged by the backend (there is no guest-visible status for them).
  virtual void HashStart() = 0;
  virtual void HashData(Bytes data) = 0;
  virtual void HashEnd() = 0;

  // Largest command or response the TPM handles (libtpms' buffer size; 4096 by default).
  virtual uint32_t BufferSize() const = 0;
};

}  // namespace vtpm::device
