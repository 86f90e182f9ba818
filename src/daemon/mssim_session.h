// MssimSession: the MS TPM 2.0 simulator protocol (wire/mssim.h) on its command or platform port.
// Both ports accept every signal; the command port is where TPM_SEND_COMMAND normally goes.
#pragma once

#include "daemon/session.h"
#include "daemon/tpm_service.h"

namespace vtpm::daemon {

class MssimSession final : public FramedSession {
 public:
  explicit MssimSession(TpmService* service);

 private:
  size_t ProcessOne(std::span<uint8_t> avail, Bytes& out) override;
  size_t SendCommand(std::span<uint8_t> avail, Bytes& out);
  size_t HashData(std::span<uint8_t> avail, Bytes& out);
  // A platform signal (power, reset, hash, cancel, NV, ...): acknowledged in |out| (except
  // SESSION_END and STOP); false for codes not supported.
  bool Signal(uint32_t code, Bytes& out);
  void PowerOff();

  TpmService* service_;
};

}  // namespace vtpm::daemon
