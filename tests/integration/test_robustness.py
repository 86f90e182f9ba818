#!/usr/bin/env python3
"""Raw-byte checks of the control and data channels (python3 stdlib only).

The expected bytes are what Debian's swtpm 0.7.1 / libtpms 0.9.2 return (the reference); the
daemon under test is chosen by $VTPM_DAEMON (path to vtpm, or "swtpm").
Exit 0 = all passed, 1 = a failure, 77 = skipped.
"""

import os
import shutil
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import itlib  # noqa: E402
from itlib import connect, getrandom_cmd, recv_all_idle, tpm_response  # noqa: E402

TPM2_STARTUP_CLEAR = bytes.fromhex("80010000000c000001440000")
FATAL_NOT_RUNNING = bytes.fromhex("80010000000a00000101")  # TPM_RC_FAILURE, TPM not running
RC_INITIALIZE = bytes.fromhex("80010000000a00000100")      # TPM_RC_INITIALIZE (needs Startup)


def be32(*v):
    return b"".join(struct.pack(">I", x) for x in v)


def getrandom_ok(resp, n):
    """A successful TPM2_GetRandom(n) response."""
    return (len(resp) == 12 + n and resp[:2] == b"\x80\x01"
            and struct.unpack(">I", resp[2:6])[0] == 12 + n
            and resp[6:10] == b"\0\0\0\0" and resp[10:12] == struct.pack(">H", n))


def main():
    if shutil.which("timeout") is None:  # parity with lib.sh prerequisites
        print("SKIP: timeout not found")
        return 77
    spec = itlib.daemon_spec()
    if itlib.is_swtpm(spec):
        if shutil.which("swtpm") is None:
            print("SKIP: swtpm not found")
            return 77
    elif not os.access(spec, os.X_OK):
        print("FAIL setup: VTPM_DAEMON=%r is neither 'swtpm' nor an executable file" % spec)
        print("0 passed, 1 failed")
        return 1

    ck = itlib.Checker()
    tmp = itlib.make_tmpdir()
    daemons = []
    try:
        run(ck, tmp, daemons)
    except Exception as e:  # a setup/IO error is a failure, with diagnostics
        import traceback
        ck.check("no unexpected exception", False, traceback.format_exc())
        for d in daemons:
            print(d.diag())
    finally:
        for d in daemons:
            d.stop()
        itlib.rmtree(tmp)
    return ck.finish()


def run(ck, tmp, daemons):
    d = itlib.Daemon(tmp, "main", ctrl="unix", server="tcp").start()
    daemons.append(d)

    def ctrl(payload):
        return itlib.ctrl(*d.ctrl_addr, payload)

    def data(payload):
        """One command on a fresh data connection; the response plus any stray bytes after it."""
        s = connect(*d.data_addr)
        try:
            s.sendall(payload)
            resp = tpm_response(s)
            return resp + recv_all_idle(s, first_timeout=0.1)[0]
        finally:
            s.close()

    # --- control channel -------------------------------------------------------------
    ck.eq("ctrl: unknown command 0x63 -> exactly 0000000a", ctrl(be32(0x63)), "0000000a")
    ck.eq("ctrl: SET_LOCALITY(7), 1-byte body (swtpm_ioctl form) -> 0000003d",
          ctrl(be32(5) + b"\x07"), "0000003d")
    ck.eq("ctrl: SET_LOCALITY(7), 4-byte body (QEMU form) -> 0000003d",
          ctrl(be32(5) + b"\x07\0\0\0"), "0000003d")
    ck.eq("ctrl: SET_LOCALITY(0), 4-byte body -> 00000000", ctrl(be32(5) + b"\0\0\0\0"), "00000000")
    caps = ctrl(be32(1))
    ck.check("ctrl: GET_CAPABILITY is exactly 8 bytes, res 0, all 0.7.1 bits",
             len(caps) == 8 and caps[:4] == b"\0\0\0\0"
             and (struct.unpack(">I", caps[4:])[0] & 0xFFFF) == 0xFFFF,
             "got %s (swtpm 0.7.1: 000000000000ffff)" % caps.hex())
    # swtpm 0.7.1 / libtpms 0.9.2: 4096 current, 2808 min, 4096 max
    ck.eq("ctrl: SET_BUFFERSIZE(0) -> 16 bytes res=0 cur=4096 min=2808 max=4096",
          ctrl(be32(0x11, 0)), "00000000" "00001000" "00000af8" "00001000")
    ck.eq("ctrl: GET_TPMESTABLISHED (running) -> 00000000 00000000",
          ctrl(be32(4)), "00000000" "00000000")
    ck.eq("ctrl: GET_STATEBLOB(savestate) of a TPM 2 -> res 0x800, zero lengths",
          ctrl(be32(0x0C, 1, 3, 0)), "00000800" "00000000" "00000000" "00000000")
    ck.eq("ctrl: GET_CONFIG -> 00000000 00000000", ctrl(be32(0x0F)), "00000000" "00000000")

    # half a control command, then hang up: the next client is still served
    s = connect(*d.ctrl_addr)
    s.sendall(b"\0\0")
    s.close()
    ck.eq("ctrl: half command + disconnect, next client gets GET_CAPABILITY", ctrl(be32(1)), caps)
    # a truncated HASH_DATA (length 16, 3 bytes sent): swtpm gives up after its 500 ms receive
    # deadline and closes without answering; either way the daemon must go on serving
    s = connect(*d.ctrl_addr)
    s.sendall(be32(7, 16) + b"abc")
    got, closed = recv_all_idle(s, first_timeout=3.0)
    s.close()
    ck.check("ctrl: truncated HASH_DATA is not answered with success",
             got[:4] != b"\0\0\0\0", "got %s closed=%s" % (got.hex(), closed))
    ck.eq("ctrl: after truncated HASH_DATA, next client gets GET_CAPABILITY", ctrl(be32(1)), caps)
    # a client that connects and says nothing
    s = connect(*d.ctrl_addr)
    s.close()
    ck.eq("ctrl: silent client, next client gets GET_CAPABILITY", ctrl(be32(1)), caps)

    # Strictness as swtpm 0.7.1 (measured): a command without a body followed by more bytes in
    # the same read is refused with 0x03 and not run (GET_CAPABILITY ignores them), after the
    # "not running" check; SET_DATAFD without an fd is TPM_IOERROR; HASH_DATA without HASH_START
    # is accepted by both (libtpms ignores it).
    for code, name in ((4, "GET_TPMESTABLISHED"), (6, "HASH_START"), (8, "HASH_END"),
                       (9, "CANCEL_TPM_CMD"), (0x0A, "STORE_VOLATILE"), (0x0F, "GET_CONFIG"),
                       (0x0E, "STOP"), (3, "SHUTDOWN")):
        ck.eq("ctrl: %s + 1 surplus byte -> 00000003" % name, ctrl(be32(code) + b"\0"), "00000003")
    ck.check("ctrl: ... and neither STOP nor SHUTDOWN ran", d.alive() and
             getrandom_ok(data(getrandom_cmd(8)), 8))
    ck.eq("ctrl: GET_CAPABILITY + 1 surplus byte -> answered", ctrl(be32(1) + b"\0"), caps)
    ck.eq("ctrl: SET_DATAFD without an fd -> 0000001f (TPM_IOERROR)", ctrl(be32(0x10)), "0000001f")
    ck.eq("ctrl: HASH_DATA without HASH_START -> 00000000 (as swtpm 0.7.1)",
          ctrl(be32(7, 4) + b"abcd"), "00000000")
    # A half-sent control message: swtpm waits 500 ms, then closes without an answer.
    s = connect(*d.ctrl_addr)
    t0 = time.monotonic()
    s.sendall(be32(2) + b"\0")
    got, closed = recv_all_idle(s, first_timeout=8.0)
    waited = time.monotonic() - t0
    s.close()
    ck.check("ctrl: half-sent INIT is closed unanswered within 2 s (swtpm: 0.5 s)",
             got == b"" and closed and waited < 2.0,
             "got %s closed=%s after %.2f s" % (got.hex(), closed, waited))

    if itlib.is_swtpm():
        print("note: swtpm 0.7.1 serves one client at a time; the connection quotas are vtpm's")
    else:
        check_quotas(ck, d, ctrl, data)

    # --- data channel -----------------------------------------------------------------
    r = data(getrandom_cmd(8))
    ck.check("data: GetRandom(8) works", getrandom_ok(r, 8), r.hex())

    s = connect(*d.data_addr)
    s.sendall(getrandom_cmd(8)[:5])
    s.close()
    r = data(getrandom_cmd(8))
    ck.check("data: half command + disconnect, new client still gets answers", getrandom_ok(r, 8), r.hex())

    # oversize commands.  swtpm 0.7.1 answers 4106 bytes (4096+10) with 80010000000a00000142
    # (TPM_RC_COMMAND_SIZE) and keeps the connection; for larger ones it treats the leftover
    # bytes as further commands (extra 80010000000a00000084 responses).
    for size in (4096 + 10, 8192):
        big = struct.pack(">HII", 0x8001, size, 0x17B) + b"\0" * (size - 10)
        s = connect(*d.data_addr)
        try:
            s.sendall(big)
        except OSError:
            pass
        got, closed = recv_all_idle(s, first_timeout=5.0, idle=0.3)
        s.close()
        ok = (got == b"" and closed) or (
            len(got) >= 10 and got[:2] == b"\x80\x01" and got[6:10] != b"\0\0\0\0")
        ck.check("data: %d-byte command -> error response or close" % size, ok,
                 "got %s closed=%s" % (got[:40].hex(), closed))
        r = data(getrandom_cmd(8))
        ck.check("data: after %d-byte command, next client served" % size, getrandom_ok(r, 8), r.hex())

    # MS-simulator TPM_SEND_COMMAND framing on the data channel
    cmd = getrandom_cmd(8)
    s = connect(*d.data_addr)
    s.sendall(be32(8) + b"\0" + be32(len(cmd)) + cmd)
    got, _ = recv_all_idle(s)
    s.close()
    ck.check("data: MS-sim header -> u32 size | GetRandom response | 00000000",
             len(got) == 4 + 20 + 4 and got[:4] == be32(20) and getrandom_ok(got[4:24], 8)
             and got[24:] == b"\0\0\0\0",
             "got %s (swtpm: 00000014 8001000000140000000000 08 <8 bytes> 00000000)" % got.hex())

    # --- stopped TPM --------------------------------------------------------------------
    ck.eq("ctrl: STOP -> 00000000", ctrl(be32(0x0E)), "00000000")
    ck.eq("ctrl: GET_TPMESTABLISHED while stopped -> only 4 bytes 0000000a", ctrl(be32(4)), "0000000a")
    ck.eq("ctrl: GET_STATEBLOB while stopped -> only 4 bytes 0000000a",
          ctrl(be32(0x0C, 1, 1, 0)), "0000000a")
    ck.eq("data: command while stopped -> 8001 0000000a 00000101", data(getrandom_cmd(8)), FATAL_NOT_RUNNING)
    ck.eq("ctrl: INIT(0) -> 00000000", ctrl(be32(2, 0)), "00000000")
    ck.eq("data: after STOP+INIT the TPM wants Startup (TPM_RC_INITIALIZE)", data(getrandom_cmd(8)), RC_INITIALIZE)
    d.stop()

    # --- a daemon without not-need-init: nothing runs before CMD_INIT --------------------
    d = itlib.Daemon(tmp, "noinit", ctrl="unix", server="tcp", init_flags=False).start()
    daemons.append(d)
    ck.eq("data: before CMD_INIT a TPM2 command gets exactly 8001 0000000a 00000101",
          data(getrandom_cmd(8)), FATAL_NOT_RUNNING)
    ck.eq("data: TPM2_ReadClock (QEMU's version probe) before INIT -> 8001 0000000a 00000101",
          data(bytes.fromhex("80010000000a00000181")), FATAL_NOT_RUNNING)
    ck.eq("ctrl: GET_TPMESTABLISHED before INIT -> 0000000a", ctrl(be32(4)), "0000000a")
    ck.eq("ctrl: INIT(0) -> 00000000", ctrl(be32(2, 0)), "00000000")
    s = connect(*d.data_addr)
    try:
        s.sendall(getrandom_cmd(8))
        r1 = tpm_response(s)
        s.sendall(TPM2_STARTUP_CLEAR)
        r2 = tpm_response(s)
        s.sendall(getrandom_cmd(8))
        r3 = tpm_response(s)
    finally:
        s.close()
    ck.eq("data: after INIT, GetRandom -> TPM_RC_INITIALIZE", r1, RC_INITIALIZE)
    ck.eq("data: TPM2_Startup(CLEAR) -> success", r2, "80010000000a00000000")
    ck.check("data: GetRandom after Startup on the same connection", getrandom_ok(r3, 8), r3.hex())
    ck.eq("ctrl: SHUTDOWN -> 00000000", ctrl(be32(3)), "00000000")
    ck.check("ctrl: daemon exits after SHUTDOWN", d.wait_exit(10.0))


def roundtrip(s, cmd):
    s.settimeout(5.0)
    s.sendall(cmd)
    return tpm_response(s)


def check_quotas(ck, d, ctrl, data):
    """64 idle connections on each channel do not lock new clients out (16 per endpoint: a new
    control client gets in at once, a data client once an idle one has been idle for 1 s), and
    the refusals are logged a bounded number of times."""
    def connect_retrying(kind, addr):
        for _ in range(200):  # a full UNIX backlog answers EAGAIN: try again, as a flooder would
            try:
                return connect(kind, addr)
            except BlockingIOError:
                time.sleep(0.01)
        return connect(kind, addr)

    # The VMM's own connections are never closed for newcomers: the control connection that
    # passed a data fd (CMD_SET_DATAFD, as QEMU does) and that data connection.
    vmm_ctrl = connect(*d.ctrl_addr)
    vmm_data, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    socket.send_fds(vmm_ctrl, [be32(0x10)], [theirs.fileno()])
    theirs.close()
    ck.eq("quota: SET_DATAFD with an fd -> 00000000", itlib.recv_exact(vmm_ctrl, 4).hex(),
          "00000000")
    idle = [vmm_ctrl, vmm_data]
    try:
        for _ in range(64):
            idle.append(connect_retrying(*d.ctrl_addr))
        ck.eq("quota: with 64 idle control connections a new control client is answered",
              ctrl(be32(1))[:4], "00000000")
        vmm_ctrl.sendall(be32(1))
        ck.eq("quota: the VMM's control connection (it passed the data fd) is kept",
              recv_all_idle(vmm_ctrl, first_timeout=5.0, idle=0.1)[0].hex()[:8], "00000000")
        r = roundtrip(vmm_data, getrandom_cmd(8))
        ck.check("quota: the VMM's data connection is kept", getrandom_ok(r, 8), r.hex())
        for _ in range(64):
            idle.append(connect_retrying(*d.data_addr))
        time.sleep(1.2)  # idle for longer than the 1 s after which one may be closed
        r = data(getrandom_cmd(8))
        ck.check("quota: with 64 idle data connections a new data client is served",
                 getrandom_ok(r, 8), r.hex())
        # the connections closed to make room (or refused) see EOF; the others still work
        open_ones = []
        for i, s in enumerate(idle[2:], start=0):
            s.settimeout(0.0)
            try:
                if s.recv(1) != b"":
                    open_ones.append(i)
            except (BlockingIOError, socket.timeout):
                open_ones.append(i)
            except OSError:
                pass
        ck.check("quota: at most 16 stay open per endpoint (%d of 128 open)" % len(open_ones),
                 len(open_ones) <= 32, open_ones)
        data_open = [i for i in open_ones if i >= 64]
        ck.check("quota: idle data connections that were kept still work",
                 data_open and all(getrandom_ok(roundtrip(idle[2 + i], getrandom_cmd(8)), 8)
                                   for i in data_open), data_open)
    finally:
        for s in idle:
            s.close()
    with open(d.log, errors="replace") as f:
        warnings = [line for line in f if "endpoint full" in line]
    ck.check("quota: refusals are logged, rate-limited (%d lines for 96+ events)" % len(warnings),
             0 < len(warnings) <= 30, "".join(warnings[-5:]))


if __name__ == "__main__":
    sys.exit(main())
