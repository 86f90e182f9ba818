#!/usr/bin/env bash
# State-dir compatibility: a state made by Debian's swtpm opens in the daemon under test with the
# same NV contents, persistent key and seeds, and the reverse.  (swtpm vs swtpm passes trivially.)
. "$(dirname "$0")/lib.sh"
require_tools swtpm tpm2_createprimary tpm2_evictcontrol tpm2_nvdefine tpm2_nvwrite tpm2_nvread \
    tpm2_readpublic tpm2_sign tpm2_verifysignature tpm2_getcap tpm2_flushcontext

NV_INDEX=0x1500020
PERSIST=0x81000001
NV_BYTES="vtpm state-compat 0123456789abc"   # 32 bytes with the newline below

flush() { t tpm2_flushcontext -t >/dev/null 2>&1; return 0; }
tt() { t "$@" >"$W/last.out" 2>&1; local rc=$?; flush; cat "$W/last.out"; return $rc; }
label() { if [ "$1" = swtpm ]; then echo swtpm; else basename "$1"; fi; }

# compat_run FROM TO: FROM creates the state, TO must read it
_run=0
compat_run() {
    local from=$1 to=$2 tag state out id
    _run=$((_run + 1))
    tag="$(label "$from")->$(label "$to")"
    id=run$_run
    W=$TEST_TMP/$id
    state=$W/state
    mkdir -p "$W" "$state"
    printf '%s\n' "$NV_BYTES" >"$W/nv.in"
    printf 'state compat message\n' >"$W/msg"

    start_daemon -n "$id-a" -p "$from" -s "$state"
    export TPM2TOOLS_TCTI=$D_TCTI
    check "$tag: create: storage primary (ecc)" eval "tt tpm2_createprimary -C o -G ecc -c '$W/prim.ctx' &&
        tt tpm2_readpublic -c '$W/prim.ctx' -o '$W/prim_a.pub'"
    check "$tag: create: signing primary persisted at $PERSIST" eval "
        tt tpm2_createprimary -C o -G ecc256:ecdsa-sha256 -a 'fixedtpm|fixedparent|sensitivedataorigin|userwithauth|sign' -c '$W/sk.ctx' &&
        tt tpm2_evictcontrol -C o -c '$W/sk.ctx' $PERSIST &&
        tt tpm2_readpublic -c $PERSIST -o '$W/persist_a.pub' &&
        tt tpm2_sign -c $PERSIST -g sha256 -o '$W/sig_a' '$W/msg'"
    check "$tag: create: NV index with known bytes" eval "
        tt tpm2_nvdefine $NV_INDEX -C o -s 32 -a 'ownerread|ownerwrite|authread|authwrite' &&
        tt tpm2_nvwrite $NV_INDEX -C o -i '$W/nv.in'"
    if stop_daemon; then pass "$tag: create: daemon stops"; else fail "$tag: create: daemon stops"; fi

    start_daemon -n "$id-b" -p "$to" -s "$state"
    export TPM2TOOLS_TCTI=$D_TCTI
    check "$tag: open: nvread" tt tpm2_nvread $NV_INDEX -C o -s 32 -o "$W/nv.out"
    check "$tag: open: NV contents equal" cmp "$W/nv.in" "$W/nv.out"
    out=$(tt tpm2_getcap handles-persistent)
    check_match "$tag: open: $PERSIST listed" "^- $PERSIST$" "$out"
    tt tpm2_readpublic -c $PERSIST -o "$W/persist_b.pub" >/dev/null
    check "$tag: open: persistent key public area equal" cmp "$W/persist_a.pub" "$W/persist_b.pub"
    check "$tag: open: old signature verifies with the persistent key" \
        tt tpm2_verifysignature -c $PERSIST -g sha256 -m "$W/msg" -s "$W/sig_a"
    check "$tag: open: persistent key still signs" eval "tt tpm2_sign -c $PERSIST -g sha256 -o '$W/sig_b' '$W/msg' &&
        tt tpm2_verifysignature -c $PERSIST -g sha256 -m '$W/msg' -s '$W/sig_b'"
    check "$tag: open: storage primary re-derives identically (owner seed kept)" eval "
        tt tpm2_createprimary -C o -G ecc -c '$W/prim2.ctx' && tt tpm2_readpublic -c '$W/prim2.ctx' -o '$W/prim_b.pub' &&
        cmp '$W/prim_a.pub' '$W/prim_b.pub'"
    stop_daemon
}

compat_run swtpm "$VTPM_DAEMON"
compat_run "$VTPM_DAEMON" swtpm
finish
