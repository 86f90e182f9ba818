// What provisioning takes from its environment, injectable so tests are reproducible: the
// clock (certificate notBefore) and randomness (serial numbers, nonces).
#pragma once

#include <ctime>
#include <functional>
#include <span>

#include "base/result.h"

namespace vtpm::provision {

using Clock = std::function<std::time_t()>;
using RandomFn = std::function<Status(std::span<uint8_t>)>;

// time(nullptr)
Clock SystemClock();
// OpenSSL's CSPRNG (RAND_bytes).
RandomFn SystemRandom();

}  // namespace vtpm::provision
