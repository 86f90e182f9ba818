#!/usr/bin/env bash
# Developer entry point. On a fresh Debian 12 machine (as root, or with sudo):
#   ./dev.sh demo    install what is needed, build, and run the demo
#   ./dev.sh test    install what is needed, build, and run every test (ctest)
# Other verbs: setup (packages only), build, test-sanitize (ASan+UBSan build, unit+integration),
#   bench [--quick] (Release build; vtpm vs swtpm side by side: markdown, bench-results.csv,
#   raw samples in bench-samples.csv, SVG plots in bench-plots/),
#   fuzz (every libFuzzer target, FUZZ_SECONDS=20 s each).
set -euo pipefail
cd "$(dirname "$0")"

BUILD_DEPS=(cmake ninja-build g++ pkg-config libtpms-dev libssl-dev libseccomp-dev libcap-ng-dev
            libexpected-dev libfmt-dev
            libspdlog-dev nlohmann-json3-dev libcli11-dev libgtest-dev libgmock-dev
            libbenchmark-dev clang libclang-rt-14-dev libtss2-dev)
PEER_DEPS=(swtpm swtpm-tools tpm2-tools libtss2-tcti-swtpm0 libtss2-tcti-mssim0
           qemu-system-x86 python3 acpica-tools)
# ./dev.sh bench: the plots (bench/plot.py draws with gnuplot)
PEER_DEPS+=(gnuplot-nox)
# e2e guest (tests/e2e): Debian's kernel, busybox + the device TCTI for its initramfs, OVMF
PEER_DEPS+=(linux-image-amd64 busybox-static cpio libtss2-tcti-device0 ovmf seabios)

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
  bench)
    setup
    cmake -S . -B build-release -G Ninja -DVTPM_WERROR=ON -DCMAKE_BUILD_TYPE=Release \
      -DVTPM_BUILD_TESTS=OFF >/dev/null
    ninja -C build-release -j"$(nproc)" vtpm vtpm_compare vtpm_esys_client startup_floor \
      session_bench setup_compare
    build-release/bench/session_bench --benchmark_min_time=0.2
    build-release/bench/vtpm_compare --vtpm build-release/tools/vtpm/vtpm --csv bench-results.csv \
      --samples bench-samples.csv "${@:2}"
    # Latency distributions, start-up and memory as SVG (gnuplot): bench-plots/*.svg
    python3 bench/plot.py --samples bench-samples.csv --results bench-results.csv --out bench-plots
    # Provisioning: vtpm setup vs swtpm_setup, same arguments, fresh state each round, paired.
    build-release/bench/setup_compare --vtpm build-release/tools/vtpm/vtpm --rounds 30 ;;
  test-sanitize)
    setup; build build-asan -DVTPM_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
    ASAN_OPTIONS=detect_leaks=1 ctest --test-dir build-asan --output-on-failure -j"$(nproc)" \
      -L 'unit|integration|devices|provision|reliability' ;;
  fuzz)  # libFuzzer (clang, ASan+UBSan, coverage in every library): each target FUZZ_SECONDS (20) s
    setup
    CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DVTPM_FUZZ=ON -DVTPM_SANITIZE=ON \
      -DVTPM_BUILD_TESTS=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
    targets=(tis crb ctrl_request ctrl_response mssim state_blob ctrl_session data_session
             mssim_session options)
    ninja -C build-fuzz -j"$(nproc)" "${targets[@]/%/_fuzz}"
    for t in "${targets[@]}"; do
      mkdir -p "build-fuzz/corpus/$t"
      echo "== fuzz $t"
      "build-fuzz/tests/fuzz/${t}_fuzz" -max_total_time="${FUZZ_SECONDS:-20}" -max_len=4096 \
        -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="build-fuzz/$t-" \
        "build-fuzz/corpus/$t" \
        "tests/fuzz/seeds/$t"
    done ;;
  *) echo "usage: $0 demo|test|setup|build|test-sanitize|bench|fuzz" >&2; exit 2 ;;
esac
