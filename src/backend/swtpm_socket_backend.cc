#include "backend/swtpm_socket_backend.h"

#include <sys/socket.h>

#include <cerrno>
#include <future>

#include "base/socket_io.h"
#include "wire/swtpm_ctrl.h"
#include "wire/tpm_header.h"

namespace vtpm::backend {

using wire::CtrlCmd;
using wire::CtrlRequest;

namespace {

CtrlRequest Cmd(CtrlCmd c) { return CtrlRequest{c, {}}; }
CtrlRequest CmdU8(CtrlCmd c, uint8_t v) { return CtrlRequest{c, wire::CtrlU8Body{v}}; }
CtrlRequest CmdU32(CtrlCmd c, uint32_t v) { return CtrlRequest{c, wire::CtrlU32Body{v}}; }

// One CMD_HASH_DATA carries at most this many bytes (swtpm's struct ptm_hdata).
constexpr size_t kHashDataChunk = 4092;

}  // namespace

SwtpmSocketBackend::SwtpmSocketBackend(const SwtpmSocketOptions& options, client::CtrlClient ctrl,
                                       Logger log)
    : QueuedBackend("swtpm", options.tpm2, std::move(log)),
      options_(options),
      ctrl_(std::move(ctrl)) {}

Result<std::unique_ptr<SwtpmSocketBackend>> SwtpmSocketBackend::Create(
    const SwtpmSocketOptions& options, Logger log) {
  if (options.ctrl_path.empty()) {
    return Fail(Errc::kInvalidArgument, "the swtpm backend needs the control socket path");
  }
  VTPM_ASSIGN_OR_RETURN(auto ctrl,
                        client::CtrlClient::ConnectUnix(options.ctrl_path, options.io_timeout));
  std::unique_ptr<SwtpmSocketBackend> b(
      new SwtpmSocketBackend(options, std::move(ctrl), std::move(log)));
  VTPM_RETURN_IF_ERROR(b->Connect());
  b->StartWorker();
  b->canceller_ = std::thread([p = b.get()] { p->CancellerMain(); });
  return b;
}

Status SwtpmSocketBackend::Connect() {
  VTPM_ASSIGN_OR_RETURN(auto caps, ctrl_.CallOk(Cmd(CtrlCmd::kGetCapability)));
  const uint32_t cap = std::get<wire::CtrlU32Reply>(caps.body).value;
  const uint32_t need = wire::kPtmCapInit | wire::kPtmCapGetTpmEstablished |
                        wire::kPtmCapSetLocality | wire::kPtmCapCancelTpmCmd;
  if ((cap & need) != need) {
    return Fail(
        Errc::kUnsupported,
        fmt::format("the TPM's control channel lacks required capabilities (has 0x{:x})", cap));
  }
  if (options_.data_path.empty()) {
    if ((cap & wire::kPtmCapSetDatafd) == 0) {
      return Fail(Errc::kUnsupported, "the TPM cannot take a data fd; give the data socket path");
    }
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
      return SysFail("socketpair", errno);
    }
    data_.reset(sv[0]);
    UniqueFd theirs(sv[1]);
    VTPM_RETURN_IF_ERROR(ctrl_.CallOk(Cmd(CtrlCmd::kSetDatafd), {}, theirs.get()));
  } else {
    VTPM_ASSIGN_OR_RETURN(data_, ConnectUnix(options_.data_path));
  }
  auto set_buffer_size = [&](uint32_t size) -> Status {
    VTPM_ASSIGN_OR_RETURN(auto r, ctrl_.CallOk(CmdU32(CtrlCmd::kSetBufferSize, size)));
    buffer_size_ = std::get<wire::CtrlBufferSizeReply>(r.body).current;
    return Ok();
  };
  if (options_.init) {
    if (options_.buffer_size != 0 && (cap & wire::kPtmCapSetBufferSize)) {
      VTPM_RETURN_IF_ERROR(ctrl_.CallOk(Cmd(CtrlCmd::kStop)));
      VTPM_RETURN_IF_ERROR(set_buffer_size(options_.buffer_size));
    }
    VTPM_RETURN_IF_ERROR(ctrl_.CallOk(CmdU32(CtrlCmd::kInit, 0)));
  } else if (cap & wire::kPtmCapSetBufferSize) {
    (void)set_buffer_size(0);  // a query; an old TPM without it keeps 4096
  }
  return Ok();
}

SwtpmSocketBackend::~SwtpmSocketBackend() {
  StopWorker();
  {
    std::lock_guard lock(cancel_mu_);
    stopping_ = true;
    cancel_cv_.notify_all();
  }
  if (canceller_.joinable()) canceller_.join();
}

void SwtpmSocketBackend::MarkBroken(std::string_view what, const Error& e) {
  if (!broken_.exchange(true)) {
    log_->error("swtpm backend: {}: {}; answering TPM_RC_FAILURE from now on", what, e.message);
  }
}

void SwtpmSocketBackend::CtrlOp(const CtrlRequest& request, ByteSpan payload) {
  if (broken_) return;
  const std::string_view what = wire::CtrlCmdName(static_cast<uint32_t>(request.cmd));
  auto r = ctrl_.Call(request, payload);
  if (!r) {
    MarkBroken(what, r.error());
  } else if (r->result != wire::kPtmResSuccess) {
    log_->warn("swtpm backend: {} returned 0x{:x}", what, r->result);
  }
}

std::optional<bool> SwtpmSocketBackend::QueryEstablished() {
  if (broken_) return std::nullopt;
  auto r = ctrl_.Call(Cmd(CtrlCmd::kGetTpmEstablished));
  if (!r || r->result != wire::kPtmResSuccess) return std::nullopt;
  return std::get<wire::CtrlEstablishedReply>(r->body).established();
}

Result<Bytes> SwtpmSocketBackend::Transact(const Bytes& command) {
  const Deadline deadline = DeadlineIn(options_.io_timeout);
  VTPM_RETURN_IF_ERROR(SendAll(data_.get(), command, deadline));
  Bytes rsp(wire::kTpmHeaderSize);
  VTPM_RETURN_IF_ERROR(RecvAll(data_.get(), rsp.data(), rsp.size(), deadline));
  const uint32_t size = LoadBe32(rsp.data() + 2);
  const uint32_t max = std::max<uint32_t>(buffer_size_, 4096);
  if (size < wire::kTpmHeaderSize || size > max) {
    return Fail(Errc::kCorrupt, fmt::format("the TPM sent a response of size {}", size));
  }
  rsp.resize(size);
  VTPM_RETURN_IF_ERROR(RecvAll(data_.get(), rsp.data() + wire::kTpmHeaderSize,
                               size - wire::kTpmHeaderSize, deadline));
  return rsp;
}

Bytes SwtpmSocketBackend::RunCommand(uint8_t locality, Bytes& command) {
  if (!broken_ && locality_ != locality) {
    // QEMU sends the 4-byte union; swtpm reads the first byte.
    auto r = ctrl_.Call(CmdU8(CtrlCmd::kSetLocality, locality));
    if (!r) {
      MarkBroken("CMD_SET_LOCALITY", r.error());
    } else if (r->result != wire::kPtmResSuccess) {
      return LocalityResponse();
    } else {
      locality_ = locality;
    }
  }
  if (broken_) return FailureResponse();
  {
    std::lock_guard lock(cancel_mu_);
    outstanding_ = true;
  }
  auto r = Transact(command);
  {
    std::lock_guard lock(cancel_mu_);
    outstanding_ = false;
    cancel_requested_ = false;
  }
  if (!r) {
    MarkBroken("TPM command", r.error());
    return FailureResponse();
  }
  return std::move(*r);
}

void SwtpmSocketBackend::RunHashStart() { CtrlOp(Cmd(CtrlCmd::kHashStart)); }

void SwtpmSocketBackend::RunHashData(ByteSpan data) {
  for (size_t off = 0; off < data.size(); off += kHashDataChunk) {
    const ByteSpan part = data.subspan(off, std::min(kHashDataChunk, data.size() - off));
    CtrlOp(CmdU32(CtrlCmd::kHashData, static_cast<uint32_t>(part.size())), part);
  }
}

void SwtpmSocketBackend::RunHashEnd() { CtrlOp(Cmd(CtrlCmd::kHashEnd)); }

void SwtpmSocketBackend::RunResetEstablished(uint8_t locality) {
  CtrlOp(CmdU8(CtrlCmd::kResetTpmEstablished, locality));
}

void SwtpmSocketBackend::Cancel() {
  std::lock_guard lock(cancel_mu_);
  if (!outstanding_) return;
  cancel_requested_ = true;
  cancel_cv_.notify_all();
}

Status SwtpmSocketBackend::Shutdown() {
  return RunOnWorker([this]() -> Status {
    VTPM_RETURN_IF_ERROR(ctrl_.CallOk(Cmd(CtrlCmd::kShutdown)));
    return Ok();
  });
}

void SwtpmSocketBackend::CancellerMain() {
  std::unique_lock lock(cancel_mu_);
  while (true) {
    cancel_cv_.wait(lock, [&] { return stopping_ || cancel_requested_; });
    if (stopping_) return;
    cancel_requested_ = false;
    if (!outstanding_) continue;
    lock.unlock();
    auto r = ctrl_.Call(Cmd(CtrlCmd::kCancelTpmCmd));
    if (!r || r->result != wire::kPtmResSuccess) log_->warn("CMD_CANCEL_TPM_CMD failed");
    lock.lock();
  }
}

}  // namespace vtpm::backend
