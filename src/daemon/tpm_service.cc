#include "daemon/tpm_service.h"

#include <chrono>
#include <thread>

#include "tpmcmd/tpm12_commands.h"
#include "tpmcmd/tpm2_commands.h"
#include "wire/tpm_header.h"

namespace vtpm::daemon {

TpmService::TpmService(engine::Engine* engine, state::NvStore* store, ServiceOptions options,
                       Logger log)
    : engine_(engine), store_(store), options_(options), log_(std::move(log)) {}

Status TpmService::Start(bool delete_volatile, bool send_startup) {
  relock_needed_ = false;
  VTPM_RETURN_IF_ERROR(engine_->Start(delete_volatile));
  if (!send_startup || options_.startup == StartupType::kNone) return Ok();
  Bytes cmd;
  if (engine_->tpm2()) {
    if (options_.startup == StartupType::kDeactivated) {
      return Fail(Errc::kInvalidArgument, "startup-deactivated applies to TPM 1.2 only");
    }
    cmd = tpmcmd::Marshal(
        tpmcmd::Startup{options_.startup == StartupType::kState ? tpm::kSuState : tpm::kSuClear});
  } else {
    uint16_t type = options_.startup == StartupType::kClear   ? tpm::kTpm12StClear
                    : options_.startup == StartupType::kState ? tpm::kTpm12StState
                                                              : tpm::kTpm12StDeactivated;
    cmd = tpmcmd::tpm12::Startup(type);
  }
  uint32_t rc = wire::ResponseCode(engine_->Process(cmd));
  if (rc != 0) {
    log_->warn("the startup command sent after start failed with TPM rc 0x{:x}", rc);
  }
  return Ok();
}

ByteSpan TpmService::Execute(std::span<uint8_t> command, std::optional<uint8_t> locality) {
  const bool tpm2 = engine_->tpm2();
  if (relock_needed_ && engine_->running()) {
    if (auto st = Relock(0); !st) {
      log_->error("{}", st.error().message);
      scratch_ = wire::NotRunningResponse(tpm2);
      return scratch_;
    }
  }
  if (locality) {
    if (auto st = engine_->SetLocality(*locality); !st) {
      scratch_ = wire::NotRunningResponse(tpm2);  // TPM_RC_FAILURE / TPM_FAIL
      return scratch_;
    }
  }
  if (options_.allow_set_locality && tpm2 && engine_->running()) {
    auto h = wire::ParseHeader(command);
    if (h && h->code == tpm::kCcSwtpmSetLocality) {
      bool ok = command.size() == wire::kTpmHeaderSize + 1 && h->size == command.size() &&
                engine_->SetLocality(command[wire::kTpmHeaderSize]).has_value();
      scratch_ = wire::ErrorResponse(tpm::kStNoSessions, ok ? tpm::kRcSuccess : tpm::kRcValue);
      return scratch_;
    }
  }
  return engine_->Process(command);
}

void TpmService::ReleaseLockForMigration() {
  store_->Unlock();
  relock_needed_ = true;
  log_->info("released the state lock for the migration destination");
}

Status TpmService::Relock(uint32_t retries) {
  for (uint32_t i = 0;; ++i) {
    auto st = store_->Lock();
    if (st) {
      relock_needed_ = false;
      return Ok();
    }
    if (i >= retries) return st;
    // CMD_LOCK_STORAGE's contract: retries 10 ms apart (QEMU asks for 300 after a failed
    // migration). This blocks the loop, but the VM is paused while it happens.
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

}  // namespace vtpm::daemon
