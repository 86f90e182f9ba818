#!/usr/bin/env bash
# The installed tree, used the way a VMM uses it (label "install"):
#   1. cmake --install the build into a fresh prefix;
#   2. configure and build tests/install/consumer against that prefix only (find_package(vtpm)):
#      the C ABI program (tests/capi/capi_test.c linked to libvtpm.so) and a C++ embedding;
#   3. the same C program again through pkg-config (vtpm.pc), as a non-CMake VMM builds it;
#   4. run all three; check libvtpm.so exports nothing but vtpm_*.
# Usage: run_install_test.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$1 src=$2
tmp=$(mktemp -d /tmp/vtpm-install.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL $*"; exit 1; }

cmake --install "$build" --prefix "$tmp/prefix" >"$tmp/install.log" || {
  cat "$tmp/install.log"; fail "cmake --install"; }
echo "PASS installed into $tmp/prefix"
for f in include/vtpm/vtpm_device.h include/vtpm/cxx/device/tis.h lib/libvtpm.so.0 \
         lib/cmake/vtpm/vtpmConfig.cmake lib/pkgconfig/vtpm.pc; do
  [ -e "$tmp/prefix/$f" ] || fail "installed tree lacks $f"
done
# Every header an installed header includes is installed too (nothing private leaks).
missing=$(cd "$tmp/prefix/include/vtpm/cxx" &&
          grep -rhoE '^#include "[^"]+"' . | sed -E 's/#include "(.*)"/\1/' | sort -u |
          while read -r h; do [ -e "$h" ] || echo "$h"; done)
[ -z "$missing" ] || fail "installed headers include headers that are not installed: $missing"
exports=$(nm -D --defined-only "$tmp/prefix/lib/libvtpm.so.0" | awk '$2 ~ /[TDBRW]/ {print $3}')
bad=$(printf '%s\n' "$exports" | grep -v '^vtpm_' || true)
[ -z "$bad" ] || fail "libvtpm.so exports more than vtpm_*: $(echo "$bad" | head -5 | tr '\n' ' ')"
echo "PASS libvtpm.so exports only vtpm_* ($(printf '%s\n' "$exports" | wc -l) functions)"

cmake -S "$src/tests/install/consumer" -B "$tmp/consumer" -G Ninja \
      -DCMAKE_PREFIX_PATH="$tmp/prefix" -DCAPI_TEST_SOURCE="$src/tests/capi/capi_test.c" \
      >"$tmp/configure.log" 2>&1 || { cat "$tmp/configure.log"; fail "consumer configure"; }
cmake --build "$tmp/consumer" >"$tmp/build.log" 2>&1 || {
  tail -40 "$tmp/build.log"; fail "consumer build against the installed tree"; }
echo "PASS a separate CMake project builds against the installed vtpm (C and C++)"

export LD_LIBRARY_PATH="$tmp/prefix/lib"
"$tmp/consumer/c_consumer" || fail "the C ABI program (CMake build) failed"
echo "PASS C ABI program, linked by CMake to the installed libvtpm.so"
"$tmp/consumer/cxx_consumer" || fail "the C++ embedding failed"
echo "PASS C++ embedding on the installed headers and libraries"

export PKG_CONFIG_PATH="$tmp/prefix/lib/pkgconfig"
# shellcheck disable=SC2046
cc -std=c11 -o "$tmp/c_pkgconfig" "$src/tests/capi/capi_test.c" $(pkg-config --cflags --libs vtpm) \
  || fail "the C program does not build with pkg-config --cflags --libs vtpm"
"$tmp/c_pkgconfig" || fail "the C ABI program (pkg-config build) failed"
echo "PASS C ABI program built with pkg-config"
echo "4 passed, 0 failed"
