#include "provision/env.h"

#include <openssl/rand.h>

#include <climits>

namespace vtpm::provision {

Clock SystemClock() {
  return [] { return std::time(nullptr); };
}

RandomFn SystemRandom() {
  return [](std::span<uint8_t> out) -> Status {
    if (out.size() > INT_MAX || RAND_bytes(out.data(), static_cast<int>(out.size())) != 1) {
      return Fail(Errc::kIo, "the random number generator failed");
    }
    return Ok();
  };
}

}  // namespace vtpm::provision
