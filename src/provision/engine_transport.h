// A tpmcmd::Transport over the in-process Engine: no daemon, no sockets, no waiting.
#pragma once

#include "engine/engine.h"
#include "tpmcmd/transport.h"

namespace vtpm::provision {

class EngineTransport final : public tpmcmd::Transport {
 public:
  explicit EngineTransport(engine::Engine* engine) : engine_(engine) {}
  Result<Bytes> Transmit(ByteSpan command) override {
    Bytes copy(command.begin(), command.end());  // libtpms may decrypt parameters in place
    ByteSpan resp = engine_->Process(copy);
    return Bytes(resp.begin(), resp.end());
  }

 private:
  engine::Engine* engine_;  // not owned
};

}  // namespace vtpm::provision
