// The sandbox, in forked children (a seccomp filter cannot be removed again): the socket daemon's
// allow-list lets its calls through and kills the process on one it does not allow; action=log
// lets it through; NO_NEW_PRIVS, capabilities and --runas do what they say.
#include "sandbox/sandbox.h"

#include <gtest/gtest.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <functional>
#include <string>

namespace vtpm::sandbox {
namespace {

// Runs |child| in a forked process; its wait status.
int InChild(const std::function<int()>& child) {
  const pid_t pid = fork();
  if (pid == 0) _exit(child());
  int status = 0;
  waitpid(pid, &status, 0);
  return status;
}

std::string StatusField(const std::string& name) {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind(name + ":", 0) == 0) return line.substr(name.size() + 1);
  }
  return "";
}

TEST(Sandbox, AllowedCallsWorkAndAForbiddenOneKills) {
  const int ok = InChild([] {
    if (!Confine(Profile::kSocketDaemon, SeccompAction::kKill)) return 10;
    if (prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1) return 11;  // prctl: not allowed either
    return getpid() > 0 ? 0 : 12;
  });
  // prctl is not on the list: the process is killed by SIGSYS right there.
  ASSERT_TRUE(WIFSIGNALED(ok)) << "status " << ok;
  EXPECT_EQ(WTERMSIG(ok), SIGSYS);

  const int served = InChild([] {
    if (!Confine(Profile::kSocketDaemon, SeccompAction::kKill)) return 10;
    int p[2];
    if (pipe(p) != 0) return 0;  // pipe() is not allowed: we never get here
    return 13;
  });
  ASSERT_TRUE(WIFSIGNALED(served));
  EXPECT_EQ(WTERMSIG(served), SIGSYS);

  const int allowed = InChild([] {
    if (!Confine(Profile::kSocketDaemon, SeccompAction::kKill)) return 10;
    char buf[8];
    const int r = static_cast<int>(read(-1, buf, sizeof buf));  // allowed (EBADF)
    void* m = malloc(1 << 20);                                  // brk/mmap: allowed
    free(m);
    return r == -1 && getpid() > 0 ? 0 : 14;
  });
  ASSERT_TRUE(WIFEXITED(allowed)) << "status " << allowed;
  EXPECT_EQ(WEXITSTATUS(allowed), 0);
}

TEST(Sandbox, ForbiddenCallsThatMatterKill) {
  // A compromised TPM process must not reach the network, new programs or other processes.
  const std::function<int()> attempts[] = {
      [] { return socket(AF_INET, SOCK_STREAM, 0) >= 0 ? 0 : 1; },
      [] {
        char* argv[] = {const_cast<char*>("/bin/true"), nullptr};
        execv("/bin/true", argv);
        return 1;
      },
      [] { return fork() >= 0 ? 0 : 1; },
      [] { return kill(getppid(), 0) == 0 ? 0 : 1; },
  };
  for (size_t i = 0; i < std::size(attempts); ++i) {
    const int st = InChild([&] {
      if (!Confine(Profile::kSocketDaemon, SeccompAction::kKill)) return 10;
      return attempts[i]();
    });
    ASSERT_TRUE(WIFSIGNALED(st)) << "attempt " << i << " status " << st;
    EXPECT_EQ(WTERMSIG(st), SIGSYS) << "attempt " << i;
  }
}

TEST(Sandbox, LogActionLetsAForbiddenCallThrough) {
  const int st = InChild([] {
    if (!Confine(Profile::kSocketDaemon, SeccompAction::kLog)) return 10;
    const int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    return fd >= 0 ? 0 : 11;
  });
  ASSERT_TRUE(WIFEXITED(st)) << st;
  EXPECT_EQ(WEXITSTATUS(st), 0);
}

TEST(Sandbox, NoneStillSetsNoNewPrivs) {
  const int st = InChild([] {
    if (!Confine(Profile::kSocketDaemon, SeccompAction::kNone)) return 10;
    if (StatusField("NoNewPrivs").find('1') == std::string::npos) return 11;
    return StatusField("Seccomp").find('0') != std::string::npos ? 0 : 12;
  });
  ASSERT_TRUE(WIFEXITED(st)) << st;
  EXPECT_EQ(WEXITSTATUS(st), 0);
}

TEST(Sandbox, CapabilitiesAreDropped) {
  const int st = InChild([] {
    if (!DropCapabilities()) return 10;
    const std::string eff = StatusField("CapEff"), prm = StatusField("CapPrm");
    return eff.find_first_not_of("0\t ") == std::string::npos &&
                   prm.find_first_not_of("0\t ") == std::string::npos
               ? 0
               : 11;
  });
  ASSERT_TRUE(WIFEXITED(st)) << st;
  EXPECT_EQ(WEXITSTATUS(st), 0);
}

TEST(Sandbox, RunasResolvesAndDrops) {
  auto root = ResolveUser("root");
  ASSERT_TRUE(root) << root.error().message;
  EXPECT_EQ(root->uid, 0u);
  auto num = ResolveUser("0:0");
  ASSERT_TRUE(num);
  EXPECT_EQ(num->gid, 0u);
  auto missing = ResolveUser("no-such-user-vtpm");
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message.find("no user 'no-such-user-vtpm'"), std::string::npos);
  EXPECT_FALSE(ResolveUser("root:no-such-group-vtpm"));
  if (geteuid() != 0)
    GTEST_SKIP() << "changing user needs root (this run is uid " << geteuid() << ")";
  auto nobody = ResolveUser("nobody");
  ASSERT_TRUE(nobody) << nobody.error().message;
  const int st = InChild([&] {
    if (!DropPrivileges(*nobody)) return 10;
    if (getuid() != nobody->uid || geteuid() != nobody->uid || getgid() != nobody->gid) return 11;
    return setuid(0) == 0 ? 12 : 0;
  });
  ASSERT_TRUE(WIFEXITED(st)) << st;
  EXPECT_EQ(WEXITSTATUS(st), 0);
}

TEST(Sandbox, SeccompOption) {
  EXPECT_EQ(ParseSeccompOption("action=kill").value(), SeccompAction::kKill);
  EXPECT_EQ(ParseSeccompOption("action=log").value(), SeccompAction::kLog);
  EXPECT_EQ(ParseSeccompOption("action=none").value(), SeccompAction::kNone);
  EXPECT_FALSE(ParseSeccompOption("action=maybe"));
  EXPECT_FALSE(ParseSeccompOption("mode=kill"));
  EXPECT_FALSE(ParseSeccompOption(""));
}

}  // namespace
}  // namespace vtpm::sandbox
