#!/usr/bin/env bash
# Builds the e2e test guest from the machine's Debian packages (nothing is downloaded and no
# binary is committed):
#   kernel     /boot/vmlinuz-<ver> of linux-image-amd64 (tpm_tis and tpm_crb built in: checked)
#   initramfs  busybox-static, the tpm2-tools binary (tpm2 + tpm2_* links), exactly the shared
#              libraries ldd reports for it and for the tpm2-tss device TCTI, and
#              tests/e2e/guest_init.sh as /init
# The result is cached in CACHE_DIR/guest-<hash of every input>/{vmlinuz,initrd.img}; the
# directory is printed on stdout.  Rebuilt only when an input changes.
#
# usage: make_guest.sh [CACHE_DIR]     (default: $VTPM_E2E_CACHE, else ./build/e2e)
# Needs: linux-image-amd64 busybox-static tpm2-tools libtss2-tcti-device0 cpio gzip
#        (./dev.sh setup installs them).
# Exit status: 0 = built or cached (directory on stdout); 3 = the machine lacks a prerequisite
# (one "make_guest: missing: WHAT: FIX" line on stderr; run_e2e.sh reports it as a skip);
# anything else = a failure (the reason, or the command that failed and its line, on stderr).
set -Eeuo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
CACHE=${1:-${VTPM_E2E_CACHE:-build/e2e}}
INIT=$HERE/guest_init.sh
die() { echo "make_guest: $*" >&2; exit 1; }
missing() { echo "make_guest: missing: $*" >&2; exit 3; }
# shellcheck disable=SC2154  # rc is assigned inside the trap
trap 'rc=$?; echo "make_guest: failed with status $rc at line $LINENO (last command: $BASH_COMMAND)" >&2' ERR

# --- inputs ----------------------------------------------------------------------------------
KOPTS="CONFIG_TCG_TIS=y CONFIG_TCG_CRB=y CONFIG_SECURITYFS=y CONFIG_RD_GZIP=y"
kernel="" seen=""
for k in $(ls /boot/vmlinuz-* 2>/dev/null | sort -V -r); do
  cfg=/boot/config-${k#/boot/vmlinuz-}
  if [ ! -r "$cfg" ]; then seen+=" ${k##*/} (no readable $cfg);"; continue; fi
  lacks=""
  for o in $KOPTS; do grep -qx "$o" "$cfg" || lacks+=" $o"; done
  if [ -z "$lacks" ]; then kernel=$k; break; fi
  seen+=" ${k##*/} (config lacks$lacks);"
done
seen=${seen%;}
[ -n "$kernel" ] || missing "a kernel /boot/vmlinuz-* whose /boot/config-* has $KOPTS \
(found:${seen:- no /boot/vmlinuz-*}): install Debian's linux-image-amd64 (./dev.sh setup does)"
[ -r "$kernel" ] || die "$kernel is not readable (run as root or make it readable)"
BUSYBOX=$(command -v busybox) || missing "busybox: apt-get install busybox-static"
if ldd "$BUSYBOX" >/dev/null 2>&1; then
  missing "a static busybox ($BUSYBOX is dynamically linked): apt-get install busybox-static"
fi
TPM2=$(command -v tpm2) || missing "tpm2 (tpm2-tools >= 5): apt-get install tpm2-tools"
TCTI=""
for d in /usr/lib/x86_64-linux-gnu /lib/x86_64-linux-gnu; do
  [ -e "$d/libtss2-tcti-device.so.0" ] && { TCTI=$d/libtss2-tcti-device.so.0; break; }
done
[ -n "$TCTI" ] || missing "libtss2-tcti-device.so.0: apt-get install libtss2-tcti-device0"
for t in cpio gzip ldd; do
  command -v $t >/dev/null || missing "$t: apt-get install $(case $t in ldd) echo libc-bin ;; *) echo $t ;; esac)"
done

# every shared object the guest needs: ldd's resolved paths (plus the dynamic loader).  A
# command substitution, not a process substitution, so that an ldd failure stops the build.
libs() { ldd "$@" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// && $1 !~ /:$/ { print $1 }' | sort -u; }
LIBS_TXT=$(libs "$TPM2" "$TCTI")
LIBS_TXT=$(printf '%s\n%s\n' "$LIBS_TXT" "$TCTI" | sort -u)
mapfile -t LIBS <<<"$LIBS_TXT"
[[ $LIBS_TXT == */libtss2-esys.so* ]] ||
  die "ldd $TPM2 lists no libtss2-esys: cannot tell which libraries the guest needs"

REAL_TXT=$(readlink -e "${LIBS[@]}")
mapfile -t REAL <<<"$REAL_TXT"
key=$( { echo v1; uname -m
         sha256sum "$0" "$INIT" "$kernel" "$BUSYBOX" "$TPM2" "${REAL[@]}"
       } | sha256sum | cut -c1-16)
OUT=$CACHE/guest-$key
if [ -s "$OUT/initrd.img" ] && [ -s "$OUT/vmlinuz" ]; then echo "$OUT"; exit 0; fi

# --- build -----------------------------------------------------------------------------------
mkdir -p "$CACHE"
TMP=$(mktemp -d "$CACHE/.build.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
R=$TMP/root
mkdir -p "$R"/{bin,sbin,dev,proc,sys,tmp,run,etc,usr/bin,usr/lib/x86_64-linux-gnu,usr/lib64}
ln -s usr/lib "$R/lib"; ln -s usr/lib64 "$R/lib64"
cp "$BUSYBOX" "$R/bin/busybox"
for a in $("$BUSYBOX" --list); do
  [ "$a" = busybox ] || ln -sf busybox "$R/bin/$a"
done
cp "$TPM2" "$R/usr/bin/tpm2"
for l in /usr/bin/tpm2_*; do
  [ "$(readlink "$l")" = tpm2 ] && ln -s tpm2 "$R/usr/bin/${l##*/}"
done
for l in "${LIBS[@]}"; do
  case $l in
  */ld-linux-x86-64.so.2) dst=$R/usr/lib64/ld-linux-x86-64.so.2 ;;
  *) dst=$R/usr/lib/x86_64-linux-gnu/${l##*/} ;;
  esac
  cp -L "$l" "$dst"
done
# the guest's tctildr finds the device TCTI by its soname and its libtss2-tcti-device.so name
ln -sf libtss2-tcti-device.so.0 "$R/usr/lib/x86_64-linux-gnu/libtss2-tcti-device.so"
printf 'root:x:0:0:root:/:/bin/sh\n' >"$R/etc/passwd"
printf 'root:x:0:\n' >"$R/etc/group"
install -m 0755 "$INIT" "$R/init"
(cd "$R" && find . -print0 | LC_ALL=C sort -z |
   cpio --null -o -H newc --owner=0:0 --reproducible --quiet) | gzip -6n >"$TMP/initrd.img"
cp "$kernel" "$TMP/vmlinuz"
echo "$kernel" >"$TMP/kernel.txt"
rm -rf "$R"
mv "$TMP" "$OUT.new.$$"
mv -T "$OUT.new.$$" "$OUT" 2>/dev/null || rm -rf "$OUT.new.$$"  # a racing build won: fine
trap - EXIT
echo "make_guest: built $OUT ($(du -h "$OUT/initrd.img" | cut -f1) initramfs, kernel $kernel)" >&2
echo "$OUT"
