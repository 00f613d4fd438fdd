#include "storage/key_codec.h"

#include <fmt/format.h>

namespace crucible::storage {

namespace {

constexpr char kEscape = '\x00';
constexpr char kEscapedZero = '\xff';
constexpr char kTerminator = '\x01';

}  // namespace

KeyEncoder& KeyEncoder::Str(std::string_view s) {
  key_.reserve(key_.size() + s.size() + 2);
  for (char c : s) {
    key_.push_back(c);
    if (c == kEscape) key_.push_back(kEscapedZero);
  }
  key_.push_back(kEscape);
  key_.push_back(kTerminator);
  return *this;
}

KeyEncoder& KeyEncoder::U64(uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8) {
    key_.push_back(static_cast<char>((v >> shift) & 0xff));
  }
  return *this;
}

Result<std::string> KeyDecoder::Str() {
  std::string out;
  size_t i = 0;
  while (i < rest_.size()) {
    char c = rest_[i];
    if (c != kEscape) {
      out.push_back(c);
      ++i;
      continue;
    }
    if (i + 1 >= rest_.size()) {
      return Fail(
          Code::kCorruption,
          fmt::format("key string component truncated after an escape byte at offset {}", i));
    }
    char next = rest_[i + 1];
    if (next == kTerminator) {
      rest_.remove_prefix(i + 2);
      return out;
    }
    if (next != kEscapedZero) {
      return Fail(Code::kCorruption,
                  fmt::format("key string component has bad escape 0x00 0x{:02x} at offset {}",
                              static_cast<unsigned char>(next), i));
    }
    out.push_back('\0');
    i += 2;
  }
  return Fail(Code::kCorruption,
              fmt::format("key string component is not terminated ({} bytes left)", rest_.size()));
}

Result<uint64_t> KeyDecoder::U64() {
  if (rest_.size() < 8) {
    return Fail(Code::kCorruption,
                fmt::format("key integer component needs 8 bytes, {} left", rest_.size()));
  }
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<unsigned char>(rest_[i]);
  rest_.remove_prefix(8);
  return v;
}

}  // namespace crucible::storage
