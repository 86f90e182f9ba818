#include "device/mmio.h"

#include <algorithm>
#include <bit>

namespace vtpm::device {

void SplitAccess(uint64_t offset, size_t length, uint32_t window_size, uint32_t windows,
                 std::span<const RegDef> regs, const std::function<void(const AccessPiece&)>& fn) {
  const uint64_t device_size = uint64_t{window_size} * windows;
  size_t pos = 0;
  while (pos < length) {
    // Overflow-safe: offset + pos may exceed 2^64 only if the VMM passes nonsense; clamp.
    uint64_t addr = offset + pos;
    if (addr < offset || addr >= device_size) {
      fn(AccessPiece{windows, nullptr, 0, static_cast<uint32_t>(length - pos), pos});
      return;
    }
    const auto window = static_cast<uint32_t>(addr / window_size);
    const auto in_window = static_cast<uint32_t>(addr % window_size);
    const size_t left_in_window = window_size - in_window;
    const size_t want = std::min(length - pos, left_in_window);
    // Find the first register ending after in_window.
    const RegDef* reg = nullptr;
    for (const RegDef& r : regs) {
      if (uint32_t{r.offset} + r.size > in_window) {
        reg = &r;
        break;
      }
    }
    uint32_t count;
    if (reg != nullptr && reg->offset <= in_window) {
      const uint32_t in_reg = in_window - reg->offset;
      count = static_cast<uint32_t>(std::min<size_t>(want, reg->size - in_reg));
      fn(AccessPiece{window, reg, in_reg, count, pos});
    } else {
      const uint32_t hole_end = reg != nullptr ? reg->offset : window_size;
      count = static_cast<uint32_t>(std::min<size_t>(want, hole_end - in_window));
      fn(AccessPiece{window, nullptr, in_window, count, pos});
    }
    pos += count;
  }
}

void ReadLanes(uint64_t value, uint32_t first_lane, std::span<uint8_t> out) {
  for (size_t i = 0; i < out.size(); ++i) {
    out[i] = LaneByte(value, first_lane + static_cast<uint32_t>(i));
  }
}

LaneWrite WriteLanes(uint32_t first_lane, std::span<const uint8_t> in) {
  LaneWrite w;
  for (size_t i = 0; i < in.size(); ++i) {
    const uint32_t lane = first_lane + static_cast<uint32_t>(i);
    if (lane >= 8) break;
    w.value |= uint64_t{in[i]} << (8 * lane);
    w.mask |= uint64_t{0xFF} << (8 * lane);
  }
  return w;
}

void BadAccessCounter::Record(std::string_view what, uint64_t offset) {
  ++count_;
  if (count_ <= 10 || std::has_single_bit(count_)) {
    log_->warn(
        "{}: guest access rejected at offset 0x{:x}: {} ({} so far; further ones are "
        "logged at a decreasing rate)",
        label_, offset, what, count_);
  }
}

Bytes WrapState(std::string_view magic8, uint32_t version, ByteSpan payload) {
  ByteWriter w;
  Bytes magic(8, 0);
  std::copy_n(magic8.begin(), std::min<size_t>(8, magic8.size()), magic.begin());
  w.Append(magic);
  w.U32(version);
  w.U32(static_cast<uint32_t>(payload.size()));
  w.Append(payload);
  w.U32(Crc32(payload));
  return std::move(w).Take();
}

Result<ByteSpan> UnwrapState(std::string_view magic8, uint32_t version, ByteSpan blob) {
  if (blob.size() > kMaxStateSize + 20) {
    return Fail(Errc::kInvalidArgument, "device state is larger than any state this model saves");
  }
  ByteReader r(blob);
  Bytes want(8, 0);
  std::copy_n(magic8.begin(), std::min<size_t>(8, magic8.size()), want.begin());
  auto magic = r.Take(8);
  if (!magic || !std::equal(want.begin(), want.end(), magic->begin())) {
    return Fail(Errc::kInvalidArgument,
                fmt::format("device state is not a {} state (wrong magic)", magic8));
  }
  auto ver = r.U32();
  if (!ver || *ver != version) {
    return Fail(Errc::kUnsupported,
                fmt::format("device state version {} is not supported (this build reads {})",
                            ver ? *ver : 0, version));
  }
  auto len = r.U32();
  if (!len || *len > kMaxStateSize) return Fail(Errc::kCorrupt, "device state length is invalid");
  auto payload = r.Take(*len);
  auto crc = r.U32();
  if (!payload || !crc || !r.empty()) {
    return Fail(Errc::kCorrupt, "device state is truncated or has trailing bytes");
  }
  if (Crc32(*payload) != *crc) return Fail(Errc::kCorrupt, "device state checksum mismatch");
  return *payload;
}

Result<uint32_t> NegotiateBufferSize(uint32_t model_limit, uint32_t backend_size) {
  uint32_t size = std::min(model_limit, backend_size);
  if (size < 1024) {
    return Fail(Errc::kInvalidArgument,
                fmt::format("TPM buffer size {} is too small (need at least 1024 bytes)", size));
  }
  return size;
}

}  // namespace vtpm::device
