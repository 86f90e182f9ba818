#!/usr/bin/env bash
# End-to-end test: an unmodified Debian Linux guest under QEMU (q35) uses the TPM served by the
# daemon under test through tpm-tis or tpm-crb, booted by SeaBIOS or OVMF.
#
#   run_e2e.sh [--iface tis|crb] [--firmware seabios|ovmf] [--scenario basic|reboot]
#              [--daemon vtpm|swtpm|PATH] [--accel auto|kvm|tcg] [--boot-timeout S] [--verbose]
#
#   --scenario basic   one boot: device, RNG, PCRs, keys, quote, NV, event log replay (phase 1)
#   --scenario reboot  phase 1, then QEMU and the daemon stop; a new daemon and a new QEMU boot the
#                      guest again on the same TPM state directory (and OVMF varstore): the NV
#                      index and the persistent key survived, PCRs were reset, the log replays
#   --daemon           vtpm = $VTPM_DAEMON (a path; default build/tools/vtpm/vtpm), swtpm =
#                      Debian's swtpm (proves the harness), or a path to a vtpm binary
#   --accel auto       KVM only if a probe guest really boots with it within 20 s, else TCG
#                      (the result is cached for a day in the cache dir, keyed by QEMU, host
#                      kernel and guest); VTPM_E2E_ACCEL=tcg|kvm forces a choice
#   --verbose          the guest also prints what the tpm2 tools answered (the demo uses this)
#
# Environment: VTPM_DAEMON (see above), VTPM_E2E_CACHE (guest cache + logs; default build/e2e),
# VTPM_E2E_BOOT_TIMEOUT (s per boot; default 300 under TCG, 120 under KVM), IT_KEEP=1.
# Output: the guest's "PASS name"/"FAIL name" lines prefixed with the boot, the host's own
# checks, and a closing "N passed, M failed".  Exit 0 = all passed, 1 = a failure, 77 = skipped
# only when the machine lacks something the test needs (a tool such as qemu-system-x86_64, a
# kernel with tpm_tis/tpm_crb, busybox-static, tpm2-tools, OVMF): the SKIP line names it.  Any
# other setup failure (e.g. the guest build failing) is a failure.  Serial console and daemon
# logs of the last run of a configuration stay in $VTPM_E2E_CACHE/logs/<configuration>/.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)

IFACE=tis FIRMWARE=seabios SCENARIO=basic DAEMON="" ACCEL_REQ=${VTPM_E2E_ACCEL:-auto}
BOOT_TIMEOUT=${VTPM_E2E_BOOT_TIMEOUT:-} VERBOSE=0
usage() { sed -n '2,/^set -u/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }
while [ $# -gt 0 ]; do
    case $1 in
    --iface) IFACE=$2; shift ;;
    --firmware) FIRMWARE=$2; shift ;;
    --scenario) SCENARIO=$2; shift ;;
    --daemon) DAEMON=$2; shift ;;
    --accel) ACCEL_REQ=$2; shift ;;
    --boot-timeout) BOOT_TIMEOUT=$2; shift ;;
    --verbose) VERBOSE=1 ;;
    -h | --help) usage ;;
    *) echo "run_e2e: unknown argument '$1'" >&2; usage ;;
    esac
    shift
done
case $IFACE in tis | crb) ;; *) echo "run_e2e: --iface tis|crb" >&2; exit 2 ;; esac
case $FIRMWARE in seabios | ovmf) ;; *) echo "run_e2e: --firmware seabios|ovmf" >&2; exit 2 ;; esac
case $SCENARIO in basic | reboot) ;; *) echo "run_e2e: --scenario basic|reboot" >&2; exit 2 ;; esac
case $ACCEL_REQ in auto | kvm | tcg) ;; *) echo "run_e2e: --accel auto|kvm|tcg" >&2; exit 2 ;; esac
case ${DAEMON:-${VTPM_DAEMON:-vtpm}} in
swtpm) VTPM_DAEMON=swtpm ;;
vtpm) VTPM_DAEMON=${VTPM_DAEMON:-$ROOT/build/tools/vtpm/vtpm}
      [ "$VTPM_DAEMON" = swtpm ] && VTPM_DAEMON=$ROOT/build/tools/vtpm/vtpm ;;
*) VTPM_DAEMON=${DAEMON:-$VTPM_DAEMON} ;;
esac
export VTPM_DAEMON

# lib.sh: temp dir, PASS/FAIL counting, start_daemon, cleanup of every registered pid on exit
# shellcheck source=tests/integration/lib.sh disable=SC1091
. "$ROOT/tests/integration/lib.sh"
require_tools qemu-system-x86_64 flock sha256sum od base64

CACHE=${VTPM_E2E_CACHE:-$ROOT/build/e2e}
mkdir -p "$CACHE" || it_abort "cannot create $CACHE"
CACHE=$(cd "$CACHE" && pwd)
DNAME=$(daemon_is_swtpm && echo swtpm || echo vtpm)
CONFIG=$IFACE-$FIRMWARE-$SCENARIO-$DNAME
LOGS=$CACHE/logs/$CONFIG
rm -rf "$LOGS"
mkdir -p "$LOGS"
T0=$(date +%s.%N)
elapsed() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }
say() { echo "== $*"; }

# --- firmware -----------------------------------------------------------------------------------
FW_ARGS=()
if [ "$FIRMWARE" = ovmf ]; then
    OVMF_CODE=/usr/share/OVMF/OVMF_CODE_4M.fd OVMF_VARS=/usr/share/OVMF/OVMF_VARS_4M.fd
    for f in "$OVMF_CODE" "$OVMF_VARS"; do
        [ -e "$f" ] || it_skip "this machine lacks the OVMF firmware file $f: apt-get install ovmf"
        [ -r "$f" ] || it_abort "$f exists but is not readable"
    done
    cp "$OVMF_VARS" "$TEST_TMP/OVMF_VARS.fd" || it_abort "cannot copy $OVMF_VARS"
    FW_ARGS=(-drive "if=pflash,format=raw,unit=0,readonly=on,file=$OVMF_CODE"
             -drive "if=pflash,format=raw,unit=1,file=$TEST_TMP/OVMF_VARS.fd")
    FW_DESC="OVMF ($OVMF_CODE, private copy of $(basename "$OVMF_VARS"))"
else
    FW_DESC="SeaBIOS (QEMU's default bios-256k.bin)"
fi

# --- guest ---------------------------------------------------------------------------------------
# make_guest.sh exits 3 only when the machine lacks a prerequisite (kernel with tpm_tis/tpm_crb,
# static busybox, tpm2-tools, the device TCTI, cpio, gzip): a skip naming it.  Any other failure
# (a command in the build failing, the lock, an empty answer) fails the test with the reason.
GUEST=$(flock "$CACHE/.guest.lock" "$HERE/make_guest.sh" "$CACHE" 2>"$TEST_TMP/make_guest.err")
st=$?
case $st in
0) [ -n "$GUEST" ] && [ -s "$GUEST/vmlinuz" ] && [ -s "$GUEST/initrd.img" ] ||
    it_abort "make_guest.sh succeeded but printed no guest directory with vmlinuz and initrd.img" \
        "(stdout: '$GUEST')" "$(cat "$TEST_TMP/make_guest.err")" ;;
3) what=$(sed -n 's/^make_guest: missing: //p' "$TEST_TMP/make_guest.err")
   [ -n "$what" ] || it_abort "make_guest.sh exited 3 without naming what is missing:" \
       "$(cat "$TEST_TMP/make_guest.err")"
   it_skip "cannot build the test guest, this machine lacks $what" ;;
*) it_abort "cannot build the test guest: make_guest.sh (under flock) exited $st:" \
       "$(cat "$TEST_TMP/make_guest.err")" ;;
esac
grep -v '^$' "$TEST_TMP/make_guest.err" | sed 's/^/   /'

# --- acceleration ---------------------------------------------------------------------------------
# QEMU+KVM can hang on hosts where /dev/kvm exists (nested virtualisation): only a guest that
# really boots counts.  The probe boots the test kernel with vtpm_phase=probe (it prints a marker
# and powers off at once; about 1 s under KVM), with the same QEMU options as the real boots
# (no -cpu host: on nested hosts it can abort QEMU on an MSR the host refuses).
PROBE_TIMEOUT=20
kvm_probe() {  # sets PROBE_RESULT
    local log=$TEST_TMP/kvm-probe.log pid t0
    t0=$(date +%s.%N)
    qemu-system-x86_64 -machine q35 -accel kvm -m 256 -nodefaults -display none \
        -no-reboot -kernel "$GUEST/vmlinuz" -initrd "$GUEST/initrd.img" \
        -append "console=ttyS0 panic=-1 vtpm_phase=probe" -serial "file:$log" \
        </dev/null >"$TEST_TMP/kvm-probe.err" 2>&1 &
    pid=$!
    IT_PIDS+=("$pid")
    if ! wait_exit "$pid" "$PROBE_TIMEOUT"; then
        stop_daemon "$pid" >/dev/null
        PROBE_RESULT="tcg|KVM probe guest did not boot within ${PROBE_TIMEOUT}s ($(wc -c <"$log" 2>/dev/null || echo 0) bytes of console output): /dev/kvm exists but a QEMU+KVM guest hangs on this host"
    elif grep -aq VTPM-PROBE-OK "$log"; then
        PROBE_RESULT="kvm|KVM probe guest booted and powered off in $(elapsed "$t0")s"
    else
        PROBE_RESULT="tcg|KVM probe guest failed (QEMU status $IT_EXIT_STATUS): $(tr '\n' ' ' <"$TEST_TMP/kvm-probe.err" | cut -c1-200)"
    fi
}
choose_accel() {  # sets ACCEL_LINE="kvm|why" or "tcg|why"
    case $ACCEL_REQ in
    tcg) ACCEL_LINE="tcg|forced (--accel tcg / VTPM_E2E_ACCEL=tcg)"; return ;;
    kvm) ACCEL_LINE="kvm|forced (--accel kvm / VTPM_E2E_ACCEL=kvm)"; return ;;
    esac
    [ -e /dev/kvm ] || { ACCEL_LINE="tcg|no /dev/kvm on this host"; return; }
    [ -r /dev/kvm ] && [ -w /dev/kvm ] ||
        { ACCEL_LINE="tcg|/dev/kvm is not read/writable for $(id -un)"; return; }
    local key file
    key=$({ qemu-system-x86_64 --version | head -1; uname -r; echo "$GUEST"; } | sha256sum | cut -c1-16)
    file=$CACHE/accel-probe-$key
    exec 9>"$file.lock"
    flock 9 # concurrent runs probe once
    if [ -s "$file" ] && [ -n "$(find "$file" -mmin -1440 2>/dev/null)" ]; then
        ACCEL_LINE="$(cat "$file") [probe result cached at $(date -r "$file" '+%F %T'); delete $file to probe again]"
    else
        kvm_probe
        echo "$PROBE_RESULT" >"$file"
        ACCEL_LINE=$PROBE_RESULT
    fi
    exec 9>&-
}
choose_accel
ACCEL=${ACCEL_LINE%%|*}
if [ "$ACCEL" = kvm ]; then
    ACCEL_ARGS=(-accel kvm)
    : "${BOOT_TIMEOUT:=120}"
else
    ACCEL_ARGS=(-accel tcg)
    : "${BOOT_TIMEOUT:=300}"
fi

if daemon_is_swtpm; then DDESC="Debian's swtpm ($(command -v swtpm))"; else DDESC="vtpm ($VTPM_DAEMON)"; fi
say "e2e $CONFIG: tpm-$IFACE, $FW_DESC, daemon: $DDESC"
say "guest: $(cat "$GUEST/kernel.txt") + $(du -h "$GUEST/initrd.img" | cut -f1) initramfs from $GUEST"
say "accel: $ACCEL: ${ACCEL_LINE#*|}"

# --- one boot -------------------------------------------------------------------------------------
STATE=$TEST_TMP/state
mkdir -p "$STATE"
NONCE=$(head -c 32 /dev/urandom | od -An -v -tx1 | tr -d ' \n')
KEYNAME=""

# boot PHASE [extra kernel args...]: daemon + QEMU on $STATE, guest checks counted as PASS/FAIL
boot() {
    local phase=$1 tag="boot$1" serial qpid t0 line st summary gp=0 gf=0 gpass gfail
    shift
    serial=$LOGS/$tag.serial.log
    start_daemon -n "$tag" -s "$STATE" -d none -I
    local dpid=$D_PID dlog=$D_LOG
    local append="console=ttyS0 panic=-1 vtpm_phase=$phase vtpm_iface=$IFACE vtpm_nonce=$NONCE"
    [ $VERBOSE = 1 ] && append+=" vtpm_verbose=1"
    append+=" $*"
    # shellcheck disable=SC2054  # commas belong to QEMU's option values
    local argv=(qemu-system-x86_64 -machine q35 "${ACCEL_ARGS[@]}" -m 512 -smp 1 -nodefaults
        -display none -no-reboot "${FW_ARGS[@]}"
        -chardev "socket,id=chrtpm,path=$D_CTRL" -tpmdev emulator,id=tpm0,chardev=chrtpm
        -device "tpm-$IFACE,tpmdev=tpm0"
        -kernel "$GUEST/vmlinuz" -initrd "$GUEST/initrd.img" -append "$append"
        -serial "file:$serial")
    printf '%q ' "${argv[@]}" >"$LOGS/$tag.qemu.cmdline"
    # QEMU dies with the runner even if the runner is SIGKILLed (ctest timeout)
    command -v setpriv >/dev/null && argv=(setpriv --pdeathsig KILL "${argv[@]}")
    say "$tag: booting (phase $phase, $ACCEL, timeout ${BOOT_TIMEOUT}s)"
    t0=$(date +%s.%N)
    "${argv[@]}" </dev/null >"$LOGS/$tag.qemu.out" 2>&1 &
    qpid=$!
    IT_PIDS+=("$qpid")
    if wait_exit "$qpid" "$BOOT_TIMEOUT"; then
        st=$IT_EXIT_STATUS
        pass "$tag: guest powered off, QEMU exited after $(elapsed "$t0")s"
        check_eq "$tag: QEMU exit status" 0 "$st"
    else
        stop_daemon "$qpid" >/dev/null
        fail "$tag: guest did not power off within ${BOOT_TIMEOUT}s (QEMU killed)" \
            "last console lines:" "$(tr -d '\r' <"$serial" | tail -n 15)"
    fi
    [ -s "$LOGS/$tag.qemu.out" ] && sed 's/^/   qemu: /' "$LOGS/$tag.qemu.out"

    # the guest's verdicts, in order; failure details are the indented lines under a FAIL
    tr -d '\r' <"$serial" | sed 's/\x1b\[[0-9;=]*[A-Za-z]//g' >"$TEST_TMP/$tag.console"
    while IFS= read -r line; do
        case $line in
        "PASS "*) pass "$tag: ${line#PASS }"; gp=$((gp + 1)) ;;
        "FAIL "*) echo "FAIL $tag: ${line#FAIL }"; IT_FAILED=$((IT_FAILED + 1)); gf=$((gf + 1)) ;;
        "    | "*) echo "$line" ;;
        "      "*) [ $VERBOSE = 1 ] && echo "$line" ;;
        "INFO key_name="*) KEYNAME=${line#INFO key_name=} ;;
        "EVENTLOG-BASE64-BEGIN")
            sed -n '/^EVENTLOG-BASE64-BEGIN$/,/^EVENTLOG-BASE64-END$/p' "$TEST_TMP/$tag.console" |
                sed '1d;$d' | base64 -d >"$LOGS/$tag.eventlog.bin" 2>/dev/null &&
                echo "   (raw event log saved: $LOGS/$tag.eventlog.bin; read it with tpm2_eventlog)" ;;
        *" passed, "*" failed") summary=$line ;;
        "vtpm-e2e guest:"*) [ $VERBOSE = 1 ] && echo "   $line" ;;
        esac
    done <"$TEST_TMP/$tag.console"
    if [ -n "${summary:-}" ]; then
        gpass=${summary%% passed*}
        gfail=${summary#*passed, }
        gfail=${gfail%% failed*}
        if [ "$gpass" = $gp ] && [ "$gfail" = $gf ] && [ $gp -gt 0 ]; then
            pass "$tag: guest finished its checks ($summary)"
        else
            fail "$tag: guest summary '$summary' does not match $gp PASS / $gf FAIL lines seen"
        fi
    else
        fail "$tag: guest printed no closing 'N passed, M failed' (crashed or hung?)" \
            "last console lines:" "$(tail -n 25 "$TEST_TMP/$tag.console")"
    fi

    # QEMU's CMD_SHUTDOWN at exit ends the daemon (both vtpm and swtpm)
    if wait_exit "$dpid" 15; then
        check_eq "$tag: daemon exited with status 0 after QEMU's CMD_SHUTDOWN" 0 "$IT_EXIT_STATUS"
    else
        stop_daemon "$dpid"
        fail "$tag: daemon still running 15s after QEMU exited"
    fi
    cp "$dlog" "$LOGS/$tag.daemon.log" 2>/dev/null
    check "$tag: TPM state was written to disk" test -s "$STATE/tpm2-00.permall"
}

boot 1
if [ "$SCENARIO" = reboot ]; then
    [ -n "$KEYNAME" ] || fail "boot1: guest did not report the persistent key's name"
    boot 2 "vtpm_keyname=${KEYNAME:-none}"
fi
if [ $VERBOSE = 1 ]; then
    say "the TPM's state directory on the host (swtpm's file format; .bak = previous generation)"
    ls -l "$STATE" | sed 's/^/   /'
fi
say "$CONFIG finished in $(elapsed "$T0")s; console and daemon logs in $LOGS"
finish
