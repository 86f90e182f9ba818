#include "daemon/mssim_session.h"

#include "wire/mssim.h"
#include "wire/tpm_header.h"

namespace vtpm::daemon {

using wire::MssimCmd;

namespace {
// Hash data beyond this in one signal is refused (H-CRTM data is a few KiB of firmware).
constexpr uint32_t kMaxHashData = 1024 * 1024;
}  // namespace

MssimSession::MssimSession(TpmService* service) : service_(service) {}

void MssimSession::PowerOff() {
  // Pulling the plug: no orderly TPM2_Shutdown (simulator semantics; clients test with it).
  engine::Engine& eng = service_->engine();
  eng.set_auto_shutdown(false);
  eng.Stop();
  eng.set_auto_shutdown(true);
}

size_t MssimSession::ProcessOne(std::span<uint8_t> avail, Bytes& out) {
  if (avail.size() < 4) return 0;
  engine::Engine& eng = service_->engine();
  auto& log = service_->log();
  const uint32_t code = LoadBe32(avail.data());
  size_t used = 4;
  auto ack = [&] { AppendBe32(out, 0); };
  switch (static_cast<MssimCmd>(code)) {
    case MssimCmd::kSendCommand: {
      auto frame = wire::ParseSendCommand(avail, eng.buffer_size());
      if (!frame) {
        log->warn("mssim: {}; closing the connection", frame.error().message);
        RequestClose();
        return 0;
      }
      if (!*frame) return 0;
      ByteSpan resp =
          service_->Execute(std::span<uint8_t>(avail.data() + wire::kMssimSendCommandPrefix,
                                               (*frame)->command.size()),
                            (*frame)->locality);
      wire::AppendSendCommandResponse(out, resp);
      return (*frame)->consumed;
    }
    case MssimCmd::kSignalHashData: {
      if (avail.size() < 8) return 0;
      uint32_t size = LoadBe32(avail.data() + 4);
      if (size > kMaxHashData) {
        log->warn("mssim: hash data of {} bytes refused; closing the connection", size);
        RequestClose();
        return 0;
      }
      if (avail.size() < 8 + size) return 0;
      if (auto st = eng.HashData(avail.subspan(8, size)); !st) {
        log->warn("mssim: {}", st.error().message);
      }
      ack();
      return 8 + size;
    }
    case MssimCmd::kRemoteHandshake: {
      if (avail.size() < 8) return 0;
      AppendBe32(out, wire::kMssimServerVersion);
      AppendBe32(out, wire::kMssimEndpointPlatformAvailable | wire::kMssimEndpointSupportsPp);
      ack();
      return 8;
    }
    case MssimCmd::kSignalPowerOn:
      if (!eng.running()) {
        if (auto st = service_->Start(false); !st) {
          log->error("mssim: power on failed: {}", st.error().message);
        }
      }
      ack();
      break;
    case MssimCmd::kSignalPowerOff:
      PowerOff();
      ack();
      break;
    case MssimCmd::kSignalReset:
    case MssimCmd::kSignalRestart:
      PowerOff();
      if (auto st = service_->Start(false); !st) {
        log->error("mssim: reset failed: {}", st.error().message);
      }
      ack();
      break;
    case MssimCmd::kSignalHashStart:
      if (auto st = eng.HashStart(); !st) log->warn("mssim: {}", st.error().message);
      ack();
      break;
    case MssimCmd::kSignalHashEnd:
      if (auto st = eng.HashEnd(); !st) log->warn("mssim: {}", st.error().message);
      ack();
      break;
    case MssimCmd::kSignalCancelOn:
      eng.Cancel();
      ack();
      break;
    case MssimCmd::kSignalCancelOff:
    case MssimCmd::kSignalNvOn:
    case MssimCmd::kSignalNvOff:
    case MssimCmd::kSignalPhysPresOn:
    case MssimCmd::kSignalPhysPresOff:
    case MssimCmd::kSignalKeyCacheOn:
    case MssimCmd::kSignalKeyCacheOff:
      ack();
      break;
    case MssimCmd::kSessionEnd:
      RequestClose();  // no acknowledgement
      break;
    case MssimCmd::kStop:
      RequestClose();
      eng.Stop();
      if (service_->hooks()) service_->hooks()->RequestExit();
      break;
    case MssimCmd::kSetAlternativeResult:
    case MssimCmd::kGetCommandResponseSizes:
    case MssimCmd::kTestFailureMode:
    default:
      log->warn("mssim: unsupported command {} ({}); closing the connection", code,
                wire::MssimCmdName(code));
      RequestClose();
      return 0;
  }
  log->debug("mssim: {}", wire::MssimCmdName(code));
  return used;
}

}  // namespace vtpm::daemon
