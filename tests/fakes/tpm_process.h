// Runs `swtpm socket` or `vtpm socket` (same command line) as a child for backend tests, with the
// control channel on a UNIX socket; stopped and reaped by the destructor. Every wait is bounded:
// start-up 10 s (started() is false after that), stop SIGTERM then 10 s, then SIGKILL.
#pragma once

#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "fakes/tpm_fixture.h"

namespace vtpm::testing {

class TpmProcess {
 public:
  // |binary|: "swtpm" (found on PATH) or a path to vtpm.
  explicit TpmProcess(const std::string& binary, bool tpm2 = true) {
    ctrl_ = dir_.path() + "/ctrl";
    std::vector<std::string> args = {binary,       "socket",
                                     "--tpmstate", "dir=" + dir_.path(),
                                     "--ctrl",     "type=unixio,path=" + ctrl_,
                                     "--log",      "file=" + dir_.path() + "/log,level=1"};
    if (tpm2) args.push_back("--tpm2");
    args0_ = binary;
    pid_ = fork();
    if (pid_ == 0) {
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execvp(argv[0], argv.data());
      _exit(127);
    }
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    // The socket file appears at bind(), before listen(): wait until a connection is accepted.
    while (!Connectable() && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  bool Connectable() const {
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::strncpy(sa.sun_path, ctrl_.c_str(), sizeof(sa.sun_path) - 1);
    // non-blocking: connect() to a socket whose backlog is full fails instead of waiting
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) == 0;
    ::close(fd);
    return ok;
  }
  ~TpmProcess() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    int status = 0;
    while (::waitpid(pid_, &status, WNOHANG) == 0) {
      if (std::chrono::steady_clock::now() > deadline) {
        ADD_FAILURE() << args0_ << " (pid " << pid_ << ") did not exit within 10 s of SIGTERM";
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, &status, 0);  // SIGKILL cannot be ignored
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  const std::string& ctrl_path() const { return ctrl_; }
  bool started() const {
    struct stat st;
    return pid_ > 0 && ::stat(ctrl_.c_str(), &st) == 0;
  }

 private:
  TempDir dir_;
  std::string ctrl_;
  std::string args0_;
  pid_t pid_ = -1;
};

}  // namespace vtpm::testing
