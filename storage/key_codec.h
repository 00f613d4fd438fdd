// Order-preserving key encoding.
//
// A key is a sequence of components. Encoded keys compare (bytewise, as
// RocksDB's default comparator does) in the same order as the component
// sequences compare component by component:
//  - strings: bytes with 0x00 escaped as 0x00 0xFF, terminated by 0x00 0x01,
//    so "a" < "a\0" < "ab" and no string is a prefix problem for the next;
//  - unsigned integers: 8 bytes big-endian.
// Decoding validates its input and returns kCorruption on malformed keys.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/error.h"

namespace crucible::storage {

class KeyEncoder {
 public:
  KeyEncoder& Str(std::string_view s);
  KeyEncoder& U64(uint64_t v);
  const std::string& key() const { return key_; }
  std::string Take() { return std::move(key_); }

 private:
  std::string key_;
};

class KeyDecoder {
 public:
  explicit KeyDecoder(std::string_view key) : rest_(key) {}
  Result<std::string> Str();
  Result<uint64_t> U64();
  bool done() const { return rest_.empty(); }

 private:
  std::string_view rest_;
};

}  // namespace crucible::storage
