#include "acpi/tpm_tables.h"

#include <algorithm>

namespace vtpm::acpi {

namespace {

// ACPI tables are little-endian.
void Le16(Bytes& b, uint16_t v) {
  b.push_back(static_cast<uint8_t>(v));
  b.push_back(static_cast<uint8_t>(v >> 8));
}
void Le32(Bytes& b, uint32_t v) {
  for (int i = 0; i < 4; ++i) b.push_back(static_cast<uint8_t>(v >> (8 * i)));
}
void Le64(Bytes& b, uint64_t v) {
  for (int i = 0; i < 8; ++i) b.push_back(static_cast<uint8_t>(v >> (8 * i)));
}
void Padded(Bytes& b, const std::string& s, size_t n) {
  for (size_t i = 0; i < n; ++i) b.push_back(i < s.size() ? static_cast<uint8_t>(s[i]) : ' ');
}

Bytes Header(const char* signature, uint8_t revision, const TableIds& ids) {
  Bytes b;
  b.reserve(64);
  for (int i = 0; i < 4; ++i) b.push_back(static_cast<uint8_t>(signature[i]));
  Le32(b, 0);  // length, patched
  b.push_back(revision);
  b.push_back(0);  // checksum, patched
  Padded(b, ids.oem_id, 6);
  Padded(b, ids.oem_table_id, 8);
  Le32(b, ids.oem_revision);
  Padded(b, ids.creator_id, 4);
  Le32(b, ids.creator_revision);
  return b;
}

void Finish(Bytes& t) {
  const auto len = static_cast<uint32_t>(t.size());
  for (int i = 0; i < 4; ++i) t[4 + static_cast<size_t>(i)] = static_cast<uint8_t>(len >> (8 * i));
  FixChecksum(t);
}

// --- AML encoding (ACPI 6.x §20.2) ---

// PkgLength covering |body_len| bytes plus the PkgLength encoding itself.
Bytes PkgLength(size_t body_len) {
  Bytes out;
  if (body_len + 1 < 0x40) {
    out.push_back(static_cast<uint8_t>(body_len + 1));
    return out;
  }
  for (size_t n = 2; n <= 4; ++n) {
    const size_t total = body_len + n;
    if (total < (size_t{1} << (4 + 8 * (n - 1)))) {
      out.push_back(static_cast<uint8_t>(((n - 1) << 6) | (total & 0x0F)));
      for (size_t i = 1; i < n; ++i)
        out.push_back(static_cast<uint8_t>(total >> (4 + 8 * (i - 1))));
      return out;
    }
  }
  return out;  // unreachable for our sizes (< 256 MiB)
}

Bytes WithPkg(uint8_t op, const Bytes& body, bool ext = false) {
  Bytes out;
  if (ext) out.push_back(0x5B);
  out.push_back(op);
  Bytes pl = PkgLength(body.size());
  out.insert(out.end(), pl.begin(), pl.end());
  out.insert(out.end(), body.begin(), body.end());
  return out;
}

Bytes NameSeg(const std::string& name) {
  Bytes b;
  for (size_t i = 0; i < 4; ++i) b.push_back(i < name.size() ? static_cast<uint8_t>(name[i]) : '_');
  return b;
}

Bytes Integer(uint64_t v) {
  Bytes b;
  if (v == 0) return {0x00};
  if (v == 1) return {0x01};
  if (v <= 0xFF) return {0x0A, static_cast<uint8_t>(v)};
  if (v <= 0xFFFF) {
    b.push_back(0x0B);
    Le16(b, static_cast<uint16_t>(v));
  } else if (v <= 0xFFFFFFFF) {
    b.push_back(0x0C);
    Le32(b, static_cast<uint32_t>(v));
  } else {
    b.push_back(0x0E);
    Le64(b, v);
  }
  return b;
}

Bytes String(const std::string& s) {
  Bytes b = {0x0D};
  b.insert(b.end(), s.begin(), s.end());
  b.push_back(0);
  return b;
}

Bytes Buffer(const Bytes& data) {
  Bytes body = Integer(data.size());
  body.insert(body.end(), data.begin(), data.end());
  return WithPkg(0x11, body);
}

Bytes Name(const std::string& seg, const Bytes& value) {
  Bytes b = {0x08};
  Bytes n = NameSeg(seg);
  b.insert(b.end(), n.begin(), n.end());
  b.insert(b.end(), value.begin(), value.end());
  return b;
}

// EisaId("PNP0C31"): 3 compressed letters + 4 hex digits, as a DWordConst.
Bytes EisaId(const std::string& id) {
  auto hex = [](char c) -> uint32_t {
    return static_cast<uint32_t>(c <= '9' ? c - '0' : c - 'A' + 10);
  };
  const uint32_t v = ((static_cast<uint32_t>(id[0] - 0x40) & 0x1F) << 10) |
                     ((static_cast<uint32_t>(id[1] - 0x40) & 0x1F) << 5) |
                     (static_cast<uint32_t>(id[2] - 0x40) & 0x1F);
  const uint32_t eisa = ((v >> 8) & 0xFF) | ((v & 0xFF) << 8) | (hex(id[3]) << 20) |
                        (hex(id[4]) << 16) | (hex(id[5]) << 28) | (hex(id[6]) << 24);
  Bytes b = {0x0C};
  Le32(b, eisa);
  return b;
}

Bytes Unicode(const std::string& ascii) {
  Bytes data;
  for (char c : ascii) Le16(data, static_cast<uint16_t>(static_cast<unsigned char>(c)));
  Le16(data, 0);
  return Buffer(data);
}

bool ValidNameSeg(const std::string& s) {
  if (s.empty() || s.size() > 4 || (s[0] >= '0' && s[0] <= '9')) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
  });
}

}  // namespace

void FixChecksum(Bytes& table) {
  if (table.size() < 10) return;
  table[9] = 0;
  uint8_t sum = 0;
  for (uint8_t b : table) sum = static_cast<uint8_t>(sum + b);
  table[9] = static_cast<uint8_t>(0x100 - sum);
}

Bytes BuildTpm2Table(const Tpm2TableConfig& c) {
  Bytes t = Header("TPM2", 4, c.ids);
  Le16(t, c.platform_class);
  Le16(t, 0);  // reserved
  Le64(t, c.control_area);
  Le32(t, static_cast<uint32_t>(c.start_method));
  t.insert(t.end(), 12, 0);  // start method specific parameters (none for 6 and 7)
  if (c.log_fields) {
    Le32(t, c.log_area_minimum_length);
    Le64(t, c.log_area_start_address);
  }
  Finish(t);
  return t;
}

Bytes BuildTcpaTable(const TcpaTableConfig& c) {
  Bytes t = Header("TCPA", 2, c.ids);
  Le16(t, 0);  // platform class: client
  Le32(t, c.log_area_minimum_length);
  Le64(t, c.log_area_start_address);
  Finish(t);
  return t;
}

Result<Bytes> BuildTpmDeviceAml(const TpmDeviceConfig& c) {
  if (!ValidNameSeg(c.name)) {
    return Fail(Errc::kInvalidArgument,
                "the TPM's ACPI name must be 1-4 characters of A-Z, 0-9, _ (not starting with a "
                "digit)");
  }
  if (c.base > 0xFFFFFFFF || c.base + c.size > 0x100000000ull || c.size == 0) {
    return Fail(Errc::kInvalidArgument, "the TPM range must lie below 4 GiB (Memory32Fixed)");
  }
  Bytes res;
  auto mem32 = [&](uint32_t base, uint32_t len) {
    res.insert(res.end(), {0x86, 0x09, 0x00, 0x01});  // Memory32Fixed, ReadWrite
    Le32(res, base);
    Le32(res, len);
  };
  mem32(static_cast<uint32_t>(c.base), c.size);
  for (auto [b, l] : c.extra_ranges) mem32(b, l);
  if (c.irq) {
    // Extended Interrupt Descriptor: consumer, level, active-high, exclusive; one interrupt.
    res.insert(res.end(), {0x89, 0x06, 0x00, 0x01, 0x01});
    Le32(res, *c.irq);
  }
  res.insert(res.end(), {0x79, 0x00});  // End tag (checksum 0 = "not computed")

  Bytes body = NameSeg(c.name);
  auto add = [&](const Bytes& b) { body.insert(body.end(), b.begin(), b.end()); };
  if (c.tpm2) {
    add(Name("_HID", String("MSFT0101")));
    add(Name("_STR", Unicode("TPM 2.0 Device")));
  } else {
    add(Name("_HID", EisaId("PNP0C31")));
    add(Name("_STR", Unicode("TPM 1.2 Device")));
  }
  add(Name("_UID", Integer(c.uid)));
  add(Name("_STA", Integer(0x0F)));
  add(Name("_CRS", Buffer(res)));
  return WithPkg(0x82, body, /*ext=*/true);
}

Result<Bytes> BuildTpmSsdt(const TpmDeviceConfig& config, const TableIds& ids) {
  VTPM_ASSIGN_OR_RETURN(Bytes dev, BuildTpmDeviceAml(config));
  Bytes scope_body = {0x5C, '_', 'S', 'B', '_'};  // \_SB_
  scope_body.insert(scope_body.end(), dev.begin(), dev.end());
  Bytes t = Header("SSDT", 2, ids);
  Bytes scope = WithPkg(0x10, scope_body);
  t.insert(t.end(), scope.begin(), scope.end());
  Finish(t);
  return t;
}

}  // namespace vtpm::acpi
