// Calibration (docs/scoring.md "Calibration"): the oracle, the noop and the
// mutants (agent-runner/mutants.h) run on a suite, and a matrix says which
// score caught which of them on how many tasks. A score nobody has seen catch
// its fault is a guess; this is where it is seen.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "base/error.h"
#include "protocol/crucible.pb.h"
#include "storage/store.h"

namespace crucible::report {

// The agents of a calibration run, in the matrix's row order:
// builtin:oracle, builtin:noop, then builtin:mutant-KIND for every kind of
// runner::MutantKinds(). Their names are "oracle", "noop", "mutant-KIND".
std::vector<v1::AgentSpec> CalibrationAgents();

// The matrix's columns, in order: the metrics "completion" (caught: not
// loosely completed), "strict" (not a strict completion), "regression"
// (a regression; measured only when Score.regression_measured); the five
// dimensions "replay", "tool_calls", "coherence", "plan", "rollback"
// (caught: measured and below 1); the violation kinds "out_of_scope",
// "reformat", "oversized", "scanner", "stale_reference", "broken_import"
// (caught: the score has a violation of that kind).
const std::vector<std::string>& CalibrationColumns();

struct CalibrationCell {
  int caught = 0;
  // Tasks where the agent's fault applies and the column was measurable;
  // 0 prints "n/a".
  int measured = 0;
  std::vector<std::string> caught_tasks;
};

struct CalibrationRow {
  std::string agent;                   // "oracle", "noop", "mutant-reformat", ...
  std::vector<CalibrationCell> cells;  // one per CalibrationColumns()
  // Columns that must catch this agent on every task where it applies, and
  // those that may (a consequence of the definitions in docs/scoring.md).
  std::vector<std::string> meant;
  std::vector<std::string> allowed;
  int applicable = 0;  // tasks where the mutant applied (every task for oracle and noop)
  // Tasks where it did not, with the mutant's reason.
  std::vector<std::pair<std::string, std::string>> not_applicable;
};

// A reason for calibration to fail (`failures`) or a warning (`crossed`).
struct CalibrationProblem {
  std::string agent;
  std::string column;
  std::vector<std::string> tasks;
  std::string what;  // one sentence for people, naming the agent, score and tasks
};

struct Calibration {
  std::string run_id;
  std::string suite;
  std::vector<std::string> tasks;  // task ids of the run, in order
  std::vector<CalibrationRow> rows;
  // The oracle flagged by anything, the noop completing a task, a mutant not
  // caught by a score meant for it on a task where it applies.
  std::vector<CalibrationProblem> failures;
  // A mutant caught by a score neither meant nor allowed for it.
  std::vector<CalibrationProblem> crossed;
  // Attempts that did not finish ("RUN/N task agent: error").
  std::vector<std::string> incomplete;
  // Each task's status, as StoreTaskCalibration stores it.
  std::map<std::string, v1::TaskCalibration> per_task;
  // Where the runners' time went, over the finished attempts read:
  // Evidence.wall_ms (whole attempts), the test runs in them (the hidden
  // tests, the regression tests and silent-regression's search, which is
  // test runs), and that search alone.
  struct Timing {
    int attempts = 0;
    int64_t attempt_ms = 0;
    int64_t test_run_ms = 0;
    int64_t search_ms = 0;
  } timing;
  bool ok() const { return failures.empty() && incomplete.empty(); }
};

struct CalibrateOptions {
  // Checks to treat as switched off when reading the stored scores: a
  // violation kind (its violations are dropped, strict completion
  // recomputed) or a dimension (treated as not measured). For showing that
  // calibration notices a broken scorer (`crucible calibrate --switch-off`).
  std::vector<std::string> switch_off;
};

// The matrix of a finished calibration run from its stored scores and
// evidence. kInvalidArgument when the run is not a calibration run (it lacks
// one of CalibrationAgents()), or a switch_off name is unknown.
Result<Calibration> Calibrate(storage::Store& store, const std::string& run_id,
                              const CalibrateOptions& options = {});

// The matrix as a table for a terminal, then the failures and warnings.
std::string RenderCalibrationTable(const Calibration& calibration);
// The same as JSON (docs/scoring.md "Calibration" gives its shape).
std::string RenderCalibrationJson(const Calibration& calibration);

// Stores each task's status (calibration.per_task) in its GoldenTask, so
// `crucible suite show` prints it. Tasks of the suite not in the run keep
// theirs.
Status StoreTaskCalibration(storage::Store& store, const Calibration& calibration);

// The environment check (docs/swebench.md "Environment check"): the oracle
// and the noop say whether each task's environment reproduces it. A task is
// "mismatch" when the gold patch does not resolve it (the oracle's attempt
// did not complete: the FAIL_TO_PASS or PASS_TO_PASS tests that did not
// pass, or why the tests did not run) or some FAIL_TO_PASS test passes
// without it (the noop's attempt), else "ok". When the attempt that decides
// could not finish (infrastructure), the status stays unset and the detail
// says why.
struct EnvironmentCheck {
  std::string run_id;
  std::string suite;
  std::vector<std::string> tasks;  // task ids of the run, in order
  std::map<std::string, v1::TaskEnvironment> per_task;
  std::vector<std::string> mismatched() const;
  std::vector<std::string> unchecked() const;  // status left unset
  bool ok() const { return mismatched().empty(); }
};

// builtin:oracle and builtin:noop, named "oracle" and "noop".
std::vector<v1::AgentSpec> EnvironmentAgents();

// Reads the environment check from a finished run's oracle and noop attempts
// (an environment run or a full calibration run). kInvalidArgument when the
// run lacks either agent.
Result<EnvironmentCheck> CheckEnvironment(storage::Store& store, const std::string& run_id);

// The tasks' statuses for a terminal (mismatches with their failing tests),
// and as JSON ({"run", "suite", "tasks": [{"task", "status", "failing",
// "detail"}], "mismatched", "unchecked", "ok"}).
std::string RenderEnvironmentTable(const EnvironmentCheck& check);
std::string RenderEnvironmentJson(const EnvironmentCheck& check);

// Stores each task's TaskEnvironment in its GoldenTask (runs then leave the
// mismatched ones out). Tasks of the suite not in the run keep theirs.
Status StoreTaskEnvironment(storage::Store& store, const EnvironmentCheck& check);

}  // namespace crucible::report
