// Transport: how a command reaches a TPM (an in-process Engine, a socket, a test fake).
#pragma once

#include "base/bytes.h"
#include "base/result.h"

namespace vtpm::tpmcmd {

class Transport {
 public:
  virtual ~Transport() = default;
  // Sends one complete command and returns the complete response. A TPM error code is not a
  // transport failure: it comes back inside the response.
  virtual Result<Bytes> Transmit(ByteSpan command) = 0;
};

}  // namespace vtpm::tpmcmd
