// MmioBus onto QEMU's own tpm-tis / tpm-crb: QEMU (TCG) runs mmio_agent.c, which performs the
// accesses we send over its serial port (qtest's words; Debian's QEMU has no qtest accelerator).
// Every wait is bounded: QEMU's connection and the agent's READY 30 s, each answer 30 s, each
// send 30 s; a timeout counts in |errors| and answers "TIMEOUT".
#pragma once

#include <fmt/format.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <string>
#include <vector>

#include "base/unique_fd.h"
#include "fakes/mmio_bus.h"

namespace vtpm::testing {

class QemuAgentBus : public MmioBus {
 public:
  // |device|: "tpm-tis" or "tpm-crb". Returns nullptr and sets |error| on failure.
  static std::unique_ptr<QemuAgentBus> Start(const std::string& device,
                                             const std::string& tpm_ctrl_socket,
                                             const std::string& agent, const std::string& dir,
                                             std::string* error) {
    auto bus = std::unique_ptr<QemuAgentBus>(new QemuAgentBus());
    const std::string sock = dir + "/serial.sock";
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::strncpy(sa.sun_path, sock.c_str(), sizeof(sa.sun_path) - 1);
    UniqueFd listener(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (::bind(listener.get(), reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0 ||
        ::listen(listener.get(), 1) != 0) {
      *error = "cannot listen on " + sock;
      return nullptr;
    }
    std::vector<std::string> args = {"qemu-system-x86_64",
                                     "-machine",
                                     "pc",
                                     "-accel",
                                     "tcg",
                                     "-m",
                                     "32",
                                     "-nodefaults",
                                     "-display",
                                     "none",
                                     "-no-reboot",
                                     "-kernel",
                                     agent,
                                     "-chardev",
                                     "socket,id=ser0,path=" + sock,
                                     "-serial",
                                     "chardev:ser0",
                                     "-chardev",
                                     "socket,id=chrtpm,path=" + tpm_ctrl_socket,
                                     "-tpmdev",
                                     "emulator,id=tpm0,chardev=chrtpm",
                                     "-device",
                                     device + ",tpmdev=tpm0"};
    bus->pid_ = ::fork();
    if (bus->pid_ == 0) {
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      const std::string log = dir + "/qemu.log";
      FILE* f = std::freopen(log.c_str(), "w", stderr);
      (void)f;
      ::execvp(argv[0], argv.data());
      ::_exit(127);
    }
    pollfd p{listener.get(), POLLIN, 0};
    if (::poll(&p, 1, kTimeoutMs) != 1) {
      *error = "QEMU did not connect its serial port (see " + dir + "/qemu.log)";
      return nullptr;
    }
    bus->fd_.reset(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
    std::string ready = bus->Line();
    if (ready != "READY") {
      *error = "the MMIO agent did not start (got '" + ready + "')";
      return nullptr;
    }
    return bus;
  }

  ~QemuAgentBus() override {
    fd_.reset();
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }

  uint64_t Read(uint64_t offset, unsigned size) override {
    if (size == 8) return Read(offset, 4) | (Read(offset + 4, 4) << 32);
    Send(fmt::format("read{} 0x{:x}\n", Width(size), kBase + offset));
    std::string r = Line();
    if (r.rfind("OK 0x", 0) != 0) {
      ++errors;
      return ~uint64_t{0};
    }
    return std::stoull(r.substr(5), nullptr, 16);
  }
  void Write(uint64_t offset, unsigned size, uint64_t value) override {
    if (size == 8) {
      Write(offset, 4, value & 0xFFFFFFFF);
      Write(offset + 4, 4, value >> 32);
      return;
    }
    Send(fmt::format("write{} 0x{:x} 0x{:x}\n", Width(size), kBase + offset, value));
    if (Line() != "OK") ++errors;
  }

  int errors = 0;

 private:
  static constexpr uint64_t kBase = 0xFED40000;
  static constexpr int kTimeoutMs = 30000;
  QemuAgentBus() = default;
  static char Width(unsigned size) { return size == 1 ? 'b' : size == 2 ? 'w' : 'l'; }
  void Send(const std::string& s) {
    size_t off = 0;
    while (off < s.size()) {
      pollfd p{fd_.get(), POLLOUT, 0};
      if (::poll(&p, 1, kTimeoutMs) != 1) {
        ++errors;
        return;
      }
      ssize_t n = ::send(fd_.get(), s.data() + off, s.size() - off, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
      if (n <= 0) {
        ++errors;
        return;
      }
      off += static_cast<size_t>(n);
    }
  }
  // One line from the agent, within kTimeoutMs in total; "TIMEOUT" or "EOF" otherwise.
  std::string Line() {
    std::string line;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kTimeoutMs);
    while (true) {
      size_t nl = buf_.find('\n');
      if (nl != std::string::npos) {
        line = buf_.substr(0, nl);
        buf_.erase(0, nl + 1);
        if (!line.empty() && line.back() == '\r') line.pop_back();
        return line;
      }
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      pollfd p{fd_.get(), POLLIN, 0};
      if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) != 1) {
        return "TIMEOUT";
      }
      char tmp[4096];
      ssize_t n = ::recv(fd_.get(), tmp, sizeof(tmp), 0);
      if (n <= 0) return "EOF";
      buf_.append(tmp, static_cast<size_t>(n));
    }
  }

  UniqueFd fd_;
  pid_t pid_ = -1;
  std::string buf_;
};

}  // namespace vtpm::testing
