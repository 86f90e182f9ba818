#!/usr/bin/env bash
# Regression test of a mechanism (issue 11), not a machine timing: commands through the tpm2-tss
# "mssim" TCTI must not wait for TCP's 40 ms delayed-ACK timer. tcti-mssim writes each command in
# several small send()s with Nagle on; if the daemon delays its ACK, every command waits ~40 ms
# (20 GetRandom: ~0.9 s instead of a few ms). The daemon's side of the cure: TCP_QUICKACK re-armed
# after each read, TCP_NODELAY, each reply in one write.
#   1. vtpm_esys_client ($VTPM_ESYS_CLIENT): one process, 20 x TPM2_GetRandom(8) through
#      mssim:host=127.0.0.1,port=N, process start included: must take < 0.5 s (without the
#      gaps it takes a few ms even under ASan; with them >= 0.8 s).
#   2. tpm2-tools: 20 x `tpm2_getrandom 8` through the mssim TCTI may take at most 0.4 s longer
#      than 20 through the swtpm TCTI on the same daemon (20 ms per command: half the timer).
# vtpm only: swtpm 0.7.1 has no MS-simulator platform port.
. "$(dirname "$0")/lib.sh"
daemon_is_swtpm && it_skip "swtpm 0.7.1 has no MS-simulator platform port; this test is for vtpm only"
esys=${VTPM_ESYS_CLIENT:-}
if [ -z "$esys" ] || [ ! -x "$esys" ]; then
    esys=""
    command -v tpm2_getrandom >/dev/null 2>&1 ||
        it_skip "neither vtpm_esys_client (\$VTPM_ESYS_CLIENT) nor tpm2_getrandom is available"
fi

start_daemon -n gaps -d unix -W -- --mssim port=@PORT@
MSSIM_TCTI="mssim:host=127.0.0.1,port=$D_PORT"

now_us() { local t=${EPOCHREALTIME/./}; echo $((10#$t)); }

if [ -n "$esys" ]; then
    t0=$(now_us)
    out=$(t "$esys" -n 20 --commands getrandom --startup "$MSSIM_TCTI" 2>&1)
    rc=$?
    t1=$(now_us)
    elapsed=$((t1 - t0))
    [ "$rc" = 0 ] || it_abort "vtpm_esys_client through $MSSIM_TCTI (rc=$rc)" "$out"
    per_cmd=$(awk '$2 == "getrandom" { printf "%.1f ", $3 / 1000 }' <<<"$out")
    if [ "$elapsed" -lt 500000 ]; then
        pass "esys client: 20 GetRandom through the mssim TCTI in $((elapsed / 1000)) ms (< 500 ms, process start included)"
    else
        fail "esys client: 20 GetRandom through the mssim TCTI in < 500 ms (no 40 ms delayed-ACK gaps)" \
            "took $((elapsed / 1000)) ms; per command (ms): $per_cmd"
    fi
else
    echo "NOTE: \$VTPM_ESYS_CLIENT not set (bench/ not built): only the tpm2-tools check runs"
fi

if command -v tpm2_getrandom >/dev/null 2>&1; then
    # loop TCTI: 20 x tpm2_getrandom 8; prints the elapsed microseconds, fails on any error
    loop() {
        local t0 t1
        t0=$(now_us)
        for _ in $(seq 20); do
            TPM2TOOLS_TCTI=$1 t tpm2_getrandom 8 >"$TEST_TMP/rand.bin" 2>"$TEST_TMP/rand.err" ||
                { cat "$TEST_TMP/rand.err"; return 1; }
            [ "$(stat -c %s "$TEST_TMP/rand.bin")" = 8 ] || { echo "not 8 bytes"; return 1; }
        done
        t1=$(now_us)
        echo $((t1 - t0))
    }
    swtpm_us=$(loop "$D_TCTI") || it_abort "20 x tpm2_getrandom 8 through $D_TCTI" "$swtpm_us"
    mssim_us=$(loop "$MSSIM_TCTI") || it_abort "20 x tpm2_getrandom 8 through $MSSIM_TCTI" "$mssim_us"
    name="tpm2-tools: 20 x tpm2_getrandom 8 through mssim $((mssim_us / 1000)) ms, swtpm TCTI $((swtpm_us / 1000)) ms"
    if [ $((mssim_us - swtpm_us)) -lt 400000 ]; then
        pass "$name (mssim at most 400 ms slower)"
    else
        fail "$name: mssim more than 400 ms slower (40 ms delayed-ACK gaps per command)"
    fi
fi
check "daemon stops on SIGTERM" stop_daemon
finish
