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

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <optional>
#include <unordered_map>
#include <vector>

#include "base/log_limit.h"
#include "base/socket_io.h"
#include "daemon/ctrl_session.h"
#include "daemon/data_session.h"
#include "daemon/mssim_session.h"

namespace vtpm::daemon {

namespace {

using Clock = std::chrono::steady_clock;

// A connection in the middle of a message is dropped when nothing arrives for kStallTimeout
// (swtpm 0.7.1: 500 ms from the first byte of a control message) or when one message takes longer
// than kMessageTimeout in all (a client trickling bytes). docs/PROTOCOLS.md §1.2.
constexpr auto kStallTimeout = std::chrono::milliseconds(500);
constexpr auto kMessageTimeout = std::chrono::seconds(5);
// Connections per listening endpoint (control, data, MS-sim command, MS-sim platform). A full
// endpoint admits a new client by closing its connection idle longest -- on the control channel
// always, elsewhere if that one has been idle kEvictAfterIdle -- so idle connections cannot
// lock libvirt, swtpm_ioctl or a reconnecting VMM out. Never closed for a newcomer: the data
// connection from CMD_SET_DATAFD, the control connection that passed it, and connections whose
// loss ends the daemon (terminate).
constexpr size_t kMaxPerEndpoint = 16;
constexpr auto kEvictAfterIdle = std::chrono::seconds(1);
constexpr int kListenBacklog = 64;
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

// A socket file left at |path| is replaced only when nobody listens on it: a second daemon
// started by mistake must not take a running one's socket away.
Status ClearStaleSocket(const std::string& path, const SocketAddress& addr) {
  struct stat st {};
  if (lstat(path.c_str(), &st) != 0) {
    return errno == ENOENT ? Ok() : SysFail("cannot inspect " + path, errno);
  }
  if (!S_ISSOCK(st.st_mode)) {
    return Fail(Errc::kAlreadyExists,
                fmt::format("{} exists and is not a socket; refusing to replace it (remove it or "
                            "pick another path)",
                            path));
  }
  UniqueFd probe(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!probe) return SysFail("socket(AF_UNIX)", errno);
  if (connect(probe.get(), addr.get(), addr.length) == 0 || errno == EAGAIN) {
    return Fail(Errc::kBusy,
                fmt::format("{} is in use: a running process listens on it (another vtpm or swtpm "
                            "for this VM?); stop it first or pick another path",
                            path));
  }
  if (errno != ECONNREFUSED) return SysFail("cannot probe the existing socket " + path, errno);
  if (unlink(path.c_str()) != 0 && errno != ENOENT) {
    return SysFail("cannot remove the stale socket " + path, errno);
  }
  return Ok();
}

Result<UniqueFd> ListenUnix(const std::string& path, mode_t mode) {
  VTPM_ASSIGN_OR_RETURN(const SocketAddress addr, UnixAddress(path));
  UniqueFd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd) return SysFail("socket(AF_UNIX)", errno);
  VTPM_RETURN_IF_ERROR(ClearStaleSocket(path, addr));
  if (bind(fd.get(), addr.get(), addr.length) < 0) {
    return SysFail("cannot bind UNIX socket " + path, errno);
  }
  if (chmod(path.c_str(), mode) < 0) return SysFail("cannot chmod " + path, errno);
  if (listen(fd.get(), kListenBacklog) < 0) return SysFail("listen on " + path, errno);
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
  if (listen(fd.get(), kListenBacklog) < 0) return SysFail("listen", errno);
  return fd;
}

struct Listener {
  UniqueFd fd;
  ChannelKind kind;
  bool unix_socket;
  bool terminate;    // connections from here end the daemon when they close
  std::string path;  // UNIX socket file to unlink at exit
  bool mssim_platform = false;
  size_t open = 0;  // connections accepted here and still open
  const char* name = "";
};

// The epoll id of the signalfd (ids below 999 are listeners, from 1000 on connections).
constexpr uint64_t kSignalId = 999;

struct Connection {
  UniqueFd fd;
  std::unique_ptr<Session> session;
  ChannelKind kind;
  bool unix_socket;
  bool terminate;
  bool is_datafd = false;          // the CMD_SET_DATAFD connection
  bool pinned = false;             // never closed to make room (see kMaxPerEndpoint)
  std::optional<size_t> listener;  // where it was accepted (counts against its quota)
  Bytes out;
  size_t out_pos = 0;
  Clock::time_point mid_since{};   // the first byte of the unfinished message
  Clock::time_point last_byte{};   // the last byte received
  Clock::time_point idle_since{};  // the last finished message (or the accept)
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
    l.name = kind == ChannelKind::kCtrl ? "control" : "data";
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

  // The command endpoint and the platform endpoint: TCP port and port + 1, or UNIX socket path
  // and path.ctrl (tpm2-tss' mssim TCTI, path=...).
  Status AddMssim(const DaemonConfig& cfg) {
    for (int i = 0; i < 2; ++i) {
      Listener l{UniqueFd(), ChannelKind::kMssim, false, false, {}};
      l.mssim_platform = i == 1;
      l.name = l.mssim_platform ? "MS-simulator platform" : "MS-simulator command";
      if (cfg.mssim_port) {
        VTPM_ASSIGN_OR_RETURN(
            l.fd, ListenTcp(cfg.mssim_bindaddr, static_cast<uint16_t>(*cfg.mssim_port + i)));
      } else {
        l.path = cfg.mssim_path + (l.mssim_platform ? ".ctrl" : "");
        VTPM_ASSIGN_OR_RETURN(l.fd, ListenUnix(l.path, cfg.mssim_mode));
        l.unix_socket = true;
      }
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
    conns_[*id].pinned = true;
    // The control connection that passed it is the VMM's own: keep it too.
    if (auto owner = conns_.find(current_id_); owner != conns_.end()) owner->second.pinned = true;
    datafd_open_ = true;
    return true;
  }
  void RequestExit() override { exit_ = true; }

  Status Prepare();
  Status Run();

 private:
  std::optional<uint64_t> AddConnection(UniqueFd fd, ChannelKind kind, bool unix_socket,
                                        bool terminate) {
    Connection c;
    c.kind = kind;
    c.unix_socket = unix_socket;
    c.terminate = terminate;
    c.pinned = terminate;  // closing it would end the daemon
    c.idle_since = Clock::now();
    switch (kind) {
      case ChannelKind::kCtrl:
        c.session = std::make_unique<CtrlSession>(service_, unix_socket);
        break;
      case ChannelKind::kData:
        c.session = std::make_unique<DataSession>(service_);
        break;
      case ChannelKind::kMssim:
        c.session = std::make_unique<MssimSession>(service_, cfg_.mssim_locked);
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
    if (it->second.listener) --listeners_[*it->second.listener].open;
    if (it->second.terminate) {
      log_->info("{} connection closed; terminating as requested",
                 it->second.kind == ChannelKind::kCtrl ? "control" : "data");
      exit_ = true;
    }
    conns_.erase(it);
  }

  // The connection accepted at listener |li| to close for a newcomer, if any (kMaxPerEndpoint).
  std::optional<uint64_t> EvictionVictim(size_t li, Clock::time_point now) const {
    std::optional<uint64_t> victim;
    Clock::time_point oldest = Clock::time_point::max();
    for (const auto& [id, c] : conns_) {
      if (c.listener != li || c.pinned) continue;
      const auto since = c.mid ? c.mid_since : c.idle_since;
      if (since < oldest) {
        oldest = since;
        victim = id;
      }
    }
    const bool always = listeners_[li].kind == ChannelKind::kCtrl;  // a new control client gets in
    if (victim && !always && now - oldest < kEvictAfterIdle) return std::nullopt;
    return victim;
  }

  // Accepts what is waiting (a bounded batch, so one endpoint cannot starve the others).
  void AcceptSome(size_t li) {
    for (int i = 0; i < 16 && AcceptOne(li); ++i) {
    }
  }

  bool AcceptOne(size_t li) {
    Listener& l = listeners_[li];
    UniqueFd fd(accept4(l.fd.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (!fd) return false;
    if (l.open >= kMaxPerEndpoint) {
      const auto now = Clock::now();
      auto victim = EvictionVictim(li, now);
      if (!victim) {
        if (ShouldLogOccurrence(++refused_)) {
          log_->warn(
              "{} endpoint full ({} connections, all busy or kept); refused a new client "
              "({} refused so far)",
              l.name, l.open, refused_);
        }
        return true;  // fd closes: the client sees the connection end at once
      }
      if (ShouldLogOccurrence(++evicted_)) {
        log_->warn(
            "{} endpoint full ({} connections); closed the one idle longest for a new "
            "client ({} closed so far)",
            l.name, l.open, evicted_);
      }
      Close(*victim);
    }
    bool term = l.terminate || (l.kind == ChannelKind::kData && cfg_.terminate);
    auto id = AddConnection(std::move(fd), l.kind, l.unix_socket, term);
    if (!id) return true;
    conns_[*id].listener = li;
    ++l.open;
    return true;
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
    current_id_ = id;
    c.session->OnChunk(std::span<uint8_t>(buf_.get(), static_cast<size_t>(n)), c.out);
    current_id_ = 0;
    const auto now = Clock::now();
    const bool mid = c.session->mid_message();
    if (mid && !c.mid) c.mid_since = now;
    if (!mid) c.idle_since = now;
    c.last_byte = now;
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

  // When a connection stuck mid-message is to be dropped.
  static Clock::time_point StallDeadline(const Connection& c) {
    return std::min(c.last_byte + kStallTimeout, c.mid_since + kMessageTimeout);
  }

  // The epoll_wait timeout (ms) until the next stall deadline; -1 when nothing is mid-message.
  int NextTimeoutMs() const {
    std::optional<Clock::time_point> next;
    for (const auto& [id, c] : conns_) {
      if (c.mid) next = std::min(next.value_or(Clock::time_point::max()), StallDeadline(c));
    }
    if (!next) return -1;
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(*next - Clock::now()).count();
    return static_cast<int>(std::clamp<decltype(left)>(left, 0, 60'000));
  }

  void DropStalled() {
    const auto now = Clock::now();
    std::vector<uint64_t> stalled;
    for (auto& [id, c] : conns_) {
      if (c.mid && now >= StallDeadline(c)) stalled.push_back(id);
    }
    for (uint64_t id : stalled) {
      if (ShouldLogOccurrence(++stalled_)) {
        log_->warn(
            "closed a connection stuck mid-message (nothing for {} ms, or {} s in all; "
            "{} so far)",
            kStallTimeout.count(), kMessageTimeout.count(), stalled_);
      }
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
  uint64_t current_id_ = 0;  // the connection whose bytes the sessions are handling
  uint64_t refused_ = 0, evicted_ = 0, stalled_ = 0;  // for rate-limited warnings
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
    const int timeout_ms = NextTimeoutMs();
    int n = epoll_wait(epoll_.get(), events.data(), static_cast<int>(events.size()), timeout_ms);
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
        AcceptSome(static_cast<size_t>(id));
      } else if (conns_.count(id) != 0) {
        if (what & EPOLLOUT) {
          Flush(id);
        } else if (what & (EPOLLIN | EPOLLHUP | EPOLLERR | EPOLLRDHUP)) {
          OnReadable(id);
        }
      }
    }
    if (timeout_ms >= 0) DropStalled();
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
  if (cfg.mssim()) VTPM_RETURN_IF_ERROR(impl->AddMssim(cfg));
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
