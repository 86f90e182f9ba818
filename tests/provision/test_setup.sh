#!/usr/bin/env bash
# `vtpm setup` end to end: provision a state directory the way libvirt asks swtpm_setup to,
# then serve it with the daemon and inspect it with tpm2-tools and openssl: EKs, certificates
# (chain, every TCG extension, key = persisted EK), NV attributes and locks, PCR banks; the
# --not-overwrite/--overwrite/--reconfigure rules; clear errors that leave nothing behind.
#
# VTPM_DAEMON=<path to vtpm>: runs `vtpm setup` (with its own local CA) and `vtpm socket`.
# VTPM_DAEMON=swtpm: runs Debian's swtpm_setup (swtpm_localca's CA) and swtpm: the same checks
# against the reference implementation, proving the checks themselves.
. "$(dirname "$0")/../integration/lib.sh"
require_tools openssl tpm2_getcap tpm2_nvread tpm2_nvreadpublic tpm2_readpublic tpm2_createek \
    tpm2_flushcontext tpm2_nvwrite tpm2_pcrread cmp
daemon_is_swtpm && require_tools swtpm_setup swtpm_localca certtool

# lib.sh's check_match pipes printf into `grep -q` under pipefail: when grep exits first, printf
# dies of SIGPIPE and a match counts as a failure (about 1 in 3000). Without a pipe here:
check_match() {
    if grep -Eq -- "$2" <<<"$3"; then pass "$1"; else fail "$1" "no match for /$2/ in:" "$3"; fi
}
check_nomatch() {
    if grep -Eq -- "$2" <<<"$3"; then fail "$1" "unexpected match for /$2/ in:" "$3"; else pass "$1"; fi
}

VMID="it-vm:5a0b6c1e-0000-4000-8000-000000000001"
CA_DIR=$TEST_TMP/ca
mkdir -p "$CA_DIR"
if daemon_is_swtpm; then
    CFG=$TEST_TMP/swtpm_setup.conf
    printf 'statedir = %s\nsigningkey = %s/signkey.pem\nissuercert = %s/issuercert.pem\ncertserial = %s/certserial\n' \
        "$CA_DIR" "$CA_DIR" "$CA_DIR" "$CA_DIR" >"$TEST_TMP/localca.conf"
    printf -- '--platform-manufacturer vtpm-it\n--platform-version 1.0\n--platform-model it\n' \
        >"$TEST_TMP/localca.options"
    printf 'create_certs_tool = swtpm_localca\ncreate_certs_tool_config = %s\ncreate_certs_tool_options = %s\nactive_pcr_banks = sha256\n' \
        "$TEST_TMP/localca.conf" "$TEST_TMP/localca.options" >"$CFG"
    ROOT_PEM=$CA_DIR/swtpm-localca-rootca-cert.pem
    ISSUER_PEM=$CA_DIR/issuercert.pem
    setup() { t swtpm_setup --config "$CFG" "$@"; }
else
    ROOT_PEM=$CA_DIR/root-cert.pem
    ISSUER_PEM=$CA_DIR/issuer-cert.pem
    setup() {
        t "$VTPM_DAEMON" setup --ca-dir "$CA_DIR" --platform-manufacturer vtpm-it \
            --platform-model it --platform-version 1.0 "$@"
    }
fi
LIBVIRT_ARGS=(--createek --create-ek-cert --create-platform-cert --lock-nvram --not-overwrite)

flush() { t tpm2_flushcontext -t >/dev/null 2>&1; return 0; }
# nv_attr INDEX -> "0x62072801"
nv_attr() {
    t tpm2_nvreadpublic "$1" 2>/dev/null | awk '/attributes:/{a=1} a&&/value:/{print tolower($2); exit}'
}
# ext_hex CERT NAME -> hex of the extension's value (asn1parse of the DER)
ext_hex() {
    openssl asn1parse -inform der -in "$1" 2>/dev/null |
        awk -v n="$2" 'index($0, ":" n) {f=1; next} f && /OCTET STRING/ {sub(/.*\[HEX DUMP\]:/, ""); print; exit}'
}

# ---------------------------------------------------------------------------------------------
# 1. Provision as libvirt does.
S1=$TEST_TMP/s1
mkdir -p "$S1" "$TEST_TMP/ekfiles"
check "setup --tpm2 ${LIBVIRT_ARGS[*]}" \
    setup --tpm2 --tpm-state "$S1" --vmid "$VMID" --logfile "$TEST_TMP/setup.log" \
    "${LIBVIRT_ARGS[@]}" --write-ek-cert-files "$TEST_TMP/ekfiles"
check "state file tpm2-00.permall written" test -s "$S1/tpm2-00.permall"
check "CA root and issuer certificates exist" test -s "$ROOT_PEM" -a -s "$ISSUER_PEM"

start_daemon -n d1 -s "$S1"
export TPM2TOOLS_TCTI=$D_TCTI
W=$D_DIR/w
mkdir -p "$W"

persistent=$(t tpm2_getcap handles-persistent 2>&1)
check_match "EK RSA-2048 persisted at 0x81010001" "0x81010001" "$persistent"
check_match "EK ECC P-384 persisted at 0x81010016" "0x81010016" "$persistent"
nvs=$(t tpm2_getcap handles-nv-index 2>&1)
for idx in 0x1C00002 0x1C00016 0x1C08000; do
    check_match "NV index $idx defined" "$idx" "$nvs"
done

for spec in "0x1c00002:rsa:0x81010001" "0x1c00016:ecc:0x81010016" "0x1c08000:platform:0x81010001"; do
    IFS=: read -r idx kind handle <<<"$spec"
    der=$W/$kind.der
    check "$kind: tpm2_nvread $idx" t tpm2_nvread "$idx" -o "$der"
    check_eq "$kind: NV attributes (written, write-locked) as swtpm_setup" 0x62072801 "$(nv_attr "$idx")"
    openssl x509 -inform der -in "$der" -out "$W/$kind.pem" 2>/dev/null
    check "$kind: openssl verify against the CA chain" \
        openssl verify -CAfile "$ROOT_PEM" -untrusted "$ISSUER_PEM" "$W/$kind.pem"
    text=$(openssl x509 -in "$W/$kind.pem" -noout -text 2>&1)
    check_match "$kind: X.509 v3" "Version: 3 \(0x2\)" "$text"
    check_match "$kind: subject CN = vmid" "Subject: CN ?= ?$VMID" "$text"
    check_match "$kind: notAfter 9999-12-31 23:59:59" "Not After : Dec 31 23:59:59 9999 GMT" "$text"
    check_match "$kind: BasicConstraints critical CA:FALSE" \
        "Basic Constraints: critical" "$text"
    check_eq "$kind: BasicConstraints value" 3000 "$(ext_hex "$der" "X509v3 Basic Constraints")"
    check_match "$kind: SubjectAltName critical" "Subject Alternative Name: critical" "$text"
    check_match "$kind: KeyUsage critical" "Key Usage: critical" "$text"
    aki=$(openssl x509 -in "$W/$kind.pem" -noout -ext authorityKeyIdentifier 2>/dev/null | tail -1 |
        tr -d ' :' | sed 's/^keyid//')
    ski=$(openssl x509 -in "$ISSUER_PEM" -noout -ext subjectKeyIdentifier 2>/dev/null | tail -1 | tr -d ' :')
    check_eq "$kind: AuthorityKeyIdentifier = issuer's SubjectKeyIdentifier" "$ski" "$aki"
    # The certified key is the persisted key.
    openssl x509 -in "$W/$kind.pem" -noout -pubkey >"$W/$kind.certpub.pem" 2>/dev/null
    t tpm2_readpublic -c "$handle" -f pem -o "$W/$kind.tpmpub.pem" >/dev/null 2>&1
    check "$kind: certificate key = tpm2_readpublic $handle" \
        cmp "$W/$kind.certpub.pem" "$W/$kind.tpmpub.pem"
    if [ "$kind" = platform ]; then
        check_eq "platform: EKU tcg-kp-PlatformCertificate" 300706056781050802 \
            "$(ext_hex "$der" "X509v3 Extended Key Usage")"
        # SAN dirName: 2.23.133.5.1.1 vtpm-it, .4 it, .5 1.0 (UTF8String)
        check_eq "platform: SAN dirName manufacturer/model/version" \
            "303aa43830363113301106066781050501010c077674706d2d6974310e300c06066781050501040c026974310f300d06066781050501050c03312e30" \
            "$(ext_hex "$der" "X509v3 Subject Alternative Name" | tr 'A-F' 'a-f')"
        check_match "platform: KeyUsage keyEncipherment" "Key Encipherment" "$text"
    else
        check_eq "$kind: EKU tcg-kp-EKCertificate" 300706056781050801 \
            "$(ext_hex "$der" "X509v3 Extended Key Usage")"
        check_eq "$kind: SAN dirName TPM manufacturer/model/version" \
            "3046a444304231163014060567810502010c0b69643a30303030313031343110300e060567810502020c05737774706d31163014060567810502030c0b69643a3230313931303233" \
            "$(ext_hex "$der" "X509v3 Subject Alternative Name" | tr 'A-F' 'a-f')"
        check_eq "$kind: SubjectDirectoryAttributes tpmSpecification 2.0/0/164" \
            "3019301706056781050210310e300c0c03322e30020100020200a4" \
            "$(ext_hex "$der" "X509v3 Subject Directory Attributes" | tr 'A-F' 'a-f')"
        if [ "$kind" = rsa ]; then
            check_match "rsa: KeyUsage keyEncipherment" "Key Encipherment" "$text"
        else
            check_match "ecc: KeyUsage keyAgreement" "Key Agreement" "$text"
        fi
    fi
done

# tpm2_createek derives the same keys from the endorsement seed (TCG templates).
t tpm2_createek -G rsa -c "$W/ek.ctx" -u "$W/createek-rsa.pem" -f pem >/dev/null 2>&1
flush
check "tpm2_createek -G rsa = persisted EK (TCG template L-1)" \
    cmp "$W/createek-rsa.pem" "$W/rsa.tpmpub.pem"
t tpm2_createek -G ecc384 -c "$W/ek.ctx" -u "$W/createek-ecc.pem" -f pem >/dev/null 2>&1
flush
check "tpm2_createek -G ecc384 = persisted EK (TCG template H-3)" \
    cmp "$W/createek-ecc.pem" "$W/ecc.tpmpub.pem"

check "--write-ek-cert-files: ek-rsa2048.crt = NV 0x1c00002" cmp "$TEST_TMP/ekfiles/ek-rsa2048.crt" "$W/rsa.der"
check "--write-ek-cert-files: ek-secp384r1.crt = NV 0x1c00016" cmp "$TEST_TMP/ekfiles/ek-secp384r1.crt" "$W/ecc.der"

printf 'x' >"$W/one"
out=$(t tpm2_nvwrite 0x1c00002 -C p -i "$W/one" 2>&1)
check_match "locked certificate index refuses NV_Write (TPM_RC_NV_LOCKED)" "0x148|NV access locked" "$out"

pcrs=$(t tpm2_getcap pcrs 2>&1)
check_match "only sha256 PCR bank active (default --pcr-banks)" "sha256: \[ 0, 1, 2" "$pcrs"
check_match "sha1 bank deactivated" "sha1: \[ \]" "$pcrs"

# Setup while the TPM is in use fails and leaves the state.
cp "$S1/tpm2-00.permall" "$W/permall.before"
check_fails "setup --overwrite on a state in use by a running TPM fails" \
    setup --tpm2 --tpm-state "$S1" --overwrite --createek
check "... and the state is unchanged" cmp "$S1/tpm2-00.permall" "$W/permall.before"

if ! daemon_is_swtpm; then
    # vtpm ek: the same keys and certificates, read from the state directory.
    check "vtpm ek --out-dir" t "$VTPM_DAEMON" ek --tpmstate "dir=$S1" --out-dir "$W/ek"
    check "vtpm ek: RSA public key = tpm2_readpublic" cmp "$W/ek/ek-rsa2048.pub.pem" "$W/rsa.tpmpub.pem"
    check "vtpm ek: ECC public key = tpm2_readpublic" cmp "$W/ek/ek-secp384r1.pub.pem" "$W/ecc.tpmpub.pem"
    check "vtpm ek: RSA EK certificate = NV" cmp "$W/ek/ek-rsa2048.crt.pem" "$W/rsa.pem"
    check "vtpm ek: platform certificate = NV" cmp "$W/ek/platform.crt.pem" "$W/platform.pem"
    pem=$(t "$VTPM_DAEMON" ek --tpmstate "$S1" 2>&1)
    check_eq "vtpm ek (stdout): 2 keys and 3 certificates" "2 3" \
        "$(grep -c 'BEGIN PUBLIC KEY' <<<"$pem") $(grep -c 'BEGIN CERTIFICATE' <<<"$pem")"
fi
stop_daemon
unset TPM2TOOLS_TCTI

if ! daemon_is_swtpm && command -v swtpm >/dev/null; then
    # The state is swtpm's format: Debian's swtpm serves what vtpm setup made.
    start_daemon -n dsw -s "$S1" -p swtpm
    export TPM2TOOLS_TCTI=$D_TCTI
    t tpm2_nvread 0x1c00002 -o "$W/rsa-swtpm.der" >/dev/null 2>&1
    check "swtpm serves the vtpm-made state: same EK certificate" cmp "$W/rsa-swtpm.der" "$W/rsa.der"
    t tpm2_readpublic -c 0x81010016 -f pem -o "$W/ecc-swtpm.pem" >/dev/null 2>&1
    check "swtpm serves the vtpm-made state: same P-384 EK" cmp "$W/ecc-swtpm.pem" "$W/ecc.tpmpub.pem"
    stop_daemon
    unset TPM2TOOLS_TCTI
fi

# ---------------------------------------------------------------------------------------------
# 2. Existing state, as swtpm_setup: error by default, --not-overwrite keeps, --overwrite replaces.
cp "$S1/tpm2-00.permall" "$TEST_TMP/permall.1"
check_fails "existing state without --overwrite/--not-overwrite: error" \
    setup --tpm2 --tpm-state "$S1" --createek --logfile "$TEST_TMP/exist.log"
check_match "... the log says why" "Found existing TPM state" "$(cat "$TEST_TMP/exist.log")"
check "... state unchanged" cmp "$S1/tpm2-00.permall" "$TEST_TMP/permall.1"
check "--not-overwrite on existing state: success" \
    setup --tpm2 --tpm-state "$S1" --createek --not-overwrite
check "... state unchanged" cmp "$S1/tpm2-00.permall" "$TEST_TMP/permall.1"
check "--overwrite: success" setup --tpm2 --tpm-state "$S1" --createek --overwrite
check_fails "... a new TPM was made" cmp "$S1/tpm2-00.permall" "$TEST_TMP/permall.1"

# 3. --reconfigure: new PCR banks, same EK.
start_daemon -n d2 -s "$S1"
export TPM2TOOLS_TCTI=$D_TCTI
t tpm2_readpublic -c 0x81010001 -f pem -o "$TEST_TMP/ek-before.pem" >/dev/null 2>&1
stop_daemon
check "--reconfigure --pcr-banks sha1,sha384" \
    setup --tpm2 --tpm-state "$S1" --reconfigure --pcr-banks sha1,sha384
check_fails "--reconfigure with --createek is refused" \
    setup --tpm2 --tpm-state "$S1" --reconfigure --createek
start_daemon -n d3 -s "$S1"
export TPM2TOOLS_TCTI=$D_TCTI
pcrs=$(t tpm2_getcap pcrs 2>&1)
check_match "after reconfigure: sha1 active" "sha1: \[ 0, 1" "$pcrs"
check_match "after reconfigure: sha384 active" "sha384: \[ 0, 1" "$pcrs"
check_match "after reconfigure: sha256 inactive" "sha256: \[ \]" "$pcrs"
t tpm2_readpublic -c 0x81010001 -f pem -o "$TEST_TMP/ek-after.pem" >/dev/null 2>&1
check "after reconfigure: same EK" cmp "$TEST_TMP/ek-before.pem" "$TEST_TMP/ek-after.pem"
stop_daemon
unset TPM2TOOLS_TCTI

# 4. Bad options and failures leave nothing behind.
S2=$TEST_TMP/s2
mkdir -p "$S2"
check_fails "unknown PCR bank" setup --tpm2 --tpm-state "$S2" --pcr-banks md5 --createek
check_fails "missing state directory" setup --tpm2 --tpm-state "$TEST_TMP/nonexistent" --createek
check_fails "--reconfigure without --tpm2" setup --tpm-state "$S2" --reconfigure
check "no state written by the failures" test ! -e "$S2/tpm2-00.permall"

if ! daemon_is_swtpm; then
    caps=$(t "$VTPM_DAEMON" setup --print-capabilities 2>&1)
    check_match "--print-capabilities: libvirt's features" \
        '"tpm-2.0".*"cmdarg-reconfigure-pcr-banks"' "$caps"
    check_match "--print-capabilities: state encryption advertised (libvirt passes a secret)" \
        '"cmdarg-keyfile-fd", "cmdarg-pwdfile-fd"' "$caps"
    check "--create-config-files skip-if-exist (libvirt) succeeds" \
        t "$VTPM_DAEMON" setup --create-config-files skip-if-exist
    out=$(setup --tpm2 --tpm-state "$S2" --createek --pwdfile-fd 9 2>&1 9<&-)
    check_match "a passphrase fd that is not open: a clear error" "the state key: cannot read fd 9" "$out"
    check "... and no state written" test ! -e "$S2/tpm2-00.permall"
    # An existing CA key that cannot be read: a clear error, and no state.
    cp "$CA_DIR/issuer-key.pem" "$TEST_TMP/ca-key.pem"
    chmod 600 "$TEST_TMP/ca-key.pem"
    if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; then
        chmod 711 "$TEST_TMP"
        S3=$TEST_TMP/s3
        mkdir -p "$S3"
        chmod 777 "$S3"
        out=$(t setpriv --reuid=65534 --regid=65534 --clear-groups "$VTPM_DAEMON" setup --tpm2 \
            --tpm-state "$S3" --create-ek-cert --ca-key "$TEST_TMP/ca-key.pem" \
            --ca-cert "$ISSUER_PEM" 2>&1)
        rc=$?
        check_eq "unreadable CA key (as uid 65534): exit 1" 1 "$rc"
        check_match "... the error names the key and the reason" \
            "cannot read the CA signing key .*ca-key.pem: permission denied" "$out"
        check "... no state written" test ! -e "$S3/tpm2-00.permall"
    else
        chmod 000 "$TEST_TMP/ca-key.pem"
        out=$(setup --tpm2 --tpm-state "$S2" --create-ek-cert --ca-key "$TEST_TMP/ca-key.pem" \
            --ca-cert "$ISSUER_PEM" 2>&1)
        check_match "unreadable CA key: clear error" "permission denied" "$out"
        check "... no state written" test ! -e "$S2/tpm2-00.permall"
    fi
    out=$(setup --tpm2 --tpm-state "$S2" --create-ek-cert --ca-key "$TEST_TMP/nope.pem" \
        --ca-cert "$ISSUER_PEM" 2>&1)
    check_match "missing CA key: clear error" "CA signing key .*nope.pem does not exist" "$out"
    check "... no state written" test ! -e "$S2/tpm2-00.permall"
    # ECC P-256 EK (--ek secp256r1): tpm2_createek -G ecc derives it (TCG template L-2).
    S4=$TEST_TMP/s4
    mkdir -p "$S4"
    check "--ek secp256r1 --create-ek-cert" setup --tpm2 --tpm-state "$S4" --ek secp256r1 --create-ek-cert
    start_daemon -n d4 -s "$S4"
    export TPM2TOOLS_TCTI=$D_TCTI
    check_match "P-256 EK at 0x8101000a" "0x8101000A" "$(t tpm2_getcap handles-persistent 2>&1)"
    t tpm2_readpublic -c 0x8101000a -f pem -o "$TEST_TMP/p256.pem" >/dev/null 2>&1
    t tpm2_createek -G ecc -c "$TEST_TMP/p256.ctx" -u "$TEST_TMP/p256c.pem" -f pem >/dev/null 2>&1
    flush
    check "tpm2_createek -G ecc = persisted P-256 EK" cmp "$TEST_TMP/p256.pem" "$TEST_TMP/p256c.pem"
    t tpm2_nvread 0x1c0000a -o "$TEST_TMP/p256.der" >/dev/null 2>&1
    openssl x509 -inform der -in "$TEST_TMP/p256.der" -out "$TEST_TMP/p256cert.pem" 2>/dev/null
    check "P-256 EK certificate at 0x01c0000a verifies" \
        openssl verify -CAfile "$ROOT_PEM" -untrusted "$ISSUER_PEM" "$TEST_TMP/p256cert.pem"
    check_eq "P-256 EK certificate index written, not locked without --lock-nvram" 0x62072001 \
        "$(nv_attr 0x1c0000a)"
    stop_daemon
    unset TPM2TOOLS_TCTI
    # A host configured for swtpm: vtpm setup reads swtpm_setup.conf, signs with swtpm_localca's
    # CA (here the fixture copy of one made by Debian's swtpm_localca) and takes the platform
    # strings from swtpm-localca.options.
    SWCA=$(cd "$(dirname "$0")/../unit/provision/testdata/swtpm-0.7.1" && pwd)
    printf 'signingkey = %s/signkey.pem\nissuercert = %s/issuercert.pem\ncertserial = %s/certserial\n' \
        "$SWCA" "$SWCA" "$TEST_TMP" >"$TEST_TMP/sw-localca.conf"
    printf -- '--platform-manufacturer Fedora\n--platform-version 2.1\n--platform-model QEMU\n' \
        >"$TEST_TMP/sw-localca.options"
    printf 'create_certs_tool_config = %s\ncreate_certs_tool_options = %s\nactive_pcr_banks = sha256,sha384\n' \
        "$TEST_TMP/sw-localca.conf" "$TEST_TMP/sw-localca.options" >"$TEST_TMP/sw-setup.conf"
    S7=$TEST_TMP/s7
    mkdir -p "$S7" "$TEST_TMP/ek7"
    check "--config swtpm_setup.conf (swtpm_localca's CA)" \
        t "$VTPM_DAEMON" setup --tpm2 --tpm-state "$S7" --config "$TEST_TMP/sw-setup.conf" \
        --create-ek-cert --create-platform-cert --write-ek-cert-files "$TEST_TMP/ek7" --display
    openssl x509 -inform der -in "$TEST_TMP/ek7/ek-rsa2048.crt" -out "$TEST_TMP/ek7.pem" 2>/dev/null
    check "... the EK certificate chains to swtpm's root CA" openssl verify \
        -CAfile "$SWCA/swtpm-localca-rootca-cert.pem" -untrusted "$SWCA/issuercert.pem" "$TEST_TMP/ek7.pem"
    start_daemon -n d7 -s "$S7"
    export TPM2TOOLS_TCTI=$D_TCTI
    t tpm2_nvread 0x1c08000 -o "$TEST_TMP/plat7.der" >/dev/null 2>&1
    check_match "... the platform certificate carries the .options strings" \
        "DirName:/2.23.133.5.1.1=Fedora/2.23.133.5.1.4=QEMU/2.23.133.5.1.5=2.1" \
        "$(openssl x509 -inform der -in "$TEST_TMP/plat7.der" -noout -ext subjectAltName 2>&1)"
    check_match "... active_pcr_banks from the config" "sha384: \[ 0, 1" "$(t tpm2_getcap pcrs 2>&1)"
    stop_daemon
    unset TPM2TOOLS_TCTI

    # --rsa-keysize 3072: the H-6 EK at 0x8101001c (SHA-384 name, userWithAuth), as swtpm_setup.
    S6=$TEST_TMP/s6
    mkdir -p "$S6"
    out=$(setup --tpm2 --tpm-state "$S6" --createek --rsa-keysize 3072 --display 2>&1)
    check_match "--rsa-keysize 3072 --display: EKs listed" "EK rsa3072 +persistent handle 0x8101001c" "$out"
    check_match "... and the P-384 EK" "EK secp384r1 +persistent handle 0x81010016" "$out"
    start_daemon -n d6 -s "$S6"
    export TPM2TOOLS_TCTI=$D_TCTI
    pub=$(t tpm2_readpublic -c 0x8101001c 2>&1)
    check_match "RSA-3072 EK: 3072 bits" "bits: 3072" "$pub"
    check_match "RSA-3072 EK: attributes 0x300f2 (TCG H-6)" "raw: 0x300f2" "$pub"
    check_match "RSA-3072 EK: SHA-384 name" "value: sha384" "$pub"
    stop_daemon
    unset TPM2TOOLS_TCTI
fi

# 5. TPM 1.2: EK, ownership, EK certificate (PC Client header in NV), NV lock.
S5=$TEST_TMP/s5
mkdir -p "$S5" "$TEST_TMP/ek12"
check "TPM 1.2: setup --createek --take-ownership --create-ek-cert --lock-nvram" \
    setup --tpm-state "$S5" --createek --take-ownership --create-ek-cert --lock-nvram \
    --write-ek-cert-files "$TEST_TMP/ek12"
check "TPM 1.2: tpm-00.permall written" test -s "$S5/tpm-00.permall"
openssl x509 -inform der -in "$TEST_TMP/ek12/ek-rsa2048.crt" -out "$TEST_TMP/ek12.pem" 2>/dev/null
check "TPM 1.2: EK certificate verifies against the CA chain" \
    openssl verify -CAfile "$ROOT_PEM" -untrusted "$ISSUER_PEM" "$TEST_TMP/ek12.pem"
check_eq "TPM 1.2: tpmSpecification 1.2/2/116" "3018301606056781050210310d300b0c03312e32020102020174" \
    "$(ext_hex "$TEST_TMP/ek12/ek-rsa2048.crt" "X509v3 Subject Directory Attributes" | tr 'A-F' 'a-f')"

# A fresh libvirt host (issue: the first VM start failed): libvirt runs swtpm_setup as tss with
# no HOME. Without the host's CA directory the error names the command that makes it; with it
# (what vtpm's install step creates), setup succeeds as tss. Only where it cannot disturb the
# machine: as root, with setpriv and a tss user, and no /var/lib/vtpm-localca yet (removed after).
if ! daemon_is_swtpm && [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null && id -u tss >/dev/null 2>&1 &&
    [ ! -e /var/lib/vtpm-localca ]; then
    FH=$TEST_TMP/freshhost
    mkdir -p "$FH/state"
    # a swtpm configuration without a CA: otherwise a host where swtpm_localca already made its
    # CA (readable by tss) is used, as it should be, and vtpm's own CA is not needed
    : >"$FH/swtpm_setup.conf"
    chown -R tss "$FH"
    chmod 755 "$TEST_TMP"
    as_tss() { t setpriv --reuid tss --regid tss --clear-groups env -u HOME -u XDG_CONFIG_HOME \
        "$VTPM_DAEMON" setup --tpm2 --tpm-state "$FH/state" --createek --create-ek-cert --overwrite \
        --config "$FH/swtpm_setup.conf" "$@"; }
    out=$(as_tss 2>&1)
    check_match "fresh host: as tss without HOME, the error names the command" \
        "install -d -o tss -m 0750 /var/lib/vtpm-localca" "$out"
    install -d -o tss -m 0750 /var/lib/vtpm-localca
    check "fresh host: with the host's CA directory (the install step's), setup succeeds as tss" as_tss
    check "fresh host: the CA was made there, owned by tss" \
        test "$(stat -c %U /var/lib/vtpm-localca/issuer-cert.pem 2>/dev/null)" = tss
    rm -rf /var/lib/vtpm-localca
else
    echo "SKIP fresh host check: needs root, setpriv, a tss user and no /var/lib/vtpm-localca"
fi

finish
