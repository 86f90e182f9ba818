#include "base/socket_io.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace vtpm {

Result<SocketAddress> UnixAddress(const std::string& path) {
  SocketAddress a;
  auto* un = reinterpret_cast<sockaddr_un*>(&a.storage);
  if (path.empty() || path.size() >= sizeof(un->sun_path)) {
    return Fail(Errc::kInvalidArgument, "socket path '" + path + "' is empty or longer than " +
                                            std::to_string(sizeof(un->sun_path) - 1) +
                                            " bytes; choose a shorter path");
  }
  un->sun_family = AF_UNIX;
  std::memcpy(un->sun_path, path.c_str(), path.size() + 1);
  a.length = sizeof(sockaddr_un);
  a.family = AF_UNIX;
  return a;
}

Result<SocketAddress> InetAddress(const std::string& host, uint16_t port) {
  SocketAddress a;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&a.storage);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&a.storage);
  if (inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    a.length = sizeof(*v4);
  } else if (inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    a.length = sizeof(*v6);
  } else {
    return Fail(Errc::kInvalidArgument, "'" + host + "' is not a numeric IPv4 or IPv6 address");
  }
  a.family = a.storage.ss_family;
  return a;
}

Result<UniqueFd> ConnectUnix(const std::string& path) {
  VTPM_ASSIGN_OR_RETURN(const SocketAddress a, UnixAddress(path));
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return SysFail("socket(AF_UNIX)", errno);
  if (::connect(fd.get(), a.get(), a.length) != 0) {
    return SysFail("cannot connect to " + path + " (is the TPM daemon running?)", errno);
  }
  return fd;
}

Result<UniqueFd> ConnectTcp(const std::string& host, uint16_t port) {
  VTPM_ASSIGN_OR_RETURN(const SocketAddress a, InetAddress(host, port));
  UniqueFd fd(::socket(a.family, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return SysFail("socket(AF_INET)", errno);
  if (::connect(fd.get(), a.get(), a.length) != 0) {
    return SysFail(
        "cannot connect to " + host + ":" + std::to_string(port) + " (is the TPM daemon running?)",
        errno);
  }
  int one = 1;
  setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  return fd;
}

Status WaitFd(int fd, short events, Deadline deadline) {
  while (true) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return Fail(Errc::kIo, "the peer did not answer in time");
    pollfd p{fd, events, 0};
    const int r = ::poll(&p, 1, static_cast<int>(std::min<int64_t>(left.count(), 60000)));
    if (r > 0) return Ok();
    if (r < 0 && errno != EINTR) return SysFail("poll", errno);
  }
}

Status SendAll(int fd, ByteSpan data, Deadline deadline, int pass_fd) {
  size_t off = 0;
  while (off < data.size()) {
    VTPM_RETURN_IF_ERROR(WaitFd(fd, POLLOUT, deadline));
    msghdr msg{};
    iovec iov{const_cast<uint8_t*>(data.data() + off), data.size() - off};
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
    const ssize_t n = ::sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      return SysFail("send", errno);
    }
    off += static_cast<size_t>(n);
  }
  return Ok();
}

Status RecvAll(int fd, uint8_t* out, size_t n, Deadline deadline) {
  size_t off = 0;
  while (off < n) {
    VTPM_RETURN_IF_ERROR(WaitFd(fd, POLLIN, deadline));
    const ssize_t r = ::recv(fd, out + off, n - off, MSG_DONTWAIT);
    if (r == 0) return Fail(Errc::kIo, "the peer closed the connection");
    if (r < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      return SysFail("recv", errno);
    }
    off += static_cast<size_t>(r);
  }
  return Ok();
}

}  // namespace vtpm
