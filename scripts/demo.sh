#!/usr/bin/env bash
# Demo: a vtpm daemon, used the way QEMU and tpm2-tools use swtpm.
#  1. starts `vtpm socket` on a fresh state directory (control + data UNIX sockets);
#  2. QEMU attaches to it as `-tpmdev emulator` (backend start-up, as for a VM);
#  3. tpm2-tools talk to it (random, PCR extend/read, a primary key, NV), then the daemon is
#     restarted on the same state and the NV index is read back.
set -euo pipefail
VTPM=${1:-build/tools/vtpm/vtpm}
WORK=$(mktemp -d /tmp/vtpm-demo.XXXXXX)
PID=""
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT
mkdir "$WORK/state"

start() {
  "$VTPM" socket --tpm2 --tpmstate dir="$WORK/state" \
    --ctrl type=unixio,path="$WORK/tpm.sock.ctrl" --server type=unixio,path="$WORK/tpm.sock" \
    --flags "$1" --log file="$WORK/vtpm.log",level=1 --pid file="$WORK/vtpm.pid" &
  PID=$!
  for _ in $(seq 100); do [ -S "$WORK/tpm.sock" ] && [ -S "$WORK/tpm.sock.ctrl" ] && return; sleep 0.05; done
  echo "vtpm did not start; log:"; cat "$WORK/vtpm.log"; exit 1
}
stop() { kill -TERM "$PID"; wait "$PID" || true; PID=""; }
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
export TPM2TOOLS_TCTI="swtpm:path=$WORK/tpm.sock"

say "vtpm $("$VTPM" --version | cut -d' ' -f2) serving TPM 2.0, state in $WORK/state"
start not-need-init,startup-clear
say "QEMU attaches to it (-tpmdev emulator, tpm-tis on q35), then quits"
mkdir -p "$WORK/qemu-state"
"$VTPM" socket --tpm2 --tpmstate dir="$WORK/qemu-state" --ctrl type=unixio,path="$WORK/qemu.sock" \
  --log file="$WORK/qemu-vtpm.log",level=2 --terminate 2>/dev/null & QPID=$!
for _ in $(seq 100); do [ -S "$WORK/qemu.sock" ] && break; sleep 0.05; done
timeout 30 qemu-system-x86_64 -machine q35 -accel tcg -nodefaults -display none -S \
  -chardev socket,id=chrtpm,path="$WORK/qemu.sock" -tpmdev emulator,id=tpm0,chardev=chrtpm \
  -device tpm-tis,tpmdev=tpm0 -monitor none -qmp stdio <<<'{"execute":"qmp_capabilities"}
{"execute":"query-tpm"}
{"execute":"quit"}' | grep -o '"model": "[^"]*".*"type": "emulator"' || true
wait $QPID 2>/dev/null || true
grep -o 'ctrl: CMD_[A-Z_]*' "$WORK/qemu-vtpm.log" | sort | uniq -c | sed 's/^/   /'

say "tpm2_getrandom 16"; tpm2_getrandom 16 --hex; echo
say "tpm2_pcrextend 16 and tpm2_pcrread"
tpm2_pcrextend 16:sha256=$(printf 'vtpm demo' | sha256sum | cut -d' ' -f1)
tpm2_pcrread sha256:16
say "tpm2_createprimary (ECC P-256, owner hierarchy)"
tpm2_createprimary -C o -G ecc -c "$WORK/primary.ctx" | sed -n '1,6p'
tpm2_flushcontext -t
say "NV index 0x1500016 written, daemon restarted on the same state, read back"
tpm2_nvdefine 0x1500016 -C o -s 16 -a "ownerread|ownerwrite|authread|authwrite" >/dev/null
printf 'survives restarts' | head -c 16 > "$WORK/nv.in"
tpm2_nvwrite 0x1500016 -C o -i "$WORK/nv.in"
stop
start not-need-init,startup-clear
tpm2_nvread 0x1500016 -C o -s 16; echo
stop
say "state directory (swtpm's file format; .bak = previous generation)"
ls -l "$WORK/state" | sed 's/^/   /'
