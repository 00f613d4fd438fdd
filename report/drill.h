// Listing runs and drilling down (docs/reports.md): `crucible runs`, the
// agent x task matrix of `crucible report RUN --by task`, and every CSV of
// `crucible report --format csv`.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/error.h"
#include "report/report.h"
#include "storage/store.h"

namespace crucible::report {

// "RUN/N": how people name an attempt (`crucible show RUN/N`).
std::string AttemptRef(const v1::Attempt& attempt);

// One past run as `crucible runs` lists it: the run and its agents' rows.
struct RunListing {
  v1::Run run;
  std::vector<AgentRow> rows;
  int attempts = 0;  // all attempts, testable or not
  int finished = 0;  // of those, DONE or FAILED
};

// The runs of `suite` (all when empty), newest first (created_at_ms, then
// id), at most `limit` (all when 0), each summarized.
Result<std::vector<RunListing>> ListRunListings(storage::Store& store, const std::string& suite,
                                                size_t limit);

// One line per agent of each run: id, created (UTC, ISO 8601), suite, state,
// attempts finished/total, agent, strict and loose completion with their
// intervals; the run's columns on its first agent's line only. Says so in a
// line when there is no run ("no runs in the database" or "no runs of suite
// 'S'", given as `empty`).
std::string RenderRunsTable(const std::vector<RunListing>& runs, const std::string& empty);
// A JSON array, one object per run: run, created (ISO 8601), created_at_ms,
// suite, state, attempts, finished, agents [{agent, attempts, settled,
// completed, completion_rate, completion_rate_ci, strict_completed,
// strict_completion_rate, strict_completion_rate_ci}].
std::string RenderRunsJson(const std::vector<RunListing>& runs);
// CSV, one row per run and agent, with a header.
std::string RenderRunsCsv(const std::vector<RunListing>& runs);

// The outcome of one attempt as one character: "S" strict completion, "L"
// loose only (the tests pass), "x" failed, "!" infrastructure failure, "."
// not finished.
char OutcomeSymbol(const AttemptView& view);
// The outcome's word in JSON and CSV: strict, loose, failed, infra,
// unfinished.
std::string OutcomeName(const AttemptView& view);

// The agent x task matrix: one line per task (in attempt order), one column
// per agent (in the run's order); each cell the outcome symbols of its
// samples in sample order, then the cell's attempt numbers; a legend
// underneath.
std::string RenderTaskMatrix(const v1::Run& run, const std::vector<AttemptView>& attempts);
// {"run", "suite", "agents": [...], "tasks": [{"task", "untestable",
// "agents": {AGENT: [{attempt_id "RUN/N", sample, outcome}]}}]}.
std::string RenderTaskMatrixJson(const v1::Run& run, const std::vector<AttemptView>& attempts);

// CSV, one row per agent: the AgentRow's counts, rates and their 95%
// intervals (columns *_low, *_high), with a header.
std::string RenderAgentsCsv(const v1::Run& run, const std::vector<AgentRow>& rows);
// CSV, one row per attempt with a header: run, attempt_id ("RUN/N"), task,
// agent, sample, state, outcome and the key scores. With `by_task` the rows
// are ordered by task (in attempt order), then agent, then sample; else in
// attempt order.
std::string RenderAttemptsCsv(const v1::Run& run, const std::vector<AttemptView>& attempts,
                              bool by_task);

}  // namespace crucible::report
