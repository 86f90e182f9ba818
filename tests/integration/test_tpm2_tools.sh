#!/usr/bin/env bash
# tpm2-tools through the tpm2-tss "swtpm" TCTI, data channel over UNIX socket and over TCP,
# then a daemon restart on the same state dir (NV index and persistent handle survive).
. "$(dirname "$0")/lib.sh"
require_tools tpm2_getrandom tpm2_pcrread tpm2_pcrextend tpm2_createprimary tpm2_create tpm2_load \
    tpm2_sign tpm2_verifysignature tpm2_nvdefine tpm2_nvwrite tpm2_nvread tpm2_quote tpm2_checkquote \
    tpm2_evictcontrol tpm2_startauthsession tpm2_policypcr tpm2_unseal tpm2_flushcontext tpm2_getcap \
    tpm2_readpublic

NV_INDEX=0x1500016
PERSIST=0x81000001

# tpm2-tools without a resource manager leave objects/sessions loaded: flush after each step.
flush() { t tpm2_flushcontext -t >/dev/null 2>&1; t tpm2_flushcontext -s >/dev/null 2>&1; return 0; }
tt() { t "$@" >"$W/last.out" 2>&1; local rc=$?; flush; cat "$W/last.out"; return $rc; }

pcr_value() { # pcr_value N -> hex (lower case) of sha256 PCR N, empty on error
    t tpm2_pcrread "sha256:$1" 2>/dev/null | sed -n "s/^ *$1 *: 0x\([0-9A-Fa-f]*\)$/\1/p" | tr 'A-F' 'a-f'
}

tools_suite() {
    local tr=$1 out old want digest
    start_daemon -n "$tr" -c "$tr" -d "$tr"
    export TPM2TOOLS_TCTI=$D_TCTI
    W=$D_DIR/work
    mkdir -p "$W"

    # getrandom
    check "$tr: tpm2_getrandom 16" tt tpm2_getrandom 16 -o "$W/rand.bin"
    check_eq "$tr: getrandom returned 16 bytes" 16 "$(stat -c %s "$W/rand.bin" 2>/dev/null)"

    # pcrread / pcrextend
    out=$(t tpm2_pcrread sha256:0 2>&1)
    check_match "$tr: tpm2_pcrread sha256:0 (zero after startup-clear)" "^ *0 *: 0x0{64}$" "$out"
    old=$(pcr_value 16)
    digest=$(printf 'vtpm-it %s' "$tr" | sha256sum | cut -c1-64)
    want=$(python3 -c 'import hashlib,sys; print(hashlib.sha256(bytes.fromhex(sys.argv[1]) + bytes.fromhex(sys.argv[2])).hexdigest())' \
        "$old" "$digest")
    check "$tr: tpm2_pcrextend 16" tt tpm2_pcrextend "16:sha256=$digest"
    check_eq "$tr: PCR16 = sha256(old || digest)" "$want" "$(pcr_value 16)"

    # primaries
    check "$tr: createprimary -C o -G ecc" tt tpm2_createprimary -C o -G ecc -c "$W/prim.ctx"
    check "$tr: createprimary -C o -G rsa" tt tpm2_createprimary -C o -G rsa -c "$W/primrsa.ctx"

    # create / load / sign / verify
    check "$tr: tpm2_create ecc signing key" tt tpm2_create -C "$W/prim.ctx" -G ecc -u "$W/k.pub" -r "$W/k.priv"
    check "$tr: tpm2_load" tt tpm2_load -C "$W/prim.ctx" -u "$W/k.pub" -r "$W/k.priv" -c "$W/k.ctx"
    printf 'message for %s\n' "$tr" >"$W/msg"
    check "$tr: tpm2_sign" tt tpm2_sign -c "$W/k.ctx" -g sha256 -o "$W/sig" "$W/msg"
    check "$tr: tpm2_verifysignature" tt tpm2_verifysignature -c "$W/k.ctx" -g sha256 -m "$W/msg" -s "$W/sig"
    printf 'tampered\n' >"$W/msg2"
    check_fails "$tr: verifysignature rejects a tampered message" \
        tt tpm2_verifysignature -c "$W/k.ctx" -g sha256 -m "$W/msg2" -s "$W/sig"
    check "$tr: rsa child key create+load+sign" eval "tt tpm2_create -C '$W/primrsa.ctx' -G rsa2048 -u '$W/r.pub' -r '$W/r.priv' &&
        tt tpm2_load -C '$W/primrsa.ctx' -u '$W/r.pub' -r '$W/r.priv' -c '$W/r.ctx' &&
        tt tpm2_sign -c '$W/r.ctx' -g sha256 -o '$W/rsig' '$W/msg' &&
        tt tpm2_verifysignature -c '$W/r.ctx' -g sha256 -m '$W/msg' -s '$W/rsig'"

    # NV
    head -c 32 /dev/urandom >"$W/nv.in"
    check "$tr: tpm2_nvdefine" tt tpm2_nvdefine "$NV_INDEX" -C o -s 32 -a "ownerread|ownerwrite|authread|authwrite"
    check "$tr: tpm2_nvwrite" tt tpm2_nvwrite "$NV_INDEX" -C o -i "$W/nv.in"
    check "$tr: tpm2_nvread" tt tpm2_nvread "$NV_INDEX" -C o -s 32 -o "$W/nv.out"
    check "$tr: NV contents match" cmp "$W/nv.in" "$W/nv.out"
    cp "$W/nv.in" "$D_DIR/nv.expected"

    # quote + checkquote with a restricted ECC signing key
    check "$tr: create restricted AK" tt tpm2_create -C "$W/prim.ctx" -G ecc:ecdsa-sha256:null \
        -a 'fixedtpm|fixedparent|sensitivedataorigin|userwithauth|restricted|sign' -u "$W/ak.pub" -r "$W/ak.priv"
    check "$tr: load AK" tt tpm2_load -C "$W/prim.ctx" -u "$W/ak.pub" -r "$W/ak.priv" -c "$W/ak.ctx"
    check "$tr: AK public as PEM" tt tpm2_readpublic -c "$W/ak.ctx" -f pem -o "$W/ak.pem"
    check "$tr: tpm2_quote sha256:0,16" tt tpm2_quote -c "$W/ak.ctx" -l sha256:0,16 -q c0ffee01 \
        -m "$W/q.msg" -s "$W/q.sig" -o "$W/q.pcrs" -g sha256
    check "$tr: tpm2_checkquote" tt tpm2_checkquote -u "$W/ak.pem" -m "$W/q.msg" -s "$W/q.sig" \
        -f "$W/q.pcrs" -g sha256 -q c0ffee01
    check_fails "$tr: checkquote rejects a wrong nonce" tt tpm2_checkquote -u "$W/ak.pem" -m "$W/q.msg" \
        -s "$W/q.sig" -f "$W/q.pcrs" -g sha256 -q c0ffee02

    # persistent handle
    out=$(tt tpm2_evictcontrol -C o -c "$W/prim.ctx" "$PERSIST")
    check_match "$tr: tpm2_evictcontrol to $PERSIST" "action: persisted" "$out"
    out=$(tt tpm2_getcap handles-persistent)
    check_match "$tr: getcap handles-persistent lists $PERSIST" "^- $PERSIST$" "$out"
    tt tpm2_readpublic -c "$PERSIST" -o "$D_DIR/persist.pub" >/dev/null

    # policy session: object sealed to PCR 23
    printf 'sealed secret %s' "$tr" >"$W/secret"
    check "$tr: trial session + policypcr" eval "t tpm2_startauthsession -S '$W/trial.ctx' >/dev/null 2>&1 &&
        t tpm2_policypcr -S '$W/trial.ctx' -l sha256:23 -L '$W/pcr.policy' && t tpm2_flushcontext '$W/trial.ctx'"
    flush
    check "$tr: create object sealed with the PCR policy" tt tpm2_create -C "$W/prim.ctx" -L "$W/pcr.policy" \
        -i "$W/secret" -u "$W/seal.pub" -r "$W/seal.priv"
    check "$tr: load sealed object" tt tpm2_load -C "$W/prim.ctx" -u "$W/seal.pub" -r "$W/seal.priv" -c "$W/seal.ctx"
    unseal() {
        t tpm2_startauthsession --policy-session -S "$W/sess.ctx" &&
            t tpm2_policypcr -S "$W/sess.ctx" -l sha256:23 &&
            t tpm2_unseal -p "session:$W/sess.ctx" -c "$W/seal.ctx" -o "$W/unsealed"
        local rc=$?
        flush
        return $rc
    }
    rm -f "$W/unsealed"
    check "$tr: policy session unseals" unseal
    check "$tr: unsealed data matches" cmp "$W/secret" "$W/unsealed"
    check "$tr: extend PCR 23" tt tpm2_pcrextend "23:sha256=$digest"
    check_fails "$tr: unseal fails after PCR 23 changed" unseal

    # restart on the same state dir
    local state=$D_STATE
    if stop_daemon; then pass "$tr: daemon stops on SIGTERM"; else fail "$tr: daemon stops on SIGTERM"; fi
    start_daemon -n "$tr-restart" -s "$state" -c "$tr" -d "$tr"
    export TPM2TOOLS_TCTI=$D_TCTI
    check "$tr: restart: tpm2_nvread" tt tpm2_nvread "$NV_INDEX" -C o -s 32 -o "$W/nv.out2"
    check "$tr: restart: NV contents survived" cmp "$W/nv.in" "$W/nv.out2"
    out=$(tt tpm2_getcap handles-persistent)
    check_match "$tr: restart: $PERSIST still persistent" "^- $PERSIST$" "$out"
    tt tpm2_readpublic -c "$PERSIST" -o "$W/persist2.pub" >/dev/null
    check "$tr: restart: persistent key has the same public area" cmp "$TEST_TMP/$tr/persist.pub" "$W/persist2.pub"
    out=$(pcr_value 16)
    check_match "$tr: restart: PCR16 reset by startup-clear" "^0{64}$" "$out"
    stop_daemon
}

tools_suite unix
tools_suite tcp
finish
