#include "golden/utf8.h"

namespace crucible::golden::internal {

namespace {

// Length of the well-formed sequence at the start of `s`, or 0.
size_t SequenceLength(std::string_view s) {
  const auto b = [&](size_t i) { return static_cast<unsigned char>(s[i]); };
  const unsigned char c = b(0);
  if (c < 0x80) return 1;
  size_t len;
  unsigned char lo = 0x80, hi = 0xBF;  // bounds of the second byte
  if (c >= 0xC2 && c <= 0xDF) {
    len = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    len = 3;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;  // no surrogates
  } else if (c >= 0xF0 && c <= 0xF4) {
    len = 4;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  if (s.size() < len || b(1) < lo || b(1) > hi) return 0;
  for (size_t i = 2; i < len; ++i) {
    if (b(i) < 0x80 || b(i) > 0xBF) return 0;
  }
  return len;
}

}  // namespace

bool IsValidUtf8(std::string_view s) {
  while (!s.empty()) {
    size_t n = SequenceLength(s);
    if (n == 0) return false;
    s.remove_prefix(n);
  }
  return true;
}

std::string ToValidUtf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  while (!s.empty()) {
    size_t n = SequenceLength(s);
    if (n == 0) {
      out += "\xEF\xBF\xBD";
      n = 1;
    } else {
      out.append(s.data(), n);
    }
    s.remove_prefix(n);
  }
  return out;
}

std::string EscapeInvalidUtf8(std::string_view s) {
  if (IsValidUtf8(s) && s.find("\\x") == std::string_view::npos) return std::string(s);
  std::string out;
  out.reserve(s.size() + 16);
  while (!s.empty()) {
    size_t n = SequenceLength(s);
    if (n == 0) {
      constexpr char kHex[] = "0123456789abcdef";
      const auto byte = static_cast<unsigned char>(s[0]);
      out += "\\x";
      out += kHex[byte >> 4];
      out += kHex[byte & 0xF];
      n = 1;
    } else if (s.starts_with("\\x")) {
      out += "\\\\";
      n = 1;
    } else {
      out.append(s.data(), n);
    }
    s.remove_prefix(n);
  }
  return out;
}

std::string_view Utf8Tail(std::string_view s, size_t max_bytes) {
  if (s.size() <= max_bytes) return s;
  s.remove_prefix(s.size() - max_bytes);
  // Skip continuation bytes of a character cut in half (at most three).
  for (int i = 0; i < 3 && !s.empty() && (static_cast<unsigned char>(s[0]) & 0xC0) == 0x80; ++i) {
    s.remove_prefix(1);
  }
  return s;
}

}  // namespace crucible::golden::internal
