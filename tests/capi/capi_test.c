/* The C ABI used from C (compiled as C11): an in-process TPM behind a TIS and a CRB device,
 * driven through raw register accesses, plus the ACPI builders. Exit code 0 = pass. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "vtpm/vtpm_device.h"

static int failures = 0;
#define CHECK(cond)                                                            \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
      failures++;                                                              \
    }                                                                          \
  } while (0)

static int irq_level = 0, irq_changes = 0;
static void on_irq(void* opaque, int level) {
  (void)opaque;
  irq_level = level;
  irq_changes++;
}

static uint32_t rd(vtpm_device* d, uint64_t off, size_t n) {
  uint8_t b[4] = {0};
  vtpm_device_read(d, off, b, n);
  return (uint32_t)b[0] | ((uint32_t)b[1] << 8) | ((uint32_t)b[2] << 16) | ((uint32_t)b[3] << 24);
}
static void wr(vtpm_device* d, uint64_t off, uint32_t v, size_t n) {
  uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
  vtpm_device_write(d, off, b, n);
}
static void sleep_us(long us) {
  struct timespec ts = {0, us * 1000};
  nanosleep(&ts, NULL);
}

/* TPM2_Startup(SU_CLEAR) and TPM2_GetRandom(16). */
static const uint8_t kStartup[] = {0x80, 0x01, 0, 0, 0, 12, 0, 0, 0x01, 0x44, 0, 0};
static const uint8_t kGetRandom[] = {0x80, 0x01, 0, 0, 0, 12, 0, 0, 0x01, 0x7B, 0, 16};

static int tis_command(vtpm_device* d, const uint8_t* cmd, size_t len, uint8_t* rsp, size_t cap) {
  size_t i, n = 0;
  int tries;
  wr(d, 0x18, 0x40, 1);
  for (i = 0; i < len; i++) wr(d, 0x24, cmd[i], 1);
  wr(d, 0x18, 0x20, 1);
  for (tries = 0; tries < 100000 && (rd(d, 0x18, 1) & 0x90) != 0x90; tries++) sleep_us(50);
  while ((rd(d, 0x18, 1) & 0x10) && n < cap) rsp[n++] = (uint8_t)rd(d, 0x24, 1);
  return (int)n;
}

int main(void) {
  char err[256] = "";
  char dir[] = "/tmp/vtpm-capi-XXXXXX";
  vtpm_backend* be = NULL;
  vtpm_device* tis = NULL;
  vtpm_device* crb = NULL;
  vtpm_in_process_config bc;
  vtpm_tis_config tc;
  vtpm_crb_config cc;
  uint8_t rsp[64], state[8192], table[128];
  size_t state_len = 0, i;
  int n, tries;
  char cmdline[128];

  CHECK(mkdtemp(dir) != NULL);
  memset(&bc, 0, sizeof bc);
  bc.state_dir = dir;
  bc.tpm_version = VTPM_TPM_2_0;
  bc.buffer_size = 3968;
  CHECK(vtpm_backend_new_in_process(&bc, &be, err, sizeof err) == 0);
  if (be == NULL) {
    fprintf(stderr, "backend: %s\n", err);
    return 1;
  }
  /* A second engine in one process is refused with a message. */
  {
    vtpm_backend* be2 = NULL;
    CHECK(vtpm_backend_new_in_process(&bc, &be2, err, sizeof err) < 0 && be2 == NULL);
  }

  memset(&tc, 0, sizeof tc);
  tc.tpm_version = VTPM_TPM_2_0;
  tc.irq_vector = 5;
  CHECK(vtpm_tis_new(&tc, be, on_irq, NULL, &tis, err, sizeof err) == 0);
  CHECK(vtpm_device_size(tis) == 0x5000);
  CHECK(rd(tis, 0xF00, 4) == 0x00011014u);
  wr(tis, 0x00, 0x02, 1); /* requestUse */
  CHECK((rd(tis, 0x00, 1) & 0xA2) == 0xA0);
  wr(tis, 0x08, 0x80000001u, 4); /* dataAvail interrupt */
  n = tis_command(tis, kStartup, sizeof kStartup, rsp, sizeof rsp);
  CHECK(n == 10 && rsp[6] == 0 && rsp[7] == 0 && rsp[8] == 0 && rsp[9] == 0);
  CHECK(irq_level == 1);
  wr(tis, 0x10, rd(tis, 0x10, 4), 4);
  CHECK(irq_level == 0);
  n = tis_command(tis, kGetRandom, sizeof kGetRandom, rsp, sizeof rsp);
  CHECK(n == 10 + 2 + 16);
  CHECK(vtpm_device_busy(tis) == 0);
  CHECK(vtpm_device_save(tis, NULL, 0, &state_len, err, sizeof err) == -ENOSPC && state_len > 0);
  CHECK(vtpm_device_save(tis, state, sizeof state, &state_len, err, sizeof err) == 0);
  CHECK(vtpm_device_restore(tis, state, state_len, err, sizeof err) == 0);
  state[state_len / 2] ^= 1;
  CHECK(vtpm_device_restore(tis, state, state_len, err, sizeof err) < 0 && err[0] != '\0');
  CHECK(vtpm_device_bad_accesses(tis) == 0);
  vtpm_device_free(tis);

  /* CRB: locality, cmdReady, command in the buffer, start, poll. */
  memset(&cc, 0, sizeof cc);
  CHECK(vtpm_crb_new(&cc, be, NULL, NULL, &crb, err, sizeof err) == 0);
  CHECK(vtpm_device_size(crb) == 0x1000);
  wr(crb, 0x08, 1, 4);
  CHECK((rd(crb, 0x00, 4) & 0x82) == 0x82);
  wr(crb, 0x40, 1, 4);
  for (i = 0; i < sizeof kGetRandom; i++) wr(crb, 0x80 + i, kGetRandom[i], 1);
  wr(crb, 0x4C, 1, 4);
  for (tries = 0; tries < 100000 && (rd(crb, 0x4C, 4) & 1); tries++) sleep_us(50);
  CHECK(rd(crb, 0x80, 2) == 0x0180);      /* tag 8001, little-endian lanes */
  CHECK(rd(crb, 0x82, 4) == 0x1C000000u); /* size 28, big-endian in the buffer */
  vtpm_device_free(crb);
  vtpm_backend_free(be);

  /* ACPI. */
  {
    vtpm_tpm2_table_config t;
    vtpm_tpm_device_aml_config a;
    uint8_t sum = 0;
    memset(&t, 0, sizeof t);
    t.start_method = VTPM_START_METHOD_CRB;
    t.control_area = 0xFED40040u;
    CHECK(vtpm_acpi_tpm2_table(&t, NULL, 0) == 76);
    CHECK(vtpm_acpi_tpm2_table(&t, table, sizeof table) == 76);
    for (i = 0; i < 76; i++) sum = (uint8_t)(sum + table[i]);
    CHECK(sum == 0 && memcmp(table, "TPM2", 4) == 0 && table[48] == 7);
    t.start_method = 3;
    CHECK(vtpm_acpi_tpm2_table(&t, table, sizeof table) == 0);
    CHECK(vtpm_acpi_tcpa_table(0x10000, 0, table, sizeof table) == 50);
    memset(&a, 0, sizeof a);
    a.tpm_version = VTPM_TPM_2_0;
    a.size = 0x5000;
    a.uid = 1;
    a.irq = -1;
    n = (int)vtpm_acpi_tpm_device_aml(&a, table, sizeof table);
    CHECK(n == 98); /* 5B 82, PkgLength 0x60 */
    if (n != 98) fprintf(stderr, "aml size %d\n", n);
    CHECK(table[0] == 0x5B && table[1] == 0x82);
    a.name = "bad!";
    CHECK(vtpm_acpi_tpm_device_aml(&a, table, sizeof table) == 0);
  }

  snprintf(cmdline, sizeof cmdline, "rm -rf %s", dir);
  if (system(cmdline) != 0) fprintf(stderr, "cannot remove %s\n", dir);
  printf("capi_test: %s\n", failures == 0 ? "passed" : "FAILED");
  return failures == 0 ? 0 : 1;
}
