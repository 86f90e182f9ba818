// MmioBus: the guest's view of a device's register range (read/write of 1..8 bytes at an offset).
// Guest-driver emulations (guest_drivers.h) run over it, so the same register sequences drive
// our models in-process (DeviceBus) and QEMU's through qtest (tests/unit/device/qtest_bus.h).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "device/bus_device.h"

namespace vtpm::testing {

class MmioBus {
 public:
  virtual ~MmioBus() = default;
  virtual uint64_t Read(uint64_t offset, unsigned size) = 0;
  virtual void Write(uint64_t offset, unsigned size, uint64_t value) = 0;
  uint8_t Read8(uint64_t o) { return static_cast<uint8_t>(Read(o, 1)); }
  uint32_t Read32(uint64_t o) { return static_cast<uint32_t>(Read(o, 4)); }
  void Write8(uint64_t o, uint8_t v) { Write(o, 1, v); }
  void Write32(uint64_t o, uint32_t v) { Write(o, 4, v); }
};

// Little-endian byte lanes onto a BusDevice.
class DeviceBus : public MmioBus {
 public:
  explicit DeviceBus(device::BusDevice& dev) : dev_(dev) {}
  uint64_t Read(uint64_t offset, unsigned size) override {
    uint8_t b[8] = {};
    dev_.Read({offset, offset, 0}, std::span<uint8_t>(b, size));
    uint64_t v = 0;
    for (unsigned i = 0; i < size; ++i) v |= uint64_t{b[i]} << (8 * i);
    return v;
  }
  void Write(uint64_t offset, unsigned size, uint64_t value) override {
    uint8_t b[8];
    for (unsigned i = 0; i < size; ++i) b[i] = static_cast<uint8_t>(value >> (8 * i));
    dev_.Write({offset, offset, 0}, std::span<const uint8_t>(b, size));
  }

 private:
  device::BusDevice& dev_;
};

// Records every access (and the value read) of another bus: the trace the differential tests
// compare between our models and QEMU's.
class TracingBus : public MmioBus {
 public:
  struct Entry {
    bool write;
    uint64_t offset;
    unsigned size;
    uint64_t value;
    bool operator==(const Entry&) const = default;
  };
  explicit TracingBus(MmioBus& inner) : inner_(inner) {}
  uint64_t Read(uint64_t offset, unsigned size) override {
    uint64_t v = inner_.Read(offset, size);
    trace.push_back({false, offset, size, v});
    return v;
  }
  void Write(uint64_t offset, unsigned size, uint64_t value) override {
    inner_.Write(offset, size, value);
    trace.push_back({true, offset, size, value});
  }
  std::vector<Entry> trace;

 private:
  MmioBus& inner_;
};

}  // namespace vtpm::testing
