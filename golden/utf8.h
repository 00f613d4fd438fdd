// Private helpers of golden/: protobuf `string` fields must hold valid UTF-8
// (a parser rejects the whole message otherwise), but test output, commit
// messages and JUnit reports are arbitrary bytes.
#pragma once

#include <string>
#include <string_view>

namespace crucible::golden::internal {

// True when `s` is well-formed UTF-8 (no overlongs, surrogates or code points
// above U+10FFFF).
bool IsValidUtf8(std::string_view s);

// `s` with every ill-formed sequence replaced by U+FFFD.
std::string ToValidUtf8(std::string_view s);

// `s` with every byte of an ill-formed sequence written as "\xHH" (and a
// backslash that would start such an escape doubled), so that a file name
// that is not UTF-8 is stored as text and still tells its bytes apart.
std::string EscapeInvalidUtf8(std::string_view s);

// The last at most `max_bytes` bytes of `s`, starting on a character boundary.
std::string_view Utf8Tail(std::string_view s, size_t max_bytes);

}  // namespace crucible::golden::internal
