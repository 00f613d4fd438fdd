#include "storage/key_codec.h"

#include <algorithm>
#include <cstdint>
#include <random>
#include <string>
#include <variant>
#include <vector>

#include <gtest/gtest.h>

namespace crucible::storage {
namespace {

using Component = std::variant<std::string, uint64_t>;
using Tuple = std::vector<Component>;

std::string Hex(std::string_view s) {
  static const char* kDigits = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 0xf]);
    out.push_back(' ');
  }
  return out;
}

std::string Encode(const Tuple& t) {
  KeyEncoder e;
  for (const Component& c : t) {
    if (const auto* s = std::get_if<std::string>(&c)) {
      e.Str(*s);
    } else {
      e.U64(std::get<uint64_t>(c));
    }
  }
  return e.Take();
}

// Strings over a tiny alphabet that includes the escape bytes, so that
// prefixes, embedded 0x00 and 0xff and equal strings are all frequent.
std::string RandomString(std::mt19937_64& rng) {
  static const char kAlphabet[] = {'\x00', '\x01', '\x02', 'a', 'b', '\xfe', '\xff'};
  size_t len = std::uniform_int_distribution<size_t>(0, 5)(rng);
  std::string s;
  for (size_t i = 0; i < len; ++i) {
    s.push_back(kAlphabet[std::uniform_int_distribution<size_t>(0, sizeof(kAlphabet) - 1)(rng)]);
  }
  return s;
}

uint64_t RandomU64(std::mt19937_64& rng) {
  static const uint64_t kEdges[] = {0,
                                    1,
                                    2,
                                    255,
                                    256,
                                    257,
                                    65535,
                                    65536,
                                    (uint64_t{1} << 32) - 1,
                                    uint64_t{1} << 32,
                                    (uint64_t{1} << 63) - 1,
                                    uint64_t{1} << 63,
                                    UINT64_MAX - 1,
                                    UINT64_MAX};
  if (std::uniform_int_distribution<int>(0, 3)(rng) != 0) {
    return kEdges[std::uniform_int_distribution<size_t>(0, std::size(kEdges) - 1)(rng)];
  }
  return rng();
}

// Tuples follow one schema, Str U64 Str U64 Str ..., truncated at a random
// length, as the keys of one column family do (a shorter tuple is a prefix
// key, e.g. the scan prefix of a run's attempts).
Tuple RandomTuple(std::mt19937_64& rng) {
  size_t len = std::uniform_int_distribution<size_t>(0, 4)(rng);
  Tuple t;
  for (size_t i = 0; i < len; ++i) {
    if (i % 2 == 0) {
      t.emplace_back(RandomString(rng));
    } else {
      t.emplace_back(RandomU64(rng));
    }
  }
  return t;
}

TEST(KeyCodecTest, EncodingIsDocumentedFormat) {
  EXPECT_EQ(KeyEncoder().Str("ab").key(), std::string("ab\x00\x01", 4));
  EXPECT_EQ(KeyEncoder().Str("").key(), std::string("\x00\x01", 2));
  EXPECT_EQ(KeyEncoder().Str(std::string("a\0b", 3)).key(), std::string("a\x00\xff"
                                                                        "b\x00\x01",
                                                                        6));
  EXPECT_EQ(KeyEncoder().U64(0x0102030405060708).key(), "\x01\x02\x03\x04\x05\x06\x07\x08");
  EXPECT_EQ(KeyEncoder().Str("r").U64(1).key(), std::string("r\x00\x01\0\0\0\0\0\0\0\x01", 11));
}

TEST(KeyCodecTest, DocumentedStringOrder) {
  std::string a = KeyEncoder().Str("a").Take();
  std::string a0 = KeyEncoder().Str(std::string("a\0", 2)).Take();
  std::string ab = KeyEncoder().Str("ab").Take();
  EXPECT_LT(a, a0);
  EXPECT_LT(a0, ab);
  // A run's keys never interleave with the keys of a run whose id extends it.
  std::string a_max = KeyEncoder().Str("a").U64(UINT64_MAX).Take();
  std::string ab_min = KeyEncoder().Str("ab").U64(0).Take();
  EXPECT_LT(a_max, ab_min);
  EXPECT_NE(ab_min.rfind(KeyEncoder().Str("a").key(), 0), 0u) << "prefix leaks";
}

TEST(KeyCodecTest, SmallNumbersOrderNumerically) {
  std::vector<uint64_t> numbers = {256, 2, 10, 0, 1, 255, 65536, UINT64_MAX};
  std::vector<std::string> keys;
  for (uint64_t n : numbers) keys.push_back(KeyEncoder().Str("run").U64(n).Take());
  std::sort(numbers.begin(), numbers.end());
  std::sort(keys.begin(), keys.end());
  for (size_t i = 0; i < numbers.size(); ++i) {
    KeyDecoder d(keys[i]);
    ASSERT_TRUE(d.Str().has_value());
    auto n = d.U64();
    ASSERT_TRUE(n.has_value());
    EXPECT_EQ(*n, numbers[i]);
  }
}

TEST(KeyCodecTest, SortedKeysMatchSortedTuples) {
  std::mt19937_64 rng(20240601);
  for (int round = 0; round < 20; ++round) {
    std::vector<Tuple> tuples;
    for (int i = 0; i < 500; ++i) tuples.push_back(RandomTuple(rng));

    std::vector<std::pair<std::string, size_t>> keyed;
    for (size_t i = 0; i < tuples.size(); ++i) keyed.emplace_back(Encode(tuples[i]), i);

    // Pairwise: key order equals tuple order for every pair (a stronger check
    // than comparing two sorts, and it catches ties).
    for (size_t i = 0; i < tuples.size(); ++i) {
      for (size_t j = i + 1; j < tuples.size(); j += 7) {
        const Tuple& x = tuples[i];
        const Tuple& y = tuples[j];
        const std::string& kx = keyed[i].first;
        const std::string& ky = keyed[j].first;
        ASSERT_EQ(x < y, kx < ky) << "keys " << Hex(kx) << " vs " << Hex(ky);
        ASSERT_EQ(x == y, kx == ky) << "keys " << Hex(kx) << " vs " << Hex(ky);
      }
    }

    std::vector<Tuple> sorted_tuples = tuples;
    std::sort(sorted_tuples.begin(), sorted_tuples.end());
    std::sort(keyed.begin(), keyed.end());
    std::vector<Tuple> by_key;
    for (const auto& [key, index] : keyed) by_key.push_back(tuples[index]);
    ASSERT_EQ(by_key, sorted_tuples);
  }
}

TEST(KeyCodecTest, RoundTrip) {
  std::mt19937_64 rng(7);
  for (int i = 0; i < 2000; ++i) {
    Tuple t = RandomTuple(rng);
    std::string key = Encode(t);
    KeyDecoder d(key);
    Tuple decoded;
    for (size_t c = 0; c < t.size(); ++c) {
      if (c % 2 == 0) {
        auto s = d.Str();
        ASSERT_TRUE(s.has_value()) << s.error().ToString() << " in " << Hex(key);
        decoded.emplace_back(*s);
      } else {
        auto v = d.U64();
        ASSERT_TRUE(v.has_value()) << v.error().ToString() << " in " << Hex(key);
        decoded.emplace_back(*v);
      }
    }
    EXPECT_TRUE(d.done()) << Hex(key);
    ASSERT_EQ(decoded, t) << Hex(key);
  }
}

TEST(KeyCodecTest, DecoderRejectsMalformedKeys) {
  struct Case {
    std::string key;
    bool str;  // decode a string (else a u64)
  };
  const Case cases[] = {
      {"", true},                               // nothing
      {"abc", true},                            // no terminator
      {std::string("abc\x00", 4), true},        // truncated after escape
      {std::string("a\x00\x02", 3), true},      // bad escape
      {std::string("a\x00\x00\x01", 4), true},  // bad escape
      {"", false},                              // nothing
      {"1234567", false},                       // 7 bytes
  };
  for (const Case& c : cases) {
    KeyDecoder d(c.key);
    if (c.str) {
      auto r = d.Str();
      ASSERT_FALSE(r.has_value()) << Hex(c.key);
      EXPECT_EQ(r.error().code(), Code::kCorruption) << Hex(c.key);
    } else {
      auto r = d.U64();
      ASSERT_FALSE(r.has_value()) << Hex(c.key);
      EXPECT_EQ(r.error().code(), Code::kCorruption) << Hex(c.key);
    }
  }
}

TEST(KeyCodecTest, DecoderConsumesExactlyOneComponent) {
  std::string key = KeyEncoder().Str(std::string("x\0", 2)).U64(42).Str("").Take();
  KeyDecoder d(key);
  auto s = d.Str();
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(*s, std::string("x\0", 2));
  EXPECT_FALSE(d.done());
  auto v = d.U64();
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(*v, 42u);
  auto e = d.Str();
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(*e, "");
  EXPECT_TRUE(d.done());
  // Reading past the end fails instead of inventing a value.
  EXPECT_FALSE(d.U64().has_value());
  EXPECT_FALSE(d.Str().has_value());
}

}  // namespace
}  // namespace crucible::storage
