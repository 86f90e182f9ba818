// swtpm's option syntax, "key=value,flag,key2=value2" (--tpmstate, --ctrl, --server, --log, ...),
// split and checked in one place for every command line that takes it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace vtpm {

struct KeyValue {
  std::string key;
  std::optional<std::string> value;  // nullopt: a bare flag ("backup")
};

// Splits at commas, then each item at its first '='; empty items are skipped.
std::vector<KeyValue> SplitOptions(std::string_view s);

// |kv|'s value as a number in |base| (16 accepts a 0x prefix), at most |max|. |option| names the
// command-line option in errors ("--tpmstate").
Result<uint64_t> ParseNumber(std::string_view option, const KeyValue& kv, int base, uint64_t max);

// "--tpmstate: unknown or unsupported parameter 'foo'".
tl::unexpected<Error> UnknownOption(std::string_view option, const KeyValue& kv);

}  // namespace vtpm
