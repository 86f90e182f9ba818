#!/usr/bin/env bash
# QEMU's tpm-emulator backend against the daemon under test, control and data path:
#  - start-up: every control command QEMU sends (CMD_SET_DATAFD hands over the data channel,
#    CMD_GET_CAPABILITY, CMD_STOP/CMD_SET_BUFFERSIZE/CMD_INIT at reset, CMD_GET_TPMESTABLISHED and
#    CMD_SET_LOCALITY when the guest uses the TIS, CMD_SHUTDOWN at exit) is answered with result
#    0, as the daemon's level-20 log shows (vtpm logs "ctrl: CMD_X -> 0xR"; swtpm 0.7.1 dumps
#    every control message and response in hex; lib.sh daemon_ctrl_results reads both);
#  - query-tpm over QMP lists the backend;
#  - data path: the MMIO agent guest (tests/qemu_diff/mmio_agent.c, driven by tis_agent.py over
#    the serial port) sends TPM2_Startup(CLEAR) and two TPM2_GetRandom(16) through QEMU's tpm-tis
#    registers (locality request, FIFO, tpmGo, dataAvail, FIFO read); the response bytes are
#    checked.  The machine runs with acpi=off: SeaBIOS only touches the TPM when QEMU's ACPI
#    tables describe one, so the test's TPM2_Startup is the TPM's first command;
#  - QEMU quits over QMP, the daemon exits 0 on QEMU's CMD_SHUTDOWN.
# The agent: $VTPM_MMIO_AGENT (ctest sets it), else build/tests/qemu_diff/mmio_agent.elf
# (ninja -C build mmio_agent).
. "$(dirname "$0")/lib.sh"
require_tools qemu-system-x86_64
AGENT=${VTPM_MMIO_AGENT:-$IT_DIR/../../build/tests/qemu_diff/mmio_agent.elf}
[ -r "$AGENT" ] || it_abort "MMIO agent guest '$AGENT' not found: build it (ninja -C build mmio_agent)"

# Daemon exactly as QEMU/libvirt-style users run it: --tpm2 --tpmstate --ctrl unixio --log level=20
start_daemon -n vm -d none -I -P -L 20
DPID=$D_PID
Q=$D_DIR/qmp.sock
SER=$D_DIR/ser.sock
QERR=$D_DIR/qemu.stderr

timeout 120 qemu-system-x86_64 -machine q35,acpi=off -accel tcg -m 32 -nodefaults -display none \
    -no-reboot -kernel "$AGENT" \
    -chardev "socket,id=ser0,path=$SER,server=on,wait=off" -serial chardev:ser0 \
    -chardev "socket,id=chrtpm,path=$D_CTRL" \
    -tpmdev emulator,id=tpm0,chardev=chrtpm \
    -device tpm-tis,tpmdev=tpm0 \
    -qmp "unix:$Q,server=on,wait=off" -S \
    </dev/null >"$D_DIR/qemu.stdout" 2>"$QERR" &
QPID=$!
IT_PIDS+=("$QPID")

if python3 "$ITLIB" wait "$QPID" --unix "$Q" --unix "$SER" --timeout 30; then
    pass "qemu started and QMP socket is up"
    out=$(t python3 "$ITLIB" qmp "$Q" query-tpm 2>&1)
    check "query-tpm lists the emulator backend on chrtpm" python3 -c '
import json, sys
r = json.loads(sys.argv[1].splitlines()[0])["return"]
assert any(d["id"] == "tpm0" and d["model"] == "tpm-tis" and d["options"]["type"] == "emulator"
           and d["options"]["data"]["chardev"] == "chrtpm" for d in r), r' "$out"

    # TPM2_Startup(TPM_SU_CLEAR), TPM2_GetRandom(16) twice
    STARTUP=80010000000c000001440000
    GETRANDOM=80010000000c0000017b0010
    out=$(t python3 "$IT_DIR/tis_agent.py" "$SER" "$Q" $STARTUP $GETRANDOM $GETRANDOM 2>&1)
    rc=$?
    if [ $rc = 0 ]; then
        pass "guest ran 3 TPM commands through QEMU's tpm-tis registers"
    else
        fail "guest ran 3 TPM commands through QEMU's tpm-tis registers" "tis_agent.py rc=$rc:" "$out"
    fi
    [ "${IT_VERBOSE:-0}" = 1 ] && printf '    | %s\n' "${out//$'\n'/$'\n'    | }"
    # ACCESS: tpmRegValidSts 0x80 | activeLocality 0x20 | tpmEstablishment 0x01 (QEMU shows
    # it as 1 = no HASH_START since the TPM was made, from CMD_GET_TPMESTABLISHED)
    check_eq "TIS: locality 0 granted (ACCESS)" 0xa1 "$(sed -n 's/^access=//p' <<<"$out")"
    mapfile -t RSP < <(sed -n 's/^rsp=//p' <<<"$out")
    check_eq "TPM2_Startup(CLEAR) via TIS: response tag 0x8001, size 10, rc 0" \
        80010000000a00000000 "${RSP[0]:-none}"
    for i in 1 2; do
        r=${RSP[$i]:-}
        check_eq "TPM2_GetRandom(16) #$i via TIS: tag" 8001 "${r:0:4}"
        check_eq "TPM2_GetRandom(16) #$i via TIS: size 28" 0000001c "${r:4:8}"
        check_eq "TPM2_GetRandom(16) #$i via TIS: rc 0 (TPM_RC_SUCCESS)" 00000000 "${r:12:8}"
        check_eq "TPM2_GetRandom(16) #$i via TIS: randomBytes.size 16" 0010 "${r:20:4}"
        check_eq "TPM2_GetRandom(16) #$i via TIS: 16 random bytes follow" 32 "$((${#r} - 24))"
    done
    if [ -n "${RSP[1]:-}" ] && [ "${RSP[1]}" != "${RSP[2]:-}" ]; then
        pass "the two TPM2_GetRandom answers differ"
    else
        fail "the two TPM2_GetRandom answers differ" "${RSP[1]:-none}" "${RSP[2]:-none}"
    fi

    out=$(t python3 "$ITLIB" qmp "$Q" quit 2>&1)
    check_match "QMP quit accepted" '"return"' "$out"
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

if wait_exit "$DPID" 10; then
    check_eq "daemon exited after QEMU's CMD_SHUTDOWN with status 0" 0 "$IT_EXIT_STATUS"
else
    fail "daemon exited after QEMU's CMD_SHUTDOWN"
    stop_daemon "$DPID"
fi
# the log is complete once the daemon is gone (vtpm flushes it at exit)
check "CMD_SET_DATAFD (backend creation) -> 0" daemon_ctrl_ok "$D_LOG" CMD_SET_DATAFD
check "CMD_GET_CAPABILITY (capability probe) -> 0" daemon_ctrl_ok "$D_LOG" CMD_GET_CAPABILITY
check "CMD_STOP (device reset) -> 0" daemon_ctrl_ok "$D_LOG" CMD_STOP
check "CMD_SET_BUFFERSIZE (device reset) -> 0" daemon_ctrl_ok "$D_LOG" CMD_SET_BUFFERSIZE
check "CMD_INIT (device reset) -> 0" daemon_ctrl_ok "$D_LOG" CMD_INIT
check "CMD_GET_TPMESTABLISHED (guest read ACCESS) -> 0" daemon_ctrl_ok "$D_LOG" CMD_GET_TPMESTABLISHED
check "CMD_SET_LOCALITY (before the first command) -> 0" daemon_ctrl_ok "$D_LOG" CMD_SET_LOCALITY
check "CMD_SHUTDOWN (backend finalize) -> 0" daemon_ctrl_ok "$D_LOG" CMD_SHUTDOWN
check "every control command QEMU sent was answered with 0" daemon_ctrl_ok "$D_LOG"
finish
