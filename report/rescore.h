// `crucible rescore`: recomputes the scores of a stored run with the current
// scoring rules (scoring::kScoringVersion) from what is stored (the task, the
// evidence, the trace and the suite's review bar), so a scoring change never
// needs agents to run again.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "base/error.h"
#include "protocol/crucible.pb.h"
#include "storage/store.h"

namespace crucible::report {

struct RescoreOptions {
  // Compute and compare only; store nothing.
  bool dry_run = false;
  // Called after each finished attempt with (looked at, to look at).
  std::function<void(size_t done, size_t total)> progress = {};
};

// One attempt whose verdict the new score changes.
struct RescoredAttempt {
  uint64_t number = 0;
  std::string agent;
  std::string task_id;
  int sample = 0;
  std::vector<std::string> changes;  // DescribeScoreChange
};

// A finished attempt that could not be rescored; it keeps its old score.
struct SkippedAttempt {
  uint64_t number = 0;
  std::string task_id;
  std::string reason;  // "task 'T' of suite 'S' not found", ...
  // True when a stored record could not be read (corrupt, I/O), false when
  // something is simply gone (the task, the evidence).
  bool error = false;
};

struct RescoreSummary {
  std::string run_id;
  uint32_t scoring_version = 0;
  bool dry_run = false;
  size_t rescored = 0;                   // scores recomputed (and stored unless dry_run)
  std::vector<RescoredAttempt> changed;  // of those, the ones whose verdict changed
  std::vector<SkippedAttempt> skipped;
};

// What changed in the verdict from `before` to `after`, one phrase each:
// loose and strict completion flips ("strict completion: yes -> no"),
// regression, violations added and removed ("+ out_of_scope docs/x.md"),
// scanner findings added and removed, dimension changes ("replay: null ->
// 0.70") and failure modes added and removed. Empty when the verdict is the
// same (other fields, such as the scoring version, may differ).
std::vector<std::string> DescribeScoreChange(const v1::Score& before, const v1::Score& after);

// Rescores every finished (DONE) attempt of `run_id`: loads its task
// (store.GetTask(run.suite, task_id)), evidence and trace and the suite's
// review bar (scoring::RulesFor; the defaults when the suite is gone),
// scores it with scoring::ScoreAttempt and, unless options.dry_run, stores
// the new score (PutScore). An attempt whose task or evidence is gone, or
// whose records cannot be read, is skipped with the reason and keeps its old
// score. Scores are written with group commit (store.SetGroupCommit), synced
// every few hundred and at the end, and group commit is off again on return.
//
// Errors: "run 'ID' not found" (kNotFound); a failure to store a score stops
// the rescoring ("rescoring run 'ID': attempt N: ...; K scores stored before
// it, the others keep their old scores"); the score being stored is then
// unchanged.
Result<RescoreSummary> RescoreRun(storage::Store& store, const std::string& run_id,
                                  const RescoreOptions& options = {});

// One line per changed attempt ("attempt 3 (agent a, task t, sample 0):
// strict completion: yes -> no; + out_of_scope docs/x.md"), one per skipped
// attempt, then the summary ("rescored 120 attempts of run X with scoring
// version 2: 7 changed").
std::string RenderRescore(const RescoreSummary& summary);

}  // namespace crucible::report
