// Test results read from a test command's output (results "regex" and its
// presets; docs/suites.md "Results from logs").
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/error.h"
#include "golden/test_run.h"
#include "protocol/crucible.pb.h"

namespace crucible::golden {

// The message of an outcome made for an expected test the log never names.
inline constexpr std::string_view kAbsentFromLog = "absent from the test log";

// kInvalidArgument naming the key that is wrong ("pattern", "status",
// "absent"): a pattern RE2 does not compile (with RE2's message) or without
// the named groups `test` and `status`, an empty status map, a status target
// other than passed, failed, skipped, error or absent, an absent other than failed,
// error or skipped (empty: failed).
Status ValidateLogResults(const v1::LogResults& log);

// Reads `log` line by line (a line ends at '\n'; a trailing '\r' and ANSI
// colour sequences are dropped) with `spec`: each line the pattern matches
// (RE2, unanchored unless the pattern anchors it) with a non-empty `test`
// group is one outcome, its status `spec.status[status group]`. A test named
// on several lines is one outcome, at its first place, with its last status
// (as SWE-bench's log parsers keep the last). Then each of `expected` the log
// never names is an outcome with the absent status (spec.absent, "failed"
// when empty) and the message kAbsentFromLog. Ids are valid UTF-8.
// kInvalidArgument for a spec ValidateLogResults refuses; kCorruption
// "line N: status word 'W' is not in the status map (known: ...)" for a
// status word the map lacks.
Result<std::vector<v1::TestOutcome>> ParseLog(std::string_view log, const v1::LogResults& spec,
                                              const std::vector<std::string>& expected);

// The names of the presets: cargo, django, go, jest, pytest, sympy.
const std::vector<std::string>& LogPresetNames();

// The preset `name` (its LogResults.preset is `name`); kNotFound naming the
// known presets otherwise.
Result<v1::LogResults> LogPreset(std::string_view name);

// A result format named the way `results:` and `--results` name it.
struct NamedResults {
  ResultFormat format = ResultFormat::kJunit;
  v1::LogResults log;  // set for a preset
};

// "junit" (or ""), "tap", "exit-code" or a preset name. kInvalidArgument for
// "regex" (it needs a pattern, which a name cannot give) and for an unknown
// name, listing the formats and the presets.
Result<NamedResults> ResultsByName(std::string_view name);

// What a TestRun's infra_error says when a regex run exited 0 but no line of
// its output matched.
inline constexpr std::string_view kNoLineMatched =
    "test command exited 0 but no line of its output matched the results pattern";

namespace internal {

// ParseLog over several texts read one after the other (stdout, then
// stderr), each ending a line at its end. `cut[i]` true: text i was cut at a
// size limit, so its last unterminated line is not read.
Result<std::vector<v1::TestOutcome>> ParseLogParts(const std::vector<std::string_view>& parts,
                                                   const std::vector<bool>& cut,
                                                   const v1::LogResults& spec,
                                                   const std::vector<std::string>& expected,
                                                   size_t* matched_lines);

// What ValidateLogResults refuses: the key ("pattern", "status", "absent")
// and why, for callers that place the error themselves.
std::optional<std::pair<std::string, std::string>> LogResultsProblem(const v1::LogResults& spec);

}  // namespace internal

}  // namespace crucible::golden
