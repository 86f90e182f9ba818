#include "daemon/data_session.h"

#include "wire/mssim.h"
#include "wire/tpm_header.h"

namespace vtpm::daemon {

namespace {
constexpr size_t kMssimPrefix = wire::kMssimSendCommandPrefix;

}  // namespace

DataSession::DataSession(TpmService* service) : service_(service) {}

size_t DataSession::max_message() const { return service_->engine().buffer_size() + kMssimPrefix; }

size_t DataSession::ProcessOne(std::span<uint8_t> avail, Bytes& out) {
  const bool tpm2 = service_->engine().tpm2();
  const size_t max = max_message();
  auto refuse = [&](const char* why) {
    service_->log()->warn("data: {}; closing the connection", why);
    Bytes err = tpm2 ? wire::ErrorResponse(tpm::kStNoSessions, tpm::kRcCommandSize)
                     : wire::ErrorResponse(tpm::kTpm12TagRspCommand, tpm::kTpm12BadParamSize);
    out.insert(out.end(), err.begin(), err.end());
    RequestClose();
    return size_t{0};
  };
  if (avail.size() < 2) return 0;
  uint16_t tag = LoadBe16(avail.data());
  // A TPM 1.2 command tag goes to the TPM like any command (libtpms answers it with a TPM 2
  // error, as swtpm does): OVMF probes a TIS TPM with TPM_ORD_GetTicks before it tries TPM 2.
  if (tpm2 && !wire::IsCommandTag(tag)) {
    auto frame = wire::ParseSendCommand(avail, max - kMssimPrefix);
    if (!frame) return refuse(frame.error().message.c_str());
    if (!*frame) return 0;
    ByteSpan resp = service_->Execute(avail.subspan(kMssimPrefix, (*frame)->command.size()),
                                      (*frame)->locality);
    wire::AppendSendCommandResponse(out, resp);
    return (*frame)->consumed;
  }
  if (avail.size() < wire::kTpmHeaderSize) return 0;
  uint32_t size = LoadBe32(avail.data() + 2);
  if (!wire::IsCommandTag(tag)) return refuse("not a TPM command tag");
  if (size < wire::kTpmHeaderSize || size > max) return refuse("command size out of range");
  if (avail.size() < size) return 0;
  ByteSpan resp = service_->Execute(avail.subspan(0, size));
  out.insert(out.end(), resp.begin(), resp.end());
  return size;
}

}  // namespace vtpm::daemon
