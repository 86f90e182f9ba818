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

// A session whose protocol is a stream of self-delimiting messages (TPM commands, MS-simulator
// signals). Complete messages are processed straight from the read buffer; only an incomplete
// tail is copied and kept, so the buffer never exceeds one message plus one read.
class FramedSession : public Session {
 public:
  void OnChunk(std::span<uint8_t> chunk, Bytes& out) final;
  bool mid_message() const final { return !in_.empty(); }
  bool wants_close() const final { return close_; }

 protected:
  // Consumes one complete message at the front of |avail| and returns its size, or returns 0
  // when more bytes are needed (or after RequestClose()).
  virtual size_t ProcessOne(std::span<uint8_t> avail, Bytes& out) = 0;
  void RequestClose() { close_ = true; }

 private:
  // Processes messages from |buf|; returns the bytes consumed.
  size_t Drain(std::span<uint8_t> buf, Bytes& out);

  Bytes in_;  // an incomplete message carried over from earlier reads
  bool close_ = false;
};

}  // namespace vtpm::daemon
