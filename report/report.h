// Summaries of a run for people (terminal table) and programs (JSON).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/error.h"
#include "protocol/crucible.pb.h"
#include "storage/store.h"

namespace crucible::report {

// One attempt as the report sees it: its state and, once finished, its score.
struct AttemptView {
  v1::Attempt attempt;
  std::optional<v1::Score> score;
};

// One row per agent.
struct AgentRow {
  std::string agent;
  int attempts = 0;      // all attempts of the agent in the run
  int finished = 0;      // attempts with a score
  int infra_failed = 0;  // attempts that failed for infrastructure reasons
  int completed = 0;
  double completion_rate = 0;     // completed / attempts
  double mean_files_touched = 0;  // over finished attempts
  int64_t median_wall_ms = 0;     // over finished attempts
  // Attempts on the run's untestable tasks (v1::Run.untestable_tasks: doing
  // nothing completes them), run with --include-untestable. Counted here
  // only, never in the fields above.
  int untestable_attempts = 0;
  int untestable_completed = 0;
};

// Groups `attempts` by agent, in the order the agents appear in `run`.
// Attempts on tasks of run.untestable_tasks count apart (untestable_*).
std::vector<AgentRow> Summarize(const v1::Run& run, const std::vector<AttemptView>& attempts);

// Loads the run and its attempts and scores from `store` and summarizes them.
// kNotFound: "run 'ID' not found".
Result<std::vector<AgentRow>> SummarizeRun(storage::Store& store, const std::string& run_id);

// A fixed-width table with a header line, one line per agent; then, when
// the run included untestable tasks, their attempts and completions per
// agent under a line saying they are not in the completion rate.
std::string RenderTable(const std::vector<AgentRow>& rows);

// What the run left out, or counts apart, because doing nothing completes it
// ("left out 2 of 9 tasks: no FAIL_TO_PASS test ...: t-1, t-2; ..."), one
// line; "" when the run's split has no untestable task.
std::string DescribeUntestable(const v1::Run& run);

// A JSON array, one object per agent with the keys agent, attempts, finished,
// infra_failed, completed, completion_rate, mean_files_touched,
// median_wall_ms, untestable_attempts, untestable_completed.
std::string RenderJson(const v1::Run& run, const std::vector<AgentRow>& rows);

}  // namespace crucible::report
