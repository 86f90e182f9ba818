// MssimSession: the MS TPM 2.0 simulator protocol (wire/mssim.h) on its command or platform port.
// Both ports accept every signal; the command port is where TPM_SEND_COMMAND normally goes.
//
// |locked| (--mssim ...,locked): the signals only hardware sends -- POWER_OFF, RESET, RESTART,
// TPM_STOP, the H-CRTM/DRTM hash sequence, physical presence, NV_OFF -- and commands at
// locality 4 are refused (answered, not executed; the connection stays), so a local client
// cannot zero the PCRs or stop the TPM. What tpm2-tss' mssim TCTI sends at every connect
// (POWER_ON, NV_ON) and at the end (SESSION_END) still works. docs/PROTOCOLS.md §4.
#pragma once

#include "daemon/session.h"
#include "daemon/tpm_service.h"

namespace vtpm::daemon {

class MssimSession final : public FramedSession {
 public:
  explicit MssimSession(TpmService* service, bool locked = false);

  // The reply to a refused signal (what tpm2-tss reports as "Platform command failed").
  static constexpr uint32_t kRefused = 1;

 private:
  size_t ProcessOne(std::span<uint8_t> avail, Bytes& out) override;
  size_t SendCommand(std::span<uint8_t> avail, Bytes& out);
  size_t HashData(std::span<uint8_t> avail, Bytes& out);
  // A platform signal (power, reset, hash, cancel, NV, ...): acknowledged in |out| (except
  // SESSION_END and STOP); false for codes not supported.
  bool Signal(uint32_t code, Bytes& out);
  void PowerOff();
  // |locked|: refuses |code| (logged, rate-limited) and answers kRefused.
  bool Refuse(uint32_t code, Bytes& out);

  TpmService* service_;
  bool locked_;
  uint64_t refused_ = 0;
};

}  // namespace vtpm::daemon
