#!/usr/bin/env bash
# Encrypted state, byte-compatible with Debian's swtpm 0.7.1 in both directions: state written
# with --key by one daemon opens in the other with the same key (every key form swtpm takes:
# hex and binary key files, passphrase files with PBKDF2 and SHA-512, a passphrase on an fd as
# libvirt passes it), NV contents and a persistent key intact. Migration blobs encrypted with
# --migration-key cross over with swtpm_ioctl --save/--load. vtpm only: a wrong or missing key is
# reported as such and changes nothing on disk; plain state is encrypted in place when a key is
# given; the AEAD mode (aes-256-gcm) works and swtpm refuses it.
. "$(dirname "$0")/lib.sh"
require_tools swtpm swtpm_ioctl tpm2_nvdefine tpm2_nvwrite tpm2_nvread tpm2_flushcontext tpm2_startup \
    tpm2_readpublic sha256sum

NV_INDEX=0x1500030
NV_BYTES="vtpm encrypted state 0123456789"   # 31 bytes + newline
K=$TEST_TMP/keys
mkdir -p "$K"
printf '000102030405060708090a0b0c0d0e0f\n' >"$K/k128.hex"
printf '0x%s\n' 000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f >"$K/k256.hex"
printf '\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f\x20\x21\x22\x23\x24\x25\x26\x27\x28\x29\x2a\x2b\x2c\x2d\x2e\x2f' >"$K/k256.bin"
printf 'correct horse battery staple\n' >"$K/pwd"
printf 'a different passphrase\n' >"$K/wrong"
printf '%s\n' "$NV_BYTES" >"$K/nv.in"

flush() { t tpm2_flushcontext -t >/dev/null 2>&1; return 0; }
tt() { t "$@" >"$TEST_TMP/last.out" 2>&1; local rc=$?; flush; return $rc; }
label() { if [ "$1" = swtpm ]; then echo swtpm; else basename "$1"; fi; }
# header flags of a state file or blob (bytes 4..5), as 4 hex digits
hdr_flags() { file_hex "$1" | cut -c9-12; }
files_digest() { (cd "$1" && sha256sum tpm2-00.* 2>/dev/null); }

write_nv() {
    export TPM2TOOLS_TCTI=$D_TCTI
    tt tpm2_nvdefine $NV_INDEX -C o -s 32 -a 'ownerread|ownerwrite|authread|authwrite' &&
        tt tpm2_nvwrite $NV_INDEX -C o -i "$K/nv.in"
}
nv_equal() {
    export TPM2TOOLS_TCTI=$D_TCTI
    tt tpm2_nvread $NV_INDEX -C o -s 32 -o "$1" && cmp -s "$K/nv.in" "$1"
}

# cross FROM TO TAG KEYOPT [FD-FILE]: FROM writes encrypted state, TO opens it with the same key.
# With FD-FILE, KEYOPT names fd 7 and each daemon gets the file on a fresh fd 7 (as libvirt pipes
# the secret).
_n=0
cross() {
    local from=$1 to=$2 tag="$3: $(label "$1")->$(label "$2")" keyopt=$4 fdfile=${5:-} state
    _n=$((_n + 1))
    state=$TEST_TMP/cross$_n
    mkdir -p "$state"
    [ -n "$fdfile" ] && exec 7<"$fdfile"
    start_daemon -n "c$_n-a" -p "$from" -s "$state" -- --key "$keyopt"
    [ -n "$fdfile" ] && exec 7<&-
    check "$tag: NV index written" write_nv
    stop_daemon
    check_eq "$tag: permall is encrypted (header flag ENCRYPTED)" 1 \
        "$(( 0x$(hdr_flags "$state/tpm2-00.permall") & 1 ))"
    check_fails "$tag: no plaintext NV bytes in the state files" grep -rqa "vtpm encrypted state" "$state"
    [ -n "$fdfile" ] && exec 7<"$fdfile"
    start_daemon -n "c$_n-b" -p "$to" -s "$state" -- --key "$keyopt"
    [ -n "$fdfile" ] && exec 7<&-
    check "$tag: NV contents read back" nv_equal "$TEST_TMP/c$_n.out"
    stop_daemon
}

for pair in "swtpm $VTPM_DAEMON" "$VTPM_DAEMON swtpm"; do
    set -- $pair
    cross "$1" "$2" "hex key, aes-cbc" "file=$K/k128.hex"
    cross "$1" "$2" "0x hex key, aes-256-cbc" "file=$K/k256.hex,mode=aes-256-cbc"
    cross "$1" "$2" "binary key, aes-256-cbc" "file=$K/k256.bin,format=binary,mode=aes-256-cbc"
    cross "$1" "$2" "passphrase file, pbkdf2" "pwdfile=$K/pwd,mode=aes-256-cbc"
    cross "$1" "$2" "passphrase on an fd, sha512" "pwdfd=7,kdf=sha512" "$K/pwd"
done

# Migration blobs: GET_STATEBLOB under --migration-key from one daemon, SET_STATEBLOB into the
# other (stopped) with the same keys, then the NV index reads back.
mig_n=0
migrate() {
    local from=$1 to=$2 tag="migration key: $(label "$1")->$(label "$2")" src dst
    mig_n=$((mig_n + 1))
    src=$TEST_TMP/mig$mig_n-src
    dst=$TEST_TMP/mig$mig_n-dst
    mkdir -p "$src" "$dst"
    local keys=(--key "file=$K/k128.hex" --migration-key "pwdfile=$K/pwd,mode=aes-256-cbc")
    start_daemon -n "m$mig_n-a" -p "$from" -s "$src" -- "${keys[@]}"
    check "$tag: NV index written" write_nv
    check_eq "$tag: GET_CONFIG says file and migration key" "0000000000000003" "$(ctrl_hex 0000000f)"
    check "$tag: swtpm_ioctl --save permanent" t swtpm_ioctl $D_IOCTL --save permanent "$src/perm.blob"
    check_eq "$tag: the blob is migration-encrypted with a 256-bit key" 1 \
        "$(( (0x$(hdr_flags "$src/perm.blob") & 0x12) == 0x12 ))"
    check_fails "$tag: no plaintext NV bytes in the blob" grep -qa "vtpm encrypted state" "$src/perm.blob"
    stop_daemon
    start_daemon -n "m$mig_n-b" -p "$to" -s "$dst" -I -- "${keys[@]}"
    check "$tag: CMD_STOP" t swtpm_ioctl $D_IOCTL --stop
    check "$tag: swtpm_ioctl --load permanent" t swtpm_ioctl $D_IOCTL --load permanent "$src/perm.blob"
    check "$tag: CMD_INIT" t swtpm_ioctl $D_IOCTL -i
    export TPM2TOOLS_TCTI=$D_TCTI
    tt tpm2_startup -c
    check "$tag: NV contents read back on the destination" nv_equal "$TEST_TMP/m$mig_n.out"
    stop_daemon
}
migrate swtpm "$VTPM_DAEMON"
migrate "$VTPM_DAEMON" swtpm

if daemon_is_swtpm; then
    finish
    exit
fi

# --- vtpm only -------------------------------------------------------------------------------
V=$VTPM_DAEMON
start_fails() {  # start_fails STATE OUTFILE ARGS...: the daemon must refuse to start
    local state=$1 out=$2
    shift 2
    t "$V" socket --tpm2 --tpmstate "dir=$state" --flags not-need-init,startup-clear \
        --ctrl "type=unixio,path=$TEST_TMP/refuse.ctrl" "$@" >"$out" 2>&1
    [ $? -ne 0 ]
}

S=$TEST_TMP/wrongkey
mkdir -p "$S"
start_daemon -n wk -s "$S" -- --key "pwdfile=$K/pwd"
check "wrong key: NV index written" write_nv
stop_daemon
before=$(files_digest "$S")
check "wrong key: a different passphrase is refused" start_fails "$S" "$TEST_TMP/wk.out" --key "pwdfile=$K/wrong"
check_match "wrong key: the error says the key does not open it" "does not open with the key" "$(cat "$TEST_TMP/wk.out")"
check_nomatch "wrong key: no damage/rollback advice" "rollback|damaged" "$(cat "$TEST_TMP/wk.out")"
check "wrong key: a 256-bit key for a 128-bit state is refused" start_fails "$S" "$TEST_TMP/wk2.out" --key "file=$K/k256.hex,mode=aes-256-cbc"
check_match "wrong key: the error names the cipher" "aes-cbc mode; the key given is for aes-256-cbc" "$(cat "$TEST_TMP/wk2.out")"
check "no key: encrypted state is refused" start_fails "$S" "$TEST_TMP/nk.out"
check_match "no key: the error says so" "is encrypted \(aes-cbc\) and no key was given" "$(cat "$TEST_TMP/nk.out")"
check_eq "wrong/missing key: state files unchanged" "$before" "$(files_digest "$S")"
start_daemon -n wk2 -s "$S" -- --key "pwdfile=$K/pwd"
check "wrong key: the right key still opens it" nv_equal "$TEST_TMP/wk.nv"
stop_daemon

# Turning encryption on for existing plain state: every generation is encrypted in place.
S=$TEST_TMP/upgrade
mkdir -p "$S"
start_daemon -n up1 -s "$S"
check "upgrade: NV index written in plain state" write_nv
stop_daemon
check "upgrade: there is a previous generation" test -f "$S/tpm2-00.permall.bak"
check_eq "upgrade: permall is plain before" 0 "$(( 0x$(hdr_flags "$S/tpm2-00.permall") & 1 ))"
start_daemon -n up2 -s "$S" -- --key "file=$K/k128.hex"
check "upgrade: NV contents read back with the key" nv_equal "$TEST_TMP/up.nv"
stop_daemon
for f in tpm2-00.permall tpm2-00.permall.bak; do
    check_eq "upgrade: $f is encrypted after" 1 "$(( 0x$(hdr_flags "$S/$f") & 1 ))"
done
check_fails "upgrade: no plaintext NV bytes left" grep -rqa "vtpm encrypted state" "$S"
start_daemon -n up3 -p swtpm -s "$S" -- --key "file=$K/k128.hex"
check "upgrade: swtpm opens the encrypted state" nv_equal "$TEST_TMP/up3.nv"
stop_daemon

# vtpm's AEAD mode.
S=$TEST_TMP/aead
mkdir -p "$S"
start_daemon -n ae1 -s "$S" -- --key "file=$K/k256.hex,mode=aes-256-gcm"
check "aead: NV index written" write_nv
stop_daemon
start_daemon -n ae2 -s "$S" -- --key "file=$K/k256.hex,mode=aes-256-gcm"
check "aead: NV contents read back after a restart" nv_equal "$TEST_TMP/ae.nv"
stop_daemon
check_fails "aead: no plaintext NV bytes" grep -rqa "vtpm encrypted state" "$S"
check "aead: the same key in CBC mode is refused" start_fails "$S" "$TEST_TMP/ae.out" --key "file=$K/k256.hex,mode=aes-256-cbc"
check_match "aead: the error names the mode" "aes-256-gcm mode" "$(cat "$TEST_TMP/ae.out")"
cp -a "$S" "$TEST_TMP/aead-swtpm"
t swtpm socket --tpm2 --tpmstate "dir=$TEST_TMP/aead-swtpm" --flags not-need-init,startup-clear \
    --ctrl "type=unixio,path=$TEST_TMP/aes.ctrl" --key "file=$K/k256.hex,mode=aes-256-cbc" \
    >"$TEST_TMP/aes.out" 2>&1 &
sw=$!
sleep 1
if pid_alive $sw; then kill $sw; wait $sw 2>/dev/null; fail "aead: swtpm refuses vtpm's AEAD state"; else pass "aead: swtpm refuses vtpm's AEAD state"; fi
# vtpm setup as libvirt runs it for an encrypted vTPM: the passphrase on an fd, --cipher.
S=$TEST_TMP/setup
mkdir -p "$S"
check "setup: --pwdfile-fd 7 --cipher aes-256-cbc" eval "HOME='$TEST_TMP' t '$V' setup --tpm2 \
    --tpm-state '$S' --createek --create-ek-cert --lock-nvram --not-overwrite \
    --pwdfile-fd 7 --cipher aes-256-cbc --ca-dir '$TEST_TMP/ca' 7<'$K/pwd' >'$TEST_TMP/setup.out' 2>&1"
check_eq "setup: the state is encrypted with a 256-bit key" 9 "$(( 0x$(hdr_flags "$S/tpm2-00.permall") & 9 ))"
check "setup: vtpm ek --key reads the EK" eval "t '$V' ek --tpm-state '$S' --key 'pwdfile=$K/pwd,mode=aes-256-cbc' --keys-only | grep -q 'BEGIN PUBLIC KEY'"
start_daemon -n su -p swtpm -s "$S" -- --key "pwdfile=$K/pwd,mode=aes-256-cbc"
export TPM2TOOLS_TCTI=$D_TCTI
check "setup: swtpm opens it and the EK is persisted" eval "tt tpm2_readpublic -c 0x81010001"
stop_daemon
check "key options: fd closed, file removed with remove=true" eval "cp '$K/k128.hex' '$K/rm.hex' &&
    start_daemon -n rm -s '$TEST_TMP/rm' -- --key 'file=$K/rm.hex,remove=true' && ! test -e '$K/rm.hex'"
stop_daemon
finish
