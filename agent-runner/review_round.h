// Review rounds (docs/review-loop.md): after each round of an agent's work,
// stage 1 (CI: the suite's build and the visible tests, on the base commit
// plus the agent's diff) and stage 2 (the scoped review: the review bar and
// the --reviewer hooks); then the feedback the agent reads in its next round.
// The hidden test patch and the regression tests never take part.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "protocol/crucible.pb.h"
#include "sandbox/quota.h"

namespace crucible::runner {

// The feedback of one round, as text and as the task file's "feedback"
// object, stays under this many bytes; what is cut is said in it.
inline constexpr size_t kMaxFeedbackBytes = 64 * 1024;
// A round's diff is stored in its ReviewRound up to this size (the final diff
// has its own, larger limit).
inline constexpr size_t kMaxRoundDiffBytes = size_t{1} << 20;
// A reviewer that says nothing for this long is stopped (ReviewerSpec.timeout_s
// overrides it).
inline constexpr std::chrono::seconds kDefaultReviewerTimeout{300};
// Comments kept from one reviewer in one round, and bytes of each.
inline constexpr int kMaxReviewerComments = 100;
inline constexpr size_t kMaxCommentBytes = 2048;

struct RoundContext {
  const v1::GoldenTask& task;
  const std::string& repo;  // repository to check the CI tree out from
  const v1::ReviewRules& rules;
  const std::vector<v1::ReviewerSpec>& reviewers;
  // Scratch directory of this round's stages (created; the caller removes it).
  std::string box;
  uint64_t quota_bytes = 0;  // size cap of the CI tree (a tmpfs), 0: none
  std::function<void()> tick;
};

// A directory of the attempt that sandboxed code writes into, readable by
// root only: a tmpfs of at most `quota_bytes` when the runner has a quota (so
// every place the sandbox can write counts against it), else a plain
// directory.
Result<std::optional<sandbox::QuotaDir>> WritableBox(const std::string& dir, uint64_t quota_bytes);

// Paths of `touched` that are test infrastructure of `task`
// (GoldenTask.test_infrastructure) outside its golden source change: the
// base versions of these are put back before any test run.
std::vector<std::string> TamperedInfrastructure(const v1::GoldenTask& task,
                                                const std::vector<std::string>& touched);

// Runs stage 1 and stage 2 on `round`, whose diff and files_touched are set:
// fills ci, ci_passed, ci_failing, ci_error, review, stage_errors,
// merge_ready and the wall times. A reviewer that hangs, fails or prints
// garbage is a stage error, never the agent's fault. Returns an Error only
// when the runner itself failed (the CI tree or the sandbox could not be set
// up).
Status RunReviewStages(const RoundContext& rc, v1::ReviewRound& round);

// The review bar's violations of `diff` as the agent is told them: file, line
// and a sentence that names nothing of the golden patch (its files or size).
// `facts` are the static checks of the base commit with the diff applied.
std::vector<v1::ReviewComment> ReviewBarComments(const v1::GoldenTask& task,
                                                 const v1::ReviewRules& rules,
                                                 const std::string& diff,
                                                 const v1::StaticFacts& facts);

// The "feedback" object of the task file for the round after `round`
// ({"round", "ci", "review", "text"}, docs/review-loop.md), under
// kMaxFeedbackBytes; sets round.feedback_text and, when something was cut,
// round.feedback_truncated.
nlohmann::json MakeFeedback(v1::ReviewRound& round);

}  // namespace crucible::runner
