#include "device/crb_state.h"

#include "device/state_codec.h"

namespace vtpm::device {

Bytes EncodeCrbState(const CrbState& s) {
  const CrbRegisters& r = s.regs;
  ByteWriter w;
  w.U8(s.locality_count);
  w.U8(r.active);
  w.U8(PackFlags(r.idle, r.fatal));
  w.U32(r.cancel);
  w.U32(r.int_enable);
  w.U32(r.int_status);
  for (const CrbLocalityState& l : r.localities) w.U8(PackFlags(l.pending, l.been_seized));
  AppendSized(w, r.buffer);
  return std::move(w).Take();
}

Result<CrbState> DecodeCrbState(ByteSpan payload) {
  StateReader in("CRB device state", payload);
  CrbState s;
  CrbRegisters& r = s.regs;
  s.locality_count = in.U8Max("locality count", kNumLocalities);
  in.Check(s.locality_count == 1 || s.locality_count == kNumLocalities,
           "locality count is not 1 or 5");
  r.active = in.Locality("active locality", s.locality_count);
  const uint8_t flags = in.Bits8("CTRL_STS flags", PackFlags(true, true));
  r.idle = (flags & 1) != 0;
  r.fatal = (flags & 2) != 0;
  r.cancel = in.U32Max("CTRL_CANCEL", crb::kCancelInvoke);
  r.int_enable = in.Bits32("INT_ENABLE", crb::kIntGlobalEnable | crb::kIntSupported);
  r.int_status = in.Bits32("INT_STS", crb::kIntSupported);
  for (size_t i = 0; i < r.localities.size(); ++i) {
    const uint8_t f = in.Bits8("locality flags", PackFlags(true, true));
    in.Check(f == 0 || i < s.locality_count, "a locality the device does not have has flags set");
    r.localities[i] = {.pending = (f & 1) != 0, .been_seized = (f & 2) != 0};
  }
  r.buffer = in.Sized("data buffer", crb::kDataBufferSize);
  in.Check(r.buffer.empty() || r.buffer.size() == crb::kDataBufferSize,
           "data buffer is neither absent nor whole");
  VTPM_RETURN_IF_ERROR(in.Finish());
  return s;
}

}  // namespace vtpm::device
