#!/usr/bin/env bash
# QEMU's tpm-emulator backend completes its start-up against the daemon (control channel only,
# data channel handed over with CMD_SET_DATAFD), answers query-tpm over QMP and quits cleanly.
. "$(dirname "$0")/lib.sh"
require_tools qemu-system-x86_64

# Daemon exactly as QEMU/libvirt-style users run it: --tpm2 --tpmstate --ctrl unixio --log level=20
start_daemon -n vm -d none -I -P -L 20
DPID=$D_PID
Q=$D_DIR/qmp.sock
QERR=$D_DIR/qemu.stderr

timeout 120 qemu-system-x86_64 -machine q35 -accel tcg -nographic -nodefaults -display none \
    -chardev "socket,id=chrtpm,path=$D_CTRL" \
    -tpmdev emulator,id=tpm0,chardev=chrtpm \
    -device tpm-tis,tpmdev=tpm0 \
    -qmp "unix:$Q,server=on,wait=off" -S \
    </dev/null >"$D_DIR/qemu.stdout" 2>"$QERR" &
QPID=$!
IT_PIDS+=("$QPID")

if python3 "$ITLIB" wait "$QPID" --unix "$Q" --timeout 30; then
    pass "qemu started and QMP socket is up"
    out=$(t python3 "$ITLIB" qmp "$Q" query-tpm quit 2>&1)
    check "query-tpm lists the emulator backend on chrtpm" python3 -c '
import json, sys
r = json.loads(sys.argv[1].splitlines()[0])["return"]
assert any(d["id"] == "tpm0" and d["model"] == "tpm-tis" and d["options"]["type"] == "emulator"
           and d["options"]["data"]["chardev"] == "chrtpm" for d in r), r' "$out"
else
    fail "qemu started and QMP socket is up" "$(cat "$QERR")"
fi

if wait_exit "$QPID" 30; then
    check_eq "qemu exit status after quit" 0 "$IT_EXIT_STATUS"
else
    fail "qemu exits after quit"
fi
qerr=$(cat "$QERR")
check_nomatch "qemu stderr has no tpm-emulator errors" 'tpm-emulator|tpm_emulator|TPM' "$qerr"

check "daemon saw CMD_SET_DATAFD (backend creation)" daemon_saw_ctrl "$D_LOG" 0x10 CMD_SET_DATAFD
check "daemon saw CMD_GET_CAPABILITY (capability probe)" daemon_saw_ctrl "$D_LOG" 0x01 CMD_GET_CAPABILITY
check "daemon saw CMD_STOP (device reset)" daemon_saw_ctrl "$D_LOG" 0x0e CMD_STOP
check "daemon saw CMD_SET_BUFFERSIZE (device reset)" daemon_saw_ctrl "$D_LOG" 0x11 CMD_SET_BUFFERSIZE
check "daemon saw CMD_INIT (device reset)" daemon_saw_ctrl "$D_LOG" 0x02 CMD_INIT
check "daemon saw CMD_SHUTDOWN (backend finalize)" daemon_saw_ctrl "$D_LOG" 0x03 CMD_SHUTDOWN
if wait_exit "$DPID" 10; then
    check_eq "daemon exited after QEMU's CMD_SHUTDOWN with status 0" 0 "$IT_EXIT_STATUS"
else
    fail "daemon exited after QEMU's CMD_SHUTDOWN"
fi
finish
