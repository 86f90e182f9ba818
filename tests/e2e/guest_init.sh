#!/bin/sh
# /init of the vtpm e2e test guest (busybox sh).  Runs checks against the TPM that the unmodified
# Debian kernel found, prints one line per check ("PASS name" / "FAIL name", details indented
# under a failure) and a closing "N passed, M failed", then powers the VM off.
#
# Kernel command line parameters (set by tests/e2e/run_e2e.sh):
#   vtpm_phase=probe   print "VTPM-PROBE-OK" and power off (the runner's KVM probe)
#   vtpm_phase=1       first boot: device, RNG, PCRs, keys, quote, NV, event log; then persist
#                      an NV index and a key for the next boot
#   vtpm_phase=2       boot after a restart on the same TPM state: NV index and persistent key
#                      survived, PCRs were reset, event log replays again
#   vtpm_iface=tis|crb the device model QEMU was given (checks the kernel driver bound to it)
#   vtpm_nonce=HEX     32 bytes chosen by the runner, written to NV in phase 1, expected in 2
#   vtpm_keyname=HEX   phase 2: the persistent key's name that phase 1 printed
#   vtpm_verbose=1     also print what the tpm2 tools answered (the demo)
#   vtpm_dumplog=1     print the raw event log (base64) even when the replay check passes
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
export LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu
export TPM2TOOLS_TCTI=device:/dev/tpmrm0
export HOME=/tmp

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mount -t tmpfs tmpfs /tmp
mount -t securityfs securityfs /sys/kernel/security
exec </dev/console >/dev/console 2>&1
echo 1 >/proc/sys/kernel/printk # keep kernel messages from splitting our lines
cd /tmp || exit 1

PHASE=1 IFACE="" NONCE="" KEYNAME="" VERBOSE=0 DUMPLOG=0
for w in $(cat /proc/cmdline); do
    case $w in
    vtpm_phase=*) PHASE=${w#*=} ;;
    vtpm_iface=*) IFACE=${w#*=} ;;
    vtpm_nonce=*) NONCE=${w#*=} ;;
    vtpm_keyname=*) KEYNAME=${w#*=} ;;
    vtpm_verbose=*) VERBOSE=${w#*=} ;;
    vtpm_dumplog=*) DUMPLOG=${w#*=} ;;
    esac
done

off() {
    sync
    poweroff -f
    sleep 10
}

if [ "$PHASE" = probe ]; then
    echo "VTPM-PROBE-OK"
    off
fi

P=0 F=0
NVIDX=0x1500016
PERSIST=0x81000010

# check NAME CMD...: runs CMD (a shell function or a program) with output to /tmp/out
check() {
    _name=$1
    shift
    if "$@" >/tmp/out 2>&1; then
        P=$((P + 1))
        echo "PASS $_name"
        [ "$VERBOSE" = 1 ] && [ -s /tmp/out ] && sed 's/^/      /' /tmp/out
    else
        F=$((F + 1))
        echo "FAIL $_name"
        tail -n 25 /tmp/out | sed 's/^/    | /'
    fi
}
say() { [ "$VERBOSE" = 1 ] && echo "    $*"; return 0; }
hex() { xxd -p "$1" | tr -d '\n'; }

# --- device -----------------------------------------------------------------------------------
t_driver() {
    [ -e /sys/class/tpm/tpm0 ] || { echo "no /sys/class/tpm/tpm0"; dmesg | grep -i tpm; return 1; }
    drv=$(basename "$(readlink /sys/class/tpm/tpm0/device/driver)")
    echo "tpm0: device $(basename "$(readlink /sys/class/tpm/tpm0/device)"), driver $drv, TPM $(cat /sys/class/tpm/tpm0/tpm_version_major).0"
    [ "$VERBOSE" = 1 ] && dmesg | grep -i tpm | grep -vE 'vtpm_|ommand line' | sed 's/^/kernel: /'
    [ "$drv" = "tpm_$IFACE" ] || { echo "expected driver tpm_$IFACE"; return 1; }
    [ "$(cat /sys/class/tpm/tpm0/tpm_version_major)" = 2 ]
}
t_devnodes() { [ -c /dev/tpm0 ] && [ -c /dev/tpmrm0 ] && ls -l /dev/tpm0 /dev/tpmrm0; }

t_getrandom() {
    tpm2_getrandom 32 -o r1 && tpm2_getrandom 32 -o r2 || return 1
    [ "$(wc -c <r1)" = 32 ] && [ "$(wc -c <r2)" = 32 ] || { echo "short read"; return 1; }
    [ "$(hex r1)" != "$(hex r2)" ] || { echo "two draws are equal"; return 1; }
    [ "$(hex r1)" != "$(printf '%064d' 0)" ] || { echo "all zero"; return 1; }
    echo "tpm2_getrandom 32: $(hex r1)"
}

# PCR 16 (debug PCR, never touched by firmware): zero at boot, then extend once and compare
# with sha256(old || digest) computed here, without the TPM
t_pcr16_zero() {
    tpm2_pcrread sha256:16 -o p16 >/dev/null || return 1
    echo "PCR16 sha256 = $(hex p16)"
    [ "$(hex p16)" = "$(printf '%064d' 0)" ]
}
t_pcrextend() {
    d=$(echo "vtpm e2e phase $PHASE" | sha256sum | cut -d' ' -f1)
    tpm2_pcrread sha256:16 -o before >/dev/null || return 1
    tpm2_pcrextend "16:sha256=$d" || return 1
    tpm2_pcrread sha256:16 -o after >/dev/null || return 1
    want=$({ cat before; echo "$d" | xxd -r -p; } | sha256sum | cut -d' ' -f1)
    echo "PCR16 after extend = $(hex after)"
    [ "$(hex after)" = "$want" ] || { echo "expected $want"; return 1; }
}

# --- keys -------------------------------------------------------------------------------------
t_primary() { tpm2_createprimary -C o -G ecc256 -c prim.ctx >/dev/null && echo "owner primary ECC P-256 created"; }
t_create() {
    tpm2_create -C prim.ctx -G ecc256:ecdsa-sha256 -u key.pub -r key.priv \
        -a 'fixedtpm|fixedparent|sensitivedataorigin|userwithauth|sign' >/dev/null &&
        tpm2_load -C prim.ctx -u key.pub -r key.priv -c key.ctx >/dev/null &&
        tpm2_readpublic -c key.ctx -n key.name >/dev/null &&
        echo "signing key loaded, name $(hex key.name)"
}
t_sign() {
    echo "message signed in the guest" >msg
    tpm2_sign -c "$1" -g sha256 -o sig msg && tpm2_verifysignature -c "$1" -g sha256 -m msg -s sig &&
        echo "ECDSA signature over 'msg' verifies"
}
# The TPM itself must reject the signature: the same call with the signed message succeeds, and
# with another message TPM2_VerifySignature answers TPM_RC_SIGNATURE for parameter 2, which
# tpm2-tools 5.4 prints as "ERROR: Esys_VerifySignature(0x2DB) - tpm:parameter(2):the signature
# is not valid".  Failing for any other reason (no key, no file, no TPM) is a failure.
t_sign_tampered() {
    tpm2_verifysignature -c "$1" -g sha256 -m msg -s sig >vs_ok.out 2>&1 ||
        { echo "verifying the signed message itself failed:"; cat vs_ok.out; return 1; }
    echo "another message" >msg2
    if tpm2_verifysignature -c "$1" -g sha256 -m msg2 -s sig >vs_bad.out 2>&1; then
        echo "a signature over another message verified"
        cat vs_bad.out
        return 1
    fi
    grep -qi 'Esys_VerifySignature(0x2DB)' vs_bad.out || {
        echo "tpm2_verifysignature failed, but not with the TPM's TPM_RC_SIGNATURE (0x2DB):"
        cat vs_bad.out
        return 1
    }
    echo "the TPM rejects the signature for another message: $(grep -i '0x2DB' vs_bad.out)"
}
t_quote() {
    q=$(head -c 16 /dev/urandom | xxd -p | tr -d '\n')
    tpm2_quote -c key.ctx -l sha256:0,1,2,3,4,5,6,7,16 -q "$q" -m q.msg -s q.sig -o q.pcrs \
        -g sha256 >q.out || { cat q.out; return 1; }
    # tpm2_checkquote verifies signature, nonce and PCR digest in software (OpenSSL)
    tpm2_checkquote -u key.pub -m q.msg -s q.sig -f q.pcrs -g sha256 -q "$q" >cq.out ||
        { cat cq.out; return 1; }
    echo "quote over sha256:0-7,16 with nonce $q verified by tpm2_checkquote"
    # the same call with another nonce is rejected because of the nonce (tpm2-tools 5.4:
    # "ERROR: Error validating nonce from quote"), not for another reason
    if tpm2_checkquote -u key.pub -m q.msg -s q.sig -f q.pcrs -g sha256 -q "00$q" >cqn.out 2>&1; then
        echo "checkquote accepted a wrong nonce"
        cat cqn.out
        return 1
    fi
    grep -q 'Error validating nonce from quote' cqn.out || {
        echo "tpm2_checkquote with a wrong nonce failed, but not on the nonce:"
        cat cqn.out
        return 1
    }
    echo "a wrong nonce is rejected: $(grep 'Error validating nonce' cqn.out)"
}

# --- NV ---------------------------------------------------------------------------------------
t_nv() {
    echo "$NONCE" | xxd -r -p >nonce.bin
    [ "$(wc -c <nonce.bin)" = 32 ] || { echo "vtpm_nonce is not 32 bytes of hex"; return 1; }
    tpm2_nvdefine $NVIDX -C o -s 32 -a "ownerread|ownerwrite|authread|authwrite" >/dev/null &&
        tpm2_nvwrite $NVIDX -C o -i nonce.bin && tpm2_nvread $NVIDX -C o -s 32 -o nv.out &&
        cmp nonce.bin nv.out && echo "NV $NVIDX = $(hex nv.out)"
}
t_nv_survived() {
    echo "$NONCE" | xxd -r -p >nonce.bin
    tpm2_getcap handles-nv-index | grep -qi "$NVIDX" || { tpm2_getcap handles-nv-index; return 1; }
    tpm2_nvread $NVIDX -C o -s 32 -o nv.out || return 1
    echo "NV $NVIDX = $(hex nv.out)"
    cmp nonce.bin nv.out
}

# --- persistence ------------------------------------------------------------------------------
t_persist() {
    tpm2_evictcontrol -C o -c key.ctx $PERSIST >/dev/null || return 1
    tpm2_readpublic -c $PERSIST -n p.name >/dev/null && cmp key.name p.name &&
        echo "signing key persisted at $PERSIST"
}
t_persist_survived() {
    tpm2_getcap handles-persistent | grep -qi "$PERSIST" || { tpm2_getcap handles-persistent; return 1; }
    tpm2_readpublic -c $PERSIST -n p.name >/dev/null || return 1
    echo "$PERSIST name $(hex p.name)"
    [ "$(hex p.name)" = "$KEYNAME" ] || { echo "expected name $KEYNAME"; return 1; }
}

# --- firmware event log -----------------------------------------------------------------------
# bank/index/value lines from tpm2_pcrread output, or from the "pcrs:" part of tpm2_eventlog's
pcr_lines() {
    awk -v start="$2" '
        start != "" && $0 == start { on = 1; next }
        start == "" { on = 1 }
        on && /^  [a-z0-9]+:$/ { bank = $1; sub(":", "", bank); next }
        on && bank != "" && /^ +[0-9]+ *: *0x[0-9A-Fa-f]+$/ {
            split($0, a, ":"); n = a[1]; v = a[2]; gsub(/ /, "", n); gsub(/ /, "", v)
            print bank, n, tolower(v)
        }' "$1"
}
t_eventlog() {
    log=/sys/kernel/security/tpm0/binary_bios_measurements
    [ -r $log ] || { echo "no $log (firmware passed no event log)"; ls /sys/kernel/security/tpm0; return 1; }
    cat $log >el.bin
    [ -s el.bin ] || { echo "$log is empty"; return 1; }
    tpm2_eventlog el.bin >el.yaml 2>el.err || { tail el.err; return 1; }
    tpm2_pcrread >pcrs.yaml || return 1
    pcr_lines el.yaml "pcrs:" >el.pcrs
    pcr_lines pcrs.yaml >tpm.pcrs
    n=$(grep -c '^- EventNum:' el.yaml)
    banks=$(cut -d' ' -f1 el.pcrs | sort -u | tr '\n' ' ')
    pcrs=$(cut -d' ' -f2 el.pcrs | sort -nu | tr '\n' ' ')
    echo "$n events, banks: $banks, PCRs: $pcrs"
    if [ "$VERBOSE" = 1 ]; then # which firmware events went into which PCR
        awk '/^  PCRIndex:/ { p = $2 } /^  EventType:/ { e[p] = e[p] " " $2 }
             END { for (i = 0; i < 24; i++) if (i in e) printf "  PCR%d:%s\n", i, e[i] }' el.yaml
    fi
    grep -q '^sha256 0 ' el.pcrs || { echo "the log does not cover sha256 PCR 0"; return 1; }
    bad=0
    while read -r b i v; do
        t=$(awk -v b="$b" -v i="$i" '$1 == b && $2 == i { print $3 }' tpm.pcrs)
        if [ "$t" = "$v" ]; then
            [ "$b" = sha256 ] && say "  $b:$i $v"
        else
            echo "MISMATCH $b:$i replay $v, TPM ${t:-(not reported)}"
            bad=1
        fi
    done <el.pcrs
    [ $bad = 0 ] || { grep -E 'EventType|PCRIndex' el.yaml | tail -n 40; DUMPLOG=1; return 1; }
    echo "replay of the firmware event log equals tpm2_pcrread for every PCR it covers"
}

# --- run --------------------------------------------------------------------------------------
echo "vtpm-e2e guest: phase $PHASE, interface ${IFACE:-?}, kernel $(uname -r)"
check tpm_driver_bound t_driver
check dev_tpm0_and_tpmrm0 t_devnodes
case $PHASE in
1)
    check getrandom t_getrandom
    check pcr16_zero_at_boot t_pcr16_zero
    check pcrextend_pcrread t_pcrextend
    check createprimary t_primary
    check create_load t_create
    check sign_verifysignature t_sign key.ctx
    check verifysignature_rejects_tampered t_sign_tampered key.ctx
    check quote_checkquote t_quote
    check nvdefine_nvwrite_nvread t_nv
    check eventlog_replay_matches_pcrs t_eventlog
    check evictcontrol_persistent_key t_persist
    [ -s p.name ] && echo "INFO key_name=$(hex p.name)"
    ;;
2)
    check nv_index_survived_reboot t_nv_survived
    check persistent_key_survived_reboot t_persist_survived
    check persistent_key_signs t_sign $PERSIST
    check pcr16_reset_by_reboot t_pcr16_zero
    check eventlog_replay_matches_pcrs t_eventlog
    check getrandom t_getrandom
    ;;
*)
    F=$((F + 1))
    echo "FAIL unknown_phase_$PHASE"
    ;;
esac
# the raw log, for the runner to save next to the serial log (tpm2_eventlog can read it there)
if [ "$DUMPLOG" = 1 ] && [ -s el.bin ]; then
    echo "EVENTLOG-BASE64-BEGIN"
    base64 el.bin
    echo "EVENTLOG-BASE64-END"
fi
echo "$P passed, $F failed"
off
