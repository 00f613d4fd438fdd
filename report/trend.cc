#include "report/trend.h"

#include <algorithm>
#include <ctime>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "report/csv.h"
#include "report/report.h"

namespace crucible::report {

namespace {

TrendPoint PointOf(const AgentRow& row) {
  TrendPoint p;
  p.agent = row.agent;
  p.attempts = row.attempts;
  p.finished = row.finished;
  p.completed = row.completed;
  p.strict_completed = row.strict_completed;
  p.loose_rate = row.completion_rate;
  p.loose_ci = stats::Wilson(row.completed, row.attempts);
  p.strict_rate = row.strict_completion_rate;
  p.strict_ci = stats::Wilson(row.strict_completed, row.attempts);
  p.regression_measured = row.regression_measured;
  p.regression_rate = row.regression_rate;
  if (row.regression_measured > 0) {
    p.regression_ci = stats::Wilson(row.regressions, row.regression_measured);
  }
  p.review_loops_mean = row.review_loops_mean;
  p.cost_per_completion_usd = row.cost_per_completion_usd;
  return p;
}

std::string Day(int64_t ms) {
  std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M", &tm);
  return buf;
}

}  // namespace

Result<Trend> LoadTrend(storage::Store& store, const std::string& suite,
                        const TrendOptions& options) {
  if (options.last < 0) {
    return Fail(Code::kInvalidArgument,
                fmt::format("--last {}: give a number of runs >= 1", options.last));
  }
  CRUCIBLE_ASSIGN_OR_RETURN(std::vector<v1::Run> all, store.ListRuns());
  std::vector<v1::Run> runs;
  for (auto& r : all) {
    if (r.suite() == suite) runs.push_back(std::move(r));
  }
  if (runs.empty()) {
    auto found = store.GetSuite(suite);
    if (!found) {
      if (found.error().code() != Code::kNotFound) return Fail(found.error());
      return Fail(Code::kNotFound, fmt::format("suite '{}' not found", suite));
    }
    return Fail(
        Code::kInvalidArgument,
        fmt::format("suite '{}' has no runs yet (crucible run --suite {} ...)", suite, suite));
  }
  std::stable_sort(runs.begin(), runs.end(), [](const v1::Run& x, const v1::Run& y) {
    return x.created_at_ms() < y.created_at_ms();
  });
  Trend trend;
  trend.suite = suite;
  trend.runs_total = static_cast<int>(runs.size());
  if (options.agent.empty() == false) {
    std::vector<std::string> seen;
    bool found = false;
    for (const auto& r : runs) {
      for (const auto& a : r.agents()) {
        found = found || a.name() == options.agent;
        if (std::find(seen.begin(), seen.end(), a.name()) == seen.end()) seen.push_back(a.name());
      }
    }
    if (!found) {
      return Fail(Code::kNotFound,
                  fmt::format("agent '{}' is in no run of suite '{}' (its agents: {})",
                              options.agent, suite, fmt::join(seen, ", ")));
    }
    // Only the runs that have the agent are its nights.
    std::erase_if(runs, [&](const v1::Run& r) {
      return std::none_of(r.agents().begin(), r.agents().end(),
                          [&](const auto& a) { return a.name() == options.agent; });
    });
  }
  if (options.last > 0 && static_cast<int>(runs.size()) > options.last) {
    runs.erase(runs.begin(), runs.end() - options.last);
  }
  for (const auto& r : runs) {
    CRUCIBLE_ASSIGN_OR_RETURN(RunView view, LoadRun(store, r.id()));
    TrendRun night{.run_id = r.id(),
                   .created_at_ms = r.created_at_ms(),
                   .running = r.state() == v1::Run::RUNNING,
                   .agents = {}};
    for (const AgentRow& row : Summarize(view.run, view.attempts, view.contained_files)) {
      if (!options.agent.empty() && row.agent != options.agent) continue;
      night.agents.push_back(PointOf(row));
      if (std::find(trend.agents.begin(), trend.agents.end(), row.agent) == trend.agents.end()) {
        trend.agents.push_back(row.agent);
      }
    }
    trend.runs.push_back(std::move(night));
  }
  return trend;
}

namespace {

std::string RateCell(double rate, const stats::Interval& ci) {
  return fmt::format("{:.1f}% [{:.0f}-{:.0f}]", rate * 100, ci.low * 100, ci.high * 100);
}

}  // namespace

std::string RenderTrendTable(const Trend& trend) {
  std::string out = fmt::format("suite {}: {} of its {} runs, oldest first\n", trend.suite,
                                trend.runs.size(), trend.runs_total);
  size_t width = 3;
  for (const auto& r : trend.runs) width = std::max(width, r.run_id.size());
  bool any_running = false;
  for (const auto& agent : trend.agents) {
    out += fmt::format("\n{}\n", agent);
    out += fmt::format("  {:<{}}  {:<16}  {:>8}  {:<17}  {:<17}  {:<17}  {:>5}  {:>10}\n", "run",
                       width, "created (UTC)", "attempts", "loose", "strict", "regression", "loops",
                       "$/strict");
    for (const auto& r : trend.runs) {
      auto p = std::find_if(r.agents.begin(), r.agents.end(),
                            [&](const TrendPoint& x) { return x.agent == agent; });
      if (p == r.agents.end()) continue;
      any_running = any_running || r.running;
      out += fmt::format(
          "  {:<{}}  {:<16}  {:>8}  {:<17}  {:<17}  {:<17}  {:>5}  {:>10}{}\n", r.run_id, width,
          Day(r.created_at_ms), p->attempts, RateCell(p->loose_rate, p->loose_ci),
          RateCell(p->strict_rate, p->strict_ci),
          p->regression_rate ? RateCell(*p->regression_rate, *p->regression_ci) : "-",
          p->review_loops_mean ? fmt::format("{:.2f}", *p->review_loops_mean) : "-",
          p->cost_per_completion_usd ? fmt::format("${:.4f}", *p->cost_per_completion_usd) : "-",
          r.running ? "  (running)" : "");
    }
  }
  out +=
      "\n(rates over each run's testable attempts with Wilson 95% intervals; regression over "
      "the attempts where it was measured; loops: mean review rounds to merge-ready)\n";
  if (any_running)
    out +=
        "note: runs marked (running) have not finished: their numbers cover what finished so far\n";
  return out;
}

std::string RenderTrendJson(const Trend& trend) {
  auto opt = [](const std::optional<double>& v) {
    return v ? nlohmann::json(*v) : nlohmann::json(nullptr);
  };
  nlohmann::json runs = nlohmann::json::array();
  for (const auto& r : trend.runs) {
    nlohmann::json agents = nlohmann::json::array();
    for (const auto& p : r.agents) {
      agents.push_back(
          {{"agent", p.agent},
           {"attempts", p.attempts},
           {"finished", p.finished},
           {"completed", p.completed},
           {"strict_completed", p.strict_completed},
           {"loose_completion", p.loose_rate},
           {"loose_ci", {p.loose_ci.low, p.loose_ci.high}},
           {"strict_completion", p.strict_rate},
           {"strict_ci", {p.strict_ci.low, p.strict_ci.high}},
           {"regression_measured", p.regression_measured},
           {"regression_rate", opt(p.regression_rate)},
           {"regression_ci",
            p.regression_ci ? nlohmann::json::array({p.regression_ci->low, p.regression_ci->high})
                            : nlohmann::json(nullptr)},
           {"review_loops_mean", opt(p.review_loops_mean)},
           {"cost_per_completion_usd", opt(p.cost_per_completion_usd)}});
    }
    runs.push_back({{"run", r.run_id},
                    {"created_at_ms", r.created_at_ms},
                    {"running", r.running},
                    {"agents", agents}});
  }
  nlohmann::json out = {{"suite", trend.suite},
                        {"runs_total", trend.runs_total},
                        {"agents", trend.agents},
                        {"runs", runs}};
  return out.dump(2) + "\n";
}

std::string RenderTrendCsv(const Trend& trend) {
  std::string out = CsvRecord({"run",
                               "created_at_ms",
                               "running",
                               "agent",
                               "attempts",
                               "finished",
                               "completed",
                               "strict_completed",
                               "loose_completion",
                               "loose_low",
                               "loose_high",
                               "strict_completion",
                               "strict_low",
                               "strict_high",
                               "regression_measured",
                               "regression_rate",
                               "regression_low",
                               "regression_high",
                               "review_loops_mean",
                               "cost_per_completion_usd"});
  auto num = [](double v) { return fmt::format("{:.6g}", v); };
  auto opt = [&](const std::optional<double>& v) { return v ? num(*v) : std::string(); };
  for (const auto& r : trend.runs) {
    for (const auto& p : r.agents) {
      out += CsvRecord({r.run_id,
                        std::to_string(r.created_at_ms),
                        r.running ? "yes" : "no",
                        p.agent,
                        std::to_string(p.attempts),
                        std::to_string(p.finished),
                        std::to_string(p.completed),
                        std::to_string(p.strict_completed),
                        num(p.loose_rate),
                        num(p.loose_ci.low),
                        num(p.loose_ci.high),
                        num(p.strict_rate),
                        num(p.strict_ci.low),
                        num(p.strict_ci.high),
                        std::to_string(p.regression_measured),
                        opt(p.regression_rate),
                        p.regression_ci ? num(p.regression_ci->low) : "",
                        p.regression_ci ? num(p.regression_ci->high) : "",
                        opt(p.review_loops_mean),
                        opt(p.cost_per_completion_usd)});
    }
  }
  return out;
}

}  // namespace crucible::report
