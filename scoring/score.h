// Scoring: a pure function of a golden task, the evidence of one attempt and
// its trace (docs/scoring.md defines every number).
//
// Nothing here runs an agent, reads a clock or touches the network;
// `crucible rescore` recomputes every score from stored evidence.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "golden/suite_config.h"
#include "protocol/crucible.pb.h"

namespace crucible::scoring {

// Version of the scoring rules; stored in every Score (scoring_version).
// 1: completion only; 2: the review bar, the four metrics, the five
// dimensions.
inline constexpr uint32_t kScoringVersion = 2;

// Defaults of v1::ReviewRules.
inline constexpr double kDefaultOversizedFactor = 2.0;
inline constexpr int kDefaultOversizedMinExtraLines = 10;
inline constexpr int kDefaultContainedFiles = 2;
// Review rounds an agent may have (AgentSpec.rounds, docs/review-loop.md).
inline constexpr int kMaxReviewRounds = golden::kMaxReviewRounds;
const std::vector<std::string>& DefaultAllowedPaths();

// The review bar of `suite`: its ReviewRules with Suite.banned_patterns
// merged in and, when the rules name no test patterns, Suite.test_patterns.
v1::ReviewRules RulesFor(const v1::Suite& suite);

struct AttemptInput {
  const v1::GoldenTask& task;
  const v1::Evidence& evidence;
  // The attempt's trace in seq order, the agent's events and the runner's.
  std::span<const v1::TraceEvent> trace = {};
  // The suite's review bar, its banned patterns merged in; default-constructed
  // rules take every default.
  const v1::ReviewRules& rules;
};

// Scores one attempt: completion (loose and strict), regression, violations,
// scanner findings, the five dimensions, blast radius, rollback and failure
// modes, with scoring_version = kScoringVersion. `completed` (loose) is true
// when the hidden test patch applied, the test run had no infrastructure
// error, and every FAIL_TO_PASS and PASS_TO_PASS test of the task passed;
// `reason` says why not. What cannot be measured is named in not_measurable,
// never scored as zero.
v1::Score ScoreAttempt(const AttemptInput& input);

// The same with no trace and the default review bar.
v1::Score ScoreAttempt(const v1::GoldenTask& task, const v1::Evidence& evidence);

// What follows from a score's completion and violations, exactly as
// ScoreAttempt derives it: out_of_scope, the merge-ready round (from the
// review rounds of `evidence`, docs/review-loop.md) and strict completion.
// For reading a stored score with some violations dropped (`crucible
// calibrate --switch-off`).
void DeriveMergeReadiness(v1::Score& score, const v1::Evidence& evidence);

// The per-file summary of a unified diff (Evidence.changes), hunks with
// their counts and whether they only change whitespace. Paths that are not
// UTF-8 are escaped (golden/utf8.h). Sets `*error` (and returns what parsed,
// possibly nothing) when the diff does not parse.
std::vector<v1::FileChange> DescribeChanges(std::string_view diff, std::string* error);

// True when the removed and added lines of a hunk differ only in whitespace
// or line breaks (and the hunk has both).
bool WhitespaceOnly(std::span<const std::string_view> removed,
                    std::span<const std::string_view> added);

}  // namespace crucible::scoring
