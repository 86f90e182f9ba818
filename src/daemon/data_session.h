// DataSession: the TPM command channel (swtpm --server, CMD_SET_DATAFD, or the MS-simulator
// command port's TPM_SEND_COMMAND framing when used on swtpm's data channel).
//
// Unlike swtpm, which takes one read() as one command, commands are reassembled by the size in
// their header, so a client may split or batch its writes. A TPM 2 command whose first two bytes
// are not a TPM 2 or TPM 1.2 command tag is taken to carry the MS-simulator prefix
// {u32 TPM_SEND_COMMAND, u8 locality, u32 size} and is answered {u32 size, response, u32 0}
// (swtpm's "tpm-send-command-header" feature).
#pragma once

#include "daemon/session.h"
#include "daemon/tpm_service.h"

namespace vtpm::daemon {

class DataSession final : public FramedSession {
 public:
  explicit DataSession(TpmService* service);

  // The largest command accepted: the engine's buffer size plus the MS-simulator prefix.
  size_t max_message() const;

 private:
  size_t ProcessOne(std::span<uint8_t> avail, Bytes& out) override;

  TpmService* service_;
};

}  // namespace vtpm::daemon
