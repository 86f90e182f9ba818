// How often to log something a peer or a guest can make happen at will (a bad register access,
// a full queue): the first 10 times, then at the 16th, 32nd, 64th... occurrence, so a hostile
// guest cannot flood the log while an operator still sees that it goes on, and how much.
#pragma once

#include <bit>
#include <cstdint>

namespace vtpm {

// |n|: the occurrence being counted, from 1.
inline bool ShouldLogOccurrence(uint64_t n) { return n <= 10 || std::has_single_bit(n); }

}  // namespace vtpm
