// A minimal C++ embedding against the installed headers and libraries: a TIS device on the
// in-process backend over a state directory, driven the way a guest driver does (request locality
// 0, write TPM2_Startup and TPM2_GetRandom into the FIFO, tpmGo, poll dataAvail, read the
// response), and the ACPI TPM2 table. Exit code 0 = pass.
#include <stdlib.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

#include "acpi/tpm_tables.h"
#include "backend/in_process_backend.h"
#include "device/regs.h"
#include "device/tis.h"
#include "state/dir_store.h"

namespace {

int failures = 0;
void Check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "FAIL %s\n", what);
    ++failures;
  }
}

struct NoIrq : vtpm::device::IrqLine {
  void SetLevel(bool) override {}
};

uint32_t Read(vtpm::device::Tis& tis, uint64_t offset, size_t width) {
  uint8_t b[4] = {};
  tis.Read({offset}, std::span<uint8_t>(b, width));
  return b[0] | (b[1] << 8) | (b[2] << 16) | (static_cast<uint32_t>(b[3]) << 24);
}
void Write(vtpm::device::Tis& tis, uint64_t offset, uint32_t v, size_t width) {
  uint8_t b[4] = {static_cast<uint8_t>(v), static_cast<uint8_t>(v >> 8),
                  static_cast<uint8_t>(v >> 16), static_cast<uint8_t>(v >> 24)};
  tis.Write({offset}, std::span<const uint8_t>(b, width));
}

// One command through locality 0's FIFO; the response bytes.
vtpm::Bytes Transact(vtpm::device::Tis& tis, const vtpm::Bytes& cmd) {
  namespace tisr = vtpm::device::tis;
  Write(tis, tisr::kSts, tisr::kStsCommandReady, 1);
  for (uint8_t byte : cmd) Write(tis, tisr::kDataFifo, byte, 1);
  Write(tis, tisr::kSts, tisr::kStsGo, 1);
  for (int i = 0; i < 5000 && !(Read(tis, tisr::kSts, 1) & tisr::kStsDataAvail); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  vtpm::Bytes rsp;
  while ((Read(tis, tisr::kSts, 1) & tisr::kStsDataAvail) && rsp.size() < 4096) {
    rsp.push_back(static_cast<uint8_t>(Read(tis, tisr::kDataFifo, 1)));
  }
  Write(tis, tisr::kSts, tisr::kStsCommandReady, 1);
  return rsp;
}

}  // namespace

int main() {
  char dir[] = "/tmp/vtpm-cxx-consumer-XXXXXX";
  if (mkdtemp(dir) == nullptr) return 2;
  vtpm::state::DirStoreOptions so;
  so.directory = dir;
  auto store = vtpm::state::DirStore::Open(so, vtpm::NullLogger());
  Check(store.has_value(), "DirStore::Open");
  if (!store) return 1;
  auto backend = vtpm::backend::InProcessBackend::Create(std::move(*store), {}, vtpm::NullLogger());
  Check(backend.has_value(), "InProcessBackend::Create");
  if (!backend) return 1;
  NoIrq irq;
  auto tis = vtpm::device::Tis::Create({}, {backend->get(), &irq, vtpm::NullLogger()});
  Check(tis.has_value(), "Tis::Create");
  if (!tis) return 1;
  namespace tisr = vtpm::device::tis;
  Write(**tis, tisr::kAccess, tisr::kAccessRequestUse, 1);
  Check((Read(**tis, tisr::kAccess, 1) & tisr::kAccessActiveLocality) != 0, "locality 0 granted");
  const vtpm::Bytes startup = {0x80, 0x01, 0, 0, 0, 0x0c, 0, 0, 0x01, 0x44, 0, 0};
  const vtpm::Bytes ok = {0x80, 0x01, 0, 0, 0, 0x0a, 0, 0, 0, 0};
  Check(Transact(**tis, startup) == ok, "TPM2_Startup(CLEAR) answers success");
  const vtpm::Bytes getrandom = {0x80, 0x01, 0, 0, 0, 0x0c, 0, 0, 0x01, 0x7b, 0, 0x10};
  const vtpm::Bytes r = Transact(**tis, getrandom);
  Check(r.size() == 28 && r[9] == 0 && r[11] == 16, "TPM2_GetRandom(16) answers 16 bytes");
  auto table = vtpm::acpi::BuildTpm2Table({});
  Check(table.size() >= 52 && table[0] == 'T' && table[1] == 'P' && table[2] == 'M' &&
            table[3] == '2',
        "ACPI TPM2 table");
  tis->reset();
  backend->reset();
  std::string rm = std::string("rm -rf ") + dir;
  if (std::system(rm.c_str()) != 0) return 2;
  std::printf("cxx_consumer: %s\n", failures == 0 ? "ok" : "FAILED");
  return failures == 0 ? 0 : 1;
}
