// Session: one connection's protocol state machine, free of I/O ("sans-IO").
//
// The server feeds each read()'s bytes to OnChunk() and writes whatever the session appended to
// |out|. Sessions never block and keep at most one message buffered, bounded by the protocol's
// maximum message size; the server stops reading while replies are unsent (backpressure).
#pragma once

#include <span>

#include "base/bytes.h"
#include "base/unique_fd.h"

namespace vtpm::daemon {

class Session {
 public:
  virtual ~Session() = default;
  // |chunk| is one read()'s worth (the control channel, like swtpm, treats it as one message);
  // the session may modify it in place (libtpms decrypts parameters in place).
  virtual void OnChunk(std::span<uint8_t> chunk, Bytes& out) = 0;
  // A file descriptor that arrived with the bytes of the next chunk (SCM_RIGHTS).
  virtual void OnFd(UniqueFd /*fd*/) {}
  // True while part of a message has arrived; the server drops connections stuck so too long.
  virtual bool mid_message() const = 0;
  // True once the connection should be closed after |out| is flushed.
  virtual bool wants_close() const = 0;
};

}  // namespace vtpm::daemon
