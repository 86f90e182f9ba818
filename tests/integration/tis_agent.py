#!/usr/bin/env python3
"""Sends TPM commands through QEMU's tpm-tis registers, from inside the guest.

QEMU runs tests/qemu_diff/mmio_agent.c (a Multiboot guest that performs the MMIO reads/writes it
is asked for over COM1; protocol in that file) with -S, its serial port on a UNIX socket server
and a QMP socket.  This script connects to the serial socket, resumes the VM over QMP (so the
agent's "READY" cannot be lost), and for each command runs a TIS transaction at locality 0 the
way a driver does: request the locality (ACCESS 0x00), commandReady (STS 0x18), the command byte
by byte into the FIFO (0x24) with STS.expect checked, tpmGo, poll STS for dataAvail, read the
response from the FIFO, commandReady, relinquish the locality.

usage: tis_agent.py SERIAL_SOCK QMP_SOCK CMD_HEX [CMD_HEX...]
Prints one "access=0x.." line (ACCESS after the locality request), then per command
"rsp=<hex>" (or "error=<what>" and exit 1).  Every wait is bounded (exit 1 on timeout).
"""

import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import itlib  # noqa: E402

BASE = 0xFED40000
ACCESS, STS, FIFO = 0x00, 0x18, 0x24
ACC_VALID, ACC_ACTIVE, ACC_REQUEST, ACC_RELINQUISH = 0x80, 0x20, 0x02, 0x20
STS_VALID, STS_READY, STS_GO, STS_AVAIL, STS_EXPECT = 0x80, 0x40, 0x20, 0x10, 0x08
LINE_TIMEOUT = 30.0  # one MMIO access under TCG takes well under a millisecond
POLL_TIMEOUT = 30.0  # a TPM command (key generation excepted) takes milliseconds


class AgentError(Exception):
    pass


class Agent:
    def __init__(self, sock):
        self.s = sock
        self.buf = b""

    def line(self):
        deadline = time.monotonic() + LINE_TIMEOUT
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AgentError("no answer from the agent within %ds" % LINE_TIMEOUT)
            self.s.settimeout(left)
            try:
                chunk = self.s.recv(4096)
            except socket.timeout:
                continue
            if not chunk:
                raise AgentError("serial socket closed (QEMU exited?)")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode(errors="replace").strip("\r")

    def read8(self, off):
        self.s.sendall(b"readb 0x%x\n" % (BASE + off))
        r = self.line()
        if not r.startswith("OK 0x"):
            raise AgentError("readb 0x%x: agent answered %r" % (BASE + off, r))
        return int(r[5:], 16)

    def write8(self, off, val):
        self.s.sendall(b"writeb 0x%x 0x%x\n" % (BASE + off, val))
        r = self.line()
        if r != "OK":
            raise AgentError("writeb 0x%x: agent answered %r" % (BASE + off, r))

    def poll8(self, off, mask, want, what):
        deadline = time.monotonic() + POLL_TIMEOUT
        while True:
            v = self.read8(off)
            if v & mask == want:
                return v
            if time.monotonic() > deadline:
                raise AgentError("%s: register 0x%x = 0x%02x after %ds" % (what, off, v, POLL_TIMEOUT))
            time.sleep(0.001)


def transact(a, cmd):
    a.write8(STS, STS_READY)
    a.poll8(STS, STS_READY, STS_READY, "commandReady")
    for i, b in enumerate(cmd):
        a.write8(FIFO, b)
        sts = a.poll8(STS, STS_VALID, STS_VALID, "stsValid after a FIFO write")
        more = i + 1 < len(cmd)
        if bool(sts & STS_EXPECT) != more:
            raise AgentError("STS.expect = %d after byte %d of %d (STS 0x%02x)" %
                             (bool(sts & STS_EXPECT), i + 1, len(cmd), sts))
    a.write8(STS, STS_GO)
    a.poll8(STS, STS_VALID | STS_AVAIL, STS_VALID | STS_AVAIL, "dataAvail after tpmGo")
    rsp = bytes(a.read8(FIFO) for _ in range(6))
    size = int.from_bytes(rsp[2:6], "big")
    if not 10 <= size <= 4096:
        raise AgentError("response header %s has size %d" % (rsp.hex(), size))
    rsp += bytes(a.read8(FIFO) for _ in range(size - 6))
    sts = a.poll8(STS, STS_VALID, STS_VALID, "stsValid after the response")
    if sts & STS_AVAIL:
        raise AgentError("dataAvail still set after %d response bytes (STS 0x%02x)" % (size, sts))
    a.write8(STS, STS_READY)
    return rsp


def main(argv):
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    serial, qmp_path, cmds = argv[0], argv[1], [bytes.fromhex(c) for c in argv[2:]]
    if itlib.wait_ready(None, [("unix", serial), ("unix", qmp_path)], timeout=30) != 0:
        print("error=QEMU's serial/QMP sockets did not come up within 30s")
        return 1
    s = itlib.connect("unix", serial)
    try:
        r = itlib.qmp(qmp_path, ["cont"])
        if not r or "return" not in r[0]:
            print("error=QMP cont failed: %r" % r)
            return 1
        a = Agent(s)
        ready = a.line()
        if ready != "READY":
            print("error=the MMIO agent did not start (got %r)" % ready)
            return 1
        a.write8(ACCESS, ACC_REQUEST)
        acc = a.poll8(ACCESS, ACC_VALID | ACC_ACTIVE, ACC_VALID | ACC_ACTIVE, "locality 0")
        print("access=0x%02x" % acc, flush=True)
        for c in cmds:
            print("rsp=%s" % transact(a, c).hex(), flush=True)
        a.write8(ACCESS, ACC_RELINQUISH)
        return 0
    except (AgentError, OSError) as e:
        print("error=%s" % e, flush=True)
        return 1
    finally:
        s.close()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
