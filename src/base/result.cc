#include "base/result.h"

#include <cstring>

namespace vtpm {

tl::unexpected<Error> SysFail(const std::string& what, int err) {
  return tl::unexpected<Error>(Error{Errc::kIo, what + ": " + std::strerror(err), err, 0});
}

}  // namespace vtpm
