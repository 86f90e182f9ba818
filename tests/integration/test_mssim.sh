#!/usr/bin/env bash
# tpm2-tools through the tpm2-tss "mssim" TCTI (MS TPM simulator protocol: command port N,
# platform port N+1).  vtpm only: swtpm 0.7.1 has no MS-simulator platform port.
# The daemon option is taken from $VTPM_MSSIM_ARGS (default "--mssim port=@PORT@";
# @PORT@ becomes the command port N, N+1 is free for the platform port).
. "$(dirname "$0")/lib.sh"
daemon_is_swtpm && it_skip "swtpm 0.7.1 has no MS-simulator platform port; this test is for vtpm only"
require_tools tpm2_startup tpm2_getrandom tpm2_pcrread tpm2_pcrextend tpm2_createprimary tpm2_create \
    tpm2_load tpm2_sign tpm2_verifysignature tpm2_nvdefine tpm2_nvwrite tpm2_nvread tpm2_flushcontext \
    tpm2_getcap

NV_INDEX=0x1500017
flush() { t tpm2_flushcontext -t >/dev/null 2>&1; return 0; }
tt() { t "$@" >"$W/last.out" 2>&1; local rc=$?; flush; cat "$W/last.out"; return $rc; }
pcr_value() {
    t tpm2_pcrread "sha256:$1" 2>/dev/null | sed -n "s/^ *$1 *: 0x\([0-9A-Fa-f]*\)$/\1/p" | tr 'A-F' 'a-f'
}

read -r -a MSSIM_ARGS <<<"${VTPM_MSSIM_ARGS:---mssim port=@PORT@}"
start_daemon -n ms -d none -W -- "${MSSIM_ARGS[@]}"
export TPM2TOOLS_TCTI="mssim:host=127.0.0.1,port=$D_PORT"
W=$D_DIR/work
mkdir -p "$W"

# tcti-mssim sends MS_SIM_POWER_ON + MS_SIM_NV_ON on every connect; the TPM may already be started
# (startup-clear) -> TPM2_Startup returns success or TPM_RC_INITIALIZE (0x100).
out=$(t tpm2_startup -c 2>&1)
rc=$?
if [ $rc = 0 ] || printf '%s' "$out" | grep -q '0x100\|already initialized'; then
    pass "mssim: tpm2_startup -c (ok or already started)"
else
    fail "mssim: tpm2_startup -c (ok or already started)" "$out"
fi

check "mssim: tpm2_getrandom 16" tt tpm2_getrandom 16 -o "$W/rand.bin"
check_eq "mssim: getrandom returned 16 bytes" 16 "$(stat -c %s "$W/rand.bin" 2>/dev/null)"
check "mssim: second connection (power-on again) still works" tt tpm2_getrandom 8 -o "$W/rand2.bin"

old=$(pcr_value 16)
check_match "mssim: tpm2_pcrread sha256:16" '^[0-9a-f]{64}$' "$old"
digest=$(printf 'vtpm-it mssim' | sha256sum | cut -c1-64)
want=$(python3 -c 'import hashlib,sys; print(hashlib.sha256(bytes.fromhex(sys.argv[1]) + bytes.fromhex(sys.argv[2])).hexdigest())' \
    "$old" "$digest")
check "mssim: tpm2_pcrextend 16" tt tpm2_pcrextend "16:sha256=$digest"
check_eq "mssim: PCR16 = sha256(old || digest)" "$want" "$(pcr_value 16)"

check "mssim: createprimary -C o -G ecc" tt tpm2_createprimary -C o -G ecc -c "$W/prim.ctx"
check "mssim: tpm2_create" tt tpm2_create -C "$W/prim.ctx" -G ecc -u "$W/k.pub" -r "$W/k.priv"
check "mssim: tpm2_load" tt tpm2_load -C "$W/prim.ctx" -u "$W/k.pub" -r "$W/k.priv" -c "$W/k.ctx"
printf 'mssim message\n' >"$W/msg"
check "mssim: tpm2_sign" tt tpm2_sign -c "$W/k.ctx" -g sha256 -o "$W/sig" "$W/msg"
check "mssim: tpm2_verifysignature" tt tpm2_verifysignature -c "$W/k.ctx" -g sha256 -m "$W/msg" -s "$W/sig"
printf 'tampered\n' >"$W/msg2"
check_fails "mssim: verifysignature rejects a tampered message" \
    tt tpm2_verifysignature -c "$W/k.ctx" -g sha256 -m "$W/msg2" -s "$W/sig"

head -c 32 /dev/urandom >"$W/nv.in"
check "mssim: tpm2_nvdefine" tt tpm2_nvdefine "$NV_INDEX" -C o -s 32 -a "ownerread|ownerwrite|authread|authwrite"
check "mssim: tpm2_nvwrite" tt tpm2_nvwrite "$NV_INDEX" -C o -i "$W/nv.in"
check "mssim: tpm2_nvread" tt tpm2_nvread "$NV_INDEX" -C o -s 32 -o "$W/nv.out"
check "mssim: NV contents match" cmp "$W/nv.in" "$W/nv.out"

# the swtpm control channel keeps working next to the MS-simulator ports
if command -v swtpm_ioctl >/dev/null 2>&1; then
    # shellcheck disable=SC2086  # D_IOCTL is "--unix PATH" / "--tcp HOST:PORT"
    out=$(t swtpm_ioctl $D_IOCTL -c 2>&1)
    check_match "mssim: control channel still answers (swtpm_ioctl -c)" '^ptm capability is 0x' "$out"
fi
check "mssim: daemon stops on SIGTERM" stop_daemon
finish
