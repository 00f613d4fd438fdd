// Performing one attempt: an agent on one golden task, in a sandbox.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "base/error.h"
#include "protocol/crucible.pb.h"

namespace crucible::runner {

struct AttemptContext {
  // Scratch directory of this attempt (created if missing; the caller removes
  // it). Holds the workspace, its git metadata, the task file and the trace.
  std::string workdir;
  // Receives every trace event, the agent's and the runner's own, in order.
  // `seq` is not set; the caller numbers them.
  std::function<void(v1::TraceEvent)> emit;
  // Called about every 100 ms while the agent runs.
  std::function<void()> tick;
  // Repository to check the workspace out from (the runner's cache); empty:
  // task.repo_path (a repository on this machine, as in tests and mining).
  std::string repo;
  // Name of the repository shown to the agent ($CRUCIBLE_TASK "repo");
  // empty: the last component of task.repo_path.
  std::string repo_name;
  // Wall-clock limit of the agent when its spec has none.
  std::chrono::seconds default_agent_timeout{900};
  // When > 0, the workspace is a tmpfs of at most this many bytes
  // (sandbox::QuotaDir; needs root), so the agent and the tests cannot fill
  // the runner's disk through it: writes beyond it fail with ENOSPC.
  uint64_t workspace_quota_bytes = 0;
  // Judges run after the tests (v1::JudgeSpec); their scores go to
  // Evidence.judge_scores.
  std::vector<v1::JudgeSpec> judges;
  // Review rounds (AgentSpec.rounds > 1, docs/review-loop.md): the suite's
  // review bar for stage 2, and the run's reviewers (v1::ReviewerSpec).
  v1::ReviewRules review;
  std::vector<v1::ReviewerSpec> reviewers;
  // A predictions agent's (v1::IsPredictionsAgent) patch for this task
  // (Lease.prediction); empty: no submission.
  std::string prediction;
};

// Runs `agent` on `task`:
//  1. checks out the base commit into a fresh workspace (no .git inside);
//  2. runs the agent: builtin:oracle applies the golden source patch,
//     builtin:noop changes nothing, builtin:mutant-KIND applies the golden
//     patch plus one fault (mutants.h), any other command runs in the sandbox with
//     /workspace, $CRUCIBLE_TASK and $CRUCIBLE_TRACE, while its trace is read
//     and forwarded to ctx.emit;
//     With agent.rounds > 1 (not for builtins), after each round CI and the
//     scoped review run (review_round.h); while they have something to say
//     and rounds remain, the agent runs again in the same workspace with the
//     feedback in its task file. Each round is in Evidence.rounds;
//  3. takes the final diff, applies the hidden test patch and runs the test
//     command in the sandbox;
//  4. when the task has regression tests and the hidden test patch applied,
//     applies task.regression_patch to the same tree and runs the test
//     command again: Evidence.regression_tests holds the regression ids'
//     outcomes only, or regression_error why they did not run (trace event
//     "regression_tests"). The agent never sees them.
// Returns the evidence, whatever the agent did. Returns an Error only for an
// infrastructure failure (workspace or sandbox could not be set up), naming it.
Result<v1::Evidence> PerformAttempt(const v1::GoldenTask& task, const v1::AgentSpec& agent,
                                    const AttemptContext& ctx);

// Makes `evidence` small enough to travel in a message of at most `limit`
// bytes (0: no limit), so a result never waits forever behind a message the
// coordinator refuses. Drops, as far as needed and in this order: the test
// messages (hidden and regression tests), the agent's output tail, the final diff (diff_bytes and
// files_touched stay), then every test outcome, regression tests included
// (the attempt then cannot
// count as passing). Each drop is named in evidence.truncated. Returns
// false when even that is too large (the caller reports an error instead).
bool FitEvidence(v1::Evidence& evidence, size_t limit);

}  // namespace crucible::runner
