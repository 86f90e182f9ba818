#include "client/ctrl_client.h"

#include <fmt/format.h>

namespace vtpm::client {

Result<CtrlClient> CtrlClient::ConnectUnix(const std::string& path,
                                           std::chrono::milliseconds timeout) {
  VTPM_ASSIGN_OR_RETURN(UniqueFd fd, vtpm::ConnectUnix(path));
  return CtrlClient(std::move(fd), timeout);
}

bool CtrlClient::connected() const {
  std::lock_guard lock(mu_);
  return fd_.valid();
}

Result<wire::CtrlResponse> CtrlClient::Call(const wire::CtrlRequest& request, ByteSpan payload,
                                            int pass_fd) {
  std::lock_guard lock(mu_);
  if (!fd_) return Fail(Errc::kIo, "the control channel is closed (an earlier exchange failed)");
  auto r = Exchange(request, payload, pass_fd);
  if (!r) fd_.reset();  // the stream may be out of step now
  return r;
}

Result<wire::CtrlResponse> CtrlClient::Exchange(const wire::CtrlRequest& request, ByteSpan payload,
                                                int pass_fd) {
  const Deadline deadline = DeadlineIn(timeout_);
  const std::string_view name = wire::CtrlCmdName(static_cast<uint32_t>(request.cmd));
  auto fail = [&](const Error& e) {
    return Fail(e.code, fmt::format("{}: {}", name, e.message), e.sys_errno);
  };
  Bytes out = wire::EncodeCtrlRequest(request);
  out.insert(out.end(), payload.begin(), payload.end());
  if (auto st = SendAll(fd_.get(), out, deadline, pass_fd); !st) return fail(st.error());
  Bytes in;
  for (size_t want = wire::CtrlResponseSize(request.cmd, in); in.size() < want;
       want = wire::CtrlResponseSize(request.cmd, in)) {
    if (want > wire::kMaxStateBlobSize + 64) {
      return Fail(Errc::kCorrupt, fmt::format("{}: the response announces {} bytes", name, want));
    }
    const size_t have = in.size();
    in.resize(want);
    if (auto st = RecvAll(fd_.get(), in.data() + have, want - have, deadline); !st) {
      return fail(st.error());
    }
  }
  return wire::DecodeCtrlResponse(request.cmd, in);
}

Result<wire::CtrlResponse> CtrlClient::CallOk(const wire::CtrlRequest& request, ByteSpan payload,
                                              int pass_fd) {
  VTPM_ASSIGN_OR_RETURN(wire::CtrlResponse r, Call(request, payload, pass_fd));
  if (r.result != wire::kPtmResSuccess) {
    return tl::unexpected(
        Error{Errc::kTpm,
              fmt::format("{} failed with result 0x{:x}",
                          wire::CtrlCmdName(static_cast<uint32_t>(request.cmd)), r.result),
              0, r.result});
  }
  return r;
}

}  // namespace vtpm::client
