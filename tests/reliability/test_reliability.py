#!/usr/bin/env python3
"""Reliability: the TPM state survives what storage and peers do to it (python3 stdlib only).

Each scenario asserts what must hold, against the daemon chosen by $VTPM_DAEMON (vtpm; the word
"swtpm" runs Debian's swtpm 0.7.1 through the same checks, proving the harness -- checks of what
only vtpm promises are skipped there and say so):
  kill9      a loop of NV_Increment while the daemon is killed -9 at random moments: after each
             restart the counter holds every acknowledged increment (and at most the one in
             flight), and the state always starts. Rounds: $VTPM_RELIABILITY_ROUNDS (default 12;
             e.g. 200 on demand).
  damage     a truncated, a torn (zeroed tail) and a bit-flipped permall, and a deleted permall
             next to its .bak: the daemon refuses to start, naming the file and the recovery;
             `--tpmstate ...,backup` and `vtpm state rollback --yes` start the previous
             generation (a consented rollback); undamaged state starts (positive control).
  stateblob  hostile CMD_SET_STATEBLOB (framed random bytes, twice): swtpm's answer, nothing
             on disk changes, CMD_INIT and the counter are intact, also after a restart; a valid
             blob of another TPM is accepted and stored once the TPM started from it.
  enospc     the file system fills up (a 512 KiB tmpfs; root only): increments fail while it is
             full, none acknowledged is lost, the daemon keeps serving and recovers.
Usage: test_reliability.py [SCENARIO...]   Exit 0 = pass, 1 = fail, 77 = skipped.
"""

import os
import random
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import itlib  # noqa: E402
from itlib import connect, tpm_response  # noqa: E402

NV_INDEX = 0x01500020
TPM_RH_OWNER = 0x40000001
TPM_RS_PW = 0x40000009
# TPM_NT_COUNTER | AUTHWRITE | AUTHREAD | NO_DA: an 8-byte monotonic counter, no lockout.
COUNTER_ATTRS = (1 << 4) | (1 << 2) | (1 << 18) | (1 << 25)


def be16(v):
    return struct.pack(">H", v)


def be32(v):
    return struct.pack(">I", v)


def cmd(tag, code, body):
    return struct.pack(">HII", tag, 10 + len(body), code) + body


PW_SESSION = be32(9) + be32(TPM_RS_PW) + be16(0) + b"\x00" + be16(0)


def nv_define():
    pub = be32(NV_INDEX) + be16(0x000B) + be32(COUNTER_ATTRS) + be16(0) + be16(8)
    return cmd(0x8002, 0x12A, be32(TPM_RH_OWNER) + PW_SESSION + be16(0) + be16(len(pub)) + pub)


def nv_increment():
    return cmd(0x8002, 0x134, be32(NV_INDEX) + be32(NV_INDEX) + PW_SESSION)


def nv_read():
    return cmd(0x8002, 0x14E, be32(NV_INDEX) + be32(NV_INDEX) + PW_SESSION + be16(8) + be16(0))


def rc(resp):
    return struct.unpack(">I", resp[6:10])[0] if len(resp) >= 10 else None


class Tpm:
    """A data connection speaking raw TPM commands."""

    def __init__(self, daemon):
        self.s = connect(*daemon.data_addr, timeout=10.0)

    def run(self, command, timeout=10.0):
        self.s.sendall(command)
        return tpm_response(self.s, timeout)

    def counter(self):
        r = self.run(nv_read())
        if rc(r) != 0 or len(r) < 24:
            raise RuntimeError("NV_Read failed: %s" % r.hex())
        return struct.unpack(">Q", r[16:24])[0]

    def close(self):
        self.s.close()


def ctrl(daemon, payload):
    return itlib.ctrl(*daemon.ctrl_addr, payload)


def state_files(path):
    out = {}
    for n in sorted(os.listdir(path)):
        if n.startswith("tpm2-00.") and os.path.isfile(os.path.join(path, n)):
            with open(os.path.join(path, n), "rb") as f:
                out[n] = f.read()
    return out


DAEMONS = []  # every daemon a scenario made: stopped at the end whatever happened


def new_daemon(tmp, name, state=None, state_opts="", log_level=None):
    d = itlib.Daemon(tmp, name, ctrl="unix", server="unix", state=state, log_level=log_level)
    if state_opts:
        d.argv_state_suffix = state_opts
    DAEMONS.append(d)
    return d


# itlib.Daemon builds --tpmstate dir=<state>; this adds options after it (",backup").
_orig_argv = itlib.Daemon.argv


def _argv(self):
    a = _orig_argv(self)
    suffix = getattr(self, "argv_state_suffix", "")
    if suffix:
        i = a.index("--tpmstate")
        a[i + 1] += suffix
    return a


itlib.Daemon.argv = _argv


def try_start(d, timeout=10.0):
    """Starts |d|; returns (True, "") when it serves, or (False, its stderr+log) when it exits."""
    try:
        d.start(timeout)
        return True, ""
    except RuntimeError as e:
        return False, str(e)


# ---------------------------------------------------------------------------- scenarios

def scenario_kill9(ck, tmp, spec):
    rounds = int(os.environ.get("VTPM_RELIABILITY_ROUNDS", "12"))
    rng = random.Random(int(os.environ.get("VTPM_RELIABILITY_SEED", str(os.getpid()))))
    d = new_daemon(tmp, "kill9")
    d.start()
    t = Tpm(d)
    ck.eq("kill9: NV_DefineSpace counter", rc(t.run(nv_define())), 0)
    t.close()
    acked = 0
    lost, ahead, failed_starts, total_in_flight = [], [], 0, 0
    for rnd in range(rounds):
        if rnd > 0:
            ok, why = try_start(d)
            if not ok:
                failed_starts += 1
                ck.check("kill9: round %d: undamaged state starts after kill -9" % rnd, False, why)
                break
        t = Tpm(d)
        value = t.counter() if acked or rnd else 0
        if rnd > 0:
            if value < acked:
                lost.append((rnd, acked, value))
            if value > acked + 1:
                ahead.append((rnd, acked, value))
            acked = value  # an in-flight increment that landed counts from here on
        killer = threading.Timer(rng.uniform(0.02, 0.25), lambda p=d.proc: p.send_signal(signal.SIGKILL))
        killer.start()
        try:
            while True:
                r = t.run(nv_increment(), timeout=5.0)
                if rc(r) != 0:
                    raise RuntimeError("NV_Increment answered %s" % r.hex())
                acked += 1
        except (OSError, EOFError, socket.timeout):
            total_in_flight += 1  # the connection died with the daemon
        except RuntimeError as e:
            ck.check("kill9: round %d: increments succeed until the kill" % rnd, False, str(e))
            break
        finally:
            killer.join()
            t.close()
            d.proc.wait()
            d.proc = None
    ok, why = try_start(d)
    final = None
    if ok:
        t = Tpm(d)
        final = t.counter()
        t.close()
        d.stop()
    ck.check("kill9: %d rounds, state starts after every kill -9" % rounds,
             ok and failed_starts == 0, why)
    ck.check("kill9: no acknowledged increment lost (%d acknowledged, counter %s)" % (acked, final),
             not lost and final is not None and final >= acked,
             "rounds where the counter went back: %r" % lost)
    ck.check("kill9: never more than the one increment in flight lands",
             not ahead and final is not None and final <= acked + 1, "%r" % ahead)
    print("    kill9: %d rounds, %d increments acknowledged" % (rounds, acked))


def prepare_counter_state(tmp, name, increments):
    """A state dir whose counter was incremented |increments| times; the daemon is then killed,
    so the last write of permall is the last increment (the previous generation holds one less)."""
    d = new_daemon(tmp, name)
    d.start()
    t = Tpm(d)
    if rc(t.run(nv_define())) != 0:
        raise RuntimeError("NV_DefineSpace failed")
    for _ in range(increments):
        if rc(t.run(nv_increment())) != 0:
            raise RuntimeError("NV_Increment failed")
    t.close()
    d.proc.send_signal(signal.SIGKILL)
    d.proc.wait()
    d.proc = None
    return d.state


def counter_of(tmp, name, state, state_opts=""):
    d = new_daemon(tmp, name, state=state, state_opts=state_opts)
    ok, why = try_start(d)
    if not ok:
        return None, why
    t = Tpm(d)
    try:
        return t.counter(), ""
    finally:
        t.close()
        d.stop()


def truncate(path):
    with open(path, "r+b") as f:
        size = os.fstat(f.fileno()).st_size
        f.truncate(size // 2)


def zero_tail(path):  # a torn write: the length is right, the last blocks never made it
    with open(path, "r+b") as f:
        size = os.fstat(f.fileno()).st_size
        f.seek(size // 2)
        f.write(b"\0" * (size - size // 2))


def flip_middle_bit(path):
    with open(path, "r+b") as f:
        size = os.fstat(f.fileno()).st_size
        f.seek(size // 2)
        b = f.read(1)
        f.seek(size // 2)
        f.write(bytes([b[0] ^ 0x08]))


def delete(path):
    os.unlink(path)


def scenario_damage(ck, tmp, spec):
    vtpm = not itlib.is_swtpm(spec)
    pristine = prepare_counter_state(tmp, "damage-src", 10)
    control = os.path.join(tmp, "damage-control")
    shutil.copytree(pristine, control)
    value, why = counter_of(tmp, "damage-ok", control)
    ck.eq("damage: positive control: undamaged state starts with counter 10", value, 10)
    if value != 10:
        print(why)
    for kind, damage in (("truncated", truncate), ("torn", zero_tail),
                         ("bit-flipped", flip_middle_bit), ("deleted", delete)):
        work = os.path.join(tmp, "damage-" + kind)
        shutil.copytree(pristine, work)
        permall = os.path.join(work, "tpm2-00.permall")
        if kind == "deleted" and not os.path.exists(permall + ".bak"):
            ck.check("damage: %s: swtpm keeps no .bak, nothing to test" % kind, True)
            continue
        damage(permall)
        before = state_files(work)
        d = new_daemon(tmp, "damage-%s-run" % kind, state=work)
        ok, why = try_start(d)
        if ok:
            t = Tpm(d)
            try:
                got = t.counter()
            except Exception as e:  # noqa: BLE001
                got = "error: %s" % e
            t.close()
            d.stop()
            if not vtpm:
                print("    swtpm 0.7.1 starts from the %s permall (counter %s): it does not detect "
                      "this damage; the vtpm-only checks below are skipped" % (kind, got))
                continue
            ck.check("damage: %s permall: the daemon refuses to start" % kind, False,
                     "it started; counter %s" % got)
            continue
        ck.check("damage: %s permall: the daemon refuses to start" % kind, True)
        if not vtpm:
            continue
        ck.check("damage: %s: the refusal names the file and the recovery" % kind,
                 permall in why and "vtpm state rollback --tpmstate dir=" + work in why
                 and ",backup" in why, why)
        ck.check("damage: %s: a refused start changes no state file" % kind,
                 state_files(work) == before)
        # Consent, the two ways: --tpmstate ...,backup on a copy, `vtpm state rollback` here.
        consent = work + "-backup"
        shutil.copytree(work, consent)
        value, why = counter_of(tmp, "damage-%s-backup" % kind, consent, ",backup")
        ck.eq("damage: %s: --tpmstate ...,backup starts the previous generation (counter 9)"
              % kind, value, 9)
        show = subprocess.run([spec, "state", "show", "--tpmstate", "dir=" + work],
                              capture_output=True, text=True, timeout=30)
        ck.check("damage: %s: `vtpm state show` exits 1 and marks the file DAMAGED" % kind,
                 show.returncode == 1 and ("DAMAGED" in show.stdout or kind == "deleted"),
                 show.stdout + show.stderr)
        dry = subprocess.run([spec, "state", "rollback", "--tpmstate", "dir=" + work],
                             capture_output=True, text=True, timeout=30)
        ck.check("damage: %s: `vtpm state rollback` without --yes only tells what is lost" % kind,
                 dry.returncode == 1 and "Lost:" in dry.stdout and state_files(work) == before,
                 dry.stdout + dry.stderr)
        done = subprocess.run([spec, "state", "rollback", "--yes", "--tpmstate", "dir=" + work],
                              capture_output=True, text=True, timeout=30)
        ck.eq("damage: %s: `vtpm state rollback --yes` exit status" % kind, done.returncode, 0)
        value, why = counter_of(tmp, "damage-%s-rolled" % kind, work)
        ck.eq("damage: %s: after the rollback the TPM starts with counter 9" % kind, value, 9)


def random_permanent_blob(size=1299):
    data = os.urandom(size)
    inner = struct.pack(">HI", 1, len(data)) + data
    body = struct.pack(">HI", 4, len(inner)) + inner
    return struct.pack(">BBHHI", 2, 1, 10, 4, 10 + len(body)) + body


def set_stateblob(d, blob, blobtype=1):
    return ctrl(d, be32(0x0d) + be32(0) + be32(blobtype) + be32(len(blob)) + blob)


def get_stateblob(d, blobtype=1):
    r = ctrl(d, be32(0x0c) + be32(0) + be32(blobtype) + be32(0))
    if len(r) < 16 or r[:4] != be32(0):
        raise RuntimeError("GET_STATEBLOB failed: %s" % r[:16].hex())
    return r[16:]


def scenario_stateblob(ck, tmp, spec):
    vtpm = not itlib.is_swtpm(spec)
    state = prepare_counter_state(tmp, "blob-src", 5)
    d = new_daemon(tmp, "blob", state=state, log_level=20)
    d.start()
    ck.eq("stateblob: CMD_STOP", ctrl(d, be32(0x0e)), be32(0))
    before = state_files(state)
    answers = [set_stateblob(d, random_permanent_blob()) for _ in range(2)]
    # swtpm 0.7.1 + libtpms 0.9.2 answer TPM_RC_BAD_TAG (0x1e): libtpms finds no permanent state
    # magic. (A random blob has the right magic with probability 2^-32.)
    ck.eq("stateblob: two framed random permanent blobs are refused like swtpm (0x1e each)",
          b"".join(answers), be32(0x1e) * 2)
    ck.check("stateblob: the refused blobs changed no state file", state_files(state) == before)
    ck.eq("stateblob: CMD_INIT afterwards", ctrl(d, be32(0x02) + be32(0)), be32(0))
    t = Tpm(d)
    ck.eq("stateblob: TPM2_Startup", rc(t.run(bytes.fromhex("80010000000c000001440000"))), 0)
    ck.eq("stateblob: the counter is intact", t.counter(), 5)
    t.close()
    d.stop()
    value, _ = counter_of(tmp, "blob-restart", state)
    ck.eq("stateblob: ... and after a restart", value, 5)

    # A valid blob of another TPM: the control channel is trusted (like swtpm's), so it is taken.
    other = new_daemon(tmp, "blob-other")
    other.start()
    foreign = get_stateblob(other)
    other.stop()
    d = new_daemon(tmp, "blob2", state=state)
    d.start()
    ck.eq("stateblob: CMD_STOP (2)", ctrl(d, be32(0x0e)), be32(0))
    stopped = state_files(state)
    ck.eq("stateblob: another TPM's permanent blob is accepted", set_stateblob(d, foreign), be32(0))
    ck.check("stateblob: ... and not stored before the TPM started from it",
             state_files(state) == stopped)
    ck.eq("stateblob: CMD_INIT with the foreign state", ctrl(d, be32(0x02) + be32(0)), be32(0))
    t = Tpm(d)
    t.run(bytes.fromhex("80010000000c000001440000"))
    r = t.run(nv_read())
    ck.check("stateblob: the TPM is the other one now (no counter index)", rc(r) != 0, r.hex())
    t.close()
    d.stop()
    d = new_daemon(tmp, "blob3", state=state)
    d.start()
    t = Tpm(d)
    r = t.run(nv_read())
    ck.check("stateblob: ... durably: still the other TPM after a restart", rc(r) != 0, r.hex())
    t.close()
    d.stop()
    if vtpm:
        show = subprocess.run([spec, "state", "show", "--tpmstate", "dir=" + state],
                              capture_output=True, text=True, timeout=30)
        ck.check("stateblob: the replaced state is the previous generation (tpm2-00.permall.bak)",
                 show.returncode == 0 and "tpm2-00.permall.bak" in show.stdout, show.stdout)


def scenario_enospc(ck, tmp, spec):
    if os.geteuid() != 0:
        print("SKIP enospc: needs root to mount a small tmpfs (this machine runs the tests as "
              "uid %d)" % os.geteuid())
        return
    mnt = os.path.join(tmp, "small")
    os.makedirs(mnt)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k,mode=0700", "tmpfs", mnt],
                       capture_output=True, text=True)
    if r.returncode != 0:
        print("SKIP enospc: cannot mount a tmpfs here: %s" % r.stderr.strip())
        return
    try:
        state = os.path.join(mnt, "state")
        os.makedirs(state)
        d = new_daemon(tmp, "enospc", state=state)
        d.start()
        t = Tpm(d)
        ck.eq("enospc: NV_DefineSpace", rc(t.run(nv_define())), 0)
        acked = 0
        for _ in range(3):
            acked += rc(t.run(nv_increment())) == 0
        filler = os.path.join(mnt, "filler")
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            while True:
                os.write(fd, b"\0" * 4096)
        except OSError:
            pass  # ENOSPC: full
        finally:
            os.close(fd)
        answers = [rc(t.run(nv_increment())) for _ in range(3)]
        ck.check("enospc: increments fail while the disk is full (%s)" % answers,
                 all(a != 0 for a in answers))
        ck.check("enospc: the daemon keeps serving", d.alive())
        os.unlink(filler)
        # libtpms puts a TPM whose NV write failed into failure mode (TPM_RC_FAILURE for every
        # command, as a hardware TPM with broken NV), swtpm and vtpm alike, until it is
        # re-initialised -- what a VM reset does (CMD_INIT).
        answers = [rc(t.run(nv_increment())) for _ in range(2)]
        ck.check("enospc: the TPM stays in failure mode until re-initialised (%s)" % answers,
                 all(a == 0x101 for a in answers))
        t.close()
        ck.eq("enospc: CMD_INIT after freeing space", ctrl(d, be32(0x02) + be32(0)), be32(0))
        t = Tpm(d)
        ck.eq("enospc: TPM2_Startup", rc(t.run(bytes.fromhex("80010000000c000001440000"))), 0)
        answers = [rc(t.run(nv_increment())) for _ in range(3)]
        ck.eq("enospc: increments work again", answers, [0, 0, 0])
        acked += 3
        ck.eq("enospc: the counter holds every acknowledged increment", t.counter(), acked)
        t.close()
        d.stop()
        value, why = counter_of(tmp, "enospc-restart", state)
        ck.check("enospc: after a restart no acknowledged increment is lost (acked %d, counter %s)"
                 % (acked, value), value is not None and value >= acked, why)
        ck.check("enospc: the failed writes left no temporary files",
                 not [n for n in os.listdir(state) if ".vtpm-" in n], os.listdir(state))
    finally:
        subprocess.run(["umount", "-l", mnt])


SCENARIOS = {"kill9": scenario_kill9, "damage": scenario_damage, "stateblob": scenario_stateblob,
             "enospc": scenario_enospc}


def main(argv):
    spec = itlib.daemon_spec()
    if itlib.is_swtpm(spec):
        if shutil.which("swtpm") is None:
            print("SKIP: swtpm not found")
            return 77
    elif not os.access(spec, os.X_OK):
        print("FAIL setup: VTPM_DAEMON=%r is neither 'swtpm' nor an executable file" % spec)
        print("0 passed, 1 failed")
        return 1
    names = argv or list(SCENARIOS)
    ck = itlib.Checker()
    tmp = itlib.make_tmpdir("vtpm-rel.")
    try:
        for n in names:
            try:
                SCENARIOS[n](ck, tmp, spec)
            except Exception:  # noqa: BLE001 -- a setup error is a failure, with its trace
                import traceback
                ck.check("%s: no unexpected exception" % n, False, traceback.format_exc())
    finally:
        for d in DAEMONS:
            d.stop()
        for mnt in [os.path.join(tmp, "small")]:
            if os.path.ismount(mnt):
                subprocess.run(["umount", "-l", mnt])
        itlib.rmtree(tmp)
    return ck.finish()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
