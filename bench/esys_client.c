/* vtpm_esys_client: a real TPM client on tpm2-tss ESYS, for the benchmark's "clients" section
 * and the mssim regression test. One process, one ESYS context per TCTI configuration given,
 * many commands: per round, TPM2_GetRandom(8) on every context in turn, then TPM2_PCR_Read of
 * sha256 PCR 0 on every context in turn (the first context alternates, so drift in machine load
 * hits every TCTI alike). Every result is checked (response code, sizes); any failure ends the
 * program with exit status 1 and a message on stderr.
 *
 *   vtpm_esys_client [-n ROUNDS] [--commands getrandom,pcrread] [--startup] TCTI...
 *
 * TCTI: a tpm2-tss TCTI configuration, e.g. "swtpm:path=/run/tpm.sock",
 * "mssim:host=127.0.0.1,port=2321". --startup sends TPM2_Startup(CLEAR) on each context first
 * (TPM_RC_INITIALIZE, "already started", is fine). One warm-up GetRandom per context is not
 * counted. Output (stdout, after the last command, so printing never delays a command): one line
 * per command, "INDEX COMMAND MICROSECONDS", INDEX being the TCTI's position on the command line;
 * then "# total INDEX COMMAND ROUNDS MICROSECONDS" per context and command (the sum). */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <tss2/tss2_esys.h>
#include <tss2/tss2_rc.h>
#include <tss2/tss2_tctildr.h>

enum { kGetRandom = 0, kPcrRead = 1, kCommands = 2 };
static const char* const kNames[kCommands] = {"getrandom", "pcrread"};

typedef struct {
  int tcti;
  int command;
  double micros;
} Sample;

static double Now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static void Fail(const char* tcti, const char* what, TSS2_RC rc) {
  fprintf(stderr, "vtpm_esys_client: %s: %s: 0x%x (%s)\n", tcti, what, (unsigned)rc,
          Tss2_RC_Decode(rc));
  exit(1);
}

static void Usage(FILE* to) {
  fprintf(to,
          "usage: vtpm_esys_client [-n ROUNDS] [--commands getrandom,pcrread] [--startup] "
          "TCTI...\n"
          "  -n ROUNDS     commands of each kind per TCTI (default 100)\n"
          "  --commands L  which commands to run each round (default getrandom,pcrread)\n"
          "  --startup     send TPM2_Startup(CLEAR) first (TPM_RC_INITIALIZE is accepted)\n"
          "  TCTI          tpm2-tss TCTI configuration, e.g. mssim:host=127.0.0.1,port=2321\n"
          "Prints \"INDEX COMMAND MICROSECONDS\" per command, then \"# total INDEX COMMAND N "
          "MICROSECONDS\"\n"
          "per TCTI. Every response is checked; a failure exits 1.\n");
}

/* One command on |ctx|; returns its wall time in microseconds. */
static double Run(ESYS_CONTEXT* ctx, const char* tcti, int command) {
  double t0, t1;
  TSS2_RC rc;
  if (command == kGetRandom) {
    TPM2B_DIGEST* bytes = NULL;
    t0 = Now();
    rc = Esys_GetRandom(ctx, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, 8, &bytes);
    t1 = Now();
    if (rc != TSS2_RC_SUCCESS) Fail(tcti, "Esys_GetRandom", rc);
    if (bytes == NULL || bytes->size != 8) {
      fprintf(stderr, "vtpm_esys_client: %s: GetRandom(8) returned %d bytes\n", tcti,
              bytes ? bytes->size : -1);
      exit(1);
    }
    Esys_Free(bytes);
  } else {
    TPML_PCR_SELECTION sel = {.count = 1};
    sel.pcrSelections[0].hash = TPM2_ALG_SHA256;
    sel.pcrSelections[0].sizeofSelect = 3;
    sel.pcrSelections[0].pcrSelect[0] = 0x01; /* PCR 0 */
    UINT32 counter = 0;
    TPML_PCR_SELECTION* out_sel = NULL;
    TPML_DIGEST* values = NULL;
    t0 = Now();
    rc = Esys_PCR_Read(ctx, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &sel, &counter, &out_sel,
                       &values);
    t1 = Now();
    if (rc != TSS2_RC_SUCCESS) Fail(tcti, "Esys_PCR_Read", rc);
    if (values == NULL || values->count != 1 || values->digests[0].size != 32 || out_sel == NULL ||
        out_sel->count != 1 || out_sel->pcrSelections[0].hash != TPM2_ALG_SHA256 ||
        (out_sel->pcrSelections[0].pcrSelect[0] & 0x01) == 0) {
      fprintf(stderr, "vtpm_esys_client: %s: PCR_Read(sha256:0) returned no sha256 PCR 0\n", tcti);
      exit(1);
    }
    Esys_Free(out_sel);
    Esys_Free(values);
  }
  return t1 - t0;
}

int main(int argc, char** argv) {
  long rounds = 100;
  int run[kCommands] = {1, 1};
  int startup = 0;
  int first = 1;
  for (; first < argc && argv[first][0] == '-'; ++first) {
    const char* a = argv[first];
    if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
      Usage(stdout);
      return 0;
    } else if (strcmp(a, "-n") == 0 && first + 1 < argc) {
      char* end = NULL;
      rounds = strtol(argv[++first], &end, 10);
      if (*end != '\0' || rounds < 1 || rounds > 10000000) {
        fprintf(stderr, "vtpm_esys_client: -n wants a number from 1 to 10000000\n");
        return 2;
      }
    } else if (strcmp(a, "--commands") == 0 && first + 1 < argc) {
      const char* list = argv[++first];
      run[kGetRandom] = strstr(list, "getrandom") != NULL;
      run[kPcrRead] = strstr(list, "pcrread") != NULL;
      if (!run[kGetRandom] && !run[kPcrRead]) {
        fprintf(stderr, "vtpm_esys_client: --commands: getrandom and/or pcrread\n");
        return 2;
      }
    } else if (strcmp(a, "--startup") == 0) {
      startup = 1;
    } else {
      Usage(stderr);
      return 2;
    }
  }
  const int n_tcti = argc - first;
  if (n_tcti < 1) {
    Usage(stderr);
    return 2;
  }
  ESYS_CONTEXT** ctx = calloc((size_t)n_tcti, sizeof(*ctx));
  TSS2_TCTI_CONTEXT** tcti = calloc((size_t)n_tcti, sizeof(*tcti));
  const size_t max_samples = (size_t)rounds * kCommands * (size_t)n_tcti;
  Sample* samples = malloc(max_samples * sizeof(*samples));
  double* totals = calloc((size_t)n_tcti * kCommands, sizeof(*totals));
  if (ctx == NULL || tcti == NULL || samples == NULL || totals == NULL) {
    fprintf(stderr, "vtpm_esys_client: out of memory\n");
    return 1;
  }
  for (int i = 0; i < n_tcti; ++i) {
    const char* conf = argv[first + i];
    TSS2_RC rc = Tss2_TctiLdr_Initialize(conf, &tcti[i]);
    if (rc != TSS2_RC_SUCCESS) Fail(conf, "Tss2_TctiLdr_Initialize", rc);
    rc = Esys_Initialize(&ctx[i], tcti[i], NULL);
    if (rc != TSS2_RC_SUCCESS) Fail(conf, "Esys_Initialize", rc);
    if (startup) {
      rc = Esys_Startup(ctx[i], TPM2_SU_CLEAR);
      if (rc != TSS2_RC_SUCCESS && rc != TPM2_RC_INITIALIZE) Fail(conf, "Esys_Startup", rc);
    }
    Run(ctx[i], conf, kGetRandom); /* warm-up, not counted */
  }
  size_t n = 0;
  for (long r = 0; r < rounds; ++r) {
    for (int c = 0; c < kCommands; ++c) {
      if (!run[c]) continue;
      for (int k = 0; k < n_tcti; ++k) {
        const int i = (int)((r + k) % n_tcti);
        const double us = Run(ctx[i], argv[first + i], c);
        samples[n++] = (Sample){i, c, us};
        totals[i * kCommands + c] += us;
      }
    }
  }
  for (size_t s = 0; s < n; ++s) {
    printf("%d %s %.3f\n", samples[s].tcti, kNames[samples[s].command], samples[s].micros);
  }
  for (int i = 0; i < n_tcti; ++i) {
    for (int c = 0; c < kCommands; ++c) {
      if (run[c])
        printf("# total %d %s %ld %.3f\n", i, kNames[c], rounds, totals[i * kCommands + c]);
    }
    Esys_Finalize(&ctx[i]);
    Tss2_TctiLdr_Finalize(&tcti[i]);
  }
  free(samples);
  free(totals);
  free(tcti);
  free(ctx);
  return ferror(stdout) ? 1 : 0;
}
