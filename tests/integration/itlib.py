#!/usr/bin/env python3
"""Shared helpers for the vtpm integration tests (python3 stdlib only).

Used two ways:
  * imported by python tests (test_robustness.py): Daemon, Checker, ctrl(), tpm_cmd(), ...
  * as a command line tool from lib.sh:
        itlib.py freeport                      -> prints P such that P and P+1 are free on 127.0.0.1
        itlib.py wait PID [--unix PATH]... [--tcp PORT]... [--timeout S]
                                               -> exit 0 when every socket accepts a connection,
                                                  1 if PID died, 2 on timeout
        itlib.py ctrl (--unix PATH|--tcp PORT) HEX  -> sends the bytes, prints the response as hex
        itlib.py qmp PATH CMD [CMD...]         -> runs QMP commands, prints one JSON reply per line

The daemon under test is chosen by $VTPM_DAEMON: a path to the vtpm binary (run as
`$VTPM_DAEMON socket ...`) or the word `swtpm` (run as `swtpm socket ...`).
"""

import json
import os
import random
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

# ---------------------------------------------------------------------------
# daemon selection

def daemon_spec():
    return os.environ.get("VTPM_DAEMON", "swtpm") or "swtpm"


def is_swtpm(spec=None):
    return (spec or daemon_spec()) == "swtpm"


def daemon_argv0(spec=None):
    spec = spec or daemon_spec()
    if spec == "swtpm":
        return ["swtpm", "socket"]
    return [spec, "socket"]


# ---------------------------------------------------------------------------
# ports, readiness

def _port_free(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def free_port_pair():
    """A port P with P and P+1 both bindable on 127.0.0.1 right now."""
    rnd = random.Random(os.getpid() ^ int(time.time() * 1e6))
    for _ in range(500):
        p = rnd.randrange(20000, 60000, 2)
        if _port_free(p) and _port_free(p + 1):
            return p
    raise RuntimeError("no free port pair found")


def pid_alive(pid):
    """True if pid exists and is not a zombie."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            st = f.read()
    except OSError:
        return False
    state = st.rsplit(")", 1)[1].split()[0]
    return state not in ("Z", "X")


def _can_connect(kind, addr):
    if kind == "unix":
        if not os.path.exists(addr):
            return False
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    else:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        addr = ("127.0.0.1", int(addr))
    s.settimeout(1.0)
    try:
        s.connect(addr)
        return True
    except OSError:
        return False
    finally:
        s.close()


def wait_ready(pid, endpoints, timeout=10.0):
    """endpoints: list of ("unix", path) / ("tcp", port). Returns 0 ready, 1 died, 2 timeout."""
    deadline = time.monotonic() + timeout
    pending = list(endpoints)
    delay = 0.01
    while True:
        if pid is not None and not pid_alive(pid):
            return 1
        pending = [e for e in pending if not _can_connect(*e)]
        if not pending:
            return 0
        if time.monotonic() > deadline:
            return 2
        time.sleep(delay)
        delay = min(delay * 2, 0.1)


# ---------------------------------------------------------------------------
# raw socket I/O

def connect(kind, addr, timeout=5.0):
    if kind == "unix":
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    else:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        addr = ("127.0.0.1", int(addr))
    s.settimeout(timeout)
    s.connect(addr)
    return s


def recv_all_idle(s, first_timeout=5.0, idle=0.3, limit=1 << 20):
    """Read until the peer is quiet for `idle` seconds (or closes). Returns (bytes, closed)."""
    buf = b""
    s.settimeout(first_timeout)
    while len(buf) < limit:
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            return buf, False
        except ConnectionResetError:
            return buf, True
        if not chunk:
            return buf, True
        buf += chunk
        s.settimeout(idle)
    return buf, False


def recv_exact(s, n, timeout=5.0):
    s.settimeout(timeout)
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise EOFError("peer closed after %d of %d bytes" % (len(buf), n))
        buf += chunk
    return buf


def ctrl(kind, addr, payload, idle=0.1):
    """Send one control-channel message on a fresh connection; return all response bytes."""
    s = connect(kind, addr)
    try:
        s.sendall(payload)
        return recv_all_idle(s, idle=idle)[0]
    finally:
        s.close()


def tpm_response(s, timeout=10.0):
    """Read one TPM response (10-byte header + rest by size)."""
    hdr = recv_exact(s, 10, timeout)
    size = struct.unpack(">I", hdr[2:6])[0]
    return hdr + recv_exact(s, size - 10, timeout) if size > 10 else hdr


def getrandom_cmd(n):
    return struct.pack(">HIIH", 0x8001, 12, 0x17B, n)


# ---------------------------------------------------------------------------
# daemon management for python tests

class Daemon:
    """One daemon instance with sockets/log under tmpdir/name."""

    def __init__(self, tmpdir, name, ctrl="unix", server="tcp", init_flags=True,
                 state=None, spec=None, extra=(), log_level=None):
        self.dir = os.path.join(tmpdir, name)
        os.makedirs(self.dir, exist_ok=True)
        self.state = state or os.path.join(self.dir, "state")
        os.makedirs(self.state, exist_ok=True)
        self.ctrl_kind, self.server_kind = ctrl, server
        self.init_flags = init_flags
        self.spec = spec or daemon_spec()
        self.extra = list(extra)
        self.log_level = log_level
        self.log = os.path.join(self.dir, "daemon.log")
        self.stderr_path = os.path.join(self.dir, "daemon.stderr")
        self.pidfile = os.path.join(self.dir, "daemon.pid")
        self.data_path = os.path.join(self.dir, "tpm.sock")
        self.ctrl_path = self.data_path + ".ctrl"
        self.port = None
        self.proc = None

    @property
    def ctrl_addr(self):
        return ("unix", self.ctrl_path) if self.ctrl_kind == "unix" else ("tcp", self.port + 1)

    @property
    def data_addr(self):
        return ("unix", self.data_path) if self.server_kind == "unix" else ("tcp", self.port)

    def argv(self):
        a = daemon_argv0(self.spec) + ["--tpm2", "--tpmstate", "dir=" + self.state]
        if self.ctrl_kind == "unix":
            a += ["--ctrl", "type=unixio,path=" + self.ctrl_path]
        else:
            a += ["--ctrl", "type=tcp,port=%d" % (self.port + 1)]
        if self.server_kind == "unix":
            a += ["--server", "type=unixio,path=" + self.data_path]
        elif self.server_kind == "tcp":
            a += ["--server", "type=tcp,port=%d" % self.port]
        if self.init_flags:
            a += ["--flags", "not-need-init,startup-clear"]
        a += ["--pid", "file=" + self.pidfile]
        log = "file=" + self.log
        if self.log_level is not None:
            log += ",level=%d" % self.log_level
        a += ["--log", log]
        return a + self.extra

    def start(self, timeout=10.0):
        for _attempt in range(3):
            self.port = free_port_pair()
            with open(self.stderr_path, "ab") as err:
                self.proc = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL,
                                             stdout=err, stderr=err)
            eps = [self.ctrl_addr]
            if self.server_kind != "none":
                eps.append(self.data_addr)
            rc = wait_ready(self.proc.pid, eps, timeout)
            if rc == 0:
                return self
            self.stop()
            if rc == 2:
                break
            # died: maybe lost a port race; retry with new ports when TCP is involved
            if "tcp" not in (self.ctrl_kind, self.server_kind):
                break
        raise RuntimeError("daemon did not start: %s\n%s" % (" ".join(self.argv()), self.diag()))

    def diag(self):
        out = []
        for p in (self.stderr_path, self.log):
            try:
                with open(p, errors="replace") as f:
                    out.append("--- %s (tail)\n%s" % (p, "".join(f.readlines()[-30:])))
            except OSError:
                pass
        return "\n".join(out)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def wait_exit(self, timeout=5.0):
        try:
            self.proc.wait(timeout)
            return True
        except subprocess.TimeoutExpired:
            return False

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            if not self.wait_exit(5.0):
                self.proc.kill()
                self.proc.wait()
        self.proc = None


class Checker:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, name, cond, detail=""):
        if cond:
            self.passed += 1
            print("PASS %s" % name, flush=True)
        else:
            self.failed += 1
            print("FAIL %s" % name, flush=True)
            if detail:
                for line in str(detail).splitlines()[-30:]:
                    print("    | " + line)
        return bool(cond)

    def eq(self, name, got, want):
        if isinstance(got, bytes):
            got = got.hex()
        if isinstance(want, bytes):
            want = want.hex()
        return self.check(name, got == want, "expected: %r\n     got: %r" % (want, got))

    def finish(self):
        print("%d passed, %d failed" % (self.passed, self.failed), flush=True)
        return 1 if self.failed else 0


def make_tmpdir(prefix="vtpm-it."):
    base = os.environ.get("TMPDIR", "/tmp")
    if len(base) > 40 or not os.path.isdir(base):
        base = "/tmp"  # keep AF_UNIX paths well below 108 bytes
    return tempfile.mkdtemp(prefix=prefix, dir=base)


def rmtree(path):
    if os.environ.get("IT_KEEP") == "1":
        print("keeping %s" % path)
        return
    shutil.rmtree(path, ignore_errors=True)


# ---------------------------------------------------------------------------
# QMP

def qmp(path, commands, timeout=20.0):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(path)
    f = s.makefile("rw")
    replies = []
    greeting = json.loads(f.readline())
    if "QMP" not in greeting:
        raise RuntimeError("bad QMP greeting: %r" % greeting)
    for cmd in ["qmp_capabilities"] + list(commands):
        f.write(json.dumps({"execute": cmd}) + "\n")
        f.flush()
        while True:
            line = f.readline()
            if not line:
                replies.append({"eof": True})
                break
            msg = json.loads(line)
            if "event" in msg:
                continue
            if cmd != "qmp_capabilities":
                replies.append(msg)
            break
    s.close()
    return replies


# ---------------------------------------------------------------------------
# CLI

def _main(argv):
    if not argv:
        print(__doc__)
        return 2
    cmd, args = argv[0], argv[1:]
    if cmd == "freeport":
        print(free_port_pair())
        return 0
    if cmd == "wait":
        pid = int(args[0])
        eps, timeout, i = [], 10.0, 1
        while i < len(args):
            if args[i] == "--unix":
                eps.append(("unix", args[i + 1]))
            elif args[i] == "--tcp":
                eps.append(("tcp", int(args[i + 1])))
            elif args[i] == "--timeout":
                timeout = float(args[i + 1])
            else:
                print("wait: bad argument %s" % args[i], file=sys.stderr)
                return 2
            i += 2
        return wait_ready(pid if pid > 0 else None, eps, timeout)
    if cmd == "ctrl":
        kind = args[0].lstrip("-")
        print(ctrl(kind, args[1], bytes.fromhex(args[2].replace(" ", ""))).hex())
        return 0
    if cmd == "qmp":
        for r in qmp(args[0], args[1:]):
            print(json.dumps(r))
        return 0
    print("unknown command %s" % cmd, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
