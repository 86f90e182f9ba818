// Field readers and writers for the saved-state codecs (tis_state.h, crb_state.h).
//
// StateReader reads a payload field by field, each read checking its field (range, allowed
// bits, length bound). The first failure sticks: later reads return 0 or nothing and consume
// nothing, and Finish() reports that failure, or bytes left over, as Errc::kCorrupt naming the
// field. So a codec reads like the format it decodes, and no read goes past the payload.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "base/bytes.h"
#include "base/result.h"

namespace vtpm::device {

class StateReader {
 public:
  // |what| names the state in messages ("TIS device state").
  StateReader(std::string_view what, ByteSpan payload) : what_(what), in_(payload) {}

  uint32_t U32(std::string_view field);
  // A value of at most |max|.
  uint8_t U8Max(std::string_view field, uint8_t max);
  uint32_t U32Max(std::string_view field, uint32_t max);
  // 0 or 1.
  bool Flag(std::string_view field) { return U8Max(field, 1) != 0; }
  // A locality below |count|, or kNoLocality.
  uint8_t Locality(std::string_view field, uint8_t count);
  // A bit field with no bits outside |allowed|.
  uint8_t Bits8(std::string_view field, uint8_t allowed);
  uint32_t Bits32(std::string_view field, uint32_t allowed);
  // A u32 length of at most |max|, then that many bytes.
  Bytes Sized(std::string_view field, uint32_t max);
  // A check across fields: fails with |problem| unless |ok|.
  void Check(bool ok, std::string_view problem);

  // The first failure, or an error if bytes are left; Ok() when the payload was read exactly.
  Status Finish() const;

 private:
  std::optional<uint32_t> Read(std::string_view field, size_t bytes);
  uint32_t AtMost(std::string_view field, size_t bytes, uint32_t max);
  uint32_t Bits(std::string_view field, size_t bytes, uint32_t allowed);
  void Reject(std::string message);

  std::string_view what_;
  ByteReader in_;
  std::optional<std::string> error_;
};

// Two booleans as the flag byte of a locality record (bit 0, bit 1).
inline uint8_t PackFlags(bool bit0, bool bit1) {
  return static_cast<uint8_t>((bit0 ? 1 : 0) | (bit1 ? 2 : 0));
}

// A u32 length, then |bytes|.
void AppendSized(ByteWriter& w, ByteSpan bytes);

}  // namespace vtpm::device
