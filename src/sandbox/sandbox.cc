#include "sandbox/sandbox.h"

#include <cap-ng.h>
#include <fmt/format.h>
#include <grp.h>
#include <pwd.h>
#include <seccomp.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <memory>
#include <vector>

#include "base/options.h"

namespace vtpm::sandbox {
namespace {

// What `vtpm socket` does once it serves (verified by running the integration, reliability and
// e2e suites with action=kill): the event loop and its sockets (accept, read, write, the TCP
// options it sets per connection, closing), the state directory through its descriptor (the
// files, their renames and syncs, the lock, the listing of stale temporaries), its log, memory
// (malloc, libtpms, OpenSSL), randomness (OpenSSL, libtpms, temp-file names), clocks and sleeps
// (lock retries), signals through the signalfd, and exit. Not on it: socket, bind, connect,
// execve, fork/clone, ptrace, io_uring, bpf, mount, keyctl, ioctl, process_vm_*, open_by_handle.
constexpr std::string_view kSocketDaemon[] = {
    // event loop, sockets
    "epoll_wait",
    "epoll_pwait",
    "epoll_ctl",
    "accept4",
    "read",
    "readv",
    "write",
    "writev",
    "recvfrom",
    "recvmsg",
    "sendto",
    "sendmsg",
    "setsockopt",
    "getsockopt",
    "shutdown",
    "close",
    "poll",
    "ppoll",
    // files: the state directory (through its fd), the log, the pid file and sockets at exit
    "openat",
    "newfstatat",
    "fstat",
    "statx",
    "lseek",
    "pread64",
    "pwrite64",
    "fchmod",
    "fsync",
    "fdatasync",
    "renameat",
    "renameat2",
    "linkat",
    "unlinkat",
    "unlink",
    "getdents64",
    "dup",
    "fcntl",
    "fstatfs",
    "dup2",
    "dup3",
    // memory
    "brk",
    "mmap",
    "munmap",
    "mremap",
    "madvise",
    "mprotect",
    // threads' primitives used by libraries, time, randomness, identity
    "futex",
    "clock_gettime",
    "clock_nanosleep",
    "nanosleep",
    "getrandom",
    "getpid",
    "gettid",
    "sched_yield",
    // signals (signalfd; the mask), leaving
    "rt_sigprocmask",
    "rt_sigreturn",
    "restart_syscall",
    "exit",
    "exit_group",
#ifdef VTPM_SANITIZED
    // ASan's allocator asks for the alternate signal stack (harmless: it only names a stack)
    "sigaltstack",
#endif
};

tl::unexpected<Error> Seccomp(std::string_view what, int rc) {
  return Fail(Errc::kIo,
              fmt::format("seccomp: {} failed ({}); run with --seccomp action=none to "
                          "start without the filter",
                          what, std::strerror(-rc)),
              -rc);
}

Result<uint32_t> ParseId(std::string_view s) {
  uint32_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) {
    return Fail(Errc::kInvalidArgument, "not a number");
  }
  return v;
}

}  // namespace

Result<SeccompAction> ParseSeccompOption(std::string_view value) {
  for (const KeyValue& kv : SplitOptions(value)) {
    if (kv.key != "action" || !kv.value) return UnknownOption("--seccomp", kv);
    if (*kv.value == "kill") return SeccompAction::kKill;
    if (*kv.value == "log") return SeccompAction::kLog;
    if (*kv.value == "none") return SeccompAction::kNone;
    return Fail(Errc::kInvalidArgument,
                fmt::format("--seccomp: action={} is not kill, log or none", *kv.value));
  }
  return Fail(Errc::kInvalidArgument, "--seccomp: give action=kill|log|none");
}

SeccompAction DefaultSeccompAction() {
#ifdef VTPM_SANITIZED
  return SeccompAction::kLog;
#else
  return SeccompAction::kKill;
#endif
}

std::span<const std::string_view> AllowedSyscalls(Profile profile) {
  switch (profile) {
    case Profile::kSocketDaemon:
      return kSocketDaemon;
  }
  return {};
}

Result<Credentials> ResolveUser(std::string_view runas) {
  const size_t colon = runas.find(':');
  const std::string user(runas.substr(0, colon));
  const std::optional<std::string> group =
      colon == std::string_view::npos ? std::nullopt
                                      : std::optional<std::string>(runas.substr(colon + 1));
  std::array<char, 16384> buf{};
  passwd pw{};
  passwd* found = nullptr;
  Credentials c;
  if (auto id = ParseId(user)) {
    getpwuid_r(*id, &pw, buf.data(), buf.size(), &found);
    c.uid = *id;
    c.gid = found ? found->pw_gid : *id;
    c.name = found ? found->pw_name : user;
  } else {
    if (getpwnam_r(user.c_str(), &pw, buf.data(), buf.size(), &found) != 0 || !found) {
      return Fail(Errc::kNotFound,
                  fmt::format("--runas: there is no user '{}' on this system", user));
    }
    c.uid = found->pw_uid;
    c.gid = found->pw_gid;
    c.name = found->pw_name;
  }
  if (group) {
    if (auto id = ParseId(*group)) {
      c.gid = *id;
    } else {
      struct group gr {};
      struct group* g = nullptr;
      if (getgrnam_r(group->c_str(), &gr, buf.data(), buf.size(), &g) != 0 || !g) {
        return Fail(Errc::kNotFound,
                    fmt::format("--runas: there is no group '{}' on this system", *group));
      }
      c.gid = g->gr_gid;
    }
  }
  return c;
}

Status ChangeRoot(const std::string& dir) {
  if (::chroot(dir.c_str()) != 0) {
    return SysFail(fmt::format("--chroot {}: chroot failed (it needs root and an existing "
                               "directory)",
                               dir),
                   errno);
  }
  if (::chdir("/") != 0) return SysFail("--chroot: chdir(\"/\") failed", errno);
  return Ok();
}

Status DropPrivileges(const Credentials& creds) {
  if (::getuid() != 0 && ::geteuid() != 0) {
    if (::geteuid() == creds.uid) return Ok();
    return Fail(Errc::kFailedPrecondition,
                fmt::format("--runas {}: only root can change to another user", creds.name));
  }
  if (initgroups(creds.name.c_str(), creds.gid) != 0 && setgroups(0, nullptr) != 0) {
    return SysFail("--runas: cannot set the supplementary groups", errno);
  }
  if (setresgid(creds.gid, creds.gid, creds.gid) != 0) {
    return SysFail(fmt::format("--runas: cannot change to group {}", creds.gid), errno);
  }
  if (setresuid(creds.uid, creds.uid, creds.uid) != 0) {
    return SysFail(fmt::format("--runas: cannot change to user {}", creds.name), errno);
  }
  if (creds.uid != 0 && (::setuid(0) == 0 || ::seteuid(0) == 0)) {
    return Fail(Errc::kFailedPrecondition, "--runas: root could be regained; refusing to serve");
  }
  return Ok();
}

Status DropCapabilities() {
  capng_clear(CAPNG_SELECT_ALL);
  if (capng_apply(CAPNG_SELECT_ALL) != 0) {
    // Without CAP_SETPCAP the bounding set cannot be cleared (an unprivileged process never
    // had those capabilities to begin with): clear what this process holds.
    capng_clear(CAPNG_SELECT_CAPS);
    if (capng_apply(CAPNG_SELECT_CAPS) != 0) {
      return Fail(Errc::kIo, "cannot drop the process's capabilities (libcap-ng)");
    }
  }
  return Ok();
}

Status Confine(Profile profile, SeccompAction action) {
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
    return SysFail("prctl(PR_SET_NO_NEW_PRIVS)", errno);
  }
  if (action == SeccompAction::kNone) return Ok();
  const uint32_t deny = action == SeccompAction::kKill ? SCMP_ACT_KILL_PROCESS : SCMP_ACT_LOG;
  std::unique_ptr<void, void (*)(scmp_filter_ctx)> ctx(seccomp_init(deny), seccomp_release);
  if (!ctx) return Fail(Errc::kIo, "seccomp: cannot create a filter (out of memory?)");
  for (std::string_view name : AllowedSyscalls(profile)) {
    const int nr = seccomp_syscall_resolve_name(std::string(name).c_str());
    if (nr == __NR_SCMP_ERROR) continue;  // not a system call on this architecture
    if (int rc = seccomp_rule_add(ctx.get(), SCMP_ACT_ALLOW, nr, 0); rc != 0) {
      return Seccomp(fmt::format("allowing {}", name), rc);
    }
  }
  if (int rc = seccomp_load(ctx.get()); rc != 0) return Seccomp("loading the filter", rc);
  return Ok();
}

}  // namespace vtpm::sandbox
