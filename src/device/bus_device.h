// The interfaces between a VMM and a device model (see docs/ARCHITECTURE.md "Device models").
//
// A BusDevice owns a range of guest-physical (or port) addresses; the VMM's bus hands it each
// access as an offset from the start of that range. Accesses come straight from the guest: any
// offset, any length, any alignment. Implementations never throw, abort, block or allocate
// without bound on them; what they cannot make sense of is counted and ignored (reads of
// nothing yield the model's "no device" byte).
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

namespace vtpm::device {

struct BusAccess {
  uint64_t offset = 0;   // from the start of this device's range
  uint64_t address = 0;  // absolute GPA or port, for logs only
  uint32_t vcpu = 0;     // for logs only
};

class BusDevice {
 public:
  virtual ~BusDevice() = default;
  // Fills |data| (its size is the access width: 1, 2, 4 or 8 for MMIO exits, but any size is
  // handled). Thread-safe: several vCPUs may call at once.
  virtual void Read(const BusAccess& access, std::span<uint8_t> data) = 0;
  virtual void Write(const BusAccess& access, std::span<const uint8_t> data) = 0;
  // Size of the range the device decodes, in bytes.
  virtual uint64_t size() const = 0;
  virtual std::string_view DebugLabel() const = 0;
};

// An interrupt line as the device sees it: logically asserted or not. Polarity and trigger
// mode are the VMM's business (what it declares in ACPI and how it drives KVM_IRQ_LINE).
// Called with the device's lock held; must not call back into the device.
class IrqLine {
 public:
  virtual ~IrqLine() = default;
  virtual void SetLevel(bool asserted) = 0;
};

}  // namespace vtpm::device
