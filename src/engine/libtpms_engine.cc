// The only file that calls libtpms, and the only one with mutable globals (see engine.h).
#include <libtpms/tpm_error.h>
#include <libtpms/tpm_library.h>
#include <libtpms/tpm_tis.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <optional>

#include "engine/engine.h"
#include "tpmcmd/tpm2_commands.h"
#include "wire/tpm_header.h"

namespace vtpm::engine {

std::string_view StateName(StateType type) {
  switch (type) {
    case StateType::kPermanent:
      return "permall";
    case StateType::kVolatile:
      return "volatilestate";
    case StateType::kSaveState:
      return "savestate";
  }
  return "unknown";
}

class Engine::Impl {
 public:
  Impl(const EngineOptions& options, state::NvStore* store, Logger log)
      : options_(options), store_(store), log_(std::move(log)) {}

  EngineOptions options_;
  state::NvStore* store_;  // not owned
  Logger log_;
  bool running_ = false;
  uint8_t locality_ = 0;
  bool last_was_shutdown_ = false;
  // Blobs accepted by SetState() for the next Start(), by StateType index (see Pending()): held
  // here too because a refused TPMLIB_SetState makes libtpms drop every blob it held. An empty
  // Bytes hides the stored blob. Nothing reaches the store before the TPM started from them.
  std::array<std::optional<Bytes>, 5> pending_;
  uint32_t buffer_size_ = 0;
  // libtpms' response buffer, reused across commands (libtpms reallocs it as needed).
  unsigned char* resp_buf_ = nullptr;
  uint32_t resp_buf_size_ = 0;
  Bytes canned_;  // holds a response we made ourselves (not running)

  ~Impl() { std::free(resp_buf_); }

  std::optional<Bytes>& Pending(StateType type);
  void DropLibtpmsBlobs();
};

namespace {

// The Engine that owns libtpms in this process; libtpms' callbacks have no context pointer.
// Set by Engine::Create, cleared by ~Engine; read only on the thread that drives the Engine.
std::atomic<Engine::Impl*> g_owner{nullptr};

Engine::Impl* Owner() { return g_owner.load(std::memory_order_acquire); }

TPM_RESULT NvramInit() { return TPM_SUCCESS; }

TPM_RESULT NvramLoad(unsigned char** data, uint32_t* length, uint32_t /*tpm_number*/,
                     const char* name) {
  Engine::Impl* e = Owner();
  if (e == nullptr) return TPM_FAIL;
  auto blob = e->store_->Load(name);
  if (!blob) {
    e->log_->error("cannot load TPM state '{}': {}", name, blob.error().message);
    return TPM_FAIL;
  }
  if (!blob->has_value()) return TPM_RETRY;  // libtpms: "does not exist"
  const Bytes& b = **blob;
  // libtpms releases this buffer with free() (TPM_Free).
  auto* buf = static_cast<unsigned char*>(std::malloc(b.empty() ? 1 : b.size()));
  if (buf == nullptr) return TPM_FAIL;
  if (!b.empty()) std::memcpy(buf, b.data(), b.size());
  *data = buf;
  *length = static_cast<uint32_t>(b.size());
  return TPM_SUCCESS;
}

TPM_RESULT NvramStore(const unsigned char* data, uint32_t length, uint32_t /*tpm_number*/,
                      const char* name) {
  Engine::Impl* e = Owner();
  if (e == nullptr) return TPM_FAIL;
  if (auto st = e->store_->Store(name, ByteSpan(data, length)); !st) {
    e->log_->error("cannot store TPM state '{}': {}", name, st.error().message);
    return TPM_FAIL;
  }
  return TPM_SUCCESS;
}

TPM_RESULT NvramDelete(uint32_t /*tpm_number*/, const char* name, TPM_BOOL must_exist) {
  Engine::Impl* e = Owner();
  if (e == nullptr) return TPM_FAIL;
  if (auto st = e->store_->Delete(name, must_exist != 0); !st) {
    e->log_->error("cannot delete TPM state '{}': {}", name, st.error().message);
    return TPM_FAIL;
  }
  return TPM_SUCCESS;
}

TPM_RESULT IoInit() { return TPM_SUCCESS; }

TPM_RESULT IoGetLocality(TPM_MODIFIER_INDICATOR* locality, uint32_t /*tpm_number*/) {
  Engine::Impl* e = Owner();
  *locality = e ? e->locality_ : 0;
  return TPM_SUCCESS;
}

TPM_RESULT IoGetPhysicalPresence(TPM_BOOL* physical_presence, uint32_t /*tpm_number*/) {
  *physical_presence = FALSE;
  return TPM_SUCCESS;
}

TPMLIB_StateType ToLib(StateType t) { return static_cast<TPMLIB_StateType>(t); }

// The order libtpms wants blobs in: permanent first.
constexpr StateType kStateTypes[] = {StateType::kPermanent, StateType::kVolatile,
                                     StateType::kSaveState};

TPMLIB_TPMVersion LibVersion(TpmVersion v) {
  return v == TpmVersion::kTpm20 ? TPMLIB_TPM_VERSION_2 : TPMLIB_TPM_VERSION_1_2;
}

Error TpmError(std::string what, TPM_RESULT rc) {
  return Error{Errc::kTpm, fmt::format("{}: libtpms returned 0x{:x}", what, rc), 0, rc};
}

}  // namespace

Result<std::unique_ptr<Engine>> Engine::Create(const EngineOptions& options, state::NvStore* store,
                                               Logger log) {
  auto impl = std::make_unique<Impl>(options, store, std::move(log));
  Impl* expected = nullptr;
  if (!g_owner.compare_exchange_strong(expected, impl.get())) {
    return Fail(Errc::kAlreadyExists,
                "a TPM engine already exists in this process; libtpms supports one TPM per "
                "process, so run one vtpm process per TPM");
  }
  static struct libtpms_callbacks callbacks = {
      .sizeOfStruct = sizeof(struct libtpms_callbacks),
      .tpm_nvram_init = NvramInit,
      .tpm_nvram_loaddata = NvramLoad,
      .tpm_nvram_storedata = NvramStore,
      .tpm_nvram_deletename = NvramDelete,
      .tpm_io_init = IoInit,
      .tpm_io_getlocality = IoGetLocality,
      .tpm_io_getphysicalpresence = IoGetPhysicalPresence,
  };
  TPM_RESULT rc = TPMLIB_ChooseTPMVersion(LibVersion(options.version));
  if (rc == TPM_SUCCESS) rc = TPMLIB_RegisterCallbacks(&callbacks);
  if (rc != TPM_SUCCESS) {
    g_owner.store(nullptr);
    return tl::unexpected(TpmError("cannot set up libtpms", rc));
  }
  uint32_t min = 0, max = 0;
  impl->buffer_size_ = TPMLIB_SetBufferSize(0, &min, &max);
  return std::unique_ptr<Engine>(new Engine(std::move(impl)));
}

Engine::Engine(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Engine::~Engine() {
  Stop();
  g_owner.store(nullptr, std::memory_order_release);
}

TpmVersion Engine::version() const { return impl_->options_.version; }
bool Engine::running() const { return impl_->running_; }
uint8_t Engine::locality() const { return impl_->locality_; }
uint32_t Engine::buffer_size() const { return impl_->buffer_size_; }
void Engine::set_auto_shutdown(bool on) { impl_->options_.auto_shutdown = on; }

std::optional<Bytes>& Engine::Impl::Pending(StateType type) {
  return pending_[static_cast<size_t>(type)];
}

// Makes libtpms forget the blobs it holds for the next start: a change of the chosen TPM version
// clears them (TPMLIB_ChooseTPMVersion), so choose the other version and ours again.
void Engine::Impl::DropLibtpmsBlobs() {
  const TPMLIB_TPMVersion ours = LibVersion(options_.version);
  TPMLIB_ChooseTPMVersion(ours == TPMLIB_TPM_VERSION_2 ? TPMLIB_TPM_VERSION_1_2
                                                       : TPMLIB_TPM_VERSION_2);
  TPMLIB_ChooseTPMVersion(ours);
}

Status Engine::Start(bool delete_volatile) {
  Impl& d = *impl_;
  if (d.running_) Stop();
  VTPM_RETURN_IF_ERROR(d.store_->Lock());
  const bool set_permanent = d.Pending(StateType::kPermanent).has_value();
  TPMLIB_TPMVersion ver = LibVersion(d.options_.version);
  TPM_RESULT rc = TPMLIB_ChooseTPMVersion(ver);
  if (rc == TPM_SUCCESS) rc = TPMLIB_MainInit();
  // A refused newest permall may be replaced by its previous generation -- if the store's
  // options say the user consented (DirStore fails closed otherwise). Never for a permanent
  // state that SetState() gave: the stored state is not what failed.
  if (rc != TPM_SUCCESS && !set_permanent && d.store_->FallBackToPreviousGeneration()) {
    d.log_->warn(
        "TPM could not start from its newest state (libtpms 0x{:x}); starting from the "
        "previous generation",
        rc);
    TPMLIB_Terminate();
    rc = TPMLIB_ChooseTPMVersion(ver);
    if (rc == TPM_SUCCESS) rc = TPMLIB_MainInit();
  }
  const bool had_pending = std::any_of(d.pending_.begin(), d.pending_.end(),
                                       [](const std::optional<Bytes>& b) { return b.has_value(); });
  for (auto& b : d.pending_) b.reset();
  if (rc != TPM_SUCCESS) {
    TPMLIB_Terminate();
    if (had_pending) d.DropLibtpmsBlobs();  // the refused blobs must not be retried silently
    return tl::unexpected(TpmError(
        set_permanent
            ? "the TPM failed to initialise from the state blob it was given (CMD_SET_STATEBLOB); "
              "the stored state is unchanged"
            : "the TPM failed to initialise from its state (corrupt state, or state from a newer "
              "libtpms?); see the log for libtpms' reason",
        rc));
  }
  d.running_ = true;
  d.last_was_shutdown_ = false;
  uint32_t min = 0, max = 0;
  d.buffer_size_ = TPMLIB_SetBufferSize(0, &min, &max);
  if (set_permanent) {
    // The given permanent state loaded: only now does it replace the stored one (and the stored
    // one becomes the previous generation). libtpms 2 has written it already during MainInit
    // (the store skips identical bytes); this makes it durable for every TPM version.
    Status st = [&]() -> Status {
      VTPM_ASSIGN_OR_RETURN(Bytes perm, GetState(StateType::kPermanent));
      return d.store_->Store(StateName(StateType::kPermanent), perm);
    }();
    if (!st) {
      TPMLIB_Terminate();
      d.running_ = false;
      return Fail(st.error().code,
                  fmt::format("the TPM started from the given state but it could not be stored: "
                              "{}",
                              st.error().message));
    }
  }
  if (delete_volatile) {
    if (auto st = d.store_->Delete(StateName(StateType::kVolatile), false); !st) {
      d.log_->warn("cannot delete the volatile state: {}", st.error().message);
    }
  }
  d.log_->info("TPM {} started", tpm2() ? "2.0" : "1.2");
  return Ok();
}

void Engine::Stop() {
  Impl& d = *impl_;
  if (!d.running_) return;
  if (tpm2() && d.options_.auto_shutdown && !d.last_was_shutdown_) {
    // swtpm's order: SU_STATE keeps resumable state; if refused, SU_CLEAR; TPM_RC_INITIALIZE
    // means Startup never happened and there is nothing to shut down.
    for (uint16_t type : {tpm::kSuState, tpm::kSuClear}) {
      Bytes cmd = tpmcmd::Marshal(tpmcmd::Shutdown{type});
      uint32_t rc = wire::ResponseCode(Process(cmd));
      d.log_->debug("auto TPM2_Shutdown({}) -> 0x{:x}", type, rc);
      if (rc == tpm::kRcSuccess || rc == tpm::kRcInitialize) break;
    }
  }
  TPMLIB_Terminate();
  d.running_ = false;
  d.log_->info("TPM stopped");
}

ByteSpan Engine::Process(std::span<uint8_t> command) {
  Impl& d = *impl_;
  if (!d.running_) {
    d.canned_ = wire::NotRunningResponse(tpm2());
    return d.canned_;
  }
  uint32_t resp_size = 0;
  TPM_RESULT rc = TPMLIB_Process(&d.resp_buf_, &resp_size, &d.resp_buf_size_, command.data(),
                                 static_cast<uint32_t>(command.size()));
  if (rc != TPM_SUCCESS || d.resp_buf_ == nullptr || resp_size < wire::kTpmHeaderSize ||
      resp_size > d.resp_buf_size_) {
    d.log_->error("libtpms could not process a command (0x{:x})", rc);
    d.canned_ = wire::NotRunningResponse(tpm2());
    return d.canned_;
  }
  ByteSpan resp(d.resp_buf_, resp_size);
  if (tpm2()) {
    auto h = wire::ParseHeader(command);
    d.last_was_shutdown_ =
        h && h->code == tpm::kCcShutdown && wire::ResponseCode(resp) == tpm::kRcSuccess;
  }
  return resp;
}

Status Engine::SetLocality(uint8_t locality) {
  if (locality > 4 || (locality == 4 && impl_->options_.reject_locality_4)) {
    return Fail(Errc::kInvalidArgument, fmt::format("locality {} is not allowed", locality));
  }
  impl_->locality_ = locality;
  return Ok();
}

void Engine::Cancel() { TPMLIB_CancelCommand(); }

namespace {
Status NeedRunning(const Engine& e) {
  if (!e.running()) {
    return Fail(Errc::kFailedPrecondition, "the TPM is not running; initialise it first");
  }
  return Ok();
}
Status Check(TPM_RESULT rc, const char* what) {
  if (rc != TPM_SUCCESS) return tl::unexpected(TpmError(what, rc));
  return Ok();
}
}  // namespace

Status Engine::HashStart() {
  VTPM_RETURN_IF_ERROR(NeedRunning(*this));
  return Check(TPM_IO_Hash_Start(), "TPM_IO_Hash_Start");
}

Status Engine::HashData(ByteSpan data) {
  VTPM_RETURN_IF_ERROR(NeedRunning(*this));
  return Check(TPM_IO_Hash_Data(data.data(), static_cast<uint32_t>(data.size())),
               "TPM_IO_Hash_Data");
}

Status Engine::HashEnd() {
  VTPM_RETURN_IF_ERROR(NeedRunning(*this));
  return Check(TPM_IO_Hash_End(), "TPM_IO_Hash_End");
}

Result<bool> Engine::GetEstablished() {
  VTPM_RETURN_IF_ERROR(NeedRunning(*this));
  TPM_BOOL established = FALSE;
  VTPM_RETURN_IF_ERROR(Check(TPM_IO_TpmEstablished_Get(&established), "TpmEstablished_Get"));
  return established != FALSE;
}

Status Engine::ResetEstablished(uint8_t locality) {
  VTPM_RETURN_IF_ERROR(NeedRunning(*this));
  if (locality > 4) {
    return Fail(Errc::kInvalidArgument, fmt::format("locality {} is not allowed", locality));
  }
  uint8_t saved = impl_->locality_;
  impl_->locality_ = locality;
  TPM_RESULT rc = TPM_IO_TpmEstablished_Reset();
  impl_->locality_ = saved;
  return Check(rc, "TpmEstablished_Reset");
}

Result<Bytes> Engine::GetState(StateType type) {
  if (!impl_->running_) {
    if (const std::optional<Bytes>& p = impl_->Pending(type)) {
      if (p->empty()) return Fail(Errc::kNotFound, fmt::format("no {} state", StateName(type)));
      return *p;
    }
    auto blob = impl_->store_->Load(StateName(type));
    if (!blob) return tl::unexpected(blob.error());
    if (!blob->has_value()) {
      return Fail(Errc::kNotFound, fmt::format("no {} state", StateName(type)));
    }
    return std::move(**blob);
  }
  unsigned char* buf = nullptr;
  uint32_t len = 0;
  TPM_RESULT rc = TPMLIB_GetState(ToLib(type), &buf, &len);
  if (rc != TPM_SUCCESS) {
    std::free(buf);
    return tl::unexpected(TpmError(fmt::format("cannot get {} state", StateName(type)), rc));
  }
  Bytes out(buf, buf + len);
  std::free(buf);
  if (out.empty()) return Fail(Errc::kNotFound, fmt::format("no {} state", StateName(type)));
  return out;
}

Status Engine::SetState(StateType type, ByteSpan blob) {
  Impl& d = *impl_;
  if (d.running_) {
    return Fail(Errc::kFailedPrecondition, "state can only be set while the TPM is stopped");
  }
  VTPM_RETURN_IF_ERROR(d.store_->Lock());
  // libtpms checks the blob (it unmarshals it; a volatile state against the permanent one) and
  // holds it for the next TPMLIB_MainInit.
  const TPM_RESULT rc = TPMLIB_SetState(ToLib(type), blob.empty() ? nullptr : blob.data(),
                                        static_cast<uint32_t>(blob.size()));
  if (rc != TPM_SUCCESS) {
    // libtpms dropped every blob it held; give back the ones accepted before, so a refused blob
    // changes nothing.
    for (StateType t : kStateTypes) {
      const std::optional<Bytes>& p = d.Pending(t);
      if (p && TPMLIB_SetState(ToLib(t), p->empty() ? nullptr : p->data(),
                               static_cast<uint32_t>(p->size())) != TPM_SUCCESS) {
        d.log_->error("libtpms no longer accepts the {} state it accepted before; dropping it",
                      StateName(t));
        d.Pending(t).reset();
      }
    }
    return tl::unexpected(TpmError(
        fmt::format("the {} state blob was refused (libtpms cannot load it: damaged, not a TPM "
                    "{} state, or from a newer libtpms); nothing was changed",
                    StateName(type), tpm2() ? "2.0" : "1.2"),
        rc));
  }
  d.Pending(type) = Bytes(blob.begin(), blob.end());
  return Ok();
}

Status Engine::StoreVolatile() {
  VTPM_RETURN_IF_ERROR(NeedRunning(*this));
  unsigned char* buf = nullptr;
  uint32_t len = 0;
  TPM_RESULT rc = TPMLIB_VolatileAll_Store(&buf, &len);
  if (rc != TPM_SUCCESS) {
    std::free(buf);
    return tl::unexpected(TpmError("cannot marshal the volatile state", rc));
  }
  Status st = impl_->store_->Store(StateName(StateType::kVolatile), ByteSpan(buf, len));
  std::free(buf);
  return st;
}

Result<BufferSizes> Engine::SetBufferSize(uint32_t wanted) {
  if (wanted != 0 && impl_->running_) {
    return Fail(Errc::kFailedPrecondition,
                "the buffer size can only be set while the TPM is stopped");
  }
  BufferSizes s{};
  s.current = TPMLIB_SetBufferSize(wanted, &s.min, &s.max);
  impl_->buffer_size_ = s.current;
  return s;
}

Result<std::string> Engine::GetInfo(uint64_t flags) {
  char* info = TPMLIB_GetInfo(static_cast<TPMLIB_InfoFlags>(flags));
  if (info == nullptr) return Fail(Errc::kTpm, "libtpms returned no info for these flags");
  std::string s(info);
  std::free(info);
  return s;
}

}  // namespace vtpm::engine
