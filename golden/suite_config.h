// The suite configuration file (YAML): how a repository's tests run and which
// changes are worth a task. Documented in docs/suites.md.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "protocol/crucible.pb.h"

namespace crucible::golden {

// Review rounds an agent may have (ReviewRules.rounds, AgentSpec.rounds;
// docs/review-loop.md).
inline constexpr int kMaxReviewRounds = 10;

// Every field is optional: std::nullopt (or an empty list) means the file did
// not set it, so command-line flags and built-in defaults apply.
struct SuiteConfig {
  std::optional<std::string> test_cmd;
  std::optional<std::string> setup_cmd;
  std::optional<std::string> results;  // "junit", "tap", "exit-code" or "regex"
  // With results "regex": the `log` mapping, or the preset `results` named.
  std::optional<v1::LogResults> log_results;
  std::optional<std::vector<std::string>> test_files;
  // skip:
  std::optional<bool> skip_defaults;  // false: the default skip patterns are dropped
  std::vector<std::string> skip_generated;
  std::vector<std::string> skip_docs;
  std::vector<std::string> skip_version_files;
  std::optional<size_t> max_changed_lines;
  // timeouts:
  std::optional<int> test_timeout_s;
  std::optional<int> setup_timeout_s;
  std::optional<int> repeat;
  std::optional<int> jobs;
  std::optional<bool> require_f2p;
  std::vector<std::string> banned_patterns;
  // The `sandbox` key: a sandbox policy (sandbox/policy.h) as YAML text,
  // already validated; from the mapping itself or from the policy file it
  // names (relative to the configuration file's directory).
  std::optional<std::string> sandbox_policy;
  // Test infrastructure globs (golden/test_infra.h); unset: the built-in list.
  std::optional<std::vector<std::string>> test_infrastructure;
  // `regression_tests: newest | none`: whether mining computes each task's
  // regression tests (golden/miner.h ComputeRegressionTests); unset: newest.
  std::optional<bool> regression_tests;
  // The `review` mapping: the review bar's allowed paths, oversized
  // thresholds, module globs and contained-files limit; unset fields take
  // scoring's defaults.
  std::optional<v1::ReviewRules> review;
};

// Parses the YAML `text`; `file` names it in errors. kInvalidArgument
// "FILE:LINE:COL: ..." for YAML that does not parse, an unknown key (naming
// it and the known ones), a value of the wrong type or out of range (naming
// the key), a test_cmd without {junit} when results is "junit", or a
// `sandbox` policy that ParsePolicy refuses (an inline mapping's errors carry
// the configuration file's line and column; a policy file's, that file's),
// `regression_tests` other than newest or none, and in `review` an unknown
// key, a factor that is not a number above 0 or a negative count.
// A relative policy file name is resolved against the directory of `file`.
Result<SuiteConfig> ParseSuiteConfig(std::string_view text, const std::string& file);

// Reads and parses `path`; kNotFound when it cannot be read.
Result<SuiteConfig> LoadSuiteConfig(const std::string& path);

}  // namespace crucible::golden
