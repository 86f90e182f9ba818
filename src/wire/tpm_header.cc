#include "wire/tpm_header.h"

namespace vtpm::wire {

std::optional<TpmHeader> ParseHeader(ByteSpan b) {
  if (b.size() < kTpmHeaderSize) return std::nullopt;
  return TpmHeader{LoadBe16(b.data()), LoadBe32(b.data() + 2), LoadBe32(b.data() + 6)};
}

bool IsCommandTag(uint16_t tag) {
  return tag == tpm::kStNoSessions || tag == tpm::kStSessions ||
         (tag >= tpm::kTpm12TagRquCommand && tag <= tpm::kTpm12TagRquAuth2Command);
}

uint32_t ResponseCode(ByteSpan response) {
  auto h = ParseHeader(response);
  return h ? h->code : tpm::kRcFailure;
}

Bytes ErrorResponse(uint16_t tag, uint32_t rc) {
  ByteWriter w;
  w.U16(tag);
  w.U32(kTpmHeaderSize);
  w.U32(rc);
  return std::move(w).Take();
}

Bytes LocalityErrorResponse(bool tpm2) {
  return tpm2 ? ErrorResponse(tpm::kStNoSessions, tpm::kRcLocality)
              : ErrorResponse(tpm::kTpm12TagRspCommand, tpm::kTpm12BadLocality);
}

Bytes NotRunningResponse(bool tpm2) {
  return tpm2 ? ErrorResponse(tpm::kStNoSessions, tpm::kRcFailure)
              : ErrorResponse(tpm::kTpm12TagRspCommand, tpm::kTpm12Fail);
}

}  // namespace vtpm::wire
