#!/usr/bin/env python3
"""MS-simulator access control, with tpm2-tools through tpm2-tss' mssim TCTI as the client.

  * UNIX-socket endpoints as the TCTI names them (mssim:path=X -> command X, platform X.ctrl),
    created with the requested file mode;
  * on an open endpoint any local client can reset the TPM (PCR 16 back to zero) -- the attack;
  * `--mssim ...,locked` refuses POWER_OFF, RESET, TPM_STOP and the H-CRTM signals (answer 1,
    connection kept) while the TCTI's own POWER_ON/NV_ON at every connect still work;
  * 64 idle connections on each MS-simulator endpoint do not lock the TCTI out.
vtpm only: swtpm 0.7.1 has no MS-simulator endpoints. Exit 0 = passed, 1 = failed, 77 = skipped.
"""

import os
import shutil
import socket
import stat
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import itlib  # noqa: E402

POWER_ON, POWER_OFF, HASH_START, NV_ON, RESET, STOP = 1, 2, 5, 11, 17, 21
PCR16_ZERO = "0" * 64


def be32(*v):
    return b"".join(struct.pack(">I", x) for x in v)


def tools(tcti, *argv):
    env = dict(os.environ, TPM2TOOLS_TCTI=tcti)
    r = subprocess.run(list(argv), env=env, capture_output=True, text=True, timeout=60)
    return r.returncode, r.stdout + r.stderr


def pcr16(tcti):
    _, out = tools(tcti, "tpm2_pcrread", "sha256:16")
    for line in out.splitlines():
        line = line.strip()
        if line.startswith("16") and ":" in line:
            return line.split(":", 1)[1].strip().lower().removeprefix("0x")
    return None


def signal_reply(kind, addr, code):
    """One platform signal on a fresh connection: its 4-byte answer (b'' if closed)."""
    s = itlib.connect(kind, addr)
    try:
        s.sendall(be32(code))
        return itlib.recv_all_idle(s, first_timeout=5.0, idle=0.2)[0]
    finally:
        s.close()


def startup_and_extend(ck, tcti, label):
    rc, out = tools(tcti, "tpm2_startup", "-c")
    ck.check("%s: tpm2_startup -c (ok or already started)" % label,
             rc == 0 or "0x100" in out or "already initialized" in out, out)
    digest = "ab" * 32
    rc, out = tools(tcti, "tpm2_pcrextend", "16:sha256=" + digest)
    ck.eq("%s: tpm2_pcrextend 16" % label, rc, 0)
    value = pcr16(tcti)
    ck.check("%s: PCR 16 is extended (not zero)" % label, value not in (None, PCR16_ZERO), value)
    return value


def main():
    if itlib.is_swtpm():
        print("SKIP: swtpm 0.7.1 has no MS-simulator endpoints; this test is for vtpm only")
        return 77
    for t in ("tpm2_startup", "tpm2_pcrextend", "tpm2_pcrread", "tpm2_getrandom"):
        if shutil.which(t) is None:
            print("SKIP: %s not found" % t)
            return 77
    ck = itlib.Checker()
    tmp = itlib.make_tmpdir()
    daemons = []
    try:
        run(ck, tmp, daemons)
    except Exception:
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
    # --- an open endpoint (TCP, the default): any local client can reset the TPM -----------
    port = itlib.free_port_pair()
    d = itlib.Daemon(tmp, "open", server="none", init_flags=False,
                     extra=["--mssim", "port=%d" % port]).start()
    daemons.append(d)
    tcti = "mssim:host=127.0.0.1,port=%d" % port
    startup_and_extend(ck, tcti, "open")
    ck.eq("open: platform RESET is acknowledged", signal_reply("tcp", port + 1, RESET).hex(),
          "00000000")
    tools(tcti, "tpm2_startup", "-c")  # the reset needs a new Startup; PCR 16 is zero again
    ck.eq("open: after RESET + Startup, PCR 16 is zero again (the attack)", pcr16(tcti), PCR16_ZERO)
    d.stop()

    # --- UNIX endpoints, locked --------------------------------------------------------------
    path = os.path.join(tmp, "sim")
    d = itlib.Daemon(tmp, "locked", server="none", init_flags=False,
                     extra=["--mssim", "path=%s,mode=0600,locked" % path]).start()
    daemons.append(d)
    for p in (path, path + ".ctrl"):
        st = os.stat(p) if os.path.exists(p) else None
        ck.check("locked: %s is a socket with mode 0600" % os.path.basename(p),
                 st is not None and stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600,
                 oct(st.st_mode) if st else "missing")
    tcti = "mssim:path=" + path
    before = startup_and_extend(ck, tcti, "locked (mssim:path=)")
    for code, name in ((POWER_OFF, "POWER_OFF"), (RESET, "RESET"), (HASH_START, "HASH_START"),
                       (STOP, "TPM_STOP")):
        ck.eq("locked: platform %s is refused (00000001)" % name,
              signal_reply("unix", path + ".ctrl", code).hex(), "00000001")
    ck.eq("locked: TPM_STOP on the command socket is refused too",
          signal_reply("unix", path, STOP).hex(), "00000001")
    ck.eq("locked: POWER_ON and NV_ON (what the TCTI sends) are acknowledged",
          signal_reply("unix", path + ".ctrl", POWER_ON).hex() +
          signal_reply("unix", path + ".ctrl", NV_ON).hex(), "00000000" * 2)
    ck.check("locked: the daemon is still running", d.alive())
    ck.eq("locked: PCR 16 is unchanged", pcr16(tcti), before)
    rc, out = tools(tcti, "tpm2_getrandom", "--hex", "8")
    ck.check("locked: tpm2_getrandom still works", rc == 0 and len(out.strip()) >= 16, out)

    # --- 64 idle connections on each endpoint do not lock the TCTI out ----------------------
    idle = []
    try:
        for p in (path, path + ".ctrl"):
            for _ in range(64):
                for _attempt in range(200):
                    try:
                        idle.append(itlib.connect("unix", p))
                        break
                    except BlockingIOError:  # backlog full: retry, as a flooder would
                        time.sleep(0.01)
        time.sleep(1.2)  # idle for longer than the 1 s after which one may be closed
        rc, out = tools(tcti, "tpm2_getrandom", "--hex", "8")
        ck.check("flood: with 64 idle connections per endpoint the TCTI is still served",
                 rc == 0, out)
    finally:
        for s in idle:
            s.close()
    ck.check("flood: the daemon is still running", d.alive())


if __name__ == "__main__":
    sys.exit(main())
