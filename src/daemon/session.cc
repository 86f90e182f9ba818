#include "daemon/session.h"

namespace vtpm::daemon {

size_t FramedSession::Drain(std::span<uint8_t> buf, Bytes& out) {
  size_t pos = 0;
  while (pos < buf.size() && !close_) {
    size_t used = ProcessOne(buf.subspan(pos), out);
    if (used == 0) break;
    pos += used;
  }
  return pos;
}

void FramedSession::OnChunk(std::span<uint8_t> chunk, Bytes& out) {
  if (in_.empty()) {
    size_t used = Drain(chunk, out);
    if (!close_ && used < chunk.size()) {
      in_.assign(chunk.begin() + static_cast<ptrdiff_t>(used), chunk.end());
    }
    return;
  }
  in_.insert(in_.end(), chunk.begin(), chunk.end());
  size_t used = Drain(in_, out);
  in_.erase(in_.begin(), in_.begin() + static_cast<ptrdiff_t>(used));
  if (close_) in_.clear();
}

}  // namespace vtpm::daemon
