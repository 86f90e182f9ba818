#!/usr/bin/env bash
# Demo (`./dev.sh demo`): an unmodified Debian Linux guest under QEMU finds and uses vtpm.
#  - builds (or reuses, cached in build/e2e) the test guest from Debian packages: the kernel of
#    linux-image-amd64 and a busybox + tpm2-tools initramfs (tests/e2e/make_guest.sh);
#  - boot 1: `vtpm socket` serves the VM's TPM (QEMU q35, -tpmdev emulator, tpm-tis, SeaBIOS);
#    the guest kernel binds tpm_tis and tpm2-tools in the guest use /dev/tpmrm0: random, PCRs,
#    keys, signatures, a quote, NV, and the firmware's event log replayed against the PCRs;
#  - boot 2: vtpm and QEMU start again on the same state directory: the NV index and the
#    persistent key survived, the PCRs were reset.
# Everything the guest saw is printed.  VTPM_DEMO_IFACE=crb / VTPM_DEMO_FIRMWARE=ovmf switch the
# device model and firmware.  The harness is tests/e2e/run_e2e.sh (see its --help).
set -euo pipefail
cd "$(dirname "$0")/.."
VTPM=$(realpath "${1:-build/tools/vtpm/vtpm}")
export VTPM_DAEMON=$VTPM VTPM_E2E_CACHE=${VTPM_E2E_CACHE:-build/e2e}
exec tests/e2e/run_e2e.sh --scenario reboot --iface "${VTPM_DEMO_IFACE:-tis}" \
  --firmware "${VTPM_DEMO_FIRMWARE:-seabios}" --verbose
