// ParseTap: Test Anything Protocol output.
#include <fmt/core.h>

#include <cctype>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include "golden/test_run.h"
#include "golden/utf8.h"

namespace crucible::golden {

namespace {

using v1::TestOutcome;

std::string_view TrimSpace(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

bool StartsWithNoCase(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(s[i])) != prefix[i]) return false;
  }
  return true;
}

}  // namespace

Result<std::vector<v1::TestOutcome>> ParseTap(std::string_view text) {
  std::vector<TestOutcome> out;
  std::unordered_map<std::string, int> seen_ids;
  std::unordered_set<long> numbers;
  long planned = -1;
  bool bailed = false;
  long next_number = 1;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty() || line[0] == ' ' || line[0] == '\t' || line[0] == '#') continue;
    if (line.starts_with("1..")) {
      std::string_view n = line.substr(3);
      long value = 0;
      size_t i = 0;
      while (i < n.size() && std::isdigit(static_cast<unsigned char>(n[i]))) {
        value = value * 10 + (n[i] - '0');
        if (value > 10'000'000) break;
        ++i;
      }
      if (i > 0) planned = value;
      continue;
    }
    if (line.starts_with("Bail out!")) {
      bailed = true;
      TestOutcome t;
      t.set_id("bail out");
      t.set_status(TestOutcome::ERROR);
      t.set_message(internal::ToValidUtf8(TrimSpace(line.substr(9))));
      out.push_back(std::move(t));
      break;
    }
    bool ok;
    if (line.starts_with("ok")) {
      ok = true;
      line.remove_prefix(2);
    } else if (line.starts_with("not ok")) {
      ok = false;
      line.remove_prefix(6);
    } else {
      continue;
    }
    if (!line.empty() && line[0] != ' ' && line[0] != '\t') continue;  // "okay", "oktober"
    line = TrimSpace(line);
    long number = next_number;
    if (!line.empty() && std::isdigit(static_cast<unsigned char>(line[0]))) {
      number = 0;
      while (!line.empty() && std::isdigit(static_cast<unsigned char>(line[0]))) {
        if (number < 10'000'000) number = number * 10 + (line[0] - '0');
        line.remove_prefix(1);
      }
    }
    next_number = number + 1;
    numbers.insert(number);
    std::string_view directive;
    if (size_t hash = line.find(" # "); hash != std::string_view::npos) {
      directive = TrimSpace(line.substr(hash + 3));
      line = line.substr(0, hash);
    } else if (line.starts_with("# ")) {
      directive = TrimSpace(line.substr(2));
      line = {};
    }
    line = TrimSpace(line);
    if (line.starts_with("- ")) line = TrimSpace(line.substr(2));
    if (line == "-") line = {};
    std::string id = line.empty() ? std::to_string(number) : internal::ToValidUtf8(line);
    if (int n = ++seen_ids[id]; n > 1) id += fmt::format(" #{}", number);

    TestOutcome t;
    t.set_id(id);
    if (StartsWithNoCase(directive, "skip") || StartsWithNoCase(directive, "todo")) {
      t.set_status(TestOutcome::SKIPPED);
      t.set_message(internal::ToValidUtf8(directive));
    } else {
      t.set_status(ok ? TestOutcome::PASSED : TestOutcome::FAILED);
    }
    out.push_back(std::move(t));
  }
  if (planned < 0 && out.empty()) {
    return Fail(Code::kCorruption, "TAP output has no plan and no test line");
  }
  if (!bailed && planned > 0) {
    for (long n = 1; n <= planned && n <= 100'000; ++n) {
      if (numbers.contains(n)) continue;
      TestOutcome t;
      t.set_id(fmt::format("test {} (no result)", n));
      t.set_status(TestOutcome::ERROR);
      out.push_back(std::move(t));
    }
  }
  return out;
}

}  // namespace crucible::golden
