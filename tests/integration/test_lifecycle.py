#!/usr/bin/env python3
"""Process lifecycle and TPM 1.2: SIGTERM with and without auto-shutdown, --daemon with a pid
file, --terminate and ctrl terminate, two daemons on one state directory, --print-capabilities,
and a TPM 1.2 (no --tpm2) answering TPM_Startup/TPM_GetRandom.

Runs against vtpm or swtpm ($VTPM_DAEMON); checks swtpm 0.7.1 lacks are skipped for it with a
note. Exit 0 = all passed, 1 = a failure, 77 = skipped.
"""

import json
import os
import signal
import socket
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import itlib  # noqa: E402
from itlib import connect, tpm_response  # noqa: E402

STARTUP_CLEAR = bytes.fromhex("80010000000c000001440000")
STARTUP_STATE = bytes.fromhex("80010000000c000001440001")
GETRANDOM_8 = bytes.fromhex("80010000000c0000017b0008")
TPM12_STARTUP_CLEAR = bytes.fromhex("00c10000000c000000990001")
TPM12_GETRANDOM_8 = bytes.fromhex("00c10000000e0000004600000008")


def rc(resp):
    return struct.unpack(">I", resp[6:10])[0] if len(resp) >= 10 else None


def send(path, cmd):
    s = connect("unix", path)
    try:
        s.sendall(cmd)
        return tpm_response(s)
    finally:
        s.close()


def spawn(argv):
    return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)


def listening(path):
    """True once a UNIX socket at |path| is in the listening state (/proc/net/unix flag
    __SO_ACCEPTCON), found without connecting to it."""
    try:
        with open("/proc/net/unix") as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                if len(fields) >= 8 and fields[7] == path and int(fields[3], 16) & 0x10000:
                    return True
    except OSError:
        pass
    return False


def wait_socket(path, proc, timeout=10.0, probe=True):
    end = time.time() + timeout
    while time.time() < end:
        if not probe and listening(path):
            return True  # known to listen without connecting (a connect would end the daemon)
        if os.path.exists(path):
            try:
                socket.socket(socket.AF_UNIX).connect(path)
                return True
            except OSError:
                pass
        if proc is not None and proc.poll() is not None:
            return False
        time.sleep(0.02)
    return False


def main():
    spec = itlib.daemon_spec()
    swtpm = itlib.is_swtpm(spec)
    argv0 = itlib.daemon_argv0(spec)
    c = itlib.Checker()
    tmp = itlib.make_tmpdir()
    procs = []
    try:
        def daemon(name, flags="not-need-init", tpm2=True, extra=(), state=None):
            d = os.path.join(tmp, name)
            os.makedirs(d, exist_ok=True)
            st = state or os.path.join(d, "state")
            os.makedirs(st, exist_ok=True)
            argv = argv0 + (["--tpm2"] if tpm2 else []) + [
                "--tpmstate", "dir=" + st, "--ctrl", "type=unixio,path=" + d + "/ctrl",
                "--server", "type=unixio,path=" + d + "/data", "--log", "file=" + d + "/log"]
            if flags:
                argv += ["--flags", flags]
            p = spawn(argv + list(extra))
            procs.append(p)
            return p, d, st

        # Orderly shutdown on SIGTERM: the next boot may resume with Startup(STATE).
        p, d, st = daemon("term")
        c.check("daemon serves", wait_socket(d + "/data", p))
        c.eq("Startup(CLEAR)", rc(send(d + "/data", STARTUP_CLEAR)), 0)
        p.send_signal(signal.SIGTERM)
        c.eq("SIGTERM exits 0", p.wait(10), 0)
        c.check("sockets removed on exit", not os.path.exists(d + "/data"))
        p, d, _ = daemon("term", state=st)
        wait_socket(d + "/data", p)
        if swtpm:
            print("note: auto TPM2_Shutdown on exit is swtpm >= 0.8; not checked against 0.7.1")
        else:
            c.eq("after SIGTERM, Startup(STATE) succeeds (auto TPM2_Shutdown(STATE))",
                 rc(send(d + "/data", STARTUP_STATE)), 0)
        p.send_signal(signal.SIGTERM)
        p.wait(10)

        if swtpm:
            print("note: disable-auto-shutdown is swtpm >= 0.8; not checked against swtpm 0.7.1")
        else:
            p, d, st = daemon("noshut", flags="not-need-init,disable-auto-shutdown")
            wait_socket(d + "/data", p)
            send(d + "/data", STARTUP_CLEAR)
            p.send_signal(signal.SIGTERM)
            p.wait(10)
            p, d, _ = daemon("noshut", flags="not-need-init,disable-auto-shutdown", state=st)
            wait_socket(d + "/data", p)
            c.check("with disable-auto-shutdown, Startup(STATE) is refused",
                    rc(send(d + "/data", STARTUP_STATE)) not in (0, None))
            p.send_signal(signal.SIGTERM)
            p.wait(10)

        # Two daemons, one state directory: the second must not run the TPM.
        p1, d1, st = daemon("lock1")
        wait_socket(d1 + "/data", p1)
        p2, d2, _ = daemon("lock2", state=st)
        try:
            code = p2.wait(10)
        except subprocess.TimeoutExpired:
            code = None
        err = p2.stderr.read().decode(errors="replace") if code is not None else ""
        c.check("second daemon on a locked state exits non-zero", code not in (0, None),
                "exit %r; stderr: %s" % (code, err))
        if not swtpm:
            c.check("its error names the state directory", st in err, err)
        c.eq("first daemon still serves", rc(send(d1 + "/data", STARTUP_CLEAR)), 0)

        # A second daemon on the same socket paths (same state, or another state and no
        # not-need-init) must leave the running daemon's sockets alone.
        second = (("same state", st, ["--flags", "not-need-init"]),
                  ("another state", os.path.join(tmp, "other-state"), []))
        if swtpm:
            print("note: swtpm 0.7.1 removes a running daemon's socket; not checked against it")
            second = ()
        for label, st2, flags in second:
            os.makedirs(st2, exist_ok=True)
            p3 = spawn(argv0 + ["--tpm2", "--tpmstate", "dir=" + st2, "--ctrl",
                                "type=unixio,path=" + d1 + "/ctrl", "--server",
                                "type=unixio,path=" + d1 + "/data"] + flags)
            procs.append(p3)
            try:
                code = p3.wait(10)
            except subprocess.TimeoutExpired:
                code = None
                p3.kill()
                p3.wait()
            c.check("second daemon on the same sockets (%s) exits non-zero" % label,
                    code not in (0, None), "exit %r" % code)
            c.check("... the first daemon's sockets are still there (%s)" % label,
                    os.path.exists(d1 + "/ctrl") and os.path.exists(d1 + "/data"))
            c.eq("... and the first daemon still answers on them (%s)" % label,
                 rc(send(d1 + "/data", GETRANDOM_8)), 0)
        p1.send_signal(signal.SIGTERM)
        p1.wait(10)
        # A socket file left by a daemon that died (kill -9) is replaced.
        p1, d1, st = daemon("stale")
        wait_socket(d1 + "/data", p1)
        p1.kill()
        p1.wait()
        p1, d1, _ = daemon("stale", state=st)
        c.check("a stale socket left by kill -9 is replaced", wait_socket(d1 + "/data", p1))
        p1.send_signal(signal.SIGTERM)
        p1.wait(10)

        # --daemon: returns once serving, writes the pid file; SIGTERM ends it.
        d = os.path.join(tmp, "bg")
        os.makedirs(d + "/state")
        pidfile = d + "/pid"
        r = subprocess.run(argv0 + ["--tpm2", "--tpmstate", "dir=" + d + "/state", "--ctrl",
                                    "type=unixio,path=" + d + "/ctrl", "--server",
                                    "type=unixio,path=" + d + "/data", "--flags",
                                    "not-need-init", "--daemon", "--pid", "file=" + pidfile],
                           stdin=subprocess.DEVNULL, capture_output=True, timeout=20)
        c.eq("--daemon parent exits 0", r.returncode, 0)
        pid = None
        for _ in range(200):
            try:
                with open(pidfile) as f:
                    pid = int(f.read().strip())
                break
            except (OSError, ValueError):
                time.sleep(0.02)
        c.check("pid file names a live process", pid is not None and itlib.pid_alive(pid))
        c.check("daemonized TPM answers", wait_socket(d + "/data", None) and
                rc(send(d + "/data", STARTUP_CLEAR)) == 0)
        if pid:
            os.kill(pid, signal.SIGTERM)
            for _ in range(250):
                if not itlib.pid_alive(pid):
                    break
                time.sleep(0.02)
            c.check("daemon ends on SIGTERM", not itlib.pid_alive(pid))

        # --terminate: the daemon exits when its data connection closes.
        p, d, _ = daemon("t", extra=["--terminate"])
        wait_socket(d + "/data", p, probe=False)
        send(d + "/data", STARTUP_CLEAR)
        try:
            c.eq("--terminate exits after the data client leaves", p.wait(10), 0)
        except subprocess.TimeoutExpired:
            c.check("--terminate exits after the data client leaves", False)
        # ctrl terminate: exits when the control connection closes.
        if swtpm:
            print("note: --ctrl ...,terminate is swtpm >= 0.8; not checked against 0.7.1")
        else:
            d = os.path.join(tmp, "ct")
            os.makedirs(d + "/state")
            p = spawn(argv0 + ["--tpm2", "--tpmstate", "dir=" + d + "/state", "--ctrl",
                               "type=unixio,path=" + d + "/ctrl,terminate"])
            procs.append(p)
            wait_socket(d + "/ctrl", p, probe=False)
            s = connect("unix", d + "/ctrl")
            s.sendall(bytes.fromhex("00000001"))
            try:
                got = itlib.recv_exact(s, 8)
            except OSError as e:
                got = b""
                print("    | %s; daemon exit status %r" % (e, p.poll()))
            c.check("ctrl answers GET_CAPABILITY", len(got) == 8)
            s.close()
            try:
                c.eq("ctrl terminate exits after the control client leaves", p.wait(10), 0)
            except subprocess.TimeoutExpired:
                c.check("ctrl terminate exits after the control client leaves", False)

        # Privilege reduction once serving: NO_NEW_PRIVS and a seccomp filter by default (swtpm
        # 0.7.1 too: its deny-list), no capabilities left (vtpm), and the filter really kills.
        def proc_status(pid):
            with open("/proc/%d/status" % pid) as f:
                return dict(line.split(":", 1) for line in f.read().splitlines() if ":" in line)

        p, d, _ = daemon("sandboxed")
        c.check("sandboxed daemon serves", wait_socket(d + "/data", p))
        c.eq("sandboxed daemon answers Startup(CLEAR)", rc(send(d + "/data", STARTUP_CLEAR)), 0)
        status = proc_status(p.pid)
        c.eq("NoNewPrivs is 1 once serving", status.get("NoNewPrivs", "").strip(), "1")
        c.eq("a seccomp filter is on once serving (Seccomp: 2)", status.get("Seccomp", "").strip(),
             "2")
        if not swtpm:
            c.check("no capability is left (CapEff/CapPrm 0)",
                    int(status.get("CapEff", "1"), 16) == 0 and int(status.get("CapPrm", "1"), 16) == 0,
                    "%s %s" % (status.get("CapEff"), status.get("CapPrm")))
        p.send_signal(signal.SIGTERM)
        c.eq("sandboxed daemon exits 0 on SIGTERM", p.wait(10), 0)
        p, d, _ = daemon("unconfined", extra=("--seccomp", "action=none"))
        wait_socket(d + "/data", p)
        c.eq("--seccomp action=none: no filter (Seccomp: 0)",
             proc_status(p.pid).get("Seccomp", "").strip(), "0")
        p.send_signal(signal.SIGTERM)
        p.wait(10)
        if not swtpm and os.geteuid() == 0:
            # --runas: the daemon serves as that user (the state directory must be its own).
            import pwd
            nobody = pwd.getpwnam("nobody")
            st = os.path.join(tmp, "runas-state")
            os.makedirs(st)
            os.chown(st, nobody.pw_uid, nobody.pw_gid)
            dd = os.path.join(tmp, "runas")
            os.makedirs(dd)
            os.chmod(dd, 0o777)
            p, d, _ = daemon("runas", state=st, extra=("--runas", "nobody"))
            c.check("--runas nobody serves", wait_socket(d + "/data", p))
            c.eq("--runas nobody: Startup(CLEAR)", rc(send(d + "/data", STARTUP_CLEAR)), 0)
            uid = proc_status(p.pid).get("Uid", "").split()
            c.check("--runas nobody: every uid is nobody's", uid and
                    all(int(u) == nobody.pw_uid for u in uid), uid)
            p.send_signal(signal.SIGTERM)
            c.eq("--runas daemon exits 0", p.wait(10), 0)
            c.check("--runas: the state was written as nobody",
                    os.stat(os.path.join(st, "tpm2-00.permall")).st_uid == nobody.pw_uid)

        # --print-capabilities: JSON in swtpm's shape.
        r = subprocess.run(argv0 + ["--print-capabilities"], capture_output=True, timeout=20)
        try:
            caps = json.loads(r.stdout)
        except ValueError:
            caps = {}
        c.eq("--print-capabilities type", caps.get("type"), "swtpm")
        c.check("--print-capabilities lists tpm-2.0", "tpm-2.0" in caps.get("features", []))

        # TPM 1.2.
        p, d, _ = daemon("tpm12", flags="not-need-init", tpm2=False)
        c.check("TPM 1.2 daemon serves", wait_socket(d + "/data", p))
        resp = send(d + "/data", TPM12_STARTUP_CLEAR)
        c.eq("TPM 1.2 TPM_Startup(ST_CLEAR)", resp, bytes.fromhex("00c40000000a00000000"))
        resp = send(d + "/data", TPM12_GETRANDOM_8)
        c.check("TPM 1.2 TPM_GetRandom(8) returns 8 bytes",
                len(resp) == 22 and resp[:2] == b"\x00\xc4" and rc(resp) == 0 and
                resp[10:14] == bytes.fromhex("00000008"), resp.hex())
        p.send_signal(signal.SIGTERM)
        p.wait(10)
        c.check("TPM 1.2 state file uses swtpm's name",
                os.path.exists(os.path.join(d, "state", "tpm-00.permall")))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        itlib.rmtree(tmp)
    return c.finish()


if __name__ == "__main__":
    sys.exit(main())
