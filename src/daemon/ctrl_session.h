// CtrlSession: the swtpm control channel (see wire/swtpm_ctrl.h for the protocol and its traps).
//
// Framing here, everything else typed: the session collects a command's code and fixed body
// (the size comes from the code), decodes it with wire::DecodeCtrlRequest, runs the command's
// handler, and encodes the handler's wire::CtrlResponse. HASH_DATA's payload is streamed into the
// TPM as it arrives (no buffering, whatever its length); SET_STATEBLOB's is collected (bounded by
// wire::kMaxStateBlobSize) and handled when complete.
#pragma once

#include "daemon/session.h"
#include "daemon/tpm_service.h"
#include "wire/swtpm_ctrl.h"

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

  // Consumes bytes of the code and fixed body; true when they are complete.
  bool TakeFixed(std::span<uint8_t> chunk, size_t& pos);
  // The code and fixed body are complete: decode, then run or start the payload.
  void OnFixedComplete(size_t surplus, Bytes& out);
  void StartPayload(const wire::CtrlRequest& req, Bytes& out);
  void TakePayload(ByteSpan part);
  void FinishPayload(Bytes& out);
  void Reply(const wire::CtrlResponse& response, Bytes& out);

  // One handler per command; each returns the response to encode.
  wire::CtrlResponse Handle(const wire::CtrlRequest& req, size_t surplus);
  wire::CtrlResponse GetCapability();
  wire::CtrlResponse Init(const wire::CtrlRequest& req, size_t surplus);
  wire::CtrlResponse Shutdown();
  wire::CtrlResponse GetTpmEstablished();
  wire::CtrlResponse SetLocality(uint8_t locality);
  wire::CtrlResponse ResetTpmEstablished(uint8_t locality);
  wire::CtrlResponse GetStateBlob(const wire::CtrlStateBlobBody& body);
  wire::CtrlResponse SetDatafd();
  wire::CtrlResponse SetBufferSize(uint32_t wanted);
  wire::CtrlResponse GetInfo(const wire::CtrlGetInfoBody& body);
  wire::CtrlResponse SetStateBlob(const wire::CtrlStateBlobBody& body);
  uint32_t ConfigFlags() const;

  TpmService* service_;
  bool fd_passing_;
  Phase phase_ = Phase::kIdle;
  Bytes head_;         // command code + fixed-size body, as it arrives
  uint32_t need_ = 0;  // bytes of head_ still missing, or payload bytes still missing
  uint32_t code_ = 0;
  wire::CtrlRequest request_;   // the decoded command whose payload is arriving
  Bytes payload_;               // SET_STATEBLOB's blob (bounded by kMaxStateBlobSize)
  uint32_t payload_error_ = 0;  // result to send once the payload has been consumed
  UniqueFd passed_fd_;
  bool close_ = false;
};

}  // namespace vtpm::daemon
