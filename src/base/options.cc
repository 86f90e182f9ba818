#include "base/options.h"

#include <fmt/format.h>

#include <charconv>

namespace vtpm {

std::vector<KeyValue> SplitOptions(std::string_view s) {
  std::vector<KeyValue> out;
  size_t pos = 0;
  while (pos <= s.size()) {
    size_t comma = s.find(',', pos);
    if (comma == std::string_view::npos) comma = s.size();
    const std::string_view item = s.substr(pos, comma - pos);
    if (!item.empty()) {
      const size_t eq = item.find('=');
      if (eq == std::string_view::npos) {
        out.push_back({std::string(item), std::nullopt});
      } else {
        out.push_back({std::string(item.substr(0, eq)), std::string(item.substr(eq + 1))});
      }
    }
    pos = comma + 1;
  }
  return out;
}

Result<uint64_t> ParseNumber(std::string_view option, const KeyValue& kv, int base, uint64_t max) {
  const auto& v = kv.value;
  if (!v || v->empty()) {
    return Fail(Errc::kInvalidArgument, fmt::format("{}: '{}' needs a value", option, kv.key));
  }
  uint64_t n = 0;
  const char* first = v->data();
  const char* last = v->data() + v->size();
  if (base == 16 && v->size() > 2 && (*v)[0] == '0' && ((*v)[1] == 'x' || (*v)[1] == 'X')) {
    first += 2;
  }
  auto [p, ec] = std::from_chars(first, last, n, base);
  if (ec != std::errc() || p != last || n > max) {
    return Fail(
        Errc::kInvalidArgument,
        fmt::format("{}: '{}={}' is not a valid number (at most {})", option, kv.key, *v, max));
  }
  return n;
}

tl::unexpected<Error> UnknownOption(std::string_view option, const KeyValue& kv) {
  return Fail(Errc::kInvalidArgument,
              fmt::format("{}: unknown or unsupported parameter '{}'", option, kv.key));
}

}  // namespace vtpm
