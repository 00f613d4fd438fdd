// The one error type of Crucible.
//
// Every fallible function returns Result<T> (a value or an Error) or Status
// (nothing or an Error). Both are [[nodiscard]]: an ignored error is a compile
// warning. An Error carries a code a program can branch on and a message a
// person can act on: the message names the offending input ("suite 'x' not
// found", "frame 2: protocol version 7, this build speaks 1").
//
// No exceptions cross a library boundary. Untrusted input yields an Error; a
// broken internal invariant aborts.
#pragma once

#include <expected>
#include <string>
#include <string_view>
#include <utility>

namespace crucible {

enum class Code {
  kInvalidArgument,     // the caller's input is malformed
  kNotFound,            // a named thing does not exist
  kAlreadyExists,       // a named thing exists and may not be replaced
  kFailedPrecondition,  // the system is not in a state to do this
  kCorruption,          // stored or received bytes do not decode
  kVersionMismatch,     // a peer or a database speaks another version
  kIoError,             // the operating system refused
  kUnavailable,         // a peer or a resource cannot be reached now
  kTimeout,             // a deadline passed
  kInternal,            // a bug in Crucible
};

// Returns a stable lower-case name of `code`, e.g. "not_found".
std::string_view CodeName(Code code);

class Error {
 public:
  Error(Code code, std::string message) : code_(code), message_(std::move(message)) {}

  Code code() const { return code_; }
  const std::string& message() const { return message_; }

  // Returns a copy whose message is "`context`: <message>".
  Error Wrap(std::string_view context) const;

  // "<code name>: <message>".
  std::string ToString() const;

 private:
  Code code_;
  std::string message_;
};

template <typename T>
class [[nodiscard]] Result : public std::expected<T, Error> {
 public:
  using std::expected<T, Error>::expected;
  Result(const std::expected<T, Error>& e) : std::expected<T, Error>(e) {}
  Result(std::expected<T, Error>&& e) : std::expected<T, Error>(std::move(e)) {}
};

using Status = Result<void>;

// Shorthand for `return Fail(Code::kNotFound, "suite 'x' not found");`.
inline std::unexpected<Error> Fail(Code code, std::string message) {
  return std::unexpected<Error>(Error(code, std::move(message)));
}
inline std::unexpected<Error> Fail(Error error) { return std::unexpected<Error>(std::move(error)); }

// Returns "`what`: strerror(errno)" for the current errno.
std::string ErrnoMessage(std::string_view what);

// Returns an Error with code kIoError and ErrnoMessage(what).
std::unexpected<Error> FailErrno(std::string_view what);

}  // namespace crucible

// Propagates the error of a Status- or Result-returning expression.
#define CRUCIBLE_RETURN_IF_ERROR(expr)                                        \
  do {                                                                        \
    auto crucible_status_ = (expr);                                           \
    if (!crucible_status_) return ::crucible::Fail(crucible_status_.error()); \
  } while (0)

#define CRUCIBLE_CONCAT_INNER_(a, b) a##b
#define CRUCIBLE_CONCAT_(a, b) CRUCIBLE_CONCAT_INNER_(a, b)
// Evaluates a Result-returning `expr`; on error returns it, else moves the
// value into `lhs` (which may be a declaration: `CRUCIBLE_ASSIGN_OR_RETURN(auto x, F())`).
#define CRUCIBLE_ASSIGN_OR_RETURN(lhs, expr)                                       \
  auto CRUCIBLE_CONCAT_(crucible_result_, __LINE__) = (expr);                      \
  if (!CRUCIBLE_CONCAT_(crucible_result_, __LINE__))                               \
    return ::crucible::Fail(CRUCIBLE_CONCAT_(crucible_result_, __LINE__).error()); \
  lhs = std::move(*CRUCIBLE_CONCAT_(crucible_result_, __LINE__))
