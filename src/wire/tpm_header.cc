#include "wire/tpm_header.h"

namespace vtpm::wire {

std::optional<TpmHeader> ParseHeader(ByteSpan b) {
  if (b.size() < kTpmHeaderSize) return std::nullopt;
  return TpmHeader{LoadBe16(b.data()), LoadBe32(b.data() + 2), LoadBe32(b.data() + 6)};
}

bool IsCommandTag(uint16_t tag) {
  return tag == kTpmStNoSessions || tag == kTpmStSessions ||
         (tag >= kTpm12TagRquCommand && tag <= kTpm12TagRquAuth2Command);
}

uint32_t ResponseCode(ByteSpan response) {
  auto h = ParseHeader(response);
  return h ? h->code : kTpmRcFailure;
}

Bytes ErrorResponse(uint16_t tag, uint32_t rc) {
  ByteWriter w;
  w.U16(tag);
  w.U32(kTpmHeaderSize);
  w.U32(rc);
  return std::move(w).Take();
}

Bytes LocalityErrorResponse(bool tpm2) {
  return tpm2 ? ErrorResponse(kTpmStNoSessions, kTpmRcLocality)
              : ErrorResponse(kTpm12TagRspCommand, kTpm12BadLocality);
}

Bytes NotRunningResponse(bool tpm2) {
  return tpm2 ? ErrorResponse(kTpmStNoSessions, kTpmRcFailure)
              : ErrorResponse(kTpm12TagRspCommand, kTpm12Fail);
}

namespace {
Bytes U16ArgCommand(uint16_t tag, uint32_t code, uint16_t arg) {
  ByteWriter w;
  w.U16(tag);
  w.U32(12);
  w.U32(code);
  w.U16(arg);
  return std::move(w).Take();
}
}  // namespace

Bytes Tpm2StartupCommand(uint16_t startup_type) {
  return U16ArgCommand(kTpmStNoSessions, kTpmCcStartup, startup_type);
}
Bytes Tpm2ShutdownCommand(uint16_t shutdown_type) {
  return U16ArgCommand(kTpmStNoSessions, kTpmCcShutdown, shutdown_type);
}
Bytes Tpm12StartupCommand(uint16_t startup_type) {
  return U16ArgCommand(kTpm12TagRquCommand, kTpm12Startup, startup_type);
}

}  // namespace vtpm::wire
