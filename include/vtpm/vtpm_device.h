/* C ABI for VMMs written in C (or anything with a C FFI): the TPM device models (TIS/PTP FIFO,
 * CRB), their backends (in-process engine, swtpm socket client) and the ACPI builders.
 *
 * Threading: vtpm_device_read/write may be called from any vCPU thread at once (the device has
 * its own lock) and never wait for a TPM command; the IRQ callback is called with the device lock
 * held, from a vCPU thread or the backend's worker thread, and must not call back into the
 * device. Objects are not reference counted: free devices before the backend they use.
 *
 * Errors: functions returning int give 0 on success or a negative errno value, and write a
 * sentence into |err| (if non-NULL, truncated to |err_len|).
 */
#ifndef VTPM_VTPM_DEVICE_H_
#define VTPM_VTPM_DEVICE_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct vtpm_backend vtpm_backend;
typedef struct vtpm_device vtpm_device;

#define VTPM_TPM_2_0 2
#define VTPM_TPM_1_2 1

/* ---- Backends ------------------------------------------------------------------------------ */

typedef struct vtpm_in_process_config {
  const char* state_dir; /* existing directory for the TPM state (swtpm's file format) */
  int tpm_version;       /* VTPM_TPM_2_0 or VTPM_TPM_1_2 */
  uint32_t buffer_size;  /* 0: default (4096); CRB: 3968 */
} vtpm_in_process_config;

/* The TPM engine on a worker thread of this process; one per process. */
int vtpm_backend_new_in_process(const vtpm_in_process_config* config, vtpm_backend** out, char* err,
                                size_t err_len);

typedef struct vtpm_swtpm_socket_config {
  const char* ctrl_path; /* swtpm/vtpm control socket (required) */
  const char* data_path; /* data socket, or NULL: socketpair passed with CMD_SET_DATAFD */
  int tpm_version;
  uint32_t buffer_size;   /* 0: leave the TPM's */
  int no_init;            /* non-zero: do not send CMD_INIT (already started) */
  uint32_t io_timeout_ms; /* 0: 5 minutes */
} vtpm_swtpm_socket_config;

int vtpm_backend_new_swtpm_socket(const vtpm_swtpm_socket_config* config, vtpm_backend** out,
                                  char* err, size_t err_len);
void vtpm_backend_free(vtpm_backend* backend);

/* ---- Devices ------------------------------------------------------------------------------- */

/* Called when the device's interrupt line changes (level: 1 asserted, 0 deasserted). */
typedef void (*vtpm_irq_fn)(void* opaque, int level);

typedef struct vtpm_tis_config {
  int tpm_version;    /* VTPM_TPM_2_0 (PTP FIFO) or VTPM_TPM_1_2 (TIS 1.3) */
  uint8_t irq_vector; /* what TPM_INT_VECTOR reads; 0 = no IRQ declared */
  uint16_t vendor_id; /* 0: 0x1014 */
  uint16_t device_id; /* 0 with vendor_id 0: 0x0001 */
  uint8_t revision_id;
} vtpm_tis_config;

/* A TIS/PTP FIFO device: 0x5000 bytes (5 localities), normally at 0xFED40000. */
int vtpm_tis_new(const vtpm_tis_config* config, vtpm_backend* backend, vtpm_irq_fn irq,
                 void* irq_opaque, vtpm_device** out, char* err, size_t err_len);

typedef struct vtpm_crb_config {
  uint8_t localities; /* 1 or 5 (0: 1) */
  uint64_t base_gpa;  /* 0: 0xFED40000 */
  /* Optional data buffer in guest RAM (reserved in E820, listed in _CRS): */
  uint64_t ext_buffer_gpa;
  void* ext_buffer_host; /* the VMM's mapping; must outlive the device */
  size_t ext_buffer_size;
} vtpm_crb_config;

/* A CRB device: 0x1000 bytes per locality. */
int vtpm_crb_new(const vtpm_crb_config* config, vtpm_backend* backend, vtpm_irq_fn irq,
                 void* irq_opaque, vtpm_device** out, char* err, size_t err_len);

/* MMIO: |offset| from the device base, any length (1/2/4/8 from KVM), little-endian bytes. */
void vtpm_device_read(vtpm_device* dev, uint64_t offset, void* data, size_t len);
void vtpm_device_write(vtpm_device* dev, uint64_t offset, const void* data, size_t len);
uint64_t vtpm_device_size(const vtpm_device* dev);
void vtpm_device_reset(vtpm_device* dev);
/* Non-zero while a command executes (save is refused then). */
int vtpm_device_busy(vtpm_device* dev);
uint64_t vtpm_device_bad_accesses(vtpm_device* dev);
/* Saves the register state into |buf|. *len receives the size; -ENOSPC if |cap| is too small
 * (call again with a buffer of *len bytes), -EBUSY mid-command. */
int vtpm_device_save(vtpm_device* dev, uint8_t* buf, size_t cap, size_t* len, char* err,
                     size_t err_len);
int vtpm_device_restore(vtpm_device* dev, const uint8_t* buf, size_t len, char* err,
                        size_t err_len);
void vtpm_device_free(vtpm_device* dev);

/* ---- ACPI ---------------------------------------------------------------------------------- */
/* Builders return the table's size and write it when |cap| is large enough (else nothing);
 * 0 means the configuration was invalid. */

#define VTPM_START_METHOD_TIS 6
#define VTPM_START_METHOD_CRB 7

typedef struct vtpm_tpm2_table_config {
  uint32_t start_method;   /* VTPM_START_METHOD_* */
  uint64_t control_area;   /* CRB: base + 0x40; TIS: 0 */
  uint16_t platform_class; /* 0 client */
  int no_log_fields;       /* non-zero: 64-byte table without LAML/LASA */
  uint32_t log_area_minimum_length;
  uint64_t log_area_start_address;
} vtpm_tpm2_table_config;

size_t vtpm_acpi_tpm2_table(const vtpm_tpm2_table_config* config, uint8_t* out, size_t cap);
size_t vtpm_acpi_tcpa_table(uint32_t log_area_minimum_length, uint64_t log_area_start_address,
                            uint8_t* out, size_t cap);

typedef struct vtpm_tpm_device_aml_config {
  const char* name; /* NULL: "TPM" */
  int tpm_version;  /* VTPM_TPM_2_0: MSFT0101, VTPM_TPM_1_2: PNP0C31 */
  uint64_t base;    /* 0: 0xFED40000 */
  uint32_t size;    /* TIS 0x5000, CRB 0x1000 */
  uint32_t uid;
  int irq; /* < 0: none */
} vtpm_tpm_device_aml_config;

/* Device(TPM) {...} for the VMM's DSDT (inside Scope(\_SB)), or a whole SSDT. */
size_t vtpm_acpi_tpm_device_aml(const vtpm_tpm_device_aml_config* config, uint8_t* out, size_t cap);
size_t vtpm_acpi_tpm_ssdt(const vtpm_tpm_device_aml_config* config, uint8_t* out, size_t cap);

#ifdef __cplusplus
}
#endif

#endif /* VTPM_VTPM_DEVICE_H_ */
