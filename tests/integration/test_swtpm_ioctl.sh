#!/usr/bin/env bash
# swtpm_ioctl against a fresh daemon, control channel over UNIX socket and over TCP.
. "$(dirname "$0")/lib.sh"
require_tools swtpm_ioctl tpm2_pcrextend tpm2_pcrread

PCR16_ONE=0000000000000000000000000000000000000000000000000000000000000001
# sha256(0^32 || 0^31 01)
PCR16_AFTER=90F4B39548DF55AD6187A1D20D731ECEE78C545B94AFD16F42EF7592D99CD365

ioctl_suite() {
    local tr=$1 out rc caps vol
    start_daemon -n "$tr" -c "$tr" -d "$tr"
    # shellcheck disable=SC2206
    local IO=(t swtpm_ioctl $D_IOCTL)
    export TPM2TOOLS_TCTI=$D_TCTI
    vol=$D_STATE/tpm2-00.volatilestate

    check_eq "$tr: --pid file holds the daemon pid" "$D_PID" "$(tr -d ' \n' <"$D_PIDFILE" 2>/dev/null)"

    out=$("${IO[@]}" -c 2>&1)
    check_match "$tr: -c prints capabilities" '^ptm capability is 0x[0-9a-f]+$' "$out"
    caps=$(printf '%s' "$out" | sed -n 's/^ptm capability is \(0x[0-9a-f]*\)$/\1/p')
    check_eq "$tr: caps include every swtpm 0.7.1 bit (0xffff)" 65535 $(((${caps:-0}) & 0xffff))

    out=$("${IO[@]}" -i 2>&1)
    check_eq "$tr: -i (init) succeeds silently" "rc=0 ''" "rc=$? '$out'"
    check "$tr: no volatile state file after -i" test ! -e "$vol"

    out=$("${IO[@]}" -e 2>&1)
    check_eq "$tr: -e on fresh TPM" "tpmEstablished is 0" "$out"

    local l
    for l in 0 1 2 3 4; do
        check "$tr: -l $l" "${IO[@]}" -l $l
    done
    check_fails "$tr: -l 5 is rejected" "${IO[@]}" -l 5

    check "$tr: -h data (hash start/data/end)" "${IO[@]}" -h data
    out=$("${IO[@]}" -e 2>&1)
    check_eq "$tr: -e after hash" "tpmEstablished is 1" "$out"
    check "$tr: -r 3 (reset established)" "${IO[@]}" -r 3
    out=$("${IO[@]}" -e 2>&1)
    check_eq "$tr: -e after reset" "tpmEstablished is 0" "$out"

    check "$tr: -v (store volatile)" "${IO[@]}" -v
    check "$tr: volatile state file appears" test -s "$vol"

    out=$("${IO[@]}" -b 0 2>&1)
    check_eq "$tr: -b 0 (query buffer size)" "TPM buffersize: 4096
minimum size  : 2808
maximum size  : 4096" "$out"
    out=$("${IO[@]}" -b 3000 2>&1)
    rc=$?
    check_eq "$tr: -b 3000 while running fails with 0xa" "rc=1 TPM result from PTM_SET_BUFFERSIZE: 0xa" \
        "rc=$rc $out"

    check "$tr: --stop" "${IO[@]}" --stop
    out=$("${IO[@]}" -b 3000 2>&1)
    check_match "$tr: -b 3000 after --stop sets it" '^TPM buffersize: 3000$' "$out"
    out=$("${IO[@]}" -b 0 2>&1)
    check_match "$tr: -b 0 after set reports 3000" '^TPM buffersize: 3000$' "$out"
    out=$("${IO[@]}" -b 100000 2>&1)
    check_match "$tr: -b 100000 is clamped to the maximum" '^TPM buffersize: 4096$' "$out"
    out=$("${IO[@]}" -b 100 2>&1)
    check_match "$tr: -b 100 is clamped to the minimum" '^TPM buffersize: 2808$' "$out"
    check "$tr: -b 4096 restores the default" "${IO[@]}" -b 4096
    out=$("${IO[@]}" -e 2>&1)
    rc=$?
    check_eq "$tr: -e while stopped fails with 0xa" "rc=1 TPM result from PTM_GET_TPMESTABLISHED: 0xa" \
        "rc=$rc $out"
    check "$tr: -i after --stop" "${IO[@]}" -i
    # swtpm applies startup-clear only at process start: after stop + init the TPM needs Startup
    t tpm2_startup -c >/dev/null 2>&1

    out=$("${IO[@]}" --info 7 2>&1)
    check "$tr: --info 7 is JSON with TPMSpecification.family 2.0" python3 -c '
import json, sys
d = json.loads(sys.argv[1])
assert d["TPMSpecification"]["family"] == "2.0", d
assert set(d) == {"TPMSpecification", "TPMAttributes", "TPMFeatures"}, d
assert "RSAKeySizes" in d["TPMFeatures"], d
' "$out"
    out=$("${IO[@]}" --info 1 2>&1)
    check "$tr: --info 1 has only TPMSpecification" python3 -c '
import json, sys
d = json.loads(sys.argv[1]); assert list(d) == ["TPMSpecification"], d' "$out"

    # state blobs: PCR16 carries volatile state across save / stop / load / init
    check "$tr: pcrextend 16" t tpm2_pcrextend "16:sha256=$PCR16_ONE"
    out=$(t tpm2_pcrread sha256:16 2>&1)
    check_match "$tr: PCR16 extended" "16 ?: 0x$PCR16_AFTER" "$out"
    rm -f "$D_DIR/perm.bin" "$D_DIR/vol.bin"
    check "$tr: --save permanent" "${IO[@]}" --save permanent "$D_DIR/perm.bin"
    check "$tr: --save volatile" "${IO[@]}" --save volatile "$D_DIR/vol.bin"
    check "$tr: permanent blob non-empty" test -s "$D_DIR/perm.bin"
    check "$tr: volatile blob non-empty" test -s "$D_DIR/vol.bin"
    check "$tr: --stop before load" "${IO[@]}" --stop
    check "$tr: --load permanent" "${IO[@]}" --load permanent "$D_DIR/perm.bin"
    check "$tr: --load volatile" "${IO[@]}" --load volatile "$D_DIR/vol.bin"
    check "$tr: -i after load" "${IO[@]}" -i
    out=$(t tpm2_pcrread sha256:16 2>&1)
    check_match "$tr: PCR16 restored from the volatile blob" "16 ?: 0x$PCR16_AFTER" "$out"

    check "$tr: -C (cancel)" "${IO[@]}" -C
    out=$("${IO[@]}" -g 2>&1)
    check_eq "$tr: -g (config flags)" "ptm configuration flags: 0x0" "$out"
    check "$tr: --stop" "${IO[@]}" --stop
    check "$tr: daemon still running after --stop" pid_alive "$D_PID"
    out=$("${IO[@]}" -s 2>&1)
    check_eq "$tr: -s (shutdown)" "rc=0 ''" "rc=$? '$out'"
    if wait_exit "$D_PID" 10; then
        pass "$tr: daemon process exits after -s"
        check_eq "$tr: daemon exit status after -s" 0 "$IT_EXIT_STATUS"
    else
        fail "$tr: daemon process exits after -s"
    fi
}

ioctl_suite unix
ioctl_suite tcp
finish
