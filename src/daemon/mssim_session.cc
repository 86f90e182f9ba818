#include "daemon/mssim_session.h"

#include "base/log_limit.h"
#include "wire/mssim.h"
#include "wire/tpm_header.h"

namespace vtpm::daemon {

using wire::MssimCmd;

namespace {
// Hash data beyond this in one signal is refused (H-CRTM data is a few KiB of firmware).
constexpr uint32_t kMaxHashData = 1024 * 1024;

// What only the platform's hardware does: refused on a locked endpoint.
bool HardwareOnly(MssimCmd cmd) {
  switch (cmd) {
    case MssimCmd::kSignalPowerOff:
    case MssimCmd::kSignalReset:
    case MssimCmd::kSignalRestart:
    case MssimCmd::kStop:
    case MssimCmd::kSignalHashStart:
    case MssimCmd::kSignalHashData:
    case MssimCmd::kSignalHashEnd:
    case MssimCmd::kSignalPhysPresOn:
    case MssimCmd::kSignalPhysPresOff:
    case MssimCmd::kSignalNvOff:
      return true;
    default:
      return false;
  }
}
}  // namespace

MssimSession::MssimSession(TpmService* service, bool locked) : service_(service), locked_(locked) {}

bool MssimSession::Refuse(uint32_t code, Bytes& out) {
  if (!locked_ || !HardwareOnly(static_cast<MssimCmd>(code))) return false;
  if (ShouldLogOccurrence(++refused_)) {
    service_->log()->warn(
        "mssim: {} refused: this endpoint is locked (--mssim ...,locked); {} refused on this "
        "connection",
        wire::MssimCmdName(code), refused_);
  }
  AppendBe32(out, kRefused);
  return true;
}

void MssimSession::PowerOff() {
  // Pulling the plug: no orderly TPM2_Shutdown (simulator semantics; clients test with it).
  engine::Engine& eng = service_->engine();
  eng.set_auto_shutdown(false);
  eng.Stop();
  eng.set_auto_shutdown(true);
}

size_t MssimSession::ProcessOne(std::span<uint8_t> avail, Bytes& out) {
  if (avail.size() < 4) return 0;
  const uint32_t code = LoadBe32(avail.data());
  switch (static_cast<MssimCmd>(code)) {
    case MssimCmd::kSendCommand:
      return SendCommand(avail, out);
    case MssimCmd::kSignalHashData:
      return HashData(avail, out);
    case MssimCmd::kRemoteHandshake:
      if (avail.size() < 8) return 0;
      AppendBe32(out, wire::kMssimServerVersion);
      AppendBe32(out, wire::kMssimEndpointPlatformAvailable | wire::kMssimEndpointSupportsPp);
      AppendBe32(out, 0);
      return 8;
    default:
      if (!Signal(code, out)) {
        service_->log()->warn("mssim: unsupported command {} ({}); closing the connection", code,
                              wire::MssimCmdName(code));
        RequestClose();
        return 0;
      }
      service_->log()->debug("mssim: {}", wire::MssimCmdName(code));
      return 4;
  }
}

size_t MssimSession::SendCommand(std::span<uint8_t> avail, Bytes& out) {
  auto frame = wire::ParseSendCommand(avail, service_->engine().buffer_size());
  if (!frame) {
    service_->log()->warn("mssim: {}; closing the connection", frame.error().message);
    RequestClose();
    return 0;
  }
  if (!*frame) return 0;
  if (locked_ && (*frame)->locality >= 4) {  // locality 4 is the H-CRTM's, never software's
    if (ShouldLogOccurrence(++refused_)) {
      service_->log()->warn("mssim: a command at locality {} refused: this endpoint is locked",
                            (*frame)->locality);
    }
    wire::AppendSendCommandResponse(out, wire::LocalityErrorResponse(service_->engine().tpm2()));
    return (*frame)->consumed;
  }
  ByteSpan resp = service_->Execute(
      avail.subspan(wire::kMssimSendCommandPrefix, (*frame)->command.size()), (*frame)->locality);
  wire::AppendSendCommandResponse(out, resp);
  return (*frame)->consumed;
}

size_t MssimSession::HashData(std::span<uint8_t> avail, Bytes& out) {
  if (avail.size() < 8) return 0;
  const uint32_t size = LoadBe32(avail.data() + 4);
  if (size > kMaxHashData) {
    service_->log()->warn("mssim: hash data of {} bytes refused; closing the connection", size);
    RequestClose();
    return 0;
  }
  if (avail.size() - 8 < size) return 0;
  if (Refuse(static_cast<uint32_t>(MssimCmd::kSignalHashData), out)) return 8 + size_t{size};
  if (auto st = service_->engine().HashData(avail.subspan(8, size)); !st) {
    service_->log()->warn("mssim: {}", st.error().message);
  }
  AppendBe32(out, 0);
  return 8 + size_t{size};
}

bool MssimSession::Signal(uint32_t code, Bytes& out) {
  engine::Engine& eng = service_->engine();
  auto& log = service_->log();
  auto warn = [&](const Status& st) {
    if (!st) log->warn("mssim: {}", st.error().message);
  };
  if (Refuse(code, out)) return true;
  switch (static_cast<MssimCmd>(code)) {
    case MssimCmd::kSignalPowerOn:
      if (!eng.running()) warn(service_->Start(false));
      break;
    case MssimCmd::kSignalPowerOff:
      PowerOff();
      break;
    case MssimCmd::kSignalReset:
    case MssimCmd::kSignalRestart:
      PowerOff();
      warn(service_->Start(false));
      break;
    case MssimCmd::kSignalHashStart:
      warn(eng.HashStart());
      break;
    case MssimCmd::kSignalHashEnd:
      warn(eng.HashEnd());
      break;
    case MssimCmd::kSignalCancelOn:
      eng.Cancel();
      break;
    case MssimCmd::kSignalCancelOff:
    case MssimCmd::kSignalNvOn:
    case MssimCmd::kSignalNvOff:
    case MssimCmd::kSignalPhysPresOn:
    case MssimCmd::kSignalPhysPresOff:
    case MssimCmd::kSignalKeyCacheOn:
    case MssimCmd::kSignalKeyCacheOff:
      break;
    case MssimCmd::kSessionEnd:
      RequestClose();  // no acknowledgement
      return true;
    case MssimCmd::kStop:
      RequestClose();
      eng.Stop();
      if (service_->hooks()) service_->hooks()->RequestExit();
      return true;
    default:
      return false;  // SET_ALTERNATIVE_RESULT, GET_COMMAND_RESPONSE_SIZES, TEST_FAILURE_MODE, ...
  }
  AppendBe32(out, 0);  // acknowledged
  return true;
}

}  // namespace vtpm::daemon
