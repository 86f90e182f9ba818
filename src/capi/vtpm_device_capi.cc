// The C ABI of include/vtpm/vtpm_device.h over the C++ device, backend and ACPI layers.
#include <cerrno>
#include <cstring>
#include <memory>

#include "acpi/tpm_tables.h"
#include "backend/in_process_backend.h"
#include "backend/swtpm_socket_backend.h"
#include "device/crb.h"
#include "device/tis.h"
#include "state/dir_store.h"
#include "vtpm/vtpm_device.h"

struct vtpm_backend {
  std::unique_ptr<vtpm::device::TpmBackend> impl;
};

namespace {

class CallbackIrq final : public vtpm::device::IrqLine {
 public:
  CallbackIrq(vtpm_irq_fn fn, void* opaque) : fn_(fn), opaque_(opaque) {}
  void SetLevel(bool asserted) override {
    if (fn_ != nullptr) fn_(opaque_, asserted ? 1 : 0);
  }

 private:
  vtpm_irq_fn fn_;
  void* opaque_;
};

}  // namespace

struct vtpm_device {
  std::unique_ptr<CallbackIrq> irq;
  std::unique_ptr<vtpm::device::Tis> tis;
  std::unique_ptr<vtpm::device::Crb> crb;
  vtpm::device::BusDevice* bus() {
    return tis ? static_cast<vtpm::device::BusDevice*>(tis.get()) : crb.get();
  }
};

namespace {

int Err(const vtpm::Error& e, char* err, size_t err_len) {
  if (err != nullptr && err_len > 0) {
    std::strncpy(err, e.message.c_str(), err_len - 1);
    err[err_len - 1] = '\0';
  }
  switch (e.code) {
    case vtpm::Errc::kInvalidArgument:
      return -EINVAL;
    case vtpm::Errc::kNotFound:
      return -ENOENT;
    case vtpm::Errc::kAlreadyExists:
      return -EEXIST;
    case vtpm::Errc::kBusy:
    case vtpm::Errc::kFailedPrecondition:
      return -EBUSY;
    case vtpm::Errc::kUnsupported:
      return -ENOTSUP;
    default:
      return -EIO;
  }
}

int Invalid(const char* what, char* err, size_t err_len) {
  return Err(vtpm::Error{vtpm::Errc::kInvalidArgument, what}, err, err_len);
}

size_t Emit(const vtpm::Bytes& b, uint8_t* out, size_t cap) {
  if (out != nullptr && cap >= b.size()) std::memcpy(out, b.data(), b.size());
  return b.size();
}

}  // namespace

extern "C" {

int vtpm_backend_new_in_process(const vtpm_in_process_config* config, vtpm_backend** out, char* err,
                                size_t err_len) {
  if (config == nullptr || out == nullptr || config->state_dir == nullptr) {
    return Invalid("config, out and state_dir are required", err, err_len);
  }
  const bool tpm2 = config->tpm_version != VTPM_TPM_1_2;
  vtpm::state::DirStoreOptions so;
  so.directory = config->state_dir;
  so.tpm_version = tpm2 ? vtpm::state::TpmVersion::kTpm20 : vtpm::state::TpmVersion::kTpm12;
  auto store = vtpm::state::DirStore::Open(so, vtpm::NullLogger());
  if (!store) return Err(store.error(), err, err_len);
  vtpm::backend::InProcessOptions o;
  o.engine.version = tpm2 ? vtpm::engine::TpmVersion::kTpm20 : vtpm::engine::TpmVersion::kTpm12;
  o.buffer_size = config->buffer_size;
  auto b = vtpm::backend::InProcessBackend::Create(std::move(*store), o, vtpm::NullLogger());
  if (!b) return Err(b.error(), err, err_len);
  *out = new vtpm_backend{std::move(*b)};
  return 0;
}

int vtpm_backend_new_swtpm_socket(const vtpm_swtpm_socket_config* config, vtpm_backend** out,
                                  char* err, size_t err_len) {
  if (config == nullptr || out == nullptr || config->ctrl_path == nullptr) {
    return Invalid("config, out and ctrl_path are required", err, err_len);
  }
  vtpm::backend::SwtpmSocketOptions o;
  o.ctrl_path = config->ctrl_path;
  if (config->data_path != nullptr) o.data_path = config->data_path;
  o.tpm2 = config->tpm_version != VTPM_TPM_1_2;
  o.buffer_size = config->buffer_size;
  o.init = config->no_init == 0;
  if (config->io_timeout_ms != 0) o.io_timeout = std::chrono::milliseconds(config->io_timeout_ms);
  auto b = vtpm::backend::SwtpmSocketBackend::Create(o, vtpm::NullLogger());
  if (!b) return Err(b.error(), err, err_len);
  *out = new vtpm_backend{std::move(*b)};
  return 0;
}

void vtpm_backend_free(vtpm_backend* backend) { delete backend; }

int vtpm_tis_new(const vtpm_tis_config* config, vtpm_backend* backend, vtpm_irq_fn irq,
                 void* irq_opaque, vtpm_device** out, char* err, size_t err_len) {
  if (config == nullptr || backend == nullptr || out == nullptr) {
    return Invalid("config, backend and out are required", err, err_len);
  }
  vtpm::device::TisConfig c;
  c.family = config->tpm_version == VTPM_TPM_1_2 ? vtpm::device::TpmFamily::kTpm12
                                                 : vtpm::device::TpmFamily::kTpm20;
  c.irq_vector = config->irq_vector;
  if (config->vendor_id != 0) {
    c.vendor_id = config->vendor_id;
    c.device_id = config->device_id;
    c.revision_id = config->revision_id;
  }
  auto dev = std::make_unique<vtpm_device>();
  dev->irq = std::make_unique<CallbackIrq>(irq, irq_opaque);
  auto t = vtpm::device::Tis::Create(
      c, vtpm::device::TisDeps{backend->impl.get(), dev->irq.get(), vtpm::NullLogger()});
  if (!t) return Err(t.error(), err, err_len);
  dev->tis = std::move(*t);
  *out = dev.release();
  return 0;
}

int vtpm_crb_new(const vtpm_crb_config* config, vtpm_backend* backend, vtpm_irq_fn irq,
                 void* irq_opaque, vtpm_device** out, char* err, size_t err_len) {
  if (config == nullptr || backend == nullptr || out == nullptr) {
    return Invalid("config, backend and out are required", err, err_len);
  }
  vtpm::device::CrbConfig c;
  c.localities = config->localities == 0 ? 1 : config->localities;
  if (config->base_gpa != 0) c.base_gpa = config->base_gpa;
  if (config->ext_buffer_host != nullptr) {
    c.external_buffer = vtpm::device::CrbExternalBuffer{
        config->ext_buffer_gpa, std::span<uint8_t>(static_cast<uint8_t*>(config->ext_buffer_host),
                                                   config->ext_buffer_size)};
  }
  auto dev = std::make_unique<vtpm_device>();
  dev->irq = std::make_unique<CallbackIrq>(irq, irq_opaque);
  auto d = vtpm::device::Crb::Create(
      c, vtpm::device::CrbDeps{backend->impl.get(), dev->irq.get(), vtpm::NullLogger()});
  if (!d) return Err(d.error(), err, err_len);
  dev->crb = std::move(*d);
  *out = dev.release();
  return 0;
}

void vtpm_device_read(vtpm_device* dev, uint64_t offset, void* data, size_t len) {
  dev->bus()->Read({offset, offset, 0}, std::span<uint8_t>(static_cast<uint8_t*>(data), len));
}

void vtpm_device_write(vtpm_device* dev, uint64_t offset, const void* data, size_t len) {
  dev->bus()->Write({offset, offset, 0},
                    std::span<const uint8_t>(static_cast<const uint8_t*>(data), len));
}

uint64_t vtpm_device_size(const vtpm_device* dev) {
  return dev->tis ? dev->tis->size() : dev->crb->size();
}

void vtpm_device_reset(vtpm_device* dev) {
  if (dev->tis) dev->tis->Reset();
  if (dev->crb) dev->crb->Reset();
}

int vtpm_device_busy(vtpm_device* dev) {
  return (dev->tis ? dev->tis->Busy() : dev->crb->Busy()) ? 1 : 0;
}

uint64_t vtpm_device_bad_accesses(vtpm_device* dev) {
  return dev->tis ? dev->tis->stats().bad_accesses : dev->crb->stats().bad_accesses;
}

int vtpm_device_save(vtpm_device* dev, uint8_t* buf, size_t cap, size_t* len, char* err,
                     size_t err_len) {
  auto s = dev->tis ? dev->tis->SaveState() : dev->crb->SaveState();
  if (!s) return Err(s.error(), err, err_len);
  if (len != nullptr) *len = s->size();
  if (buf == nullptr || cap < s->size()) return -ENOSPC;
  std::memcpy(buf, s->data(), s->size());
  return 0;
}

int vtpm_device_restore(vtpm_device* dev, const uint8_t* buf, size_t len, char* err,
                        size_t err_len) {
  if (buf == nullptr && len != 0) return Invalid("buf is NULL", err, err_len);
  vtpm::ByteSpan blob(buf, len);
  auto st = dev->tis ? dev->tis->RestoreState(blob) : dev->crb->RestoreState(blob);
  return st ? 0 : Err(st.error(), err, err_len);
}

void vtpm_device_free(vtpm_device* dev) { delete dev; }

size_t vtpm_acpi_tpm2_table(const vtpm_tpm2_table_config* config, uint8_t* out, size_t cap) {
  if (config == nullptr || (config->start_method != VTPM_START_METHOD_TIS &&
                            config->start_method != VTPM_START_METHOD_CRB)) {
    return 0;
  }
  vtpm::acpi::Tpm2TableConfig c;
  c.start_method = static_cast<vtpm::acpi::StartMethod>(config->start_method);
  c.control_area = config->control_area;
  c.platform_class = config->platform_class;
  c.log_fields = config->no_log_fields == 0;
  c.log_area_minimum_length = config->log_area_minimum_length;
  c.log_area_start_address = config->log_area_start_address;
  return Emit(vtpm::acpi::BuildTpm2Table(c), out, cap);
}

size_t vtpm_acpi_tcpa_table(uint32_t log_area_minimum_length, uint64_t log_area_start_address,
                            uint8_t* out, size_t cap) {
  vtpm::acpi::TcpaTableConfig c;
  c.log_area_minimum_length = log_area_minimum_length;
  c.log_area_start_address = log_area_start_address;
  return Emit(vtpm::acpi::BuildTcpaTable(c), out, cap);
}

namespace {
vtpm::acpi::TpmDeviceConfig DeviceConfig(const vtpm_tpm_device_aml_config* config) {
  vtpm::acpi::TpmDeviceConfig c;
  if (config->name != nullptr) c.name = config->name;
  c.tpm2 = config->tpm_version != VTPM_TPM_1_2;
  if (config->base != 0) c.base = config->base;
  if (config->size != 0) c.size = config->size;
  c.uid = config->uid;
  if (config->irq >= 0) c.irq = static_cast<uint32_t>(config->irq);
  return c;
}
}  // namespace

size_t vtpm_acpi_tpm_device_aml(const vtpm_tpm_device_aml_config* config, uint8_t* out,
                                size_t cap) {
  if (config == nullptr) return 0;
  auto b = vtpm::acpi::BuildTpmDeviceAml(DeviceConfig(config));
  return b ? Emit(*b, out, cap) : 0;
}

size_t vtpm_acpi_tpm_ssdt(const vtpm_tpm_device_aml_config* config, uint8_t* out, size_t cap) {
  if (config == nullptr) return 0;
  auto b = vtpm::acpi::BuildTpmSsdt(DeviceConfig(config));
  return b ? Emit(*b, out, cap) : 0;
}

}  // extern "C"
