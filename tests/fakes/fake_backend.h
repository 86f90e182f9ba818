// Test doubles for the device layer: a TpmBackend that records what the device asked for and
// completes inline or on demand, and an IrqLine that records level changes.
#pragma once

#include <deque>
#include <functional>
#include <string>
#include <vector>

#include "base/bytes.h"
#include "device/bus_device.h"
#include "device/tpm_backend.h"

namespace vtpm::testing {

// A response echoing the command body: tag 8001, size, rc 0, then command bytes 10.. .
inline Bytes EchoResponse(const Bytes& cmd) {
  const size_t body = cmd.size() > 10 ? cmd.size() - 10 : 0;
  Bytes r(10 + body, 0);
  r[0] = 0x80;
  r[1] = 0x01;
  for (size_t i = 0; i < body; ++i) r[10 + i] = cmd[10 + i];
  StoreBe32(r.data() + 2, static_cast<uint32_t>(r.size()));
  return r;
}

// |n| bytes of |b| from |at| as a little-endian value (what a wide MMIO store carries).
inline uint64_t LoadLe(const Bytes& b, size_t at, unsigned n) {
  uint64_t v = 0;
  for (unsigned k = 0; k < n; ++k) v |= uint64_t{b[at + k]} << (8 * k);
  return v;
}

// A well-formed command of |size| bytes (tag 8001, code 0x17B GetRandom, body 0..).
inline Bytes TestCommand(size_t size, uint8_t seed = 0) {
  Bytes c(size, 0);
  c[0] = 0x80;
  c[1] = 0x01;
  StoreBe32(c.data() + 2, static_cast<uint32_t>(size));
  StoreBe32(c.data() + 6, 0x17B);
  for (size_t i = 10; i < size; ++i) c[i] = static_cast<uint8_t>(seed + i * 7);
  return c;
}

class FakeBackend : public device::TpmBackend {
 public:
  struct Pending {
    uint8_t locality;
    Bytes command;
    Completion done;
  };

  void Submit(uint8_t locality, Bytes command, Completion done) override {
    commands.push_back(command);
    localities.push_back(locality);
    if (auto_complete) {
      done(responder ? responder(command) : EchoResponse(command));
    } else {
      pending.push_back({locality, std::move(command), std::move(done)});
    }
  }
  void Cancel() override { ++cancels; }
  bool TpmEstablished() override { return established; }
  void ResetEstablished(uint8_t locality) override {
    ops.push_back("reset_established:" + std::to_string(locality));
  }
  void HashStart() override { ops.push_back("hash_start"); }
  void HashData(Bytes data) override {
    ops.push_back("hash_data:" + std::to_string(data.size()));
    hashed.insert(hashed.end(), data.begin(), data.end());
  }
  void HashEnd() override { ops.push_back("hash_end"); }
  uint32_t BufferSize() const override { return buffer_size; }

  // Completes the oldest pending command with |response| (default: echo).
  void CompleteNext(std::optional<Bytes> response = std::nullopt) {
    Pending p = std::move(pending.front());
    pending.pop_front();
    p.done(response ? *response : EchoResponse(p.command));
  }

  bool auto_complete = true;
  std::function<Bytes(const Bytes&)> responder;
  std::deque<Pending> pending;
  std::vector<Bytes> commands;
  std::vector<uint8_t> localities;
  std::vector<std::string> ops;
  Bytes hashed;
  int cancels = 0;
  bool established = false;
  uint32_t buffer_size = 4096;
};

class RecordingIrqLine : public device::IrqLine {
 public:
  void SetLevel(bool asserted) override {
    level = asserted;
    changes.push_back(asserted);
  }
  bool level = false;
  std::vector<bool> changes;
};

}  // namespace vtpm::testing
