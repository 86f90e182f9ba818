// vtpm_compare: vtpm against Debian's swtpm, and both against the physical floors, in one run.
//
// For each transport (UNIX, TCP; raw and with the MS-simulator command prefix) both daemons run
// side by side and every command is sent to them alternately, so drift in machine load hits both
// alike. Floors measured in the same run: the same command bytes through libtpms in process, and
// a ping-pong of command-sized messages between two processes over the same kind of socket (on
// its own, and interleaved with each cheap command, which is what the daemons' overhead is
// compared with). The cheap commands and the ping-pong again with client and daemons on the same
// CPU (placements). Real clients (tpm2-tools, one process per command; vtpm_esys_client, one
// process on tpm2-tss ESYS) through the swtpm TCTI (UNIX, TCP) and the mssim TCTI (UNIX, TCP). The
// device path: GetRandom through the TIS registers with the in-process, vtpm-socket and
// swtpm-socket backends. Also: start-to-first-response next to its floor (bench/startup_floor),
// RSS/PSS of one idle instance and of 50 started at once; acknowledged state writes (NV_Increment,
// with and without vtpm's fsync). --only SECTIONS runs a subset; --help lists options and sections.
// Every response is checked (size and response code; the clients' outputs): a fast error cannot
// pass as a result.
//
// Output: a markdown report on stdout, one CSV row per series in --csv FILE, every raw sample in
// --samples FILE (bench/plot.py draws them).
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "backend/in_process_backend.h"
#include "backend/swtpm_socket_backend.h"
#include "base/bytes.h"
#include "base/log.h"
#include "base/unique_fd.h"
#include "device/tis.h"
#include "engine/engine.h"
#include "state/dir_store.h"
#include "tis_driver.h"
#include "tpm_commands.h"

extern char** environ;

namespace vtpm::bench {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// Thrown on any failure; main() catches it after every Child destructor has stopped its daemon.
struct Failure {
  std::string message;
};

[[noreturn]] void Die(const std::string& msg) { throw Failure{msg}; }

void Progress(const std::string& what) {
  static const auto start = std::chrono::steady_clock::now();
  std::fprintf(stderr, "[%7.1f s] %s\n",
               std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(),
               what.c_str());
}

double Micros(Clock::duration d) { return std::chrono::duration<double, std::micro>(d).count(); }

// Where the bench (the client) and the processes it measures run. On a machine with two or more
// CPUs the client is pinned to one and every daemon/peer to another, so that each round trip is a
// cross-CPU wake-up for vtpm, swtpm and the ping-pong alike; left to the scheduler, the pair
// sometimes shares a CPU and sometimes not, which moves medians by more than the differences
// measured. --no-pin leaves placement to the scheduler.
struct Cpus {
  int client = -1;  // -1: not pinned
  int server = -1;
};

void PinTo(int cpu) {
  if (cpu < 0) return;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(static_cast<size_t>(cpu), &set);
  if (sched_setaffinity(0, sizeof(set), &set) != 0) {
    std::fprintf(stderr, "vtpm_compare: cannot pin to CPU %d: %s\n", cpu, std::strerror(errno));
  }
}

// Pins this process to the server CPU for the duration of a spawn or fork (children inherit
// the affinity) and back to the client CPU afterwards.
class OnServerCpu {
 public:
  explicit OnServerCpu(const Cpus& cpus) : cpus_(cpus) { PinTo(cpus_.server); }
  ~OnServerCpu() { PinTo(cpus_.client); }
  OnServerCpu(const OnServerCpu&) = delete;
  OnServerCpu& operator=(const OnServerCpu&) = delete;

 private:
  Cpus cpus_;
};

struct Stats {
  double min, median, p99;
  size_t n;
};

Stats Summarize(std::vector<double> v) {
  if (v.empty()) return {0, 0, 0, 0};
  std::sort(v.begin(), v.end());
  auto at = [&](double q) {
    return v[std::min(v.size() - 1, static_cast<size_t>(q * static_cast<double>(v.size() - 1)))];
  };
  return {v.front(), at(0.5), at(0.99), v.size()};
}

// ---- child processes -------------------------------------------------------------------

struct SpawnOptions {
  bool on_client = false;                         // run on the client CPU (default: the server CPU)
  int stdout_fd = -1;                             // -1: /dev/null
  int stderr_fd = -1;                             // -1: inherited
  const std::vector<std::string>* env = nullptr;  // nullptr: this process's environment
};

class Child {
 public:
  Child() = default;
  // Starts |argv| on the server CPU with stdout on |stdout_fd| (-1: /dev/null).
  Child(const std::vector<std::string>& argv, const Cpus& cpus, int stdout_fd = -1)
      : Child(argv, cpus, SpawnOptions{.stdout_fd = stdout_fd}) {}
  Child(const std::vector<std::string>& argv, const Cpus& cpus, const SpawnOptions& so) {
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    std::vector<char*> env;
    if (so.env != nullptr) {
      for (const auto& e : *so.env) env.push_back(const_cast<char*>(e.c_str()));
      env.push_back(nullptr);
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    if (so.stdout_fd >= 0) {
      posix_spawn_file_actions_adddup2(&fa, so.stdout_fd, 1);
    } else {
      posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    }
    if (so.stderr_fd >= 0) posix_spawn_file_actions_adddup2(&fa, so.stderr_fd, 2);
    int rc;
    {
      std::optional<OnServerCpu> on_server;
      if (!so.on_client) on_server.emplace(cpus);
      rc = posix_spawnp(&pid_, args[0], &fa, nullptr, args.data(),
                        so.env != nullptr ? env.data() : environ);
    }
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) Die("cannot start " + argv[0] + ": " + std::strerror(rc));
  }
  Child(Child&& o) noexcept : pid_(std::exchange(o.pid_, -1)) {}
  Child& operator=(Child&& o) noexcept {
    Stop();
    pid_ = std::exchange(o.pid_, -1);
    return *this;
  }
  ~Child() { Stop(); }
  void Stop() {
    if (pid_ <= 0) return;
    kill(pid_, SIGTERM);
    int st;
    waitpid(pid_, &st, 0);
    pid_ = -1;
  }
  // Waits for the child to exit on its own; true if it exited with status 0.
  bool Wait() {
    int st = 0;
    waitpid(std::exchange(pid_, -1), &st, 0);
    return WIFEXITED(st) && WEXITSTATUS(st) == 0;
  }
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
};

// ---- sockets ------------------------------------------------------------------------------

std::optional<UniqueFd> ConnectUnix(const std::string& path) {
  UniqueFd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::snprintf(a.sun_path, sizeof(a.sun_path), "%s", path.c_str());
  if (connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) return std::nullopt;
  return fd;
}

std::optional<UniqueFd> ConnectTcp(uint16_t port) {
  UniqueFd fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) return std::nullopt;
  int one = 1;
  setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  return fd;
}

// A TCP port on 127.0.0.1 that is free now (the kernel's choice).
uint16_t FreePort() {
  UniqueFd fd(socket(AF_INET, SOCK_STREAM, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a));
  socklen_t len = sizeof(a);
  getsockname(fd.get(), reinterpret_cast<sockaddr*>(&a), &len);
  return ntohs(a.sin_port);
}

bool PortFree(uint16_t port) {
  UniqueFd fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0;
}

// P such that P and P+1 are free: tcti-swtpm's data and control ports, or an MS-simulator pair.
uint16_t FreePortPair() {
  for (int attempt = 0; attempt < 100; ++attempt) {
    uint16_t p = FreePort();
    if (p != 0 && p < 65535 && PortFree(static_cast<uint16_t>(p + 1))) return p;
  }
  Die("no two consecutive free TCP ports on 127.0.0.1");
}

bool WriteAll(int fd, const uint8_t* p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w <= 0) return false;
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

bool ReadAll(int fd, uint8_t* p, size_t n) {
  while (n > 0) {
    ssize_t r = read(fd, p, n);
    if (r <= 0) return false;
    p += r;
    n -= static_cast<size_t>(r);
  }
  return true;
}

// One TPM command over a data connection; returns the response (empty on transport failure).
Bytes Transact(int fd, const Bytes& cmd, bool mssim_prefix) {
  Bytes out;
  if (mssim_prefix) {
    ByteWriter w;
    w.U32(8);
    w.U8(0);
    w.U32(static_cast<uint32_t>(cmd.size()));
    w.Append(cmd);
    if (!WriteAll(fd, w.bytes().data(), w.size())) return {};
    uint8_t len[4];
    if (!ReadAll(fd, len, 4)) return {};
    uint32_t n = LoadBe32(len);
    if (n < 10 || n > 8192) return {};
    out.resize(n);
    uint8_t tail[4];
    if (!ReadAll(fd, out.data(), n) || !ReadAll(fd, tail, 4)) return {};
    return out;
  }
  if (!WriteAll(fd, cmd.data(), cmd.size())) return {};
  out.resize(10);
  if (!ReadAll(fd, out.data(), 10)) return {};
  uint32_t n = LoadBe32(out.data() + 2);
  if (n < 10 || n > 8192) return {};
  out.resize(n);
  if (!ReadAll(fd, out.data() + 10, n - 10)) return {};
  return out;
}

// TPM_RC_RETRY (0x922): libtpms asks for the command again (seen on a key's first ECDSA
// signature); TSS stacks resend it.
bool IsRetry(const Bytes& r) { return r.size() >= 10 && LoadBe32(r.data() + 6) == 0x922; }

// Every response is parsed with tpmcmd (response code, sizes, every field; bench/tpm_commands.h).
void Check(const std::string& who, const BenchCommand& c, const Bytes& r) {
  if (r.empty()) Die(who + ": " + c.name + ": no response");
  if (Status ok = c.check(r); !ok) {
    Die(fmt::format("{}: {}: {} (response of {} bytes)", who, c.name, ok.error().message,
                    r.size()));
  }
}

// Ping-pong of command-sized messages (12 bytes out, 44 back, like GetRandom(32)) between two
// processes: the cost of the transport alone. The peer is a forked child echoing 44 bytes for
// every 12 it reads, over a UNIX socketpair or a loopback TCP connection (TCP_NODELAY, as the
// daemons' clients use).
class PingPongPeer {
 public:
  static constexpr size_t kReq = 12, kResp = 44;

  PingPongPeer(bool tcp, const Cpus& cpus) {
    UniqueFd server_listen;
    int pair[2];
    uint16_t port = 0;
    if (!tcp) {
      if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) Die("socketpair");
      client_.reset(pair[0]);
    } else {
      server_listen.reset(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      if (bind(server_listen.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 ||
          listen(server_listen.get(), 1) != 0) {
        Die("cannot listen on loopback");
      }
      socklen_t len = sizeof(a);
      getsockname(server_listen.get(), reinterpret_cast<sockaddr*>(&a), &len);
      port = ntohs(a.sin_port);
    }
    {
      OnServerCpu on_server(cpus);
      pid_ = fork();
    }
    if (pid_ < 0) Die("fork");
    if (pid_ == 0) {
      PinTo(cpus.server);  // the guard's destructor ran in this copy too
      int fd;
      if (tcp) {
        fd = accept(server_listen.get(), nullptr, nullptr);
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
      } else {
        close(pair[0]);
        fd = pair[1];
      }
      uint8_t req[kReq], resp[kResp] = {};
      while (ReadAll(fd, req, kReq) && WriteAll(fd, resp, kResp)) {
      }
      _exit(0);
    }
    if (!tcp) {
      close(pair[1]);
    } else {
      auto fd = ConnectTcp(port);
      if (!fd) Die("cannot connect to the ping-pong peer");
      client_ = std::move(*fd);
    }
  }
  ~PingPongPeer() {
    client_.reset();  // the peer's read fails and it exits
    int st;
    waitpid(pid_, &st, 0);
  }
  PingPongPeer(const PingPongPeer&) = delete;
  PingPongPeer& operator=(const PingPongPeer&) = delete;

  // One round trip, in microseconds.
  double RoundTrip() {
    uint8_t req[kReq] = {}, resp[kResp];
    auto t0 = Clock::now();
    if (!WriteAll(client_.get(), req, kReq) || !ReadAll(client_.get(), resp, kResp)) {
      Die("ping-pong");
    }
    return Micros(Clock::now() - t0);
  }

 private:
  UniqueFd client_;
  pid_t pid_ = -1;
};

// ---- daemons ------------------------------------------------------------------------------

struct Transport {
  std::string name;
  bool tcp;
  bool mssim_prefix;
};

struct Daemon {
  std::string name;                // "vtpm" / "swtpm"
  std::vector<std::string> argv0;  // {"/path/vtpm", "socket"} or {"swtpm", "socket"}
  std::string tpmstate_options;    // appended to --tpmstate dir=...
  Cpus cpus;
};

// Which channels a daemon serves. Paths and ports follow tpm2-tss tcti-swtpm: data socket D,
// control socket D.ctrl; TCP data port P, control port P+1.
struct Endpoints {
  enum class Data { kUnix, kTcp, kNone };
  Data data = Data::kUnix;
  bool ctrl_tcp = false;  // control channel on TCP port P+1 (default: UNIX socket D.ctrl)
  // vtpm only: --mssim port=M (command port M, platform M+1), or with mssim_unix --mssim path=S
  // (command socket S, platform socket S.ctrl, as tpm2-tss' mssim:path=S connects).
  bool mssim = false;
  std::string flags = "not-need-init,startup-clear";  // empty: no --flags (waits for CMD_INIT)
  bool mssim_unix = false;
};

class RunningDaemon {
 public:
  RunningDaemon(const Daemon& d, const fs::path& dir, bool tcp, const std::string& extra_flags)
      : RunningDaemon(d, dir,
                      Endpoints{tcp ? Endpoints::Data::kTcp : Endpoints::Data::kUnix, false, false,
                                extra_flags}) {}
  RunningDaemon(const Daemon& d, const fs::path& dir, const Endpoints& e) : endpoints_(e) {
    fs::create_directories(dir / "state");
    std::vector<std::string> argv = d.argv0;
    data_path_ = (dir / "tpm.sock").string();
    ctrl_path_ = data_path_ + ".ctrl";
    argv.insert(argv.end(),
                {"--tpm2", "--tpmstate", "dir=" + (dir / "state").string() + d.tpmstate_options});
    if (!e.flags.empty()) argv.insert(argv.end(), {"--flags", e.flags});
    if (e.data == Endpoints::Data::kTcp) {
      port_ = e.ctrl_tcp ? FreePortPair() : FreePort();
      argv.insert(argv.end(), {"--server", "type=tcp,port=" + std::to_string(port_)});
    } else if (e.data == Endpoints::Data::kUnix) {
      argv.insert(argv.end(), {"--server", "type=unixio,path=" + data_path_});
    }
    if (e.ctrl_tcp) {
      ctrl_port_ = port_ ? static_cast<uint16_t>(port_ + 1) : FreePort();
      argv.insert(argv.end(), {"--ctrl", "type=tcp,port=" + std::to_string(ctrl_port_)});
    } else {
      argv.insert(argv.end(), {"--ctrl", "type=unixio,path=" + ctrl_path_});
    }
    if (e.mssim && e.mssim_unix) {
      mssim_path_ = (dir / "sim").string();
      argv.insert(argv.end(), {"--mssim", "path=" + mssim_path_});
    } else if (e.mssim) {
      mssim_port_ = FreePortPair();
      argv.insert(argv.end(), {"--mssim", "port=" + std::to_string(mssim_port_)});
    }
    child_ = Child(argv, d.cpus);
  }
  // Connects to the data channel, retrying until the daemon listens (bounded).
  UniqueFd Connect(Clock::duration timeout = std::chrono::seconds(10)) {
    auto end = Clock::now() + timeout;
    while (Clock::now() < end) {
      auto fd = port_ ? ConnectTcp(port_) : ConnectUnix(data_path_);
      if (fd) return std::move(*fd);
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
    Die("daemon did not start listening");
  }
  // Waits (bounded) until every channel accepts a connection.
  void WaitReady() {
    auto end = Clock::now() + std::chrono::seconds(10);
    auto wait = [&](const std::function<std::optional<UniqueFd>()>& connect, const char* what) {
      while (!connect()) {
        if (Clock::now() > end) Die(std::string("daemon did not start listening on its ") + what);
        std::this_thread::sleep_for(std::chrono::microseconds(200));
      }
    };
    wait([&] { return ctrl_port_ ? ConnectTcp(ctrl_port_) : ConnectUnix(ctrl_path_); }, "control");
    if (endpoints_.data != Endpoints::Data::kNone) {
      wait([&] { return port_ ? ConnectTcp(port_) : ConnectUnix(data_path_); }, "data channel");
    }
    if (endpoints_.mssim && endpoints_.mssim_unix) {
      wait([&] { return ConnectUnix(mssim_path_); }, "MS-simulator command socket");
      wait([&] { return ConnectUnix(mssim_path_ + ".ctrl"); }, "MS-simulator platform socket");
    } else if (endpoints_.mssim) {
      wait([&] { return ConnectTcp(mssim_port_); }, "MS-simulator command port");
      wait([&] { return ConnectTcp(static_cast<uint16_t>(mssim_port_ + 1)); },
           "MS-simulator platform port");
    }
  }
  pid_t pid() const { return child_.pid(); }
  const std::string& data_path() const { return data_path_; }
  const std::string& ctrl_path() const { return ctrl_path_; }
  uint16_t port() const { return port_; }
  uint16_t mssim_port() const { return mssim_port_; }
  const std::string& mssim_path() const { return mssim_path_; }

 private:
  Endpoints endpoints_;
  Child child_;
  std::string data_path_, ctrl_path_, mssim_path_;
  uint16_t port_ = 0, ctrl_port_ = 0, mssim_port_ = 0;
};

// ---- measurements ---------------------------------------------------------------------------

// Row names of the "clients" section.
constexpr const char* kEsysGetRandom = "ESYS: Esys_GetRandom(8)";
constexpr const char* kEsysPcrRead = "ESYS: Esys_PCR_Read(sha256:0)";
constexpr const char* kToolGetRandom = "tpm2-tools: tpm2_getrandom 8";
constexpr const char* kToolPcrRead = "tpm2-tools: tpm2_pcrread sha256:0";
// swtpm 0.7.1 has no MS-simulator platform endpoint, so the mssim TCTI runs against vtpm only.
constexpr const char* kMssimSwtpmNote =
    "swtpm 0.7.1 has no MS-simulator platform endpoint (against `--server type=unixio,path=P`, "
    "P.ctrl is its control channel and the TCTI's MS_SIM_NV_ON fails there): the mssim rows are "
    "vtpm's, compared above with vtpm's own swtpm-TCTI figure on the same transport.";

struct Row {
  std::string section, command, transport, subject;
  Stats s;
  std::string note;
  std::string placement;        // where client and daemons ran; Report::Add fills it in
  std::vector<double> samples;  // every measurement (µs), for --samples; empty for memory
};

// A row of measured times: summary and raw samples.
Row Sampled(std::string section, std::string command, std::string transport, std::string subject,
            std::vector<double> times, std::string note = "") {
  Stats s = Summarize(times);
  return {std::move(section),
          std::move(command),
          std::move(transport),
          std::move(subject),
          s,
          std::move(note),
          "",
          std::move(times)};
}

// Placements: "cross-cpu" (client on one CPU, daemons and peers on another: the default),
// "same-cpu" (all on the client's CPU), "unpinned" (--no-pin, or a single CPU).
class Report {
 public:
  explicit Report(std::string placement) : main_(placement), current_(std::move(placement)) {}
  // Rows added from now on are stamped with |placement|.
  void SetPlacement(const std::string& placement) { current_ = placement; }
  const std::string& main_placement() const { return main_; }
  const std::string& placement() const { return current_; }
  void Add(Row r) {
    if (r.placement.empty()) r.placement = current_;
    rows_.push_back(std::move(r));
  }
  const std::vector<Row>& rows() const { return rows_; }
  // |placement| empty: the main placement.
  const Row* Find(const std::string& cmd, const std::string& transport, const std::string& subject,
                  const std::string& placement = "") const {
    const std::string& p = placement.empty() ? main_ : placement;
    for (const auto& r : rows_) {
      if (r.command == cmd && r.transport == transport && r.subject == subject &&
          r.placement == p) {
        return &r;
      }
    }
    return nullptr;
  }

 private:
  std::string main_, current_;
  std::vector<Row> rows_;
};

struct Options {
  std::string vtpm;
  int scale = 1;  // iteration multiplier; --quick divides
  bool quick = false;
  std::string csv;
  int instances = 50;
  std::string floor;        // bench/startup_floor (default: next to this program)
  std::string esys_client;  // bench/vtpm_esys_client (default: next to this program)
  std::string samples;      // --samples FILE: every raw sample
  Cpus cpus;                // see Cpus; set in main()
  bool pin = true;
  std::string only;  // comma-separated sections to run; empty = all
  bool Runs(const std::string& section) const {
    return only.empty() || ("," + only + ",").find("," + section + ",") != std::string::npos;
  }
};

int Iterations(const BenchCommand& c, const Options& o) {
  int n = 2000;
  if (c.name.find("CreatePrimary RSA") != std::string::npos)
    n = 6;
  else if (c.name.find("CreatePrimary") != std::string::npos)
    n = 60;
  else if (c.name.find("RSASSA") != std::string::npos)
    n = 200;
  else if (c.name.find("ECDSA") != std::string::npos)
    n = 400;
  if (o.quick) n = std::max(2, n / 10);
  return n * o.scale;
}

// The ping-pong floor measured interleaved with |command| (see MeasureCommands).
std::string PairedPingPongName(const std::string& command) {
  return "ping-pong 12/44 B, paired with " + command;
}

// Creates the signing keys once per connection and returns their handles.
std::pair<uint32_t, uint32_t> MakeSigningKeys(int fd, bool mssim) {
  uint32_t h[2];
  for (int rsa = 0; rsa < 2; ++rsa) {
    BenchCommand c = CreatePrimary(rsa != 0);
    Bytes r = Transact(fd, c.bytes, mssim);
    Check("setup", c, r);
    h[rsa] = ObjectHandle(r);
  }
  return {h[0], h[1]};
}

// The commands of |t| against each daemon, paired and alternating; with |cheap_only| only
// GetRandom(32), PCR_Read and PCR_Extend. The daemons' CPUs (and the ping-pong peer's) are those
// in |daemons|; the rows get the report's current placement.
void MeasureCommands(const std::vector<Daemon>& daemons, const Transport& t, const Options& o,
                     const fs::path& work, Report& report, bool cheap_only = false) {
  std::vector<std::unique_ptr<RunningDaemon>> running;
  std::vector<UniqueFd> conns;
  std::vector<std::pair<uint32_t, uint32_t>> keys;
  const std::string suffix = cheap_only ? "-" + t.name + "-cheap" : "-" + t.name;
  for (size_t i = 0; i < daemons.size(); ++i) {
    running.push_back(std::make_unique<RunningDaemon>(daemons[i], work / (daemons[i].name + suffix),
                                                      t.tcp, "not-need-init,startup-clear"));
    conns.push_back(running.back()->Connect());
    if (!cheap_only) keys.push_back(MakeSigningKeys(conns.back().get(), t.mssim_prefix));
  }
  std::vector<std::function<BenchCommand(size_t)>> cmds = {
      [](size_t) { return GetRandom(32); },
      [](size_t) { return PcrRead(); },
      [](size_t) { return PcrExtend(); },
  };
  if (!cheap_only) {
    cmds.insert(cmds.end(), {
                                [](size_t) { return CreatePrimary(false); },
                                [](size_t) { return CreatePrimary(true); },
                                [&](size_t d) { return Sign(keys[d].first, false); },
                                [&](size_t d) { return Sign(keys[d].second, true); },
                            });
  }
  // The transport floor, interleaved with the cheap commands so that it sees the same machine
  // load as the daemons (their overhead is compared with it).
  std::optional<PingPongPeer> peer;
  if (!t.mssim_prefix) peer.emplace(t.tcp, daemons.front().cpus);
  for (const auto& make : cmds) {
    BenchCommand probe = make(0);
    // RSA primary generation costs the same whatever the transport: measure it on one.
    if (probe.name.find("CreatePrimary RSA") != std::string::npos && t.name != "unix") continue;
    int n = Iterations(probe, o);
    const bool cheap = probe.name.find("CreatePrimary") == std::string::npos &&
                       probe.name.find("Sign") == std::string::npos;
    Progress(t.name + " (" + report.placement() + "): " + probe.name + " x" + std::to_string(n));
    std::vector<std::vector<double>> times(daemons.size());
    std::vector<double> pingpong;
    for (int i = 0; i < n; ++i) {
      if (peer && cheap) pingpong.push_back(peer->RoundTrip());
      for (size_t k = 0; k < daemons.size(); ++k) {
        size_t d = (static_cast<size_t>(i) + k) % daemons.size();  // alternate who goes first
        BenchCommand c = make(d);
        Clock::time_point t0, t1;
        Bytes r;
        for (int attempt = 0; attempt < 5; ++attempt) {  // TPM_RC_RETRY: resend, as a TSS does
          t0 = Clock::now();
          r = Transact(conns[d].get(), c.bytes, t.mssim_prefix);
          t1 = Clock::now();
          if (!IsRetry(r)) break;
        }
        Check(daemons[d].name, c, r);
        times[d].push_back(Micros(t1 - t0));
        if (c.flush_handle) {
          BenchCommand f = FlushContext(ObjectHandle(r));
          Check(daemons[d].name, f, Transact(conns[d].get(), f.bytes, t.mssim_prefix));
        }
      }
    }
    for (size_t d = 0; d < daemons.size(); ++d) {
      report.Add(Sampled("command", probe.name, t.name, daemons[d].name, std::move(times[d])));
    }
    if (!pingpong.empty()) {
      report.Add(
          Sampled("floor", PairedPingPongName(probe.name), t.name, "socket", std::move(pingpong)));
    }
  }
}

// The same command bytes through libtpms in this process.
void MeasureInProcess(const Options& o, const fs::path& work, Report& report) {
  fs::create_directories(work / "inproc");
  state::DirStoreOptions so;
  so.directory = (work / "inproc").string();
  auto store = state::DirStore::Open(so, NullLogger());
  if (!store) Die(store.error().message);
  engine::EngineOptions eo;
  auto eng = engine::Engine::Create(eo, store->get(), NullLogger());
  if (!eng) Die(eng.error().message);
  if (!(*eng)->Start(false)) Die("in-process engine did not start");
  auto run = [&](const Bytes& b) {
    Bytes copy = b;
    ByteSpan r = (*eng)->Process(copy);
    return Bytes(r.begin(), r.end());
  };
  run(Startup().bytes);
  uint32_t ecc = ObjectHandle(run(CreatePrimary(false).bytes));
  uint32_t rsa = ObjectHandle(run(CreatePrimary(true).bytes));
  std::vector<BenchCommand> cmds = {GetRandom(32),        PcrRead(),           PcrExtend(),
                                    CreatePrimary(false), CreatePrimary(true), Sign(ecc, false),
                                    Sign(rsa, true)};
  for (const auto& c : cmds) {
    int n = Iterations(c, o);
    std::vector<double> times;
    for (int i = 0; i < n; ++i) {
      Clock::time_point t0, t1;
      Bytes resp;
      for (int attempt = 0; attempt < 5; ++attempt) {
        Bytes copy = c.bytes;  // libtpms may modify the command in place
        t0 = Clock::now();
        ByteSpan r = (*eng)->Process(copy);
        t1 = Clock::now();
        resp.assign(r.begin(), r.end());
        if (!IsRetry(resp)) break;
      }
      Check("libtpms", c, resp);
      times.push_back(Micros(t1 - t0));
      if (c.flush_handle) run(FlushContext(ObjectHandle(resp)).bytes);
    }
    report.Add(Sampled("floor", c.name, "in-process", "libtpms", std::move(times)));
  }
}

void MeasurePingPong(const Options& o, bool tcp, Report& report) {
  PingPongPeer peer(tcp, o.cpus);
  int n = 20000 / (o.quick ? 10 : 1) * o.scale;
  std::vector<double> times;
  for (int i = 0; i < n; ++i) times.push_back(peer.RoundTrip());
  report.Add(
      Sampled("floor", "ping-pong 12/44 B", tcp ? "tcp" : "unix", "socket", std::move(times)));
}

// Placements: the cheap commands and their interleaved ping-pong with client, daemons and peer
// all on the client's CPU (no cross-CPU wake-up; the daemon and the client take turns).
void MeasureSameCpu(const std::vector<Daemon>& daemons, const Options& o, const fs::path& work,
                    Report& report) {
  std::vector<Daemon> same = daemons;
  for (Daemon& d : same) d.cpus = {o.cpus.client, o.cpus.client};
  for (const Transport& t : {Transport{"unix", false, false}, Transport{"tcp", true, false}}) {
    MeasureCommands(same, t, o, work / "same-cpu", report, /*cheap_only=*/true);
  }
}

// The device path: TPM2_GetRandom(32) through the TIS registers (bench/tis_driver.h, Linux's
// access pattern) with each backend -- the engine in process on a worker thread, and a
// SwtpmSocketBackend driving each daemon as QEMU does (control socket, data channel over a
// socketpair handed over with CMD_SET_DATAFD, CMD_INIT). Paired and alternating. The polling
// thread (the "vCPU") is this one on the client CPU; backend threads and daemons are on the server
// CPU.
void MeasureDevice(const std::vector<Daemon>& daemons, const Options& o, const fs::path& work,
                   Report& report) {
  struct Subject {
    std::string name;
    std::unique_ptr<RunningDaemon> daemon;  // destroyed last
    std::unique_ptr<device::TpmBackend> backend;
    std::unique_ptr<device::Tis> tis;
    std::unique_ptr<TisDriver> driver;  // destroyed first
  };
  std::vector<Subject> subjects(daemons.size() + 1);
  subjects[0].name = "in-process";
  for (size_t i = 0; i < daemons.size(); ++i) {
    Subject& s = subjects[i + 1];
    s.name = daemons[i].name + " socket";
    s.daemon = std::make_unique<RunningDaemon>(
        daemons[i], work / (daemons[i].name + "-device"),
        Endpoints{Endpoints::Data::kNone, false, false, ""});  // as QEMU starts it
    s.daemon->WaitReady();
  }
  {
    OnServerCpu on_server(o.cpus);  // the backends' threads inherit the server CPU
    fs::create_directories(work / "device-inproc");
    state::DirStoreOptions so;
    so.directory = (work / "device-inproc").string();
    auto store = state::DirStore::Open(so, NullLogger());
    if (!store) Die(store.error().message);
    auto b = backend::InProcessBackend::Create(std::move(*store), {}, NullLogger());
    if (!b) Die("in-process backend: " + b.error().message);
    subjects[0].backend = std::move(*b);
    for (size_t i = 1; i < subjects.size(); ++i) {
      backend::SwtpmSocketOptions bo;
      bo.ctrl_path = subjects[i].daemon->ctrl_path();
      auto sb = backend::SwtpmSocketBackend::Create(bo, NullLogger());
      if (!sb) Die(subjects[i].name + " backend: " + sb.error().message);
      subjects[i].backend = std::move(*sb);
    }
  }
  for (Subject& s : subjects) {
    auto tis = device::Tis::Create({}, {s.backend.get(), nullptr, {}});
    if (!tis) Die("TIS: " + tis.error().message);
    s.tis = std::move(*tis);
    s.driver = std::make_unique<TisDriver>(*s.tis);
    s.driver->RequestLocality();
    Check(s.name, Startup(), s.driver->Transact(Startup().bytes));
    s.driver->ResetCounters();
  }
  const BenchCommand cmd = GetRandom(32);
  const int n = Iterations(cmd, o);
  Progress("device: " + cmd.name + " through the TIS registers x" + std::to_string(n));
  std::vector<std::vector<double>> times(subjects.size());
  for (int i = 0; i < n; ++i) {
    for (size_t k = 0; k < subjects.size(); ++k) {
      const size_t d = (static_cast<size_t>(i) + k) % subjects.size();
      auto t0 = Clock::now();
      Bytes r = subjects[d].driver->Transact(cmd.bytes);
      auto t1 = Clock::now();
      Check(subjects[d].name + " via TIS", cmd, r);
      times[d].push_back(Micros(t1 - t0));
    }
  }
  for (size_t d = 0; d < subjects.size(); ++d) {
    report.Add(Sampled("device", cmd.name + " via TIS", "tis", subjects[d].name,
                       std::move(times[d]),
                       fmt::format("{:.1f} MMIO accesses/command, {:.0f} STS polls/command",
                                   subjects[d].driver->accesses_per_command(),
                                   subjects[d].driver->polls_per_command())));
  }
}

// ---- real clients -----------------------------------------------------------------------------

// One client TCTI configuration against one daemon.
struct ClientTcti {
  std::string label;    // "swtpm TCTI, UNIX" / "swtpm TCTI, TCP" / "mssim TCTI, TCP"
  std::string conf;     // tpm2-tss TCTI configuration
  std::string subject;  // daemon name
};

// This process's environment with |var|=|value| set.
std::vector<std::string> EnvWith(const std::string& var, const std::string& value) {
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    if (std::string_view(*e).starts_with(var + "=")) continue;
    env.emplace_back(*e);
  }
  env.push_back(var + "=" + value);
  return env;
}

struct ClientRun {
  bool ok = false;  // exited with status 0
  std::string out;  // stdout
  std::string err;  // stderr (the last 2000 bytes)
  double micros = 0;
};

// Runs |argv| on the client CPU and waits for it; the time is spawn to exit (process start, the
// TCTI's connection set-up and the commands).
ClientRun RunClient(const std::vector<std::string>& argv, const std::vector<std::string>* env,
                    const Options& o, const fs::path& err_file) {
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) Die("pipe2");
  UniqueFd rd(p[0]), wr(p[1]);
  UniqueFd err(open(err_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  ClientRun r;
  auto t0 = Clock::now();
  Child child(argv, o.cpus, SpawnOptions{true, wr.get(), err.get(), env});
  wr.reset();
  char buf[4096];
  ssize_t got;
  while ((got = read(rd.get(), buf, sizeof(buf))) > 0) r.out.append(buf, static_cast<size_t>(got));
  r.ok = child.Wait();
  r.micros = Micros(Clock::now() - t0);
  std::ifstream ef(err_file);
  r.err.assign(std::istreambuf_iterator<char>(ef), {});
  if (r.err.size() > 2000) r.err = r.err.substr(r.err.size() - 2000);
  return r;
}

// tpm2_pcrread sha256:0 prints "  sha256:\n    0 : 0x<64 hex digits>".
bool HasSha256Pcr0(const std::string& out) {
  size_t at = out.find("sha256:");
  if (at == std::string::npos) return false;
  at = out.find("0 : 0x", at);
  if (at == std::string::npos || out.size() < at + 6 + 64) return false;
  return std::all_of(out.begin() + static_cast<long>(at + 6),
                     out.begin() + static_cast<long>(at + 6 + 64),
                     [](char c) { return std::isxdigit(static_cast<unsigned char>(c)) != 0; });
}

bool OnPath(const std::string& tool) {
  const char* path = std::getenv("PATH");
  std::string_view rest = path != nullptr ? path : "/usr/bin:/bin";
  while (!rest.empty()) {
    size_t colon = rest.find(':');
    fs::path dir(std::string(rest.substr(0, colon)));
    if (access((dir / tool).c_str(), X_OK) == 0) return true;
    rest = colon == std::string_view::npos ? "" : rest.substr(colon + 1);
  }
  return false;
}

// Real clients through tpm2-tss TCTIs (issue 11): tpm2-tools, one process per command (start
// included), and vtpm_esys_client, one process sending many commands through ESYS. Each against
// vtpm and swtpm through the swtpm TCTI over UNIX (swtpm:path=D, control D.ctrl) and TCP
// (swtpm:host=127.0.0.1,port=P, control P+1), and against vtpm through the mssim TCTI over UNIX
// (mssim:path=S, platform S.ctrl) and TCP (mssim:host=127.0.0.1,port=M, platform port M+1;
// swtpm 0.7.1 has no platform port). All TCTIs
// alternate command by command. The clients run on the client CPU, the daemons on the server CPU.
void MeasureClients(const std::vector<Daemon>& daemons, const Options& o, const fs::path& work,
                    Report& report) {
  for (const char* tool : {"tpm2_getrandom", "tpm2_pcrread"}) {
    if (!OnPath(tool)) Die(std::string(tool) + " not found: install tpm2-tools (./dev.sh setup)");
  }
  if (access(o.esys_client.c_str(), X_OK) != 0) {
    Die(o.esys_client + " not found: build the vtpm_esys_client target (needs libtss2-dev)");
  }
  std::vector<std::unique_ptr<RunningDaemon>> running;
  std::vector<ClientTcti> tctis;
  for (bool tcp : {false, true}) {
    for (const Daemon& d : daemons) {
      Endpoints e;
      e.data = tcp ? Endpoints::Data::kTcp : Endpoints::Data::kUnix;
      e.ctrl_tcp = tcp;
      e.mssim = d.name == "vtpm";
      e.mssim_unix = !tcp;
      running.push_back(std::make_unique<RunningDaemon>(
          d, work / (d.name + (tcp ? "-clients-tcp" : "-clients-unix")), e));
      RunningDaemon& r = *running.back();
      r.WaitReady();
      if (tcp) {
        tctis.push_back(
            {"swtpm TCTI, TCP", fmt::format("swtpm:host=127.0.0.1,port={}", r.port()), d.name});
      } else {
        tctis.push_back({"swtpm TCTI, UNIX", "swtpm:path=" + r.data_path(), d.name});
      }
      if (e.mssim && e.mssim_unix) {
        tctis.push_back({"mssim TCTI, UNIX", "mssim:path=" + r.mssim_path(), d.name});
      } else if (e.mssim) {
        tctis.push_back({"mssim TCTI, TCP",
                         fmt::format("mssim:host=127.0.0.1,port={}", r.mssim_port()), d.name});
      }
    }
  }
  const fs::path err_file = work / "client.stderr";

  // vtpm_esys_client: all TCTIs in one process, alternating command by command.
  const int rounds = (o.quick ? 30 : 300) * o.scale;
  Progress(fmt::format("clients: vtpm_esys_client, GetRandom + PCR_Read x{} through {} TCTIs",
                       rounds, tctis.size()));
  std::vector<std::string> argv = {o.esys_client, "-n", std::to_string(rounds)};
  for (const auto& t : tctis) argv.push_back(t.conf);
  ClientRun esys = RunClient(argv, nullptr, o, err_file);
  if (!esys.ok) Die("vtpm_esys_client failed: " + esys.err);
  std::map<std::pair<size_t, std::string>, std::vector<double>> esys_times;
  {
    std::istringstream in(esys.out);
    std::string line;
    while (std::getline(in, line)) {
      if (line.empty() || line[0] == '#') continue;
      std::istringstream f(line);
      size_t idx;
      std::string cmd;
      double us;
      if (!(f >> idx >> cmd >> us) || idx >= tctis.size()) Die("vtpm_esys_client: " + line);
      esys_times[{idx, cmd}].push_back(us);
    }
  }
  for (const auto& [cmd, name] : {std::pair<std::string, std::string>{"getrandom", kEsysGetRandom},
                                  {"pcrread", kEsysPcrRead}}) {
    for (size_t t = 0; t < tctis.size(); ++t) {
      auto& v = esys_times[{t, cmd}];
      if (v.size() != static_cast<size_t>(rounds)) {
        Die(fmt::format("vtpm_esys_client: {} samples of {} for {}, expected {}", v.size(), cmd,
                        tctis[t].conf, rounds));
      }
      report.Add(Sampled("clients", name, tctis[t].label, tctis[t].subject, std::move(v)));
    }
  }

  // tpm2-tools: one process per command, alternating TCTIs.
  struct Tool {
    std::string name;
    std::vector<std::string> argv;
    std::function<bool(const std::string&)> ok;
  };
  const std::vector<Tool> tools = {
      {kToolGetRandom,
       {"tpm2_getrandom", "8"},
       [](const std::string& out) { return out.size() == 8; }},
      {kToolPcrRead, {"tpm2_pcrread", "sha256:0"}, HasSha256Pcr0},
  };
  std::vector<std::vector<std::string>> envs;
  for (const auto& t : tctis) envs.push_back(EnvWith("TPM2TOOLS_TCTI", t.conf));
  const int n = (o.quick ? 10 : 50) * o.scale;
  for (const Tool& tool : tools) {
    Progress(fmt::format("clients: {} x{} through {} TCTIs", tool.name, n, tctis.size()));
    std::vector<std::vector<double>> times(tctis.size());
    for (int i = 0; i < n; ++i) {
      for (size_t k = 0; k < tctis.size(); ++k) {
        const size_t t = (static_cast<size_t>(i) + k) % tctis.size();
        ClientRun r = RunClient(tool.argv, &envs[t], o, err_file);
        if (!r.ok || !tool.ok(r.out)) {
          Die(fmt::format("{} through {} ({}) failed ({} bytes of output): {}", tool.name,
                          tctis[t].conf, tctis[t].subject, r.out.size(), r.err));
        }
        times[t].push_back(r.micros);
      }
    }
    for (size_t t = 0; t < tctis.size(); ++t) {
      report.Add(
          Sampled("clients", tool.name, tctis[t].label, tctis[t].subject, std::move(times[t])));
    }
  }
}

// Runs bench/startup_floor on |state| and returns the microseconds from spawn until its
// TPM2_Startup response is read from its stdout.
double TimeFloor(const std::string& floor, const fs::path& state, const Cpus& cpus) {
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) Die("pipe2");
  UniqueFd rd(p[0]), wr(p[1]);
  auto t0 = Clock::now();
  Child child({floor, state.string()}, cpus, wr.get());
  wr.reset();
  Bytes resp(10);
  bool ok = ReadAll(rd.get(), resp.data(), resp.size());
  auto t1 = Clock::now();
  if (!child.Wait() || !ok) Die(floor + " failed on " + state.string());
  Check("startup_floor", Startup(), resp);
  return Micros(t1 - t0);
}

// Process start until TPM2_Startup answers, from an existing state; and the floor for it
// (startup_floor on vtpm's state directory), all interleaved.
void MeasureStartup(const std::vector<Daemon>& daemons, const Options& o, const fs::path& work,
                    Report& report) {
  int n = o.quick ? 5 : 30;
  std::vector<std::vector<double>> times(daemons.size() + 1);
  const BenchCommand startup = Startup();
  for (size_t d = 0; d < daemons.size(); ++d) {  // make the state once
    RunningDaemon r(daemons[d], work / (daemons[d].name + "-startup"), false, "not-need-init");
    UniqueFd fd = r.Connect();
    Check(daemons[d].name, startup, Transact(fd.get(), startup.bytes, false));
  }
  const fs::path floor_state = work / (daemons[0].name + "-startup") / "state";
  for (int i = 0; i < n; ++i) {
    for (size_t k = 0; k <= daemons.size(); ++k) {
      size_t d = (static_cast<size_t>(i) + k) % (daemons.size() + 1);
      if (d == daemons.size()) {
        times[d].push_back(TimeFloor(o.floor, floor_state, o.cpus));
        continue;
      }
      auto t0 = Clock::now();
      RunningDaemon r(daemons[d], work / (daemons[d].name + "-startup"), false, "not-need-init");
      UniqueFd fd = r.Connect();
      Bytes resp = Transact(fd.get(), startup.bytes, false);
      auto t1 = Clock::now();
      Check(daemons[d].name, startup, resp);
      times[d].push_back(Micros(t1 - t0));
    }
  }
  for (size_t d = 0; d <= daemons.size(); ++d) {
    report.Add(Sampled("startup", "start to TPM2_Startup answered", "unix",
                       d < daemons.size() ? daemons[d].name : "floor", std::move(times[d])));
  }
}

// Acknowledged state writes: TPM2_NV_Increment, which the TPM answers only after the permanent
// state was stored (vtpm: written and fsync'ed; swtpm 0.7.1: written, never fsync'ed). Paired.
void MeasureWrites(const std::vector<Daemon>& daemons, const Options& o, const fs::path& work,
                   Report& report) {
  constexpr uint32_t kIndex = 0x01500030;
  std::vector<std::unique_ptr<RunningDaemon>> running;
  std::vector<UniqueFd> conns;
  for (const Daemon& d : daemons) {
    running.push_back(std::make_unique<RunningDaemon>(d, work / (d.name + "-writes"), false,
                                                      "not-need-init,startup-clear"));
    conns.push_back(running.back()->Connect());
    BenchCommand def = NvDefineCounter(kIndex);
    Check(d.name, def, Transact(conns.back().get(), def.bytes, false));
  }
  const int n = (o.quick ? 100 : 1000) * o.scale;
  Progress("state writes: NV_Increment x" + std::to_string(n));
  std::vector<std::vector<double>> times(daemons.size());
  const BenchCommand inc = NvIncrement(kIndex);
  for (int i = 0; i < n; ++i) {
    for (size_t k = 0; k < daemons.size(); ++k) {
      const size_t d = (static_cast<size_t>(i) + k) % daemons.size();
      auto t0 = Clock::now();
      Bytes r = Transact(conns[d].get(), inc.bytes, false);
      auto t1 = Clock::now();
      Check(daemons[d].name, inc, r);
      times[d].push_back(Micros(t1 - t0));
    }
  }
  for (size_t d = 0; d < daemons.size(); ++d) {
    report.Add(Sampled("writes", "NV_Increment", "unix", daemons[d].name, std::move(times[d])));
  }
}

struct Memory {
  double rss_kb = 0, pss_kb = 0;
};

Memory ReadMemory(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/smaps_rollup");
  Memory m;
  std::string line;
  while (std::getline(f, line)) {  // "Rss:   6312 kB"
    double* into = line.rfind("Rss:", 0) == 0   ? &m.rss_kb
                   : line.rfind("Pss:", 0) == 0 ? &m.pss_kb
                                                : nullptr;
    if (into != nullptr) *into = std::atof(line.c_str() + 4);
  }
  if (m.rss_kb == 0) Die("cannot read /proc/" + std::to_string(pid) + "/smaps_rollup");
  return m;
}

void MeasureMemory(const std::vector<Daemon>& daemons, const Options& o, const fs::path& work,
                   Report& report) {
  for (const auto& d : daemons) {
    {
      RunningDaemon r(d, work / (d.name + "-mem1"), false, "not-need-init,startup-clear");
      UniqueFd fd = r.Connect();
      Check(d.name, GetRandom(8), Transact(fd.get(), GetRandom(8).bytes, false));
      Memory m = ReadMemory(r.pid());
      report.Add({"memory",
                  "one idle instance",
                  "",
                  d.name,
                  {m.rss_kb, m.pss_kb, 0, 1},
                  "min=RSS kB, median=PSS kB",
                  "",
                  {}});
    }
    std::vector<std::unique_ptr<RunningDaemon>> many;
    auto t0 = Clock::now();
    for (int i = 0; i < o.instances; ++i) {
      many.push_back(std::make_unique<RunningDaemon>(
          d, work / (d.name + "-many-" + std::to_string(i)), false, "not-need-init,startup-clear"));
    }
    for (auto& r : many) {
      UniqueFd fd = r->Connect(std::chrono::seconds(60));
      Check(d.name, GetRandom(8), Transact(fd.get(), GetRandom(8).bytes, false));
    }
    double all_answered_ms = Micros(Clock::now() - t0) / 1000.0;
    Memory sum;
    for (auto& r : many) {
      Memory m = ReadMemory(r->pid());
      sum.rss_kb += m.rss_kb;
      sum.pss_kb += m.pss_kb;
    }
    double n = static_cast<double>(o.instances);
    report.Add({"memory",
                std::to_string(o.instances) + " instances, per instance",
                "",
                d.name,
                {sum.rss_kb / n, sum.pss_kb / n, all_answered_ms, many.size()},
                "min=RSS kB, median=PSS kB, p99=ms until all answered",
                "",
                {}});
  }
}

std::string CsvField(const std::string& v) {
  std::string out = "\"";
  for (char c : v) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

// "unix" for the main placement, "unix (same-cpu)" otherwise.
std::string WithPlacement(const Report& rep, const Row& r) {
  return r.placement == rep.main_placement() ? r.transport : r.transport + " (" + r.placement + ")";
}

bool HasSection(const Report& rep, const std::string& section) {
  return std::any_of(rep.rows().begin(), rep.rows().end(),
                     [&](const Row& r) { return r.section == section; });
}

void PrintCommands(const Report& rep) {
  auto cell = [](double v) { return fmt::format("{:.1f}", v); };
  if (HasSection(rep, "command")) {
    std::printf("## Round trip per command (µs; paired, alternating vtpm/swtpm)\n\n");
    std::printf(
        "| command | transport | vtpm median | swtpm median | vtpm/swtpm | vtpm min | swtpm min | "
        "vtpm p99 | swtpm p99 | n |\n");
    std::printf("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
  }
  for (const auto& r : rep.rows()) {
    if (r.section != "command" || r.subject != "vtpm") continue;
    const Row* s = rep.Find(r.command, r.transport, "swtpm", r.placement);
    if (!s) continue;
    std::printf("| %s | %s | %s | %s | **%.2f** | %s | %s | %s | %s | %zu |\n", r.command.c_str(),
                WithPlacement(rep, r).c_str(), cell(r.s.median).c_str(), cell(s->s.median).c_str(),
                r.s.median / s->s.median, cell(r.s.min).c_str(), cell(s->s.min).c_str(),
                cell(r.s.p99).c_str(), cell(s->s.p99).c_str(), r.s.n);
  }
  if (HasSection(rep, "floor")) {
    std::printf(
        "\n## Floors (µs)\n\n| what | transport | min | median | p99 "
        "|\n|---|---|---:|---:|---:|\n");
  }
  for (const auto& r : rep.rows()) {
    if (r.section != "floor") continue;
    std::printf("| %s | %s | %s | %s | %s |\n", r.command.c_str(), WithPlacement(rep, r).c_str(),
                cell(r.s.min).c_str(), cell(r.s.median).c_str(), cell(r.s.p99).c_str());
  }
  bool header = false;
  for (const std::string& placement : {rep.main_placement(), std::string("same-cpu")}) {
    for (const char* cmd : {"GetRandom(32)", "PCR_Read", "PCR_Extend"}) {
      for (const char* tr : {"unix", "tcp"}) {
        const Row* v = rep.Find(cmd, tr, "vtpm", placement);
        const Row* s = rep.Find(cmd, tr, "swtpm", placement);
        const Row* l = rep.Find(cmd, "in-process", "libtpms");
        const Row* p = rep.Find(PairedPingPongName(cmd), tr, "socket", placement);
        if (p == nullptr) p = rep.Find("ping-pong 12/44 B", tr, "socket", placement);
        if (!v || !s || !l || !p) continue;
        if (!header) {
          std::printf(
              "\n## Daemon overhead above libtpms (median µs) vs the socket ping-pong measured "
              "interleaved with the same command, per placement\n\n");
          std::printf(
              "| placement | command | transport | libtpms | vtpm overhead | swtpm overhead | "
              "ping-pong | vtpm overhead / ping-pong | swtpm overhead / ping-pong |\n"
              "|---|---|---|---:|---:|---:|---:|---:|---:|\n");
          header = true;
        }
        double vo = v->s.median - l->s.median, so = s->s.median - l->s.median;
        std::printf("| %s | %s | %s | %s | %s | %s | %s | **%.2f** | %.2f |\n", placement.c_str(),
                    cmd, tr, cell(l->s.median).c_str(), cell(vo).c_str(), cell(so).c_str(),
                    cell(p->s.median).c_str(), vo / p->s.median, so / p->s.median);
      }
    }
  }
  if (header) {
    std::printf(
        "\n(cross-cpu: client on one CPU, daemons and the ping-pong peer on another; same-cpu: all "
        "on one CPU. Issue 11's target: same-cpu vtpm overhead / ping-pong <= 1.2.)\n");
  }
}

void PrintDevice(const Report& rep) {
  const Row* base = rep.Find("GetRandom(32) via TIS", "tis", "in-process");
  if (base == nullptr) return;
  std::printf(
      "\n## Device path: TPM2_GetRandom(32) through the TIS registers, per backend (µs; paired, "
      "alternating; polling thread on the client CPU, backend threads and daemons on the server "
      "CPU)\n\n");
  std::printf(
      "| backend | median | min | p99 | / in-process | MMIO and polling | n |\n"
      "|---|---:|---:|---:|---:|---|---:|\n");
  for (const char* who : {"in-process", "vtpm socket", "swtpm socket"}) {
    const Row* r = rep.Find("GetRandom(32) via TIS", "tis", who);
    if (r == nullptr) continue;
    std::printf("| %s | %.1f | %.1f | %.1f | %.2f | %s | %zu |\n", who, r->s.median, r->s.min,
                r->s.p99, r->s.median / base->s.median, r->note.c_str(), r->s.n);
  }
  const Row* v = rep.Find("GetRandom(32) via TIS", "tis", "vtpm socket");
  const Row* s = rep.Find("GetRandom(32) via TIS", "tis", "swtpm socket");
  if (v && s) {
    std::printf("\nvtpm socket / swtpm socket: **%.2f** (median)\n", v->s.median / s->s.median);
  }
}

void PrintClients(const Report& rep) {
  if (!HasSection(rep, "clients")) return;
  const std::vector<std::string> labels = {"swtpm TCTI, UNIX", "swtpm TCTI, TCP",
                                           "mssim TCTI, UNIX", "mssim TCTI, TCP"};
  std::printf(
      "\n## Real clients through tpm2-tss TCTIs (per command: median, p99; paired, alternating "
      "TCTIs and daemons)\n\n");
  std::printf(
      "tpm2-tools: one process per command (start, TCTI set-up, command, exit), ms. ESYS: "
      "vtpm_esys_client, one process, many commands, µs per command.\n\n");
  std::printf(
      "| client: command | TCTI | vtpm median | swtpm median | vtpm/swtpm | vtpm p99 | swtpm p99 "
      "| n |\n|---|---|---:|---:|---:|---:|---:|---:|\n");
  for (const char* cmd : {kToolGetRandom, kToolPcrRead, kEsysGetRandom, kEsysPcrRead}) {
    const bool tool = std::string_view(cmd).starts_with("tpm2-tools");
    auto cell = [&](double v) {
      return tool ? fmt::format("{:.2f} ms", v / 1000) : fmt::format("{:.1f} µs", v);
    };
    for (const auto& label : labels) {
      const Row* v = rep.Find(cmd, label, "vtpm");
      const Row* s = rep.Find(cmd, label, "swtpm");
      if (v == nullptr) continue;
      if (s != nullptr) {
        std::printf("| %s | %s | %s | %s | **%.2f** | %s | %s | %zu |\n", cmd, label.c_str(),
                    cell(v->s.median).c_str(), cell(s->s.median).c_str(), v->s.median / s->s.median,
                    cell(v->s.p99).c_str(), cell(s->s.p99).c_str(), v->s.n);
      } else {
        std::printf("| %s | %s | %s | n/a (no MS-sim platform port) | - | %s | - | %zu |\n", cmd,
                    label.c_str(), cell(v->s.median).c_str(), cell(v->s.p99).c_str(), v->s.n);
      }
    }
  }
  std::printf(
      "\n## mssim TCTI vs swtpm TCTI on vtpm (same transport, same daemon; issue 11's target: "
      "<= 1.2 with the ESYS client)\n\n");
  std::printf(
      "| client: command | transport | mssim median | swtpm TCTI median | mssim / swtpm TCTI |\n"
      "|---|---|---:|---:|---:|\n");
  for (const char* cmd : {kToolGetRandom, kToolPcrRead, kEsysGetRandom, kEsysPcrRead}) {
    for (const char* transport : {"UNIX", "TCP"}) {
      const Row* m = rep.Find(cmd, fmt::format("mssim TCTI, {}", transport), "vtpm");
      const Row* w = rep.Find(cmd, fmt::format("swtpm TCTI, {}", transport), "vtpm");
      if (!m || !w) continue;
      const bool tool = std::string_view(cmd).starts_with("tpm2-tools");
      auto cell = [&](double v) {
        return tool ? fmt::format("{:.2f} ms", v / 1000) : fmt::format("{:.1f} µs", v);
      };
      std::printf("| %s | %s | %s | %s | **%.2f** |\n", cmd, transport, cell(m->s.median).c_str(),
                  cell(w->s.median).c_str(), m->s.median / w->s.median);
    }
  }
  std::printf("\n%s\n", kMssimSwtpmNote);
}

void PrintStartupMemoryWrites(const Report& rep) {
  if (HasSection(rep, "startup") || HasSection(rep, "memory")) {
    std::printf(
        "\n## Start-up and memory\n\n| what | vtpm | swtpm | vtpm/swtpm |\n|---|---:|---:|---:|\n");
  }
  for (const auto& r : rep.rows()) {
    if (r.subject != "vtpm" || (r.section != "startup" && r.section != "memory")) continue;
    const Row* s = rep.Find(r.command, r.transport, "swtpm");
    if (!s) continue;
    if (r.section == "startup") {
      std::printf("| %s, median ms (min) | %.2f (%.2f) | %.2f (%.2f) | **%.2f** |\n",
                  r.command.c_str(), r.s.median / 1000, r.s.min / 1000, s->s.median / 1000,
                  s->s.min / 1000, r.s.median / s->s.median);
      if (const Row* nf = rep.Find(r.command, r.transport, "vtpm fsync=false")) {
        std::printf(
            "| %s with --tpmstate fsync=false, median ms (min) | %.2f (%.2f) | %.2f "
            "(%.2f) | **%.2f** |\n",
            r.command.c_str(), nf->s.median / 1000, nf->s.min / 1000, s->s.median / 1000,
            s->s.min / 1000, nf->s.median / s->s.median);
      }
      if (const Row* fl = rep.Find(r.command, r.transport, "floor")) {
        std::printf(
            "| floor: startup_floor (exec, libtpms init from the state, Startup; no socket, no "
            "write), median ms (min) | %.2f (%.2f) | %.2f (%.2f) | **%.2f** |\n",
            fl->s.median / 1000, fl->s.min / 1000, s->s.median / 1000, s->s.min / 1000,
            fl->s.median / s->s.median);
      }
    } else {
      std::printf("| %s: RSS kB | %.0f | %.0f | %.2f |\n", r.command.c_str(), r.s.min, s->s.min,
                  r.s.min / s->s.min);
      std::printf("| %s: PSS kB | %.0f | %.0f | **%.2f** |\n", r.command.c_str(), r.s.median,
                  s->s.median, r.s.median / s->s.median);
      if (r.s.n > 1) {
        std::printf("| %s: ms until all answered | %.0f | %.0f | %.2f |\n", r.command.c_str(),
                    r.s.p99, s->s.p99, r.s.p99 / s->s.p99);
      }
    }
  }
  if (const Row* s = rep.Find("NV_Increment", "unix", "swtpm")) {
    auto cell = [](double v) { return fmt::format("{:.1f}", v); };
    std::printf(
        "\n## Acknowledged state writes (TPM2_NV_Increment over UNIX; paired)\n\n| daemon | "
        "median µs | p99 µs | writes/s (1/median) | vs swtpm |\n|---|---:|---:|---:|---:|\n");
    for (const char* who : {"vtpm", "vtpm fsync=false", "swtpm"}) {
      const Row* r = rep.Find("NV_Increment", "unix", who);
      if (r == nullptr) continue;
      std::printf("| %s | %s | %s | %.0f | **%.2f** |\n", who, cell(r->s.median).c_str(),
                  cell(r->s.p99).c_str(), 1e6 / r->s.median, s->s.median / r->s.median);
    }
    std::printf(
        "\n(vtpm makes each write durable -- one fsync on ext4/xfs/btrfs -- before it answers; "
        "swtpm 0.7.1 never syncs. \"vs swtpm\" is writes/s relative to swtpm's.)\n");
  }
}

void Print(const Report& rep, const Options& o) {
  PrintCommands(rep);
  PrintDevice(rep);
  PrintClients(rep);
  PrintStartupMemoryWrites(rep);
  if (!o.csv.empty()) {
    std::ofstream csv(o.csv);
    csv << "section,command,transport,placement,subject,min,median,p99,n,note\n";
    for (const auto& r : rep.rows()) {
      csv << r.section << ',' << CsvField(r.command) << ',' << CsvField(r.transport) << ','
          << r.placement << ',' << CsvField(r.subject) << ',' << r.s.min << ',' << r.s.median << ','
          << r.s.p99 << ',' << r.s.n << ',' << CsvField(r.note) << '\n';
    }
    if (!csv) Die("cannot write " + o.csv);
    std::printf("\nCSV: %s\n", o.csv.c_str());
  }
  if (!o.samples.empty()) {
    std::ofstream csv(o.samples);
    csv << "section,command,transport,placement,subject,us\n";
    for (const auto& r : rep.rows()) {
      const std::string key = r.section + ',' + CsvField(r.command) + ',' + CsvField(r.transport) +
                              ',' + r.placement + ',' + CsvField(r.subject) + ',';
      for (double v : r.samples) csv << key << v << '\n';
    }
    if (!csv) Die("cannot write " + o.samples);
    std::printf("Samples: %s\n", o.samples.c_str());
  }
}

constexpr const char* kUsage = R"(usage: vtpm_compare --vtpm PATH [options]

Measures vtpm against Debian's swtpm in one run, side by side (paired, alternating), next to the
floors (libtpms in process, a socket ping-pong); prints markdown tables on stdout.

Options:
  --vtpm PATH         the vtpm binary to measure (required)
  --quick             about a tenth of the iterations (for trying things, not for figures)
  --csv FILE          one row per measured series (min, median, p99, n)
  --samples FILE      every raw sample in microseconds (bench/plot.py draws them)
  --instances N       instances started at once in the memory section (default 50)
  --only LIST         run only these sections, comma-separated (default: all)
  --no-pin            let the scheduler place client and daemons (default: this program on
                      CPU 0, daemons/peers/startup_floor on CPU 1; same-cpu is then skipped)
  --esys-client PATH  vtpm_esys_client (default: next to this program)
  -h, --help          this text

Sections (in the order they run):
  floors    TPM commands through libtpms in process; socket ping-pong (UNIX, TCP)
  commands  round trip per command, UNIX/TCP, raw and with the MS-simulator prefix
            (GetRandom, PCR_Read, PCR_Extend, CreatePrimary ECC/RSA, Sign ECDSA/RSASSA),
            with the ping-pong interleaved with the cheap ones
  same-cpu  GetRandom(32), PCR_Read, PCR_Extend and the ping-pong with client and daemons on
            the same CPU (the other placement)
  device    GetRandom(32) through the TIS registers: in-process, vtpm socket and swtpm socket
            backends
  clients   tpm2-tools (one process per command) and vtpm_esys_client (ESYS, one process)
            through the swtpm TCTI (UNIX, TCP) and the mssim TCTI (UNIX, TCP; vtpm only)
  startup   process start until TPM2_Startup is answered, with its floor (startup_floor)
  writes    acknowledged state writes (TPM2_NV_Increment; vtpm with and without fsync)
  memory    RSS/PSS of one idle instance and of --instances instances
)";

constexpr const char* kSections[] = {"floors",  "same-cpu", "commands", "device",
                                     "clients", "startup",  "writes",   "memory"};

}  // namespace
}  // namespace vtpm::bench

int main(int argc, char** argv) {
  using namespace vtpm::bench;
  Options o;
  auto usage_error = [](const std::string& msg) {
    std::fprintf(stderr, "vtpm_compare: %s\n\n%s", msg.c_str(), kUsage);
    return 2;
  };
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const bool has_value = i + 1 < argc;
    if (a == "-h" || a == "--help") {
      std::fputs(kUsage, stdout);
      return 0;
    } else if (a == "--vtpm" && has_value) {
      o.vtpm = argv[++i];
    } else if (a == "--csv" && has_value) {
      o.csv = argv[++i];
    } else if (a == "--samples" && has_value) {
      o.samples = argv[++i];
    } else if (a == "--quick") {
      o.quick = true;
    } else if (a == "--instances" && has_value) {
      o.instances = std::atoi(argv[++i]);
      if (o.instances < 1) return usage_error("--instances wants a number above 0");
    } else if (a == "--only" && has_value) {
      o.only = argv[++i];
      std::string_view rest = o.only;
      while (!rest.empty()) {
        const std::string_view name = rest.substr(0, rest.find(','));
        if (std::find(std::begin(kSections), std::end(kSections), name) == std::end(kSections)) {
          return usage_error("unknown section '" + std::string(name) + "'");
        }
        rest.remove_prefix(std::min(rest.size(), name.size() + 1));
      }
    } else if (a == "--no-pin") {
      o.pin = false;
    } else if (a == "--esys-client" && has_value) {
      o.esys_client = argv[++i];
    } else {
      return usage_error("unknown or incomplete option '" + a + "'");
    }
  }
  if (o.vtpm.empty()) return usage_error("--vtpm PATH is required");
  const fs::path self_dir = fs::read_symlink("/proc/self/exe").parent_path();
  o.floor = (self_dir / "startup_floor").string();
  if (o.esys_client.empty()) o.esys_client = (self_dir / "vtpm_esys_client").string();
  signal(SIGPIPE, SIG_IGN);
  char tmpl[] = "/tmp/vtpm-bench.XXXXXX";
  if (mkdtemp(tmpl) == nullptr) {
    std::perror("vtpm_compare: mkdtemp");
    return 1;
  }
  fs::path work(tmpl);
  std::vector<Daemon> daemons;
  const bool pinned = o.pin && sysconf(_SC_NPROCESSORS_ONLN) >= 2;
  if (pinned) {
    o.cpus = {0, 1};
    PinTo(o.cpus.client);
    std::fprintf(stderr, "client on CPU 0; daemons, peers and startup_floor on CPU 1\n");
  } else {
    std::fprintf(stderr, "not pinned: the scheduler places client and daemons\n");
  }
  daemons.push_back(Daemon{"vtpm", {o.vtpm, "socket"}, "", o.cpus});
  daemons.push_back(Daemon{"swtpm", {"swtpm", "socket"}, "", o.cpus});
  Report report(pinned ? "cross-cpu" : "unpinned");
  try {
    if (o.Runs("floors")) {
      Progress("in-process libtpms");
      MeasureInProcess(o, work, report);
      Progress("socket ping-pong");
      MeasurePingPong(o, false, report);
      MeasurePingPong(o, true, report);
    }
    if (o.Runs("commands")) {
      for (const Transport& t : {Transport{"unix", false, false}, Transport{"tcp", true, false},
                                 Transport{"unix+mssim-prefix", false, true},
                                 Transport{"tcp+mssim-prefix", true, true}}) {
        MeasureCommands(daemons, t, o, work, report);
      }
    }
    if (o.Runs("same-cpu")) {
      if (pinned) {
        report.SetPlacement("same-cpu");
        MeasureSameCpu(daemons, o, work, report);
        report.SetPlacement(report.main_placement());
      } else {
        Progress("same-cpu: skipped (not pinned)");
      }
    }
    if (o.Runs("device")) MeasureDevice(daemons, o, work, report);
    if (o.Runs("clients")) MeasureClients(daemons, o, work, report);
    if (o.Runs("startup")) {
      Progress("start-up");
      // Also with fsync off: swtpm 0.7.1 never fsyncs, and TPM2_Startup rewrites permall.
      std::vector<Daemon> startup_daemons = daemons;
      startup_daemons.push_back(
          Daemon{"vtpm fsync=false", {o.vtpm, "socket"}, ",fsync=false", o.cpus});
      MeasureStartup(startup_daemons, o, work, report);
    }
    if (o.Runs("writes")) {
      std::vector<Daemon> writers = daemons;
      writers.insert(writers.begin() + 1,
                     Daemon{"vtpm fsync=false", {o.vtpm, "socket"}, ",fsync=false", o.cpus});
      MeasureWrites(writers, o, work, report);
    }
    if (o.Runs("memory")) {
      Progress("memory");
      MeasureMemory(daemons, o, work, report);
    }
    fs::remove_all(work);
    Print(report, o);
  } catch (const Failure& f) {
    std::fprintf(stderr, "vtpm_compare: %s\n", f.message.c_str());
    fs::remove_all(work);
    return 1;
  }
  return 0;
}
