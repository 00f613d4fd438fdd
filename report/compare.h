// `crucible compare`: agents of one run, or the same agent across runs,
// paired by task and sample (docs/reports.md, "Comparing agents and runs").
// Compare gathers everything a rendering needs (the table, JSON and CSV
// here, the HTML page of report/html.h) into a Comparison.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "report/report.h"
#include "stats/stats.h"
#include "storage/store.h"

namespace crucible::report {

// One side as given on the command line: "RUN:AGENT", or "RUN" (agent
// empty) for every agent of the run.
struct Side {
  std::string run_id;
  std::string agent;
};

// "RUN" or "RUN:AGENT"; kInvalidArgument naming `text` when either part is
// empty.
Result<Side> ParseSide(std::string_view text);

// pass@k and pass^k of loose completion for one k, averaged over the tasks
// with at least k finished samples.
struct PassK {
  int k = 0;
  int tasks = 0;
  double pass_at_k = 0;
  double pass_hat_k = 0;
};

// One agent of one run, as compared.
struct ComparedSide {
  std::string run_id;
  std::string agent;
  std::string suite;
  bool run_running = false;  // the run has not finished: only finished attempts count
  int attempts = 0;          // on the run's testable tasks
  int finished = 0;          // with a score
  int infra_failed = 0;
  int no_submission = 0;  // of finished: a predictions agent had no patch (Score.no_submission)
  int tasks = 0;          // testable tasks it has attempts on
  int samples = 1;        // the run's samples per task
  int rounds = 1;         // review rounds the agent had in its run (AgentSpec.rounds)
  // With samples > 1: pass@k and pass^k for k = 1 .. samples, and the mean
  // over tasks of the sample variance of loose completion.
  std::vector<PassK> pass_k;
  std::optional<double> completion_variance;
};

// A task and sample where one side's 0/1 outcome differs from the other's,
// with both attempts ("RUN/N").
struct Flip {
  std::string task_id;
  int sample = 0;
  std::string a_attempt;
  std::string b_attempt;
};

// The metrics, in the order they are shown; their names are the JSON keys,
// the CSV's metric column and --fail-if-worse's METRIC.
inline constexpr std::string_view kCompareMetrics[] = {
    "loose_completion", "strict_completion", "regression_rate", "out_of_scope_share",
    "replay",           "tool_calls",        "coherence",       "plan",
    "rollback",         "cost_per_attempt"};

// One metric of one comparison. Rates and dimensions are fractions (0..1;
// shown as points, hundredths); cost is in US dollars per attempt.
struct MetricComparison {
  std::string name;
  bool binary = false;           // 0/1 per attempt (a rate), else a mean
  bool higher_is_better = true;  // false for regression, out-of-scope and cost
  int pairs = 0;                 // pairs where both sides measured it
  int tasks = 0;                 // the tasks of those pairs
  std::optional<double> a;       // over those pairs; nullopt with none
  std::optional<double> b;
  std::optional<stats::Interval> a_ci;  // Wilson 95%, rates only
  std::optional<stats::Interval> b_ci;
  // b - a: the mean over tasks of the per-task mean difference, with the
  // paired bootstrap 95% interval over tasks.
  stats::Estimate difference;
  // Pairs where only A scored (A had 1, B 0; for means: A higher) and where
  // only B did.
  int only_a = 0;
  int only_b = 0;
  // Over tasks: "mcnemar_exact" for a rate with one pair per task, else
  // "sign_test" (the exact binomial test on the tasks whose per-task mean
  // differences are not 0; McNemar's test is its 0/1 case).
  std::string test;
  double p = 1;
  double p_adjusted = 1;     // Holm over the comparisons with A; = p with one
  bool significant = false;  // p_adjusted < 0.05
  // The smallest difference detectable at 80% power, two-sided 0.05, over
  // `tasks` tasks; nullopt when nothing bounds it (a cost with no spread).
  std::optional<double> minimum_detectable;
  // Rates only: the pairs that flipped each way.
  std::vector<Flip> flips_to_a;  // A 1, B 0
  std::vector<Flip> flips_to_b;  // A 0, B 1
};

// B against A, over their shared (task, sample) pairs.
struct SideComparison {
  size_t a = 0;  // index into Comparison::sides (always 0: the baseline)
  size_t b = 0;
  int pairs = 0;
  int tasks = 0;
  // Pairs of shared tasks left out, and tasks of one side only.
  int left_out_not_finished = 0;
  int left_out_infra_failed = 0;
  int a_tasks_not_in_b = 0;
  int b_tasks_not_in_a = 0;
  std::vector<MetricComparison> metrics;  // kCompareMetrics order
  std::string headline_metric;            // strict_completion, or loose_completion
  std::string sentence;                   // the closing sentence
};

struct Comparison {
  std::vector<ComparedSide> sides;  // sides[0] is the baseline A
  std::vector<SideComparison> comparisons;
  bool holm = false;  // more than one comparison: p-values Holm-adjusted
  // Runs still running, sides with other review rounds than the baseline,
  // and what that means.
  std::vector<std::string> notes;
};

// Compares `views[0]`'s agent `agents[0]` and so on: the pure part of
// Compare, for runs already loaded. kInvalidArgument when fewer than two
// sides, when an agent has no finished attempt, or when a comparison has no
// shared finished pair.
Result<Comparison> CompareViews(const std::vector<const RunView*>& views,
                                const std::vector<std::string>& agents);

// Loads the sides' runs and compares. kNotFound: "run 'X' not found", or an
// agent not in its run (naming the run's agents).
Result<Comparison> Compare(storage::Store& store, const std::vector<Side>& sides);

// The side's name as shown: "RUN:AGENT".
std::string SideName(const ComparedSide& side);

// A text table per comparison, the pass@k lines, notes and the closing
// sentences.
std::string RenderComparisonTable(const Comparison& c);

// {"sides": [...], "comparisons": [{"a", "b", "pairs", "tasks", "left_out":
// {...}, "metrics": {NAME: {...}}, "sentence"}], "holm", "notes"}.
std::string RenderComparisonJson(const Comparison& c);

// One row per comparison x metric, with a header (RFC 4180).
std::string RenderComparisonCsv(const Comparison& c);

// A --fail-if-worse gate: METRIC:POINTS.
struct WorseGate {
  std::string metric;
  double points = 0;  // in the metric's unit shown: points, or dollars for cost
};

// "METRIC:POINTS"; kInvalidArgument naming the text, or the metric with the
// list of metrics.
Result<WorseGate> ParseWorseGate(std::string_view text);

// The gates some comparison fails, one line each ("strict_completion: B is
// 12.0 points worse than A, 95% CI -20.0 to -5.0, p = 0.004; the gate
// allows 5"). A gate fails when B is worse on the metric, significantly
// (p_adjusted < 0.05), and the whole 95% interval lies beyond POINTS in the
// worse direction.
std::vector<std::string> FailedGates(const Comparison& c, const std::vector<WorseGate>& gates);

}  // namespace crucible::report
