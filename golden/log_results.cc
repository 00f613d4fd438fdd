// ParseLog, the presets and the result format names.
#include "golden/log_results.h"

#include <fmt/core.h>
#include <fmt/format.h>
#include <re2/re2.h>

#include <algorithm>
#include <array>
#include <map>
#include <memory>
#include <optional>
#include <unordered_map>
#include <utility>
#include <variant>

#include "golden/utf8.h"

namespace crucible::golden {

namespace {

using v1::TestOutcome;

constexpr size_t kMessageBytes = 1024;  // as ParseJunit cuts messages
// A status target: the line counts as if it did not name the test, as an
// official parser that does not record the word leaves it absent.
constexpr std::string_view kAbsentTarget = "absent";

std::optional<TestOutcome::Status> StatusNamed(std::string_view name) {
  if (name == "passed") return TestOutcome::PASSED;
  if (name == "failed") return TestOutcome::FAILED;
  if (name == "skipped") return TestOutcome::SKIPPED;
  if (name == "error") return TestOutcome::ERROR;
  return std::nullopt;
}

// A pattern compiled, with the indexes of its two groups.
struct Compiled {
  std::unique_ptr<RE2> re;
  int test = 0;
  int status = 0;
};

// The key of `spec` that is wrong and why, or the compiled pattern.
struct Problem {
  std::string key;
  std::string what;
};

std::variant<Compiled, Problem> Compile(const v1::LogResults& spec) {
  if (spec.pattern().empty()) {
    return Problem{"pattern", "it is empty; it needs the named groups test and status"};
  }
  RE2::Options options;
  options.set_log_errors(false);
  Compiled c;
  c.re = std::make_unique<RE2>(spec.pattern(), options);
  if (!c.re->ok()) {
    return Problem{"pattern", fmt::format("RE2 cannot compile it: {}", c.re->error())};
  }
  const auto& groups = c.re->NamedCapturingGroups();
  for (auto [name, index] : {std::pair{"test", &c.test}, {"status", &c.status}}) {
    auto it = groups.find(name);
    if (it == groups.end()) {
      return Problem{"pattern",
                     fmt::format("it has no named group '{}' (write (?P<{}>...))", name, name)};
    }
    *index = it->second;
  }
  if (spec.status().empty()) {
    return Problem{"status",
                   "no status word is mapped (map each word of the `status` group to passed, "
                   "failed, skipped, error or absent)"};
  }
  std::map<std::string, std::string> sorted(spec.status().begin(), spec.status().end());
  for (const auto& [word, target] : sorted) {
    if (!StatusNamed(target) && target != kAbsentTarget) {
      return Problem{"status", fmt::format("'{}' maps to '{}', not to passed, failed, skipped, "
                                           "error or absent",
                                           word, target)};
    }
  }
  if (!spec.absent().empty() && spec.absent() != "failed" && spec.absent() != "error" &&
      spec.absent() != "skipped") {
    return Problem{"absent", fmt::format("'{}' is not failed, error or skipped", spec.absent())};
  }
  return c;
}

// `line` without ANSI escape sequences (CSI: ESC '[' parameters, a final
// letter), as a tool forced to colour prints them.
std::string_view WithoutColour(std::string_view line, std::string& buffer) {
  if (line.find('\x1b') == std::string_view::npos) return line;
  buffer.clear();
  for (size_t i = 0; i < line.size(); ++i) {
    if (line[i] == '\x1b' && i + 1 < line.size() && line[i + 1] == '[') {
      size_t j = i + 2;
      while (j < line.size() &&
             ((line[j] >= '0' && line[j] <= '9') || line[j] == ';' || line[j] == '?')) {
        ++j;
      }
      if (j < line.size()) {
        i = j;  // the final byte
        continue;
      }
    }
    buffer += line[i];
  }
  return buffer;
}

std::string KnownWords(const v1::LogResults& spec) {
  std::vector<std::string> words;
  for (const auto& [word, target] : spec.status()) words.push_back(word);
  std::sort(words.begin(), words.end());
  return fmt::format("{}", fmt::join(words, ", "));
}

struct Preset {
  const char* name;
  const char* pattern;
  std::vector<std::pair<const char*, const char*>> status;
};

// The presets, sorted by name. docs/suites.md "Results from logs" says which
// official SWE-bench parser each follows and where it differs.
const std::vector<Preset>& Presets() {
  static const std::vector<Preset> presets = {
      // cargo test: "test path::to::t ... ok" (SWE-bench's parse_log_cargo).
      {"cargo",
       R"(^\s*test\s+(?P<test>\S+)\s+\.\.\.\s+(?P<status>ok|FAILED|ignored)(?:,.*)?\s*$)",
       {{"ok", "passed"}, {"FAILED", "failed"}, {"ignored", "absent"}}},
      // Django's runner with -v 2: "test_x (module.Class) ... ok"
      // (parse_log_django).
      {"django",
       R"(^\s*(?P<test>.+?) \.\.\.  ?(?P<status>ok|OK|FAIL|ERROR|skipped)(?:\s+['"].*)?\s*$)",
       {{"ok", "passed"},
        {"OK", "passed"},
        {"FAIL", "failed"},
        {"ERROR", "error"},
        {"skipped", "skipped"}}},
      // go test -v: "--- PASS: TestX (0.00s)", subtests indented
      // (parse_log_gotest).
      {"go",
       R"(^\s*--- (?P<status>PASS|FAIL|SKIP): (?P<test>.+) \(.+\)\s*$)",
       {{"PASS", "passed"}, {"FAIL", "failed"}, {"SKIP", "skipped"}}},
      // Jest --verbose ("✓ title (5 ms)") and Vitest's verbose reporter
      // ("✓ file > describe > title 5ms") (parse_log_jest, parse_log_vitest).
      {"jest",
       R"(^\s*(?P<status>✓|✕|×|○|↓)\s(?P<test>.+?)(?:\s\(\d+(?:\.\d+)?\s*m?s\)|\s\d+(?:\.\d+)?\s*m?s|\s\[skipped\])?\s*$)",
       {{"✓", "passed"}, {"✕", "failed"}, {"×", "failed"}, {"○", "skipped"}, {"↓", "skipped"}}},
      // pytest -rA's short test summary: "PASSED tests/x.py::test_a",
      // "FAILED tests/x.py::test_b - AssertionError" (parse_log_pytest).
      {"pytest",
       R"(^(?P<status>PASSED|FAILED|SKIPPED|ERROR|XFAIL|XPASS)\s+(?P<test>[^\s\[]\S*))",
       {{"PASSED", "passed"},
        {"FAILED", "failed"},
        {"SKIPPED", "skipped"},
        {"ERROR", "error"},
        {"XFAIL", "passed"},
        {"XPASS", "failed"}}},
      // sympy's bin/test --verbose: "test_x ok", "test_y F", "test_z E"
      // (parse_log_sympy).
      {"sympy",
       R"(^\s*(?P<test>test_\S*)(?:\s.*?)?\s(?P<status>ok|F|E|f|s|X)(?:\s+\[(?:OK|FAIL)\])?\s*$)",
       {{"ok", "passed"},
        {"F", "failed"},
        {"E", "error"},
        {"f", "failed"},
        {"s", "absent"},
        {"X", "failed"}}},
  };
  return presets;
}

}  // namespace

namespace internal {

Result<std::vector<TestOutcome>> ParseLogParts(const std::vector<std::string_view>& parts,
                                               const std::vector<bool>& cut,
                                               const v1::LogResults& spec,
                                               const std::vector<std::string>& expected,
                                               size_t* matched_lines) {
  auto compiled = Compile(spec);
  if (auto* p = std::get_if<Problem>(&compiled)) {
    return Fail(Code::kInvalidArgument, fmt::format("{}: {}", p->key, p->what));
  }
  const Compiled& c = std::get<Compiled>(compiled);
  const TestOutcome::Status absent = *StatusNamed(spec.absent().empty() ? "failed" : spec.absent());
  std::vector<TestOutcome> out;
  std::unordered_map<std::string, size_t> index;
  std::vector<re2::StringPiece> groups(static_cast<size_t>(c.re->NumberOfCapturingGroups()) + 1);
  std::string buffer;
  size_t line_no = 0, matched = 0;
  for (size_t i = 0; i < parts.size(); ++i) {
    std::string_view text = parts[i];
    if (i < cut.size() && cut[i]) {
      // The last line was cut at the size limit: it may name half a test.
      size_t last = text.rfind('\n');
      text = last == std::string_view::npos ? std::string_view() : text.substr(0, last + 1);
    }
    while (!text.empty()) {
      size_t nl = text.find('\n');
      std::string_view line = text.substr(0, nl);
      text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
      ++line_no;
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      line = WithoutColour(line, buffer);
      if (!c.re->Match(re2::StringPiece(line.data(), line.size()), 0, line.size(), RE2::UNANCHORED,
                       groups.data(), static_cast<int>(groups.size()))) {
        continue;
      }
      const re2::StringPiece test = groups[static_cast<size_t>(c.test)];
      const re2::StringPiece word = groups[static_cast<size_t>(c.status)];
      if (test.empty()) continue;
      const std::string status_word(word.data() == nullptr ? "" : std::string(word));
      auto target = spec.status().find(status_word);
      if (target == spec.status().end()) {
        return Fail(Code::kCorruption,
                    fmt::format("line {}: status word '{}' is not in the status map (known: {})",
                                line_no, internal::ToValidUtf8(status_word), KnownWords(spec)));
      }
      ++matched;
      std::string id = internal::ToValidUtf8(std::string_view(test.data(), test.size()));
      auto [it, added] = index.emplace(id, out.size());
      if (added) {
        out.emplace_back();
        out.back().set_id(std::move(id));
      }
      TestOutcome& t = out[it->second];
      t.clear_message();
      if (target->second == kAbsentTarget) {
        t.set_status(absent);
        t.set_message(fmt::format("read as absent (status '{}'): {}",
                                  internal::ToValidUtf8(status_word),
                                  internal::ToValidUtf8(line.substr(0, kMessageBytes))));
        continue;
      }
      t.set_status(*StatusNamed(target->second));
      if (t.status() == TestOutcome::FAILED || t.status() == TestOutcome::ERROR) {
        t.set_message(internal::ToValidUtf8(line.substr(0, kMessageBytes)));
      }
    }
  }
  for (const auto& id : expected) {
    if (index.contains(id)) continue;
    index.emplace(id, out.size());
    TestOutcome& t = out.emplace_back();
    t.set_id(internal::ToValidUtf8(id));
    t.set_status(absent);
    t.set_message(std::string(kAbsentFromLog));
  }
  if (matched_lines != nullptr) *matched_lines = matched;
  return out;
}

std::optional<std::pair<std::string, std::string>> LogResultsProblem(const v1::LogResults& spec) {
  auto compiled = Compile(spec);
  if (auto* p = std::get_if<Problem>(&compiled)) return std::pair{p->key, p->what};
  return std::nullopt;
}

}  // namespace internal

Status ValidateLogResults(const v1::LogResults& spec) {
  if (auto problem = internal::LogResultsProblem(spec)) {
    return Fail(Code::kInvalidArgument, fmt::format("{}: {}", problem->first, problem->second));
  }
  return {};
}

Result<std::vector<TestOutcome>> ParseLog(std::string_view log, const v1::LogResults& spec,
                                          const std::vector<std::string>& expected) {
  return internal::ParseLogParts({log}, {false}, spec, expected, nullptr);
}

const std::vector<std::string>& LogPresetNames() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> n;
    for (const auto& p : Presets()) n.push_back(p.name);
    return n;
  }();
  return names;
}

Result<v1::LogResults> LogPreset(std::string_view name) {
  for (const auto& p : Presets()) {
    if (name != p.name) continue;
    v1::LogResults spec;
    spec.set_preset(p.name);
    spec.set_pattern(p.pattern);
    for (const auto& [word, target] : p.status) (*spec.mutable_status())[word] = target;
    return spec;
  }
  return Fail(Code::kNotFound, fmt::format("unknown log preset '{}' (known: {})", name,
                                           fmt::join(LogPresetNames(), ", ")));
}

Result<NamedResults> ResultsByName(std::string_view name) {
  NamedResults r;
  if (name == "regex") {
    return Fail(Code::kInvalidArgument,
                fmt::format("results 'regex' needs a pattern: give the `log` mapping in the suite "
                            "configuration, or name a preset ({})",
                            fmt::join(LogPresetNames(), ", ")));
  }
  if (auto format = ParseResultFormat(name); format) {
    r.format = *format;
    return r;
  }
  auto preset = LogPreset(name);
  if (!preset) {
    return Fail(Code::kInvalidArgument,
                fmt::format("unknown results '{}' (junit, tap, exit-code, {})", name,
                            fmt::join(LogPresetNames(), ", ")));
  }
  r.format = ResultFormat::kRegex;
  r.log = std::move(*preset);
  return r;
}

}  // namespace crucible::golden
