// MemStore: an NvStore in memory. Provisioning runs the engine over one, so nothing reaches
// the state directory until the finished state is committed in one atomic step, and `vtpm ek`
// reads an instance's state without ever writing it.
#pragma once

#include <map>
#include <string>

#include "state/nv_store.h"

namespace vtpm::provision {

class MemStore final : public state::NvStore {
 public:
  Status Lock() override { return Ok(); }
  void Unlock() override {}
  Result<std::optional<Bytes>> Load(std::string_view name) override {
    auto it = blobs_.find(std::string(name));
    if (it == blobs_.end()) return std::optional<Bytes>();
    return std::optional<Bytes>(it->second);
  }
  Status Store(std::string_view name, ByteSpan data) override {
    blobs_[std::string(name)] = Bytes(data.begin(), data.end());
    ++stores_;
    return Ok();
  }
  Status Delete(std::string_view name, bool must_exist) override {
    if (blobs_.erase(std::string(name)) == 0 && must_exist) {
      return Fail(Errc::kNotFound, std::string(name) + " does not exist");
    }
    return Ok();
  }
  bool FallBackToPreviousGeneration() override { return false; }

  const Bytes* Get(std::string_view name) const {
    auto it = blobs_.find(std::string(name));
    return it == blobs_.end() ? nullptr : &it->second;
  }
  void Put(std::string_view name, Bytes data) { blobs_[std::string(name)] = std::move(data); }
  size_t stores() const { return stores_; }

 private:
  std::map<std::string, Bytes> blobs_;
  size_t stores_ = 0;
};

}  // namespace vtpm::provision
