#pragma once

#include <sys/socket.h>

#include <vector>

#include "daemon/tpm_service.h"
#include "fakes/tpm_fixture.h"

namespace vtpm::daemon {

class RecordingHooks : public ServerHooks {
 public:
  bool AdoptDataFd(UniqueFd fd) override {
    if (have_data_fd) return false;
    adopted.push_back(std::move(fd));
    have_data_fd = true;
    return true;
  }
  void RequestExit() override { exit_requested = true; }
  std::vector<UniqueFd> adopted;
  bool have_data_fd = false;
  bool exit_requested = false;
};

struct SessionFixture : testing::TpmFixture {
  explicit SessionFixture(engine::TpmVersion v = engine::TpmVersion::kTpm20,
                          ServiceOptions opts = {})
      : TpmFixture(v), service(eng.get(), store.get(), opts, log) {
    service.set_hooks(&hooks);
  }
  // Feeds each chunk as one read() and returns everything the session replied.
  template <class S>
  Bytes Feed(S& session, std::initializer_list<std::string_view> hex_chunks) {
    Bytes out;
    for (auto h : hex_chunks) {
      Bytes chunk = testing::Hex(h);
      session.OnChunk(chunk, out);
    }
    return out;
  }
  RecordingHooks hooks;
  TpmService service;
};

}  // namespace vtpm::daemon
