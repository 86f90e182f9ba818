// Blocking-with-deadline socket I/O shared by every client of vtpm's protocols (the swtpm
// control/data client in src/client, the socket backend, benchmarks and tests): connect, and
// send/receive exactly N bytes before a deadline. Never waits past the deadline; EINTR and short
// transfers are handled here once.
#pragma once

#include <sys/socket.h>

#include <chrono>
#include <cstdint>
#include <string>

#include "base/bytes.h"
#include "base/result.h"
#include "base/unique_fd.h"

namespace vtpm {

using Deadline = std::chrono::steady_clock::time_point;

inline Deadline DeadlineIn(std::chrono::milliseconds d) {
  return std::chrono::steady_clock::now() + d;
}

// A socket address built from a path or a numeric host and port.
struct SocketAddress {
  sockaddr_storage storage{};
  socklen_t length = 0;
  int family = AF_UNSPEC;
  const sockaddr* get() const { return reinterpret_cast<const sockaddr*>(&storage); }
};
// AF_UNIX |path|; the error says the limit when the path is too long.
Result<SocketAddress> UnixAddress(const std::string& path);
// A numeric IPv4 or IPv6 |host| with |port|.
Result<SocketAddress> InetAddress(const std::string& host, uint16_t port);

// A connected AF_UNIX stream socket (CLOEXEC, blocking). The error names the path and says
// whether the server is there at all.
Result<UniqueFd> ConnectUnix(const std::string& path);
// A connected TCP socket to a numeric IPv4/IPv6 address (CLOEXEC, blocking, TCP_NODELAY).
Result<UniqueFd> ConnectTcp(const std::string& host, uint16_t port);

// Waits until |fd| is ready for |events| (POLLIN/POLLOUT) or the deadline passes (Errc::kIo).
Status WaitFd(int fd, short events, Deadline deadline);
// Sends all of |data|; with |pass_fd| >= 0 the first part carries it as SCM_RIGHTS.
Status SendAll(int fd, ByteSpan data, Deadline deadline, int pass_fd = -1);
// Receives exactly |n| bytes into |out|; the peer closing first is an error.
Status RecvAll(int fd, uint8_t* out, size_t n, Deadline deadline);

}  // namespace vtpm
