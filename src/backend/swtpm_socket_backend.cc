#include "backend/swtpm_socket_backend.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <bit>
#include <cerrno>
#include <cstring>
#include <future>

#include "wire/swtpm_ctrl.h"
#include "wire/tpm_header.h"

namespace vtpm::backend {

using wire::CtrlCmd;

namespace {

Bytes Code(CtrlCmd c) {
  Bytes b(4);
  StoreBe32(b.data(), static_cast<uint32_t>(c));
  return b;
}
void PutU32(Bytes& b, uint32_t v) {
  uint8_t t[4];
  StoreBe32(t, v);
  b.insert(b.end(), t, t + 4);
}

Result<UniqueFd> ConnectUnix(const std::string& path) {
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  if (path.size() >= sizeof(sa.sun_path)) {
    return Fail(Errc::kInvalidArgument, "socket path too long: " + path);
  }
  std::memcpy(sa.sun_path, path.c_str(), path.size() + 1);
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return SysFail("socket(AF_UNIX)", errno);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0) {
    return SysFail("cannot connect to the TPM at " + path + " (is swtpm/vtpm running?)", errno);
  }
  return fd;
}

using Clock = std::chrono::steady_clock;

// Waits until |fd| is ready for |events| or the deadline passes.
Status WaitFd(int fd, short events, Clock::time_point deadline) {
  while (true) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return Fail(Errc::kIo, "the TPM did not answer in time");
    pollfd p{fd, events, 0};
    int r = ::poll(&p, 1, static_cast<int>(std::min<int64_t>(left.count(), 60000)));
    if (r > 0) return Ok();
    if (r < 0 && errno != EINTR) return SysFail("poll", errno);
  }
}

Status WriteAll(int fd, ByteSpan b, Clock::time_point deadline, int pass_fd = -1) {
  size_t off = 0;
  while (off < b.size()) {
    VTPM_RETURN_IF_ERROR(WaitFd(fd, POLLOUT, deadline));
    msghdr msg{};
    iovec iov{const_cast<uint8_t*>(b.data() + off), b.size() - off};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    alignas(cmsghdr) char cbuf[CMSG_SPACE(sizeof(int))] = {};
    if (pass_fd >= 0 && off == 0) {
      msg.msg_control = cbuf;
      msg.msg_controllen = sizeof(cbuf);
      cmsghdr* c = CMSG_FIRSTHDR(&msg);
      c->cmsg_level = SOL_SOCKET;
      c->cmsg_type = SCM_RIGHTS;
      c->cmsg_len = CMSG_LEN(sizeof(int));
      std::memcpy(CMSG_DATA(c), &pass_fd, sizeof(int));
    }
    ssize_t n = ::sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      return SysFail("write to the TPM", errno);
    }
    off += static_cast<size_t>(n);
  }
  return Ok();
}

Status ReadAll(int fd, uint8_t* out, size_t n, Clock::time_point deadline) {
  size_t off = 0;
  while (off < n) {
    VTPM_RETURN_IF_ERROR(WaitFd(fd, POLLIN, deadline));
    ssize_t r = ::recv(fd, out + off, n - off, MSG_DONTWAIT);
    if (r == 0) return Fail(Errc::kIo, "the TPM closed the connection");
    if (r < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      return SysFail("read from the TPM", errno);
    }
    off += static_cast<size_t>(r);
  }
  return Ok();
}

}  // namespace

SwtpmSocketBackend::SwtpmSocketBackend(const SwtpmSocketOptions& options, Logger log)
    : options_(options), log_(std::move(log)) {}

Result<std::unique_ptr<SwtpmSocketBackend>> SwtpmSocketBackend::Create(
    const SwtpmSocketOptions& options, Logger log) {
  if (options.ctrl_path.empty()) {
    return Fail(Errc::kInvalidArgument, "the swtpm backend needs the control socket path");
  }
  if (!log) log = NullLogger();
  std::unique_ptr<SwtpmSocketBackend> b(new SwtpmSocketBackend(options, std::move(log)));
  VTPM_RETURN_IF_ERROR(b->Connect());
  b->worker_ = std::thread([p = b.get()] { p->WorkerMain(); });
  b->canceller_ = std::thread([p = b.get()] { p->CancellerMain(); });
  return b;
}

Status SwtpmSocketBackend::Connect() {
  VTPM_ASSIGN_OR_RETURN(ctrl_, ConnectUnix(options_.ctrl_path));
  VTPM_ASSIGN_OR_RETURN(auto caps, Ctrl(Code(CtrlCmd::kGetCapability), 4));
  if (caps.first != 0) {
    return Fail(Errc::kIo, fmt::format("CMD_GET_CAPABILITY failed (0x{:x})", caps.first));
  }
  const uint32_t cap = LoadBe32(caps.second.data());
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
    VTPM_ASSIGN_OR_RETURN(auto r, Ctrl(Code(CtrlCmd::kSetDatafd), 0, theirs.get()));
    if (r.first != 0)
      return Fail(Errc::kIo, fmt::format("CMD_SET_DATAFD failed (0x{:x})", r.first));
  } else {
    VTPM_ASSIGN_OR_RETURN(data_, ConnectUnix(options_.data_path));
  }
  if (options_.init) {
    if (options_.buffer_size != 0 && (cap & wire::kPtmCapSetBufferSize)) {
      VTPM_RETURN_IF_ERROR(CtrlOk(Code(CtrlCmd::kStop), "CMD_STOP"));
      Bytes req = Code(CtrlCmd::kSetBufferSize);
      PutU32(req, options_.buffer_size);
      VTPM_ASSIGN_OR_RETURN(auto r, Ctrl(req, 12));
      if (r.first != 0) {
        return Fail(Errc::kIo, fmt::format("CMD_SET_BUFFERSIZE failed (0x{:x})", r.first));
      }
      buffer_size_ = LoadBe32(r.second.data());
    }
    Bytes init = Code(CtrlCmd::kInit);
    PutU32(init, 0);
    VTPM_RETURN_IF_ERROR(CtrlOk(init, "CMD_INIT"));
  } else if (cap & wire::kPtmCapSetBufferSize) {
    Bytes req = Code(CtrlCmd::kSetBufferSize);
    PutU32(req, 0);
    VTPM_ASSIGN_OR_RETURN(auto r, Ctrl(req, 12));
    if (r.first == 0) buffer_size_ = LoadBe32(r.second.data());
  }
  RefreshEstablished();
  return Ok();
}

SwtpmSocketBackend::~SwtpmSocketBackend() {
  queue_.Close();
  if (worker_.joinable()) worker_.join();
  {
    std::lock_guard lock(cancel_mu_);
    stopping_ = true;
    cancel_cv_.notify_all();
  }
  if (canceller_.joinable()) canceller_.join();
}

Result<std::pair<uint32_t, Bytes>> SwtpmSocketBackend::Ctrl(const Bytes& request, size_t extra,
                                                            int pass_fd) {
  std::lock_guard lock(ctrl_mu_);
  const auto deadline = Clock::now() + options_.io_timeout;
  if (!ctrl_) return Fail(Errc::kIo, "the control channel is closed");
  if (auto st = WriteAll(ctrl_.get(), request, deadline, pass_fd); !st) {
    ctrl_.reset();
    return tl::unexpected(st.error());
  }
  uint8_t res[4];
  if (auto st = ReadAll(ctrl_.get(), res, 4, deadline); !st) {
    ctrl_.reset();
    return tl::unexpected(st.error());
  }
  const uint32_t code = LoadBe32(res);
  Bytes more;
  if (code == 0 && extra > 0) {  // on error swtpm sends only the 4-byte result
    more.resize(extra);
    if (auto st = ReadAll(ctrl_.get(), more.data(), extra, deadline); !st) {
      ctrl_.reset();
      return tl::unexpected(st.error());
    }
  }
  return std::make_pair(code, std::move(more));
}

Status SwtpmSocketBackend::CtrlOk(const Bytes& request, const char* what) {
  VTPM_ASSIGN_OR_RETURN(auto r, Ctrl(request, 0));
  if (r.first != 0) return Fail(Errc::kIo, fmt::format("{} failed (0x{:x})", what, r.first));
  return Ok();
}

Bytes SwtpmSocketBackend::Failure() const { return wire::NotRunningResponse(options_.tpm2); }

void SwtpmSocketBackend::RefreshEstablished() {
  auto r = Ctrl(Code(CtrlCmd::kGetTpmEstablished), 4);
  if (r && r->first == 0) established_.store((r->second[0] & 1) != 0);
}

Result<Bytes> SwtpmSocketBackend::Transact(const Bytes& command) {
  const auto deadline = Clock::now() + options_.io_timeout;
  VTPM_RETURN_IF_ERROR(WriteAll(data_.get(), command, deadline));
  Bytes rsp(wire::kTpmHeaderSize);
  VTPM_RETURN_IF_ERROR(ReadAll(data_.get(), rsp.data(), rsp.size(), deadline));
  const uint32_t size = LoadBe32(rsp.data() + 2);
  const uint32_t max = std::max<uint32_t>(buffer_size_, 4096);
  if (size < wire::kTpmHeaderSize || size > max) {
    return Fail(Errc::kCorrupt, fmt::format("the TPM sent a response of size {}", size));
  }
  rsp.resize(size);
  VTPM_RETURN_IF_ERROR(ReadAll(data_.get(), rsp.data() + 10, size - 10, deadline));
  return rsp;
}

void SwtpmSocketBackend::Post(Op op) {
  device::TpmBackend::Completion done = op.kind == Op::kSubmit ? op.done : nullptr;
  if (!queue_.Push(std::move(op))) {
    const uint64_t n = queue_.CountDrop();
    if (n <= 10 || std::has_single_bit(n)) {  // a hostile guest must not flood the log
      log_->warn("swtpm backend queue full or closed; dropped a request ({} so far)", n);
    }
    if (done) done(Failure());
  }
}

void SwtpmSocketBackend::Submit(uint8_t locality, Bytes command, Completion done) {
  Op op{Op::kSubmit};
  op.locality = locality;
  op.data = std::move(command);
  op.done = std::move(done);
  Post(std::move(op));
}

void SwtpmSocketBackend::Cancel() {
  std::lock_guard lock(cancel_mu_);
  if (!outstanding_) return;
  cancel_requested_ = true;
  cancel_cv_.notify_all();
}

void SwtpmSocketBackend::ResetEstablished(uint8_t locality) {
  Op op{Op::kResetEstablished};
  op.locality = locality;
  Post(std::move(op));
}
void SwtpmSocketBackend::HashStart() { Post(Op{Op::kHashStart}); }
void SwtpmSocketBackend::HashData(Bytes data) {
  Op op{Op::kHashData};
  op.data = std::move(data);
  Post(std::move(op));
}
void SwtpmSocketBackend::HashEnd() { Post(Op{Op::kHashEnd}); }

Status SwtpmSocketBackend::Shutdown() {
  std::promise<Status> result;
  Op op{Op::kCall};
  op.call = [&] { result.set_value(CtrlOk(Code(CtrlCmd::kShutdown), "CMD_SHUTDOWN")); };
  auto fut = result.get_future();
  if (!queue_.Push(std::move(op))) return Fail(Errc::kBusy, "the swtpm backend is stopping");
  return fut.get();
}

void SwtpmSocketBackend::WorkerMain() {
  while (auto op = queue_.Pop()) Execute(*op);
}

void SwtpmSocketBackend::CancellerMain() {
  std::unique_lock lock(cancel_mu_);
  while (true) {
    cancel_cv_.wait(lock, [&] { return stopping_ || cancel_requested_; });
    if (stopping_) return;
    cancel_requested_ = false;
    if (!outstanding_) continue;
    lock.unlock();
    auto r = Ctrl(Code(CtrlCmd::kCancelTpmCmd), 0);
    if (!r || r->first != 0) log_->warn("CMD_CANCEL_TPM_CMD failed");
    lock.lock();
  }
}

void SwtpmSocketBackend::Execute(Op& op) {
  auto fail = [&](const std::string& what, const Error& e) {
    if (!broken_.exchange(true)) {
      log_->error("swtpm backend: {}: {}; answering TPM_RC_FAILURE from now on", what, e.message);
    }
  };
  auto ctrl_op = [&](const Bytes& req, const char* what) {
    if (broken_) return;
    auto r = Ctrl(req, 0);
    if (!r) {
      fail(what, r.error());
    } else if (r->first != 0) {
      log_->warn("swtpm backend: {} returned 0x{:x}", what, r->first);
    }
  };
  switch (op.kind) {
    case Op::kSubmit: {
      Bytes response;
      if (!broken_ && locality_ != op.locality) {
        Bytes req = Code(CtrlCmd::kSetLocality);
        req.insert(req.end(), {op.locality, 0, 0, 0});
        auto r = Ctrl(req, 0);
        if (!r) {
          fail("CMD_SET_LOCALITY", r.error());
        } else if (r->first != 0) {
          response = wire::ErrorResponse(
              options_.tpm2 ? wire::kTpmStNoSessions : wire::kTpm12TagRspCommand,
              options_.tpm2 ? 0x907 : 0x3D);
        } else {
          locality_ = op.locality;
        }
      }
      if (response.empty() && !broken_) {
        {
          std::lock_guard lock(cancel_mu_);
          outstanding_ = true;
        }
        auto r = Transact(op.data);
        {
          std::lock_guard lock(cancel_mu_);
          outstanding_ = false;
          cancel_requested_ = false;
        }
        if (r) {
          response = std::move(*r);
        } else {
          fail("TPM command", r.error());
        }
      }
      if (response.empty()) response = Failure();
      op.done(std::move(response));
      break;
    }
    case Op::kHashStart:
      ctrl_op(Code(CtrlCmd::kHashStart), "CMD_HASH_START");
      break;
    case Op::kHashData: {
      // One message carries at most 4092 bytes (struct ptm_hdata).
      for (size_t off = 0; off < op.data.size(); off += 4092) {
        const size_t n = std::min<size_t>(4092, op.data.size() - off);
        Bytes req = Code(CtrlCmd::kHashData);
        PutU32(req, static_cast<uint32_t>(n));
        req.insert(req.end(), op.data.begin() + static_cast<ptrdiff_t>(off),
                   op.data.begin() + static_cast<ptrdiff_t>(off + n));
        ctrl_op(req, "CMD_HASH_DATA");
      }
      break;
    }
    case Op::kHashEnd:
      ctrl_op(Code(CtrlCmd::kHashEnd), "CMD_HASH_END");
      if (!broken_) RefreshEstablished();
      break;
    case Op::kResetEstablished: {
      Bytes req = Code(CtrlCmd::kResetTpmEstablished);
      req.insert(req.end(), {op.locality, 0, 0, 0});
      ctrl_op(req, "CMD_RESET_TPMESTABLISHED");
      if (!broken_) RefreshEstablished();
      break;
    }
    case Op::kCall:
      op.call();
      break;
  }
}

}  // namespace vtpm::backend
