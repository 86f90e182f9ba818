// CtrlSession: the swtpm control channel (see wire/swtpm_ctrl.h for the protocol and its traps).
#pragma once

#include "daemon/session.h"
#include "daemon/tpm_service.h"

namespace vtpm::daemon {

class CtrlSession final : public Session {
 public:
  // |service| is not owned. |fd_passing|: the transport can carry SCM_RIGHTS (UNIX sockets).
  CtrlSession(TpmService* service, bool fd_passing);

  void OnChunk(std::span<uint8_t> chunk, Bytes& out) override;
  void OnFd(UniqueFd fd) override { passed_fd_ = std::move(fd); }
  bool mid_message() const override { return phase_ != Phase::kIdle; }
  bool wants_close() const override { return close_; }

 private:
  enum class Phase { kIdle, kFixed, kPayload };

  // Runs the command in head_ (code + fixed body); |surplus| bytes followed it in the chunk.
  void Execute(size_t surplus, Bytes& out);
  void FinishPayload(Bytes& out);
  static void Res(Bytes& out, uint32_t res);

  TpmService* service_;
  bool fd_passing_;
  Phase phase_ = Phase::kIdle;
  Bytes head_;         // command code + fixed-size body, as it arrives
  uint32_t need_ = 0;  // bytes of head_ still missing, or payload bytes still missing
  uint32_t code_ = 0;
  Bytes payload_;               // SET_STATEBLOB's blob (bounded by kMaxStateBlobSize)
  uint32_t payload_error_ = 0;  // result to send once the payload has been consumed
  UniqueFd passed_fd_;
  bool close_ = false;
};

}  // namespace vtpm::daemon
