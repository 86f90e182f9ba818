// Result<T>: a value or an Error that says what failed and what to do.
//
// No exceptions cross the engine, state, wire or daemon layers (they run on event-loop and worker
// threads); fallible functions return Result<T> (tl::expected, std::expected once we move to
// C++23). A TPM response code is data, not an Error: a transport that delivered TPM_RC_FAILURE
// succeeded.
#pragma once

#include <string>
#include <tl/expected.hpp>
#include <utility>

namespace vtpm {

enum class Errc {
  kInvalidArgument,     // the caller (user, peer or guest) gave something malformed
  kNotFound,            // a named thing (file, blob) does not exist
  kAlreadyExists,       // e.g. a second engine in one process
  kBusy,                // e.g. the state directory is locked by another process
  kIo,                  // a system call failed; sys_errno says which errno
  kCorrupt,             // stored data failed validation
  kFailedPrecondition,  // called in the wrong state (e.g. engine not running)
  kTpm,                 // libtpms returned an error code (in tpm_rc)
  kUnsupported,
  kWrongKey,  // a key (state encryption) does not open the data it was given
};

struct [[nodiscard]] Error {
  Errc code;
  std::string message;  // sentence-style, names the object and, where possible, the fix
  int sys_errno = 0;
  unsigned tpm_rc = 0;
};

template <class T>
using Result = tl::expected<T, Error>;
using Status = tl::expected<void, Error>;

inline tl::unexpected<Error> Fail(Errc code, std::string message, int sys_errno = 0) {
  return tl::unexpected<Error>(Error{code, std::move(message), sys_errno, 0});
}
// An Error for a failed system call: appends strerror(errno) to |what|.
tl::unexpected<Error> SysFail(const std::string& what, int err);

inline Status Ok() { return {}; }

}  // namespace vtpm

// Standard C++ propagation (abseil style): not usable as the single statement of an unbraced if.
#define VTPM_CONCAT_INNER_(a, b) a##b
#define VTPM_CONCAT_(a, b) VTPM_CONCAT_INNER_(a, b)

#define VTPM_RETURN_IF_ERROR(expr)                                           \
  do {                                                                       \
    if (auto vtpm_status_ = (expr); !vtpm_status_) {                         \
      return tl::unexpected<::vtpm::Error>(std::move(vtpm_status_.error())); \
    }                                                                        \
  } while (0)

#define VTPM_ASSIGN_OR_RETURN(lhs, expr) \
  VTPM_ASSIGN_OR_RETURN_IMPL_(VTPM_CONCAT_(vtpm_result_, __LINE__), lhs, expr)
#define VTPM_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr)                       \
  auto tmp = (expr);                                                      \
  if (!tmp) return tl::unexpected<::vtpm::Error>(std::move(tmp.error())); \
  lhs = std::move(*tmp)
