#include "daemon/server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <unordered_map>
#include <vector>

#include "base/socket_io.h"
#include "daemon/ctrl_session.h"
#include "daemon/data_session.h"
#include "daemon/mssim_session.h"

namespace vtpm::daemon {

namespace {

using Clock = std::chrono::steady_clock;

// A connection stuck in the middle of a message this long is dropped (swtpm: 500 ms for control
// messages; we are more patient with slow hosts, but bounded).
constexpr auto kPartialMessageTimeout = std::chrono::seconds(5);
constexpr size_t kMaxConnections = 64;
// One read's worth: a whole TPM command (at most 4096 + 9 bytes) with room to spare. Allocated
// without initialisation so untouched pages cost no memory per instance.
constexpr size_t kReadChunk = 16 * 1024;

enum class ChannelKind { kCtrl, kData, kMssim };

Status SetNonBlocking(int fd) {
  int flags = fcntl(fd, F_GETFL);
  if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) {
    return SysFail("cannot make fd non-blocking", errno);
  }
  return Ok();
}

Result<UniqueFd> ListenUnix(const std::string& path, mode_t mode) {
  VTPM_ASSIGN_OR_RETURN(const SocketAddress addr, UnixAddress(path));
  UniqueFd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd) return SysFail("socket(AF_UNIX)", errno);
  struct stat st {};
  if (lstat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) unlink(path.c_str());
  if (bind(fd.get(), addr.get(), addr.length) < 0) {
    return SysFail("cannot bind UNIX socket " + path, errno);
  }
  if (chmod(path.c_str(), mode) < 0) return SysFail("cannot chmod " + path, errno);
  if (listen(fd.get(), 16) < 0) return SysFail("listen on " + path, errno);
  return fd;
}

Result<UniqueFd> ListenTcp(const std::string& bindaddr, uint16_t port) {
  auto addr = InetAddress(bindaddr, port);
  if (!addr) {
    return Fail(Errc::kInvalidArgument,
                fmt::format("bindaddr '{}' is not an IPv4 or IPv6 address", bindaddr));
  }
  UniqueFd fd(socket(addr->family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd) return SysFail("socket(TCP)", errno);
  int one = 1;
  setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (bind(fd.get(), addr->get(), addr->length) < 0) {
    return SysFail(fmt::format("cannot bind TCP {}:{} (in use? pick another port)", bindaddr, port),
                   errno);
  }
  if (listen(fd.get(), 16) < 0) return SysFail("listen", errno);
  return fd;
}

struct Listener {
  UniqueFd fd;
  ChannelKind kind;
  bool unix_socket;
  bool terminate;    // connections from here end the daemon when they close
  std::string path;  // UNIX socket file to unlink at exit
  bool mssim_platform = false;
};

// The epoll id of the signalfd (ids below 999 are listeners, from 1000 on connections).
constexpr uint64_t kSignalId = 999;

struct Connection {
  UniqueFd fd;
  std::unique_ptr<Session> session;
  ChannelKind kind;
  bool unix_socket;
  bool terminate;
  bool is_datafd = false;  // the CMD_SET_DATAFD connection
  Bytes out;
  size_t out_pos = 0;
  Clock::time_point mid_since{};
  bool mid = false;
  bool want_out = false;  // registered for EPOLLOUT (and not EPOLLIN) right now
};

}  // namespace

class Server::Impl : public ServerHooks {
 public:
  Impl(const DaemonConfig& cfg, TpmService* service, Logger log)
      : cfg_(cfg), service_(service), log_(std::move(log)), buf_(new uint8_t[kReadChunk]) {}

  ~Impl() override {
    for (auto& l : listeners_) {
      if (!l.path.empty()) unlink(l.path.c_str());
    }
  }

  Status AddListener(const Endpoint& ep, ChannelKind kind) {
    Listener l{UniqueFd(), kind, false, ep.terminate, {}};
    switch (ep.kind) {
      case Endpoint::Kind::kNone:
        return Ok();
      case Endpoint::Kind::kUnix: {
        VTPM_ASSIGN_OR_RETURN(l.fd, ListenUnix(ep.path, ep.mode));
        l.unix_socket = true;
        l.path = ep.path;
        break;
      }
      case Endpoint::Kind::kTcp: {
        VTPM_ASSIGN_OR_RETURN(l.fd, ListenTcp(ep.bindaddr, ep.port));
        break;
      }
      case Endpoint::Kind::kListenFd: {
        l.fd = UniqueFd(ep.fd);
        VTPM_RETURN_IF_ERROR(SetNonBlocking(l.fd.get()));
        sockaddr_storage ss{};
        socklen_t len = sizeof(ss);
        if (getsockname(l.fd.get(), reinterpret_cast<sockaddr*>(&ss), &len) < 0) {
          return SysFail(fmt::format("fd {} is not a socket", ep.fd), errno);
        }
        l.unix_socket = ss.ss_family == AF_UNIX;
        break;
      }
      case Endpoint::Kind::kClientFd: {
        UniqueFd fd(ep.fd);
        VTPM_RETURN_IF_ERROR(SetNonBlocking(fd.get()));
        pending_clients_.push_back({std::move(fd), kind, ep.terminate});
        return Ok();
      }
    }
    listeners_.push_back(std::move(l));
    return Ok();
  }

  Status AddMssim(const std::string& bindaddr, uint16_t port) {
    for (int i = 0; i < 2; ++i) {
      Listener l{UniqueFd(), ChannelKind::kMssim, false, false, {}};
      VTPM_ASSIGN_OR_RETURN(l.fd, ListenTcp(bindaddr, static_cast<uint16_t>(port + i)));
      l.mssim_platform = i == 1;
      listeners_.push_back(std::move(l));
    }
    return Ok();
  }

  // ServerHooks
  bool AdoptDataFd(UniqueFd fd) override {
    if (datafd_open_) return false;
    if (!SetNonBlocking(fd.get())) return false;
    auto id = AddConnection(std::move(fd), ChannelKind::kData, true, cfg_.terminate);
    if (!id) return false;
    conns_[*id].is_datafd = true;
    datafd_open_ = true;
    return true;
  }
  void RequestExit() override { exit_ = true; }

  Status Prepare();
  Status Run();

 private:
  std::optional<uint64_t> AddConnection(UniqueFd fd, ChannelKind kind, bool unix_socket,
                                        bool terminate) {
    if (conns_.size() >= kMaxConnections) {
      log_->warn("too many connections ({}); refusing a new one", conns_.size());
      return std::nullopt;
    }
    Connection c;
    c.kind = kind;
    c.unix_socket = unix_socket;
    c.terminate = terminate;
    switch (kind) {
      case ChannelKind::kCtrl:
        c.session = std::make_unique<CtrlSession>(service_, unix_socket);
        break;
      case ChannelKind::kData:
        c.session = std::make_unique<DataSession>(service_);
        break;
      case ChannelKind::kMssim:
        c.session = std::make_unique<MssimSession>(service_);
        break;
    }
    uint64_t id = next_id_++;
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLRDHUP;
    ev.data.u64 = id;
    if (epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd.get(), &ev) < 0) {
      log_->error("epoll_ctl: {}", std::strerror(errno));
      return std::nullopt;
    }
    if (!unix_socket) {
      // Every reply leaves in one send(); with Nagle it could still wait for the ACK of an
      // earlier one. (Fails harmlessly on a passed-in fd that is not TCP.)
      int one = 1;
      setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    c.fd = std::move(fd);
    conns_.emplace(id, std::move(c));
    return id;
  }

  void Close(uint64_t id) {
    auto it = conns_.find(id);
    if (it == conns_.end()) return;
    epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, it->second.fd.get(), nullptr);
    if (it->second.is_datafd) datafd_open_ = false;
    if (it->second.terminate) {
      log_->info("{} connection closed; terminating as requested",
                 it->second.kind == ChannelKind::kCtrl ? "control" : "data");
      exit_ = true;
    }
    conns_.erase(it);
  }

  void Accept(Listener& l) {
    UniqueFd fd(accept4(l.fd.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (!fd) return;
    bool term = l.terminate || (l.kind == ChannelKind::kData && cfg_.terminate);
    AddConnection(std::move(fd), l.kind, l.unix_socket, term);
  }

  // Reads one chunk, runs the session, flushes. Returns false if the connection was closed.
  void OnReadable(uint64_t id) {
    Connection& c = conns_.at(id);
    ssize_t n;
    UniqueFd passed;
    if (c.unix_socket && c.kind == ChannelKind::kCtrl) {
      iovec iov{buf_.get(), kReadChunk};
      alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
      msghdr msg{};
      msg.msg_iov = &iov;
      msg.msg_iovlen = 1;
      msg.msg_control = control;
      msg.msg_controllen = sizeof(control);
      n = recvmsg(c.fd.get(), &msg, MSG_CMSG_CLOEXEC);
      if (n > 0 && (msg.msg_flags & MSG_CTRUNC) == 0) {
        for (cmsghdr* cm = CMSG_FIRSTHDR(&msg); cm != nullptr; cm = CMSG_NXTHDR(&msg, cm)) {
          if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS &&
              cm->cmsg_len == CMSG_LEN(sizeof(int))) {
            int fd;
            std::memcpy(&fd, CMSG_DATA(cm), sizeof(int));
            passed.reset(fd);
          }
        }
      }
    } else {
      n = read(c.fd.get(), buf_.get(), kReadChunk);
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    if (n <= 0) {
      Close(id);
      return;
    }
    if (passed) c.session->OnFd(std::move(passed));
    c.session->OnChunk(std::span<uint8_t>(buf_.get(), static_cast<size_t>(n)), c.out);
    bool mid = c.session->mid_message();
    if (mid && !c.mid) c.mid_since = Clock::now();
    c.mid = mid;
    if (mid && !c.unix_socket) {
      // Acknowledge the part we have now. Clients that send a message in two writes (tpm2-tss'
      // mssim TCTI: header, then command) with Nagle on wait for that ACK before the second
      // write, and Linux delays it up to 40 ms. TCP_QUICKACK ACKs what was read at once; it is
      // not sticky (the kernel drops back to delayed ACKs), so it is set after every partial read.
      int one = 1;
      setsockopt(c.fd.get(), IPPROTO_TCP, TCP_QUICKACK, &one, sizeof(one));
    }
    Flush(id);
  }

  void Flush(uint64_t id) {
    auto it = conns_.find(id);
    if (it == conns_.end()) return;
    Connection& c = it->second;
    while (c.out_pos < c.out.size()) {
      ssize_t n =
          send(c.fd.get(), c.out.data() + c.out_pos, c.out.size() - c.out_pos, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno == EAGAIN) break;
      if (n <= 0) {
        Close(id);
        return;
      }
      c.out_pos += static_cast<size_t>(n);
    }
    bool pending = c.out_pos < c.out.size();
    if (!pending) {
      c.out.clear();
      c.out_pos = 0;
      if (c.session->wants_close()) {
        Close(id);
        return;
      }
    }
    // Backpressure: while replies are unsent, stop reading more requests. Only touch epoll when
    // that changes (the common case, a reply written at once, costs no extra syscall).
    if (pending != c.want_out) {
      epoll_event ev{};
      ev.events = pending ? (EPOLLOUT | EPOLLRDHUP) : (EPOLLIN | EPOLLRDHUP);
      ev.data.u64 = id;
      epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, c.fd.get(), &ev);
      c.want_out = pending;
    }
  }

  void DropStalled() {
    auto now = Clock::now();
    std::vector<uint64_t> stalled;
    for (auto& [id, c] : conns_) {
      if (c.mid && now - c.mid_since > kPartialMessageTimeout) stalled.push_back(id);
    }
    for (uint64_t id : stalled) {
      log_->warn("dropping a connection stuck mid-message for over {} s",
                 kPartialMessageTimeout.count());
      Close(id);
    }
  }

 public:
  DaemonConfig cfg_;
  TpmService* service_;
  Logger log_;
  std::unique_ptr<uint8_t[]> buf_;
  std::vector<Listener> listeners_;
  struct PendingClient {
    UniqueFd fd;
    ChannelKind kind;
    bool terminate;
  };
  std::vector<PendingClient> pending_clients_;
  std::unordered_map<uint64_t, Connection> conns_;
  UniqueFd epoll_;
  UniqueFd signal_fd_;
  uint64_t next_id_ = 1000;  // ids below belong to listeners and the signalfd
  bool datafd_open_ = false;
  bool exit_ = false;
};

// The descriptors the loop needs besides the sockets (see Server::Prepare).
Status Server::Impl::Prepare() {
  epoll_.reset(epoll_create1(EPOLL_CLOEXEC));
  if (!epoll_) return SysFail("epoll_create1", errno);
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  sigaddset(&mask, SIGHUP);
  signal_fd_.reset(signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC));
  if (!signal_fd_) return SysFail("signalfd", errno);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = kSignalId;
  epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, signal_fd_.get(), &ev);
  for (size_t i = 0; i < listeners_.size(); ++i) {
    ev.events = EPOLLIN;
    ev.data.u64 = i;
    if (epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, listeners_[i].fd.get(), &ev) < 0) {
      return SysFail("epoll_ctl(listener)", errno);
    }
  }
  for (auto& pc : pending_clients_) {
    AddConnection(std::move(pc.fd), pc.kind, true, pc.terminate);
  }
  pending_clients_.clear();
  return Ok();
}

Status Server::Impl::Run() {
  std::array<epoll_event, 32> events;
  while (!exit_) {
    bool any_mid = false;
    for (auto& [id, c] : conns_) any_mid |= c.mid;
    int n = epoll_wait(epoll_.get(), events.data(), static_cast<int>(events.size()),
                       any_mid ? 500 : -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      return SysFail("epoll_wait", errno);
    }
    for (int i = 0; i < n && !exit_; ++i) {
      uint64_t id = events[static_cast<size_t>(i)].data.u64;
      uint32_t what = events[static_cast<size_t>(i)].events;
      if (id == kSignalId) {
        signalfd_siginfo si{};
        if (read(signal_fd_.get(), &si, sizeof(si)) == sizeof(si)) {
          log_->info("signal {} received; shutting down", si.ssi_signo);
          exit_ = true;
        }
      } else if (id < listeners_.size()) {
        Accept(listeners_[id]);
      } else if (conns_.count(id) != 0) {
        if (what & EPOLLOUT) {
          Flush(id);
        } else if (what & (EPOLLIN | EPOLLHUP | EPOLLERR | EPOLLRDHUP)) {
          OnReadable(id);
        }
      }
    }
    if (any_mid) DropStalled();
  }
  // Best effort: send what is queued (e.g. the reply to CMD_SHUTDOWN) before leaving.
  for (auto& [id, c] : conns_) {
    if (c.out_pos < c.out.size()) {
      (void)!send(c.fd.get(), c.out.data() + c.out_pos, c.out.size() - c.out_pos,
                  MSG_NOSIGNAL | MSG_DONTWAIT);
    }
  }
  return Ok();
}

Result<std::unique_ptr<Server>> Server::Create(const DaemonConfig& cfg, TpmService* service,
                                               Logger log) {
  auto impl = std::make_unique<Impl>(cfg, service, std::move(log));
  VTPM_RETURN_IF_ERROR(impl->AddListener(cfg.ctrl, ChannelKind::kCtrl));
  VTPM_RETURN_IF_ERROR(impl->AddListener(cfg.server, ChannelKind::kData));
  if (cfg.mssim_port) VTPM_RETURN_IF_ERROR(impl->AddMssim(cfg.mssim_bindaddr, *cfg.mssim_port));
  service->set_hooks(impl.get());
  return std::unique_ptr<Server>(new Server(std::move(impl)));
}

Server::Server(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Server::~Server() { impl_->service_->set_hooks(nullptr); }
Status Server::Prepare() { return impl_->Prepare(); }
Status Server::Run() {
  if (!impl_->epoll_) VTPM_RETURN_IF_ERROR(impl_->Prepare());
  return impl_->Run();
}

}  // namespace vtpm::daemon
