// Helpers shared by the register-based models: splitting an access of any width and alignment
// into per-register pieces, per-instance bad-access accounting with rate-limited logging, and
// the versioned envelope for saved device state.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>

#include "base/bytes.h"
#include "base/crc32.h"
#include "base/log.h"
#include "base/result.h"

namespace vtpm::device {

// A register inside one locality window: bytes [offset, offset + size).
struct RegDef {
  uint16_t offset;
  uint16_t size;
  int id;
};

// One piece of an access: |count| bytes at byte |byte_offset| of register |reg| (nullptr: bytes
// of no register) in locality window |window|; |pos| is where the piece starts in the access.
struct AccessPiece {
  uint32_t window;
  const RegDef* reg;
  uint32_t byte_offset;  // within the register, or within the window for holes
  uint32_t count;
  size_t pos;
};

// Splits [offset, offset + length) of a device made of |windows| windows of |window_size| bytes,
// each laid out by |regs| (sorted by offset, non-overlapping), into pieces, in address order.
// Bytes past the last window are reported with window == |windows| (the caller treats them as
// outside the device). Never allocates.
void SplitAccess(uint64_t offset, size_t length, uint32_t window_size, uint32_t windows,
                 std::span<const RegDef> regs, const std::function<void(const AccessPiece&)>& fn);

// Little-endian byte lanes of a register value (lanes 0..7; others read 0).
inline uint8_t LaneByte(uint64_t value, uint32_t lane) {
  return lane < 8 ? static_cast<uint8_t>(value >> (8 * lane)) : uint8_t{0};
}

// Fills |out| with lanes [first_lane, first_lane + out.size()) of |value|: a read of part of a
// register.
void ReadLanes(uint64_t value, uint32_t first_lane, std::span<uint8_t> out);

// A write of part of a register: the bytes written, in their lanes, and which lanes they cover.
struct LaneWrite {
  uint64_t value = 0;
  uint64_t mask = 0;
};
LaneWrite WriteLanes(uint32_t first_lane, std::span<const uint8_t> in);

// Counts guest accesses the model rejected (bad offset/width, writes to read-only registers,
// protocol violations) and logs them: the first 10, then the 2^k-th, so a hostile guest cannot
// flood the log. Per instance; not thread-safe (used under the device lock).
class BadAccessCounter {
 public:
  BadAccessCounter(Logger log, std::string label)
      : log_(std::move(log)), label_(std::move(label)) {}
  void Record(std::string_view what, uint64_t offset);
  uint64_t count() const { return count_; }
  void set_log(Logger log) { log_ = std::move(log); }

 private:
  Logger log_;
  std::string label_;
  uint64_t count_ = 0;
};

// Saved device state envelope: magic(8) version(u32) length(u32) payload crc32(u32), big-endian.
// Capped at |kMaxStateSize|; everything in it is validated by the model that reads it.
inline constexpr size_t kMaxStateSize = 64 * 1024;
Bytes WrapState(std::string_view magic8, uint32_t version, ByteSpan payload);
// Returns the payload after checking magic, version (must equal |version|), size cap and CRC.
Result<ByteSpan> UnwrapState(std::string_view magic8, uint32_t version, ByteSpan blob);

// The command/response buffer a model offers: the smallest of |model_limit| and the backend's
// buffer size, refused below 1 KiB (no TPM 2.0 command set fits in less).
Result<uint32_t> NegotiateBufferSize(uint32_t model_limit, uint32_t backend_size);

}  // namespace vtpm::device
