// MssimSession: the MS TPM 2.0 simulator protocol (wire/mssim.h) on its command or platform port.
// Both ports accept every signal; the command port is where TPM_SEND_COMMAND normally goes.
#pragma once

#include "daemon/session.h"
#include "daemon/tpm_service.h"

namespace vtpm::daemon {

class MssimSession final : public Session {
 public:
  explicit MssimSession(TpmService* service);

  void OnChunk(std::span<uint8_t> chunk, Bytes& out) override;
  bool mid_message() const override { return !in_.empty(); }
  bool wants_close() const override { return close_; }

 private:
  size_t ProcessOne(std::span<uint8_t> avail, Bytes& out);
  void PowerOff();

  TpmService* service_;
  Bytes in_;
  bool close_ = false;
};

}  // namespace vtpm::daemon
