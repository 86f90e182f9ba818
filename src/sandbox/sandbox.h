// Sandbox: what a vtpm process gives up before it serves anything a peer controls. In order:
// chroot (--chroot, as root), the user and groups of --runas (after binding privileged sockets),
// all capabilities (libcap-ng), then PR_SET_NO_NEW_PRIVS and a seccomp allow-list (libseccomp):
// every system call not on the list of the process's profile kills the process (or is logged,
// with action=log). swtpm's filter is a deny-list (allow by default); ours allows only what the
// profile needs once it serves, so a new attack primitive (io_uring, bpf, keyctl, ptrace, execve,
// socket, ...) is not reachable from a compromised TPM process at all.
//
// Profiles are per process kind (each adds only what it needs): the socket daemon today; the
// fork server and the etcd client later.
#pragma once

#include <sys/types.h>

#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "base/result.h"

namespace vtpm::sandbox {

enum class SeccompAction { kKill, kLog, kNone };

// `--seccomp action=kill|log|none` (swtpm's spelling).
Result<SeccompAction> ParseSeccompOption(std::string_view value);

// kKill; kLog in sanitizer builds (LeakSanitizer stops the world with ptrace when the process
// exits, which the filter rightly forbids; the filter is still installed and exercised).
SeccompAction DefaultSeccompAction();

enum class Profile {
  kSocketDaemon,  // `vtpm socket` once it serves: its sockets, its state directory, its log
};

// The system calls |profile| may make (names as libseccomp knows them; ones this architecture
// lacks are skipped).
std::span<const std::string_view> AllowedSyscalls(Profile profile);

struct Credentials {
  uid_t uid = 0;
  gid_t gid = 0;
  std::string name;  // for messages and initgroups
};

// --runas USER[:GROUP], USER and GROUP as names or numbers. Resolved before any chroot (it reads
// the user database).
Result<Credentials> ResolveUser(std::string_view runas);

// chroot(|dir|) and chdir("/"): every path after this is inside |dir|. Needs root.
Status ChangeRoot(const std::string& dir);
// setgroups (the user's supplementary groups), setgid, setuid; fails if root could be regained.
Status DropPrivileges(const Credentials& creds);
// Clears every capability (effective, permitted, inheritable, bounding and ambient sets).
Status DropCapabilities();
// PR_SET_NO_NEW_PRIVS, then the profile's seccomp filter (none with kNone: NO_NEW_PRIVS only).
Status Confine(Profile profile, SeccompAction action);

}  // namespace vtpm::sandbox
