#include "device/tis_state.h"

#include "device/state_codec.h"

namespace vtpm::device {

namespace {

constexpr uint32_t kIntEnableBits =
    tis::kIntGlobalEnable | tis::kIntPolarityMask | tis::kIntSupported;

}  // namespace

Bytes EncodeTisState(const TisState& s) {
  const TisRegisters& r = s.regs;
  ByteWriter w;
  w.U8(static_cast<uint8_t>(s.family));
  w.U8(r.active);
  w.U8(r.owner);
  w.U8(static_cast<uint8_t>(r.state));
  w.U8(r.selftest_done);
  w.U8(r.intf_sel_lock);
  w.U8(s.irq_level);
  for (const TisLocalityState& l : r.localities) {
    w.U8(PackFlags(l.request_use, l.been_seized));
    w.U32(l.int_enable);
    w.U32(l.int_status);
  }
  w.U32(r.last_command_code);
  AppendSized(w, r.command);
  AppendSized(w, r.response);
  w.U32(r.response_pos);
  return std::move(w).Take();
}

Result<TisState> DecodeTisState(ByteSpan payload) {
  StateReader in("TIS device state", payload);
  TisState s;
  TisRegisters& r = s.regs;
  s.family = static_cast<TpmFamily>(in.U8Max("family", static_cast<uint8_t>(TpmFamily::kTpm20)));
  r.active = in.Locality("active locality", kNumLocalities);
  r.owner = in.Locality("command state owner", kNumLocalities);
  r.state = static_cast<TisCommandState>(
      in.U8Max("command state", static_cast<uint8_t>(TisCommandState::kCompletion)));
  in.Check(r.state != TisCommandState::kExecution,
           "command state is Execution (a device is saved between commands)");
  r.selftest_done = in.Flag("selfTestDone");
  r.intf_sel_lock = in.Flag("interface selector lock");
  s.irq_level = in.Flag("interrupt level");
  for (TisLocalityState& l : r.localities) {
    const uint8_t flags = in.Bits8("locality flags", PackFlags(true, true));
    l.request_use = (flags & 1) != 0;
    l.been_seized = (flags & 2) != 0;
    l.int_enable = in.Bits32("INT_ENABLE", kIntEnableBits);
    l.int_status = in.Bits32("INT_STATUS", tis::kIntSupported);
  }
  r.last_command_code = in.U32("last command code");
  r.command = in.Sized("command", kTisMaxBuffer);
  r.response = in.Sized("response", kTisMaxBuffer);
  r.response_pos = in.U32Max("response position", static_cast<uint32_t>(r.response.size()));
  VTPM_RETURN_IF_ERROR(in.Finish());
  return s;
}

}  // namespace vtpm::device
