// vtpm_compare: vtpm against Debian's swtpm, and both against the physical floors, in one run.
//
// For each transport (UNIX, TCP; raw and with the MS-simulator command prefix) both daemons run
// side by side and every command is sent to them alternately, so drift in machine load hits both
// alike. Floors measured in the same run: the same command bytes through libtpms in process, and
// a ping-pong of command-sized messages between two processes over the same kind of socket (on
// its own, and interleaved with each cheap command, which is what the daemons' overhead is
// compared with). Also: start-to-first-response next to its floor (bench/startup_floor), RSS/PSS
// of one idle instance and of 50 started at once; acknowledged state writes (NV_Increment, with
// and without vtpm's fsync). --only SECTIONS runs a subset.
// Every response is checked (size and response code): a fast error cannot pass as a result.
//
// Output: a markdown report on stdout and CSV rows in --csv FILE.
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
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "base/bytes.h"
#include "base/log.h"
#include "base/unique_fd.h"
#include "engine/engine.h"
#include "state/dir_store.h"
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

class Child {
 public:
  Child() = default;
  // Starts |argv| on the server CPU with stdout on |stdout_fd| (-1: /dev/null).
  Child(const std::vector<std::string>& argv, const Cpus& cpus, int stdout_fd = -1) {
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    if (stdout_fd >= 0) {
      posix_spawn_file_actions_adddup2(&fa, stdout_fd, 1);
    } else {
      posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    }
    int rc;
    {
      OnServerCpu on_server(cpus);
      rc = posix_spawnp(&pid_, args[0], &fa, nullptr, args.data(), environ);
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

uint16_t FreePort() {
  // Two consecutive free ports (swtpm's TCP data port P, control P+1 is not used here).
  UniqueFd fd(socket(AF_INET, SOCK_STREAM, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a));
  socklen_t len = sizeof(a);
  getsockname(fd.get(), reinterpret_cast<sockaddr*>(&a), &len);
  return ntohs(a.sin_port);
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

void Check(const std::string& who, const BenchCommand& c, const Bytes& r) {
  if (r.size() < 10) Die(who + ": " + c.name + ": no response");
  uint32_t rc = LoadBe32(r.data() + 6);
  if (rc != 0) Die(fmt::format("{}: {} failed with TPM rc 0x{:x}", who, c.name, rc));
  if (LoadBe32(r.data() + 2) != r.size() || (c.response_size && r.size() != c.response_size)) {
    Die(fmt::format("{}: {}: response of {} bytes is malformed", who, c.name, r.size()));
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

class RunningDaemon {
 public:
  RunningDaemon(const Daemon& d, const fs::path& dir, bool tcp, const std::string& extra_flags) {
    fs::create_directories(dir / "state");
    std::vector<std::string> argv = d.argv0;
    data_path_ = (dir / "data").string();
    argv.insert(argv.end(),
                {"--tpm2", "--tpmstate", "dir=" + (dir / "state").string() + d.tpmstate_options,
                 "--ctrl", "type=unixio,path=" + (dir / "ctrl").string(), "--flags", extra_flags});
    if (tcp) {
      port_ = FreePort();
      argv.insert(argv.end(), {"--server", "type=tcp,port=" + std::to_string(port_)});
    } else {
      argv.insert(argv.end(), {"--server", "type=unixio,path=" + data_path_});
    }
    child_ = Child(argv, d.cpus);
  }
  // Connects, retrying until the daemon listens (bounded).
  UniqueFd Connect(Clock::duration timeout = std::chrono::seconds(10)) {
    auto end = Clock::now() + timeout;
    while (Clock::now() < end) {
      auto fd = port_ ? ConnectTcp(port_) : ConnectUnix(data_path_);
      if (fd) return std::move(*fd);
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
    Die("daemon did not start listening");
  }
  pid_t pid() const { return child_.pid(); }

 private:
  Child child_;
  std::string data_path_;
  uint16_t port_ = 0;
};

// ---- measurements ---------------------------------------------------------------------------

struct Row {
  std::string section, command, transport, subject;
  Stats s;
  std::string note;
};

class Report {
 public:
  void Add(Row r) { rows_.push_back(std::move(r)); }
  const std::vector<Row>& rows() const { return rows_; }
  const Row* Find(const std::string& cmd, const std::string& transport,
                  const std::string& subject) const {
    for (const auto& r : rows_) {
      if (r.command == cmd && r.transport == transport && r.subject == subject) return &r;
    }
    return nullptr;
  }

 private:
  std::vector<Row> rows_;
};

struct Options {
  std::string vtpm;
  int scale = 1;  // iteration multiplier; --quick divides
  bool quick = false;
  std::string csv;
  int instances = 50;
  std::string floor;  // bench/startup_floor (default: next to this program)
  Cpus cpus;          // see Cpus; set in main()
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
    h[rsa] = LoadBe32(r.data() + 10);
  }
  return {h[0], h[1]};
}

void MeasureCommands(const std::vector<Daemon>& daemons, const Transport& t, const Options& o,
                     const fs::path& work, Report& report) {
  std::vector<std::unique_ptr<RunningDaemon>> running;
  std::vector<UniqueFd> conns;
  std::vector<std::pair<uint32_t, uint32_t>> keys;
  for (size_t i = 0; i < daemons.size(); ++i) {
    running.push_back(std::make_unique<RunningDaemon>(
        daemons[i], work / (daemons[i].name + "-" + t.name), t.tcp, "not-need-init,startup-clear"));
    conns.push_back(running.back()->Connect());
    keys.push_back(MakeSigningKeys(conns.back().get(), t.mssim_prefix));
  }
  std::vector<std::function<BenchCommand(size_t)>> cmds = {
      [](size_t) { return GetRandom(32); },
      [](size_t) { return PcrRead(); },
      [](size_t) { return PcrExtend(); },
      [](size_t) { return CreatePrimary(false); },
      [](size_t) { return CreatePrimary(true); },
      [&](size_t d) { return Sign(keys[d].first, false); },
      [&](size_t d) { return Sign(keys[d].second, true); },
  };
  // The transport floor, interleaved with the cheap commands so that it sees the same machine
  // load as the daemons (their overhead is compared with it).
  std::optional<PingPongPeer> peer;
  if (!t.mssim_prefix) peer.emplace(t.tcp, o.cpus);
  for (const auto& make : cmds) {
    BenchCommand probe = make(0);
    // RSA primary generation costs the same whatever the transport: measure it on one.
    if (probe.name.find("CreatePrimary RSA") != std::string::npos && t.name != "unix") continue;
    int n = Iterations(probe, o);
    const bool cheap = probe.name.find("CreatePrimary") == std::string::npos &&
                       probe.name.find("Sign") == std::string::npos;
    Progress(t.name + ": " + probe.name + " x" + std::to_string(n));
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
          BenchCommand f{"FlushContext", FlushContext(LoadBe32(r.data() + 10)), 10};
          Check(daemons[d].name, f, Transact(conns[d].get(), f.bytes, t.mssim_prefix));
        }
      }
    }
    for (size_t d = 0; d < daemons.size(); ++d) {
      report.Add({"command", probe.name, t.name, daemons[d].name, Summarize(times[d]), ""});
    }
    if (!pingpong.empty()) {
      report.Add(
          {"floor", PairedPingPongName(probe.name), t.name, "socket", Summarize(pingpong), ""});
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
  run(Startup());
  uint32_t ecc = LoadBe32(run(CreatePrimary(false).bytes).data() + 10);
  uint32_t rsa = LoadBe32(run(CreatePrimary(true).bytes).data() + 10);
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
      if (c.flush_handle) run(FlushContext(LoadBe32(resp.data() + 10)));
    }
    report.Add({"floor", c.name, "in-process", "libtpms", Summarize(times), ""});
  }
}

void MeasurePingPong(const Options& o, bool tcp, Report& report) {
  PingPongPeer peer(tcp, o.cpus);
  int n = 20000 / (o.quick ? 10 : 1) * o.scale;
  std::vector<double> times;
  for (int i = 0; i < n; ++i) times.push_back(peer.RoundTrip());
  report.Add({"floor", "ping-pong 12/44 B", tcp ? "tcp" : "unix", "socket", Summarize(times), ""});
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
  Check("startup_floor", {"Startup", {}, 10}, resp);
  return Micros(t1 - t0);
}

// Process start until TPM2_Startup answers, from an existing state; and the floor for it
// (startup_floor on vtpm's state directory), all interleaved.
void MeasureStartup(const std::vector<Daemon>& daemons, const Options& o, const fs::path& work,
                    Report& report) {
  int n = o.quick ? 5 : 30;
  std::vector<std::vector<double>> times(daemons.size() + 1);
  for (size_t d = 0; d < daemons.size(); ++d) {  // make the state once
    RunningDaemon r(daemons[d], work / (daemons[d].name + "-startup"), false, "not-need-init");
    UniqueFd fd = r.Connect();
    Check(daemons[d].name, {"Startup", {}, 10}, Transact(fd.get(), Startup(), false));
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
      Bytes resp = Transact(fd.get(), Startup(), false);
      auto t1 = Clock::now();
      Check(daemons[d].name, {"Startup", {}, 10}, resp);
      times[d].push_back(Micros(t1 - t0));
    }
  }
  for (size_t d = 0; d <= daemons.size(); ++d) {
    report.Add({"startup", "start to TPM2_Startup answered", "unix",
                d < daemons.size() ? daemons[d].name : "floor", Summarize(times[d]), ""});
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
    report.Add({"writes", "NV_Increment", "unix", daemons[d].name, Summarize(times[d]), ""});
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
                  "min=RSS kB, median=PSS kB"});
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
                "min=RSS kB, median=PSS kB, p99=ms until all answered"});
  }
}

void Print(const Report& rep, const Options& o) {
  auto cell = [](double v) { return fmt::format("{:.1f}", v); };
  std::printf("## Round trip per command (µs; paired, alternating vtpm/swtpm)\n\n");
  std::printf(
      "| command | transport | vtpm median | swtpm median | vtpm/swtpm | vtpm min | swtpm min | "
      "vtpm p99 | swtpm p99 | n |\n");
  std::printf("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
  for (const auto& r : rep.rows()) {
    if (r.section != "command" || r.subject != "vtpm") continue;
    const Row* s = rep.Find(r.command, r.transport, "swtpm");
    if (!s) continue;
    std::printf("| %s | %s | %s | %s | **%.2f** | %s | %s | %s | %s | %zu |\n", r.command.c_str(),
                r.transport.c_str(), cell(r.s.median).c_str(), cell(s->s.median).c_str(),
                r.s.median / s->s.median, cell(r.s.min).c_str(), cell(s->s.min).c_str(),
                cell(r.s.p99).c_str(), cell(s->s.p99).c_str(), r.s.n);
  }
  std::printf(
      "\n## Floors (µs)\n\n| what | transport | min | median | p99 |\n|---|---|---:|---:|---:|\n");
  for (const auto& r : rep.rows()) {
    if (r.section != "floor") continue;
    std::printf("| %s | %s | %s | %s | %s |\n", r.command.c_str(), r.transport.c_str(),
                cell(r.s.min).c_str(), cell(r.s.median).c_str(), cell(r.s.p99).c_str());
  }
  std::printf(
      "\n## Daemon overhead above libtpms (median µs) vs the socket ping-pong measured "
      "interleaved with the same command\n\n");
  std::printf(
      "| command | transport | libtpms | vtpm overhead | swtpm overhead | ping-pong | vtpm "
      "overhead / ping-pong |\n|---|---|---:|---:|---:|---:|---:|\n");
  for (const char* cmd : {"GetRandom(32)", "PCR_Read", "PCR_Extend"}) {
    for (const char* tr : {"unix", "tcp"}) {
      const Row* v = rep.Find(cmd, tr, "vtpm");
      const Row* s = rep.Find(cmd, tr, "swtpm");
      const Row* l = rep.Find(cmd, "in-process", "libtpms");
      const Row* p = rep.Find(PairedPingPongName(cmd), tr, "socket");
      if (p == nullptr) p = rep.Find("ping-pong 12/44 B", tr, "socket");
      if (!v || !s || !l || !p) continue;
      double vo = v->s.median - l->s.median, so = s->s.median - l->s.median;
      std::printf("| %s | %s | %s | %s | %s | %s | **%.2f** |\n", cmd, tr,
                  cell(l->s.median).c_str(), cell(vo).c_str(), cell(so).c_str(),
                  cell(p->s.median).c_str(), vo / p->s.median);
    }
  }
  std::printf(
      "\n## Start-up and memory\n\n| what | vtpm | swtpm | vtpm/swtpm |\n|---|---:|---:|---:|\n");
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
  if (!o.csv.empty()) {
    std::ofstream csv(o.csv);
    csv << "section,command,transport,subject,min,median,p99,n,note\n";
    for (const auto& r : rep.rows()) {
      csv << r.section << ',' << r.command << ',' << r.transport << ',' << r.subject << ','
          << r.s.min << ',' << r.s.median << ',' << r.s.p99 << ',' << r.s.n << ",\"" << r.note
          << "\"\n";
    }
    std::printf("\nCSV: %s\n", o.csv.c_str());
  }
}

}  // namespace
}  // namespace vtpm::bench

int main(int argc, char** argv) {
  using namespace vtpm::bench;
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--vtpm" && i + 1 < argc)
      o.vtpm = argv[++i];
    else if (a == "--csv" && i + 1 < argc)
      o.csv = argv[++i];
    else if (a == "--quick")
      o.quick = true;
    else if (a == "--instances" && i + 1 < argc)
      o.instances = std::atoi(argv[++i]);
    else if (a == "--only" && i + 1 < argc)
      o.only = argv[++i];
    else if (a == "--no-pin")
      o.pin = false;
    else
      Die("usage: vtpm_compare --vtpm PATH [--quick] [--csv FILE] [--instances N]\n"
          "                    [--only floors,commands,startup,writes,memory] [--no-pin]");
  }
  if (o.vtpm.empty()) Die("--vtpm PATH is required");
  o.floor = (fs::read_symlink("/proc/self/exe").parent_path() / "startup_floor").string();
  signal(SIGPIPE, SIG_IGN);
  char tmpl[] = "/tmp/vtpm-bench.XXXXXX";
  if (mkdtemp(tmpl) == nullptr) Die("mkdtemp");
  fs::path work(tmpl);
  std::vector<Daemon> daemons;
  if (o.pin && sysconf(_SC_NPROCESSORS_ONLN) >= 2) {
    o.cpus = {0, 1};
    PinTo(o.cpus.client);
    std::fprintf(stderr, "client on CPU 0; daemons, peers and startup_floor on CPU 1\n");
  } else {
    std::fprintf(stderr, "not pinned: the scheduler places client and daemons\n");
  }
  daemons.push_back(Daemon{"vtpm", {o.vtpm, "socket"}, "", o.cpus});
  daemons.push_back(Daemon{"swtpm", {"swtpm", "socket"}, "", o.cpus});
  Report report;
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
  } catch (const Failure& f) {
    std::fprintf(stderr, "vtpm_compare: %s\n", f.message.c_str());
    fs::remove_all(work);
    return 1;
  }
  fs::remove_all(work);
  Print(report, o);
  return 0;
}
