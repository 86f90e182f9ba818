#!/usr/bin/env bash
# Developer entry point. On a fresh Debian 12 machine (as root, or with sudo):
#   ./dev.sh demo    install what is needed, build, and run the demo
#   ./dev.sh test    install what is needed, build, and run every test (ctest)
# Other verbs: setup (packages only), build, test-sanitize (ASan+UBSan build, unit+integration).
set -euo pipefail
cd "$(dirname "$0")"

BUILD_DEPS=(cmake ninja-build g++ pkg-config libtpms-dev libssl-dev libexpected-dev libfmt-dev
            libspdlog-dev nlohmann-json3-dev libcli11-dev libgtest-dev libgmock-dev
            libbenchmark-dev)
PEER_DEPS=(swtpm swtpm-tools tpm2-tools libtss2-tcti-swtpm0 libtss2-tcti-mssim0
           qemu-system-x86 python3)

setup() {
  local missing=()
  for p in "${BUILD_DEPS[@]}" "${PEER_DEPS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "dev.sh: installing ${missing[*]}"
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
}

build() {  # build <dir> [cmake args...]
  local dir=$1; shift
  cmake -S . -B "$dir" -G Ninja -DVTPM_WERROR=ON "$@" >/dev/null
  ninja -C "$dir" -j"$(nproc)"
}

case "${1:-}" in
  setup) setup ;;
  build) setup; build build ;;
  demo) setup; build build; exec scripts/demo.sh build/tools/vtpm/vtpm ;;
  test)
    setup; build build
    ctest --test-dir build --output-on-failure -j"$(nproc)" ;;
  test-sanitize)
    setup; build build-asan -DVTPM_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
    ASAN_OPTIONS=detect_leaks=1 ctest --test-dir build-asan --output-on-failure -j"$(nproc)" \
      -L 'unit|integration|provision' ;;
  *) echo "usage: $0 demo|test|setup|build|test-sanitize" >&2; exit 2 ;;
esac
