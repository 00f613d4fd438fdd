// Summaries of a run for people (terminal table) and programs (JSON).
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "protocol/crucible.pb.h"
#include "stats/stats.h"
#include "storage/store.h"

namespace crucible::report {

// One attempt as the report sees it: its state and, once finished, its score.
struct AttemptView {
  v1::Attempt attempt;
  std::optional<v1::Score> score;
  // Tokens and cost of its LLM calls (Evidence.usage), when it has evidence.
  std::optional<v1::Usage> usage = std::nullopt;
  // What people decided (`crucible review`): the latest verdict (greatest
  // at_ms; of equal times, the one added last), and how many needs-changes
  // verdicts came before its first accept (in at_ms order).
  std::optional<v1::Verdict> verdict = std::nullopt;
  int needs_changes_before_accept = 0;
};

// Fills `views`' verdict fields from `verdicts` (any order; those of other
// attempts are ignored), as LoadRun does.
void AttachVerdicts(std::vector<AttemptView>& views, const std::vector<v1::Verdict>& verdicts);

// An attempt's failure modes: the score's, plus the tags of its latest
// verdict ("MODE" adds one, "-MODE" removes one). Sorted, each once.
std::vector<std::string> FailureModesOf(const AttemptView& view);

// Median, 90th percentile (nearest rank) and maximum of a list of counts;
// all 0 for an empty list.
struct Spread {
  double median = 0;
  double p90 = 0;
  double max = 0;
};

// The mean of one dimension (or judge score) over the attempts that
// measured it: null is not zero, so `covered` says how many did, out of `of`
// scored attempts.
struct DimensionMean {
  std::optional<double> mean;  // nullopt when no attempt measured it
  int covered = 0;
  int of = 0;
};

// The five dimensions of docs/scoring.md, in their order; also the
// keys of the JSON.
inline constexpr std::array<std::string_view, 5> kDimensionNames = {
    "replay", "tool_calls", "coherence", "plan", "rollback"};

// The dimension of `d` at index `i` of kDimensionNames (rollback for any
// index past the last).
const v1::Dimension& DimensionAt(const v1::Dimensions& d, size_t i);

// One row per agent. The metrics of docs/scoring.md are computed
// over the agent's attempts on testable tasks; rates whose set of attempts is
// empty are nullopt.
struct AgentRow {
  std::string agent;
  int attempts = 0;      // all attempts of the agent in the run
  int finished = 0;      // attempts with a score
  int infra_failed = 0;  // attempts that failed for infrastructure reasons
  // Predictions agents: attempts without a patch (Score.no_submission),
  // counted in attempts (so against the completion rate, as SWE-bench's
  // resolved rate counts them) and nowhere else; and what reading the
  // predictions file found wrong (AgentSpec.prediction_warnings).
  int no_submission = 0;
  std::vector<std::string> prediction_warnings;
  int completed = 0;              // loose completions: the tests pass
  double completion_rate = 0;     // completed / attempts
  double mean_files_touched = 0;  // over finished attempts
  int64_t median_wall_ms = 0;     // over finished attempts
  // Attempts on the run's untestable tasks (v1::Run.untestable_tasks: doing
  // nothing completes them), run with --include-untestable. Counted here
  // only, never in the fields above or below.
  int untestable_attempts = 0;
  int untestable_completed = 0;

  // Scores written by a scoring version older than 2, which has none of the
  // fields below (`crucible rescore` recomputes them).
  int old_scores = 0;
  // Strict completion: loose, no violation and merge-ready in round 1.
  int strict_completed = 0;
  double strict_completion_rate = 0;  // strict_completed / attempts
  double tests_pass_rate = 0;         // loose completion rate (= completion_rate)
  // Of the attempts with regression_measured (every FAIL_TO_PASS test
  // passes), the share that broke a PASS_TO_PASS or regression test, and the
  // share whose diff has an out-of-scope change.
  int regression_measured = 0;
  int regressions = 0;
  std::optional<double> regression_rate;
  std::optional<double> out_of_scope_rate;
  // Review loops: the mean merge_ready_round over the attempts that became
  // merge-ready, and how many became so in round 1, 2, 3 or later, or never.
  std::optional<double> review_loops_mean;
  int merge_ready_round_1 = 0;
  int merge_ready_round_2 = 0;
  int merge_ready_round_3 = 0;  // round 3 or later
  int merge_ready_never = 0;
  // Blast radius over the scored attempts that are not strict completions;
  // contained: at most `contained_files` files changed.
  int blast_attempts = 0;
  Spread blast_files;
  Spread blast_modules;
  Spread blast_lines;
  Spread blast_broken_tests;
  std::optional<double> contained_share;
  // The five dimensions, in kDimensionNames order.
  std::array<DimensionMean, 5> dimensions;
  std::map<std::string, int> violations;  // kind -> violations
  // tag -> attempts: derived from the evidence, with people's verdict tags
  // added and removed (FailureModesOf); failure_modes_by_people counts the
  // attempts where a person's tag added the mode.
  std::map<std::string, int> failure_modes;
  std::map<std::string, int> failure_modes_by_people;
  std::map<std::string, std::map<std::string, DimensionMean>> judges;  // judge -> dimension
  // Tokens and cost over the agent's attempts on testable tasks, from their
  // evidence (Usage). cost_usd is nullopt when no attempt reported or priced
  // one; cost_partial_attempts counts the attempts with unpriced calls (their
  // cost is a lower bound). cost_per_completion_usd: cost_usd over strict
  // completions, nullopt with none.
  int usage_attempts = 0;  // attempts that made at least one LLM call
  uint64_t llm_calls = 0;
  uint64_t tokens_in = 0;
  uint64_t tokens_out = 0;
  uint64_t tokens_cached = 0;
  uint64_t tokens_cache_write = 0;
  std::optional<double> cost_usd;
  int cost_partial_attempts = 0;
  std::optional<double> cost_per_completion_usd;
  // The review-bar gap: over scored attempts with a verdict (the latest
  // counts), how many were reviewed and what people decided;
  // human_agreement: the share of those (with scores of version 2 or later)
  // where strict completion agrees with the person (strict and accept, or
  // not strict and not accept); loose_rejected_share: of the loosely
  // completed ones (loose_reviewed), the share people did not accept (reject
  // or needs-changes); human_review_loops_mean: over accepted attempts, 1 +
  // the needs-changes verdicts before the first accept (evaluation.md
  // "Review loop count", counted for people). nullopt without attempts.
  int reviewed = 0;
  int accepted = 0;
  int rejected = 0;
  int needs_changes = 0;
  std::optional<double> human_agreement;
  int loose_reviewed = 0;
  int loose_rejected = 0;  // of loose_reviewed: rejected or needs-changes
  std::optional<double> loose_rejected_share;
  std::optional<double> human_review_loops_mean;

  // A run still in progress: the agent's attempts (testable or not) that are
  // neither DONE nor FAILED yet. The rates above cover the `settled` ones
  // (DONE or FAILED), so that they are not diluted by attempts that have not
  // run; in a finished run settled == attempts.
  int unfinished = 0;
  int settled = 0;
  // The counts behind the shares above.
  int out_of_scope = 0;  // of regression_measured
  int contained = 0;     // of blast_attempts
  int agreement_of = 0;  // reviewed attempts with a version-2 score
  int agreed = 0;
  // Wilson 95% intervals (stats::Wilson) of the rates above, nullopt
  // exactly when the rate is (or, for the completion rates, without a
  // settled attempt).
  std::optional<stats::Interval> completion_ci;
  std::optional<stats::Interval> strict_completion_ci;
  std::optional<stats::Interval> regression_ci;
  std::optional<stats::Interval> out_of_scope_ci;
  std::optional<stats::Interval> contained_ci;
  std::optional<stats::Interval> human_agreement_ci;
  std::optional<stats::Interval> loose_rejected_ci;
  // Several samples per task (testable tasks; the settled attempts of each):
  // for k = 1 .. samples, pass@k and pass^k (stats::PassAtK/PassHatK per
  // task, the mean over the tasks with at least k settled samples, counted in
  // pass_k_tasks), of loose and of strict completion; and the mean over tasks
  // with two or more settled samples of the per-task sample variance of the
  // 0/1 outcomes. Empty and nullopt when every task has at most one sample.
  int samples = 0;  // the most settled samples of one task
  std::vector<double> pass_at_k, pass_hat_k, strict_pass_at_k, strict_pass_hat_k;
  std::vector<int> pass_k_tasks;
  std::optional<double> sample_variance;
  std::optional<double> strict_sample_variance;
};

// Groups `attempts` by agent, in the order the agents appear in `run`.
// Attempts on tasks of run.untestable_tasks count apart (untestable_*).
// A failed attempt is contained when it changed at most `contained_files`
// files (the suite's ReviewRules.contained_files; scoring's default is 2).
std::vector<AgentRow> Summarize(const v1::Run& run, const std::vector<AttemptView>& attempts,
                                int contained_files = 2);

// A run as stored: the run, its attempts with their scores, and the
// contained_files of its suite's review bar (the default when the suite is
// gone).
struct RunView {
  v1::Run run;
  std::vector<AttemptView> attempts;
  int contained_files = 2;
};

// Loads the run and its attempts, their scores, usage and verdicts from `store`.
// kNotFound: "run 'ID' not found".
Result<RunView> LoadRun(storage::Store& store, const std::string& run_id);

// Everything stored about one attempt, for `crucible show` and the attempt
// sections of the HTML report: its view (score, usage, latest verdict), its
// evidence (nullopt until it finished), its golden task (nullopt when the
// suite or the task is gone: the golden diff is then unknown) and, with
// `with_events`, its trace events in order.
struct AttemptDetail {
  AttemptView view;
  std::optional<v1::Evidence> evidence;
  std::optional<v1::GoldenTask> task;
  std::vector<v1::TraceEvent> events;
};

// kNotFound: "run 'ID' not found" or "attempt ID/N not found (the run has M
// attempts, 0 to M-1)".
Result<AttemptDetail> LoadAttemptDetail(storage::Store& store, const std::string& run_id,
                                        uint64_t number, bool with_events = true);

// LoadRun, then Summarize.
Result<std::vector<AgentRow>> SummarizeRun(storage::Store& store, const std::string& run_id);

// A fixed-width table (within 120 columns for agent names up to 20
// characters): one line per agent with attempts, completions, the loose and
// strict completion rates and regression rate each with its 95% interval
// ("40.0% [17-69]"), mean review loops, median blast radius in files and
// median wall time ("no finished attempts yet" for an agent without one);
// then out-of-scope and contained shares with intervals; then, with several
// samples per task, pass@k and pass^k per k and the variance across
// samples; then the five dimension means, each with the attempts it covers
// ("0.82 (9/10)", "-" when none); then violations and failure modes per
// agent when there are any; then, when an attempt made LLM calls, tokens and
// cost per agent ("$—" unknown, "*" partial: some calls unpriced); then, when
// some attempt has a verdict, the review-bar gap (reviewed, accepted,
// agreement, loose but rejected, human loops) with a sentence on the two
// rates; then, when the run included untestable tasks,
// their attempts and completions per agent under a line saying they are not
// in the completion rate.
std::string RenderTable(const std::vector<AgentRow>& rows);

// What the run left out, or counts apart, because doing nothing completes it
// ("left out 2 of 9 tasks: no FAIL_TO_PASS test ...: t-1, t-2; ..."), one
// line; "" when the run's split has no untestable task.
std::string DescribeUntestable(const v1::Run& run);

// The tasks the run left out (or, with --include-mismatched, included)
// because their environment check found a mismatch ("2 tasks left out:
// environment mismatch (...): t-1, t-2; --include-mismatched runs them"),
// one line; "" when it has none.
std::string DescribeMismatched(const v1::Run& run);

// A run still in progress (Run.state RUNNING, or attempts neither DONE nor
// FAILED): "run in progress: 12 of 30 attempts finished; the numbers cover
// those" ("run cancelled: ..." for a cancelled one), one line; "" when every
// attempt is finished.
std::string DescribeProgress(const v1::Run& run, const std::vector<AgentRow>& rows);

// "40.0% [22-61]": a rate with its 95% interval in whole percents; "-"
// without a rate.
std::string RateWithInterval(std::optional<double> rate, std::optional<stats::Interval> ci);

// A JSON array, one object per agent with the keys agent, attempts, finished,
// infra_failed, no_submission, prediction_warnings, completed, completion_rate, mean_files_touched,
// median_wall_ms, untestable_attempts, untestable_completed, and
// strict_completed, strict_completion_rate, tests_pass_rate,
// regression_measured, regression_rate, out_of_scope_rate,
// review_loops_mean, review_loops {"1", "2", "3", never}, blast_radius
// {attempts, files_median, files_p90, files_max, modules_*, lines_*,
// broken_tests_*, contained_share}, dimensions {NAME: {mean, covered, of}},
// violations {kind: count}, failure_modes {tag: count}, judges {judge:
// {dimension: {mean, covered, of}}}, old_scores, and llm_calls, tokens_in,
// tokens_out, tokens_cached, tokens_cache_write, cost_usd (null when
// unknown), cost_partial_attempts, cost_per_completion_usd (null without a
// strict completion or a cost), failure_modes_by_people {tag: count}, and
// reviewed, accepted, rejected, needs_changes, human_agreement,
// loose_reviewed, loose_rejected, loose_rejected_share,
// human_review_loops_mean; and each rate's Wilson interval as
// "<rate>_ci": [low, high] (blast_radius.contained_share_ci inside),
// samples, pass_at_k, pass_hat_k, strict_pass_at_k, strict_pass_hat_k,
// pass_k_tasks, sample_variance, strict_sample_variance, settled,
// unfinished, and the run's in_progress, run_attempts and
// run_attempts_finished. A rate of no attempt is null.
std::string RenderJson(const v1::Run& run, const std::vector<AgentRow>& rows);

// A JSON array, one object per attempt in attempt order: attempt_id (the
// number), attempt_ref ("RUN/N"), agent, task_id, sample, state, untestable, scored,
// scoring_version, tests_passed (loose completion), strict_completed, regression (null when not
// measured), reason, violations [{kind, file, line, detail}], findings
// [{rule, severity, file, line, match}], dimensions {NAME: value or null},
// failure_modes, blast_radius {files, modules, lines, broken_tests},
// rollback {failures, edits_per_failure, revert_ratio, pile_on} (null when
// the rollback dimension was not measured), merge_ready_round,
// not_measurable, and from its usage cost_usd, cost_source, tokens_in,
// tokens_out, tokens_cached, tokens_cache_write, llm_calls, models (null or
// empty without usage), and from its latest verdict verdict (null without
// one), verdict_tags, verdict_reviewer, verdict_note, verdict_at_ms (null) and
// needs_changes_before_accept. failure_modes include people's tags
// (FailureModesOf). An attempt without a score has the score's keys null or
// empty.
std::string RenderAttemptsJson(const v1::Run& run, const std::vector<AttemptView>& attempts);

// One short line per attempt: its id RUN/N, agent, task, sample, loose and strict
// completion, cost ("$—" unknown, "*" partial), violation kinds and failure
// modes (or the state of an attempt without a score), and the latest verdict
// ("verdict reject by ana").
std::string RenderAttemptsTable(const v1::Run& run, const std::vector<AttemptView>& attempts);

}  // namespace crucible::report
