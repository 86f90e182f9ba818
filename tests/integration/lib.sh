# shellcheck shell=bash
# Common library for the vtpm integration tests.  Source it from a test script:
#
#   . "$(dirname "$0")/lib.sh"
#   require_tools swtpm_ioctl
#   start_daemon -c unix -d unix
#   check "name" some_command args...
#   finish
#
# Daemon under test: $VTPM_DAEMON = path to the vtpm binary (run as "$VTPM_DAEMON socket ...")
# or the word "swtpm" (run as "swtpm socket ..."); default swtpm.
# Exit codes: 0 all checks passed, 1 any failure, 77 skipped (needed tool absent).
# IT_KEEP=1 keeps the per-test temp dir.  IT_VERBOSE=1 prints every command's output.

set -u
set -o pipefail

IT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ITLIB="$IT_DIR/itlib.py"
: "${VTPM_DAEMON:=swtpm}"
export VTPM_DAEMON
IT_PASSED=0
IT_FAILED=0
IT_PIDS=()
IT_CMD_TIMEOUT=${IT_CMD_TIMEOUT:-60}
TEST_NAME=$(basename "$0" .sh)

it_skip() {
    echo "SKIP: $TEST_NAME: $*"
    exit 77
}

# it_abort WHAT [DETAIL...]: a setup step failed: counts as a failure and ends the test (the
# details are printed indented, as fail() does).
it_abort() {
    fail "setup: $1" "${@:2}"
    finish
}

require_tools() {
    local t
    for t in "$@"; do
        command -v "$t" >/dev/null 2>&1 || it_skip "required tool '$t' not found"
    done
}

daemon_is_swtpm() { [ "$VTPM_DAEMON" = swtpm ]; }

require_tools python3 timeout
if daemon_is_swtpm; then
    require_tools swtpm
elif [ ! -x "$VTPM_DAEMON" ]; then
    echo "FAIL setup: VTPM_DAEMON='$VTPM_DAEMON' is neither 'swtpm' nor an executable file"
    echo "0 passed, 1 failed"
    exit 1
fi

# Per-test temp dir; keep it short because AF_UNIX paths are limited to 107 bytes.
_it_base=${TMPDIR:-/tmp}
{ [ -d "$_it_base" ] && [ ${#_it_base} -le 40 ]; } || _it_base=/tmp
TEST_TMP=$(mktemp -d "$_it_base/vtpm-it.XXXXXX") || { echo "cannot create temp dir"; exit 1; }
unset _it_base

pid_alive() {
    local st
    st=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    st=${st##*) }
    case ${st:0:1} in Z | X) return 1 ;; esac
    return 0
}

# shellcheck disable=SC2034
# wait_exit PID [TIMEOUT_S]: wait (bounded) until PID is gone; reaps it if it is our child.
# Returns 0 if it exited, 1 on timeout.  The child's exit status is left in IT_EXIT_STATUS.
wait_exit() {
    local pid=$1 t=${2:-10} i=0 n
    n=$((t * 20))
    IT_EXIT_STATUS=
    while pid_alive "$pid"; do
        i=$((i + 1))
        [ $i -gt $n ] && return 1
        sleep 0.05
    done
    wait "$pid" 2>/dev/null
    IT_EXIT_STATUS=$?
    _it_forget "$pid"
    return 0
}

# drop a reaped pid from the cleanup list (so a recycled pid is never signalled)
_it_forget() {
    local p keep=()
    for p in "${IT_PIDS[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
    IT_PIDS=("${keep[@]}")
}

_it_cleanup() {
    local rc=$? pid f
    trap - EXIT INT TERM
    for pid in "${IT_PIDS[@]}"; do
        pid_alive "$pid" && kill -TERM "$pid" 2>/dev/null
    done
    for pid in "${IT_PIDS[@]}"; do
        if ! wait_exit "$pid" 3; then
            kill -KILL "$pid" 2>/dev/null
            wait "$pid" 2>/dev/null
        fi
    done
    IT_PIDS=()
    if [ "$rc" -ne 0 ] && [ "$rc" -ne 77 ]; then
        for f in "$TEST_TMP"/*/daemon.log "$TEST_TMP"/*/daemon.stderr "$TEST_TMP"/*.stderr; do
            [ -s "$f" ] || continue
            echo "--- ${f#"$TEST_TMP"/} (last 25 lines)"
            grep -v 'client disconnected' "$f" | tail -n 25 | sed 's/^/    /'
        done
    fi
    if [ "${IT_KEEP:-0}" = 1 ]; then
        echo "keeping $TEST_TMP"
    else
        rm -rf "$TEST_TMP"
    fi
    exit "$rc"
}
trap _it_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------------------
# checks

pass() {
    IT_PASSED=$((IT_PASSED + 1))
    echo "PASS $1"
}

fail() {
    IT_FAILED=$((IT_FAILED + 1))
    echo "FAIL $1"
    shift
    [ $# -gt 0 ] && printf '%s\n' "$@" | tail -n 30 | sed 's/^/    | /'
    return 0
}

# check NAME cmd...: PASS if cmd exits 0 (cmd may be a shell function).
check() {
    local name=$1 out="$TEST_TMP/.check.out"
    shift
    if "$@" >"$out" 2>&1; then
        pass "$name"
        [ "${IT_VERBOSE:-0}" = 1 ] && sed 's/^/    | /' "$out"
    else
        fail "$name" "command (rc=$?): $*" "$(cat "$out")"
    fi
    return 0
}

# check_fails NAME cmd...: PASS if cmd exits non-zero.
check_fails() {
    local name=$1 out="$TEST_TMP/.check.out"
    shift
    if "$@" >"$out" 2>&1; then
        fail "$name" "command unexpectedly succeeded: $*" "$(cat "$out")"
    else
        pass "$name"
    fi
    return 0
}

# check_eq NAME EXPECTED ACTUAL
check_eq() {
    if [ "$2" = "$3" ]; then pass "$1"; else fail "$1" "expected: $2" "     got: $3"; fi
}

# check_match NAME ERE STRING  (grep -E against a possibly multi-line string)
# (here-strings, not a pipe: under pipefail, grep -q exiting early makes printf die of SIGPIPE
# and a match would count as a failure)
check_match() {
    if grep -Eq -- "$2" <<<"$3"; then pass "$1"; else fail "$1" "no match for /$2/ in:" "$3"; fi
}

check_nomatch() {
    if grep -Eq -- "$2" <<<"$3"; then fail "$1" "unexpected match for /$2/ in:" "$3"; else pass "$1"; fi
}

finish() {
    echo "$IT_PASSED passed, $IT_FAILED failed"
    [ "$IT_FAILED" -eq 0 ] && [ "$IT_PASSED" -gt 0 ] && exit 0
    exit 1
}

# run a command with a time limit (external commands only)
t() { timeout "$IT_CMD_TIMEOUT" "$@"; }

# ---------------------------------------------------------------------------
# daemons

# start_daemon [-n NAME] [-s STATEDIR] [-c unix|tcp] [-d unix|tcp|none] [-I] [-P] [-L LEVEL]
#              [-p swtpm|PATH] [-W] [-- extra daemon args...]
#   -n  instance name (sockets, log, pid file live in $TEST_TMP/NAME); default d1, d2, ...
#   -s  state dir (default $TEST_TMP/NAME/state)
#   -c  control channel (default unix);  -d data channel --server (default unix; none = QEMU mode)
#   -I  omit "--flags not-need-init,startup-clear" (TPM waits for CMD_INIT)
#   -P  omit --pid;  -L  log level;  -p  daemon to run instead of $VTPM_DAEMON
#   -W  also wait until TCP ports D_PORT and D_PORT+1 accept (e.g. an MS-simulator port pair)
#   "@PORT@" in the extra args is replaced by the chosen free port D_PORT (D_PORT+1 is free too).
# Paths follow tpm2-tss tcti-swtpm conventions: data socket D, control socket D.ctrl;
# TCP data port P, control port P+1.
# Sets: D_NAME D_DIR D_PID D_STATE D_LOG D_PIDFILE D_DATA D_CTRL D_PORT D_CTRL_PORT
#       D_TCTI (tpm2-tss TCTI string) D_IOCTL (swtpm_ioctl channel args) D_ARGV (array)
_it_ninst=0
# shellcheck disable=SC2034  # D_* and IT_EXIT_STATUS are outputs for the test scripts
start_daemon() {
    local name="" state="" ckind=unix dkind=unix flags=1 pidopt=1 level="" prog=$VTPM_DAEMON
    local waitpair=0 OPTIND=1 opt a
    while getopts "n:s:c:d:IPL:p:W" opt; do
        case $opt in
        n) name=$OPTARG ;;
        s) state=$OPTARG ;;
        c) ckind=$OPTARG ;;
        d) dkind=$OPTARG ;;
        I) flags=0 ;;
        P) pidopt=0 ;;
        L) level=$OPTARG ;;
        p) prog=$OPTARG ;;
        W) waitpair=1 ;;
        *) it_abort "start_daemon: bad option" ;;
        esac
    done
    shift $((OPTIND - 1))
    _it_ninst=$((_it_ninst + 1))
    [ -n "$name" ] || name=d$_it_ninst
    D_NAME=$name
    D_DIR=$TEST_TMP/$name
    D_STATE=${state:-$D_DIR/state}
    D_LOG=$D_DIR/daemon.log
    D_PIDFILE=$D_DIR/daemon.pid
    D_DATA=$D_DIR/tpm.sock
    D_CTRL=$D_DATA.ctrl
    mkdir -p "$D_DIR" "$D_STATE"

    local _attempt rc
    for _attempt in 1 2 3; do
        D_PORT=$(python3 "$ITLIB" freeport) || it_abort "no free TCP port"
        D_CTRL_PORT=$((D_PORT + 1))
        if [ "$prog" = swtpm ]; then D_ARGV=(swtpm socket); else D_ARGV=("$prog" socket); fi
        D_ARGV+=(--tpm2 --tpmstate "dir=$D_STATE")
        local wait_args=()
        if [ "$ckind" = tcp ]; then
            D_ARGV+=(--ctrl "type=tcp,port=$D_CTRL_PORT")
            D_IOCTL="--tcp 127.0.0.1:$D_CTRL_PORT"
            wait_args+=(--tcp "$D_CTRL_PORT")
        else
            D_ARGV+=(--ctrl "type=unixio,path=$D_CTRL")
            D_IOCTL="--unix $D_CTRL"
            wait_args+=(--unix "$D_CTRL")
        fi
        case $dkind in
        unix)
            D_ARGV+=(--server "type=unixio,path=$D_DATA")
            D_TCTI="swtpm:path=$D_DATA"
            wait_args+=(--unix "$D_DATA")
            ;;
        tcp)
            D_ARGV+=(--server "type=tcp,port=$D_PORT")
            D_TCTI="swtpm:host=127.0.0.1,port=$D_PORT"
            wait_args+=(--tcp "$D_PORT")
            ;;
        none) D_TCTI="" ;;
        *) it_abort "start_daemon: bad data channel kind $dkind" ;;
        esac
        # shellcheck disable=SC2054  # the comma is part of the option value
        [ $flags = 1 ] && D_ARGV+=(--flags not-need-init,startup-clear)
        [ $pidopt = 1 ] && D_ARGV+=(--pid "file=$D_PIDFILE")
        if [ -n "$level" ]; then
            D_ARGV+=(--log "file=$D_LOG,level=$level")
        else
            D_ARGV+=(--log "file=$D_LOG")
        fi
        for a in "$@"; do D_ARGV+=("${a//@PORT@/$D_PORT}"); done
        [ $waitpair = 1 ] && wait_args+=(--tcp "$D_PORT" --tcp "$D_CTRL_PORT")
        [ "${IT_VERBOSE:-0}" = 1 ] && echo "+ ${D_ARGV[*]}"
        "${D_ARGV[@]}" </dev/null >>"$D_DIR/daemon.stderr" 2>&1 &
        D_PID=$!
        IT_PIDS+=("$D_PID")
        python3 "$ITLIB" wait "$D_PID" "${wait_args[@]}" --timeout 10
        rc=$?
        [ $rc = 0 ] && return 0
        stop_daemon "$D_PID"
        # a dead daemon with TCP sockets may have lost a port race: try again
        [ $rc = 1 ] && { [ "$ckind" = tcp ] || [ "$dkind" = tcp ] || [ $waitpair = 1 ]; } && continue
        break
    done
    it_abort "daemon did not become ready (rc=$rc): ${D_ARGV[*]}
$(tail -n 20 "$D_DIR/daemon.stderr" "$D_LOG" 2>/dev/null)"
}

# stop_daemon [PID]: SIGTERM and wait (bounded) for exit.
stop_daemon() {
    local pid=${1:-$D_PID}
    pid_alive "$pid" && kill -TERM "$pid" 2>/dev/null
    wait_exit "$pid" 10 && return 0
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    _it_forget "$pid"
    return 1
}

# ctrl_hex HEX: send raw bytes on the current daemon's control channel, print response hex
ctrl_hex() {
    case $D_IOCTL in
    --tcp*) python3 "$ITLIB" ctrl --tcp "$D_CTRL_PORT" "$1" ;;
    *) python3 "$ITLIB" ctrl --unix "$D_CTRL" "$1" ;;
    esac
}

# daemon_ctrl_results LOGFILE: one "CMD_NAME 0xRESULT" line per control command the daemon
# logged, in order.  Needs the daemon's log at level 20 (start_daemon -L 20).  Both formats:
#   vtpm:  "... ctrl: CMD_INIT -> 0x0" (src/daemon/ctrl_session.cc logs every command's result)
#          and "ctrl: unknown command 0xNN" (answered with PTM_RES_BAD_ORDINAL, 0xa)
#   swtpm 0.7.1: a hex dump of each message, the result is the response's first u32:
#          " Ctrl Cmd: length 8" / " 00 00 00 02 00 00 00 00 " / " Ctrl Rsp: length 4" /
#          " 00 00 00 00 "
# A swtpm command whose response is not in the log shows as "CMD_NAME none".
daemon_ctrl_results() {
    [ -r "$1" ] || { echo "no log file $1"; return 1; }
    awk '
    BEGIN {
        n = split("GET_CAPABILITY INIT SHUTDOWN GET_TPMESTABLISHED SET_LOCALITY HASH_START " \
                  "HASH_DATA HASH_END CANCEL_TPM_CMD STORE_VOLATILE RESET_TPMESTABLISHED " \
                  "GET_STATEBLOB SET_STATEBLOB STOP GET_CONFIG SET_DATAFD SET_BUFFERSIZE " \
                  "GET_INFO LOCK_STORAGE", names, " ")
        pending = ""; expect = ""
    }
    function be32(a, b, c, d,   s, i, v) {  # four hex byte fields -> number (mawk: no strtonum)
        s = toupper(a b c d); v = 0
        for (i = 1; i <= 8; i++) v = v * 16 + index("0123456789ABCDEF", substr(s, i, 1)) - 1
        return v
    }
    function cmdname(code) { return (code >= 1 && code <= n) ? "CMD_" names[code] : sprintf("CMD_0x%x", code) }
    expect == "cmd" { if (pending != "") print pending, "none"
                      pending = cmdname(be32($1, $2, $3, $4)); expect = ""; next }
    expect == "rsp" { if (pending != "") printf "%s 0x%x\n", pending, be32($1, $2, $3, $4)
                      pending = ""; expect = ""; next }
    /^ Ctrl Cmd: length / { expect = "cmd"; next }
    /^ Ctrl Rsp: length / { expect = "rsp"; next }
    /ctrl: CMD_[A-Z_]+.* -> 0x[0-9a-f]+$/ {
        s = substr($0, index($0, "ctrl: CMD_") + 6); split(s, w, " "); print w[1], $NF; next
    }
    /ctrl: unknown command 0x/ { print "CMD_" $NF, "0xa"; next }
    END { if (pending != "") print pending, "none" }' "$1"
}

# daemon_ctrl_ok LOGFILE [NAME]: the daemon logged control command NAME (any command if no NAME)
# at least once, and the result of every one logged is 0 (PTM_RES_SUCCESS).  Prints what the
# log shows (check() displays it on failure).
daemon_ctrl_ok() {
    local res
    res=$(daemon_ctrl_results "$1") || { echo "$res"; return 1; }
    echo "control commands and results in $1:"
    printf '%s\n' "${res:-(none)}"
    awk -v want="${2:-}" '
        want == "" || $1 == want { seen++; if ($2 != "0x0") bad++ }
        END { exit (seen > 0 && bad == 0) ? 0 : 1 }' <<<"$res"
}

# hex helpers
file_hex() { od -An -v -tx1 "$1" | tr -d ' \n'; }
