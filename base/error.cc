#include "base/error.h"

#include <cerrno>
#include <cstring>

namespace crucible {

std::string_view CodeName(Code code) {
  switch (code) {
    case Code::kInvalidArgument:
      return "invalid_argument";
    case Code::kNotFound:
      return "not_found";
    case Code::kAlreadyExists:
      return "already_exists";
    case Code::kFailedPrecondition:
      return "failed_precondition";
    case Code::kCorruption:
      return "corruption";
    case Code::kVersionMismatch:
      return "version_mismatch";
    case Code::kIoError:
      return "io_error";
    case Code::kUnavailable:
      return "unavailable";
    case Code::kTimeout:
      return "timeout";
    case Code::kInternal:
      return "internal";
  }
  return "unknown";
}

Error Error::Wrap(std::string_view context) const {
  std::string m(context);
  m += ": ";
  m += message_;
  return Error(code_, std::move(m));
}

std::string Error::ToString() const {
  std::string s(CodeName(code_));
  s += ": ";
  s += message_;
  return s;
}

std::string ErrnoMessage(std::string_view what) {
  int err = errno;
  std::string m(what);
  m += ": ";
  m += std::strerror(err);
  return m;
}

std::unexpected<Error> FailErrno(std::string_view what) {
  return Fail(Code::kIoError, ErrnoMessage(what));
}

}  // namespace crucible
