// `crucible report --suite S --trend`: each agent's headline metrics over
// the runs of a suite, oldest first (docs/reports.md, "Trends"). LoadTrend
// gathers what the table, JSON and CSV here and the HTML line chart of
// report/html.h draw.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/error.h"
#include "stats/stats.h"
#include "storage/store.h"

namespace crucible::report {

// One agent in one run. Rates are over the agent's attempts on the run's
// testable tasks, as in `crucible report`.
struct TrendPoint {
  std::string agent;
  int attempts = 0;
  int finished = 0;
  int completed = 0;  // loose
  int strict_completed = 0;
  double loose_rate = 0;
  stats::Interval loose_ci;  // Wilson 95%
  double strict_rate = 0;
  stats::Interval strict_ci;
  int regression_measured = 0;
  std::optional<double> regression_rate;  // nullopt when never measured
  std::optional<stats::Interval> regression_ci;
  std::optional<double> review_loops_mean;
  std::optional<double> cost_per_completion_usd;
};

// One run ("night") of the suite.
struct TrendRun {
  std::string run_id;
  int64_t created_at_ms = 0;
  bool running = false;            // not finished: the numbers are of what finished so far
  std::vector<TrendPoint> agents;  // in the run's agent order
};

struct Trend {
  std::string suite;
  std::vector<std::string> agents;  // every agent shown, in order of first appearance
  std::vector<TrendRun> runs;       // created_at order, oldest first
  int runs_total = 0;               // the suite's runs before --last
};

struct TrendOptions {
  std::string agent;  // only this agent; "" for all
  int last = 0;       // only the last N runs; 0 for all
};

// kNotFound: "suite 'S' not found" (no such suite and no run of it), or an
// agent in none of its runs (naming those that are); kInvalidArgument: the
// suite has no runs, or a negative `last`.
Result<Trend> LoadTrend(storage::Store& store, const std::string& suite,
                        const TrendOptions& options = {});

// One block per agent, a line per run; a note for runs still running.
std::string RenderTrendTable(const Trend& trend);

// {"suite", "runs_total", "agents": [...], "runs": [{"run", "created_at_ms",
// "running", "agents": [{"agent", "attempts", ..., "loose_ci": [low, high],
// ...}]}]}.
std::string RenderTrendJson(const Trend& trend);

// One row per run x agent, with a header (RFC 4180).
std::string RenderTrendCsv(const Trend& trend);

}  // namespace crucible::report
