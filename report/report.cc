#include "report/report.h"

#include <algorithm>
#include <map>
#include <set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace crucible::report {

std::vector<AgentRow> Summarize(const v1::Run& run, const std::vector<AttemptView>& attempts) {
  std::vector<AgentRow> rows;
  std::map<std::string, size_t> index;
  auto row_for = [&](const std::string& agent) -> AgentRow& {
    auto [it, inserted] = index.emplace(agent, rows.size());
    if (inserted) rows.push_back(AgentRow{.agent = agent});
    return rows[it->second];
  };
  for (const auto& a : run.agents()) row_for(a.name());

  const std::set<std::string> untestable(run.untestable_tasks().begin(),
                                         run.untestable_tasks().end());
  std::map<std::string, std::vector<int64_t>> walls;
  std::map<std::string, int64_t> files;
  for (const auto& view : attempts) {
    AgentRow& row = row_for(view.attempt.agent());
    if (untestable.contains(view.attempt.task_id())) {
      ++row.untestable_attempts;
      if (view.score && view.score->completed()) ++row.untestable_completed;
      continue;
    }
    ++row.attempts;
    if (view.attempt.state() == v1::Attempt::FAILED) ++row.infra_failed;
    if (!view.score) continue;
    ++row.finished;
    if (view.score->completed()) ++row.completed;
    files[row.agent] += view.score->files_touched();
    walls[row.agent].push_back(view.score->wall_ms());
  }
  for (auto& row : rows) {
    if (row.attempts > 0) row.completion_rate = static_cast<double>(row.completed) / row.attempts;
    auto& w = walls[row.agent];
    if (!w.empty()) {
      row.mean_files_touched = static_cast<double>(files[row.agent]) / w.size();
      std::sort(w.begin(), w.end());
      size_t n = w.size();
      row.median_wall_ms = n % 2 ? w[n / 2] : (w[n / 2 - 1] + w[n / 2]) / 2;
    }
  }
  return rows;
}

Result<std::vector<AgentRow>> SummarizeRun(storage::Store& store, const std::string& run_id) {
  CRUCIBLE_ASSIGN_OR_RETURN(v1::Run run, store.GetRun(run_id));
  CRUCIBLE_ASSIGN_OR_RETURN(auto attempts, store.ListAttempts(run_id));
  std::vector<AttemptView> views;
  views.reserve(attempts.size());
  for (auto& a : attempts) {
    AttemptView v{.attempt = a, .score = std::nullopt};
    if (a.state() == v1::Attempt::DONE) {
      auto score = store.GetScore(run_id, a.number());
      if (score) {
        v.score = *score;
      } else if (score.error().code() != Code::kNotFound) {
        return Fail(score.error());
      }
    }
    views.push_back(std::move(v));
  }
  return Summarize(run, views);
}

namespace {

std::string FormatDuration(int64_t ms) {
  if (ms < 1000) return fmt::format("{}ms", ms);
  if (ms < 60'000) return fmt::format("{:.1f}s", ms / 1000.0);
  return fmt::format("{}m{:02}s", ms / 60'000, (ms / 1000) % 60);
}

}  // namespace

std::string RenderTable(const std::vector<AgentRow>& rows) {
  size_t width = 5;
  for (const auto& r : rows) width = std::max(width, r.agent.size());
  std::string out =
      fmt::format("{:<{}}  {:>8}  {:>9}  {:>10}  {:>13}  {:>11}\n", "agent", width, "attempts",
                  "completed", "completion", "files touched", "median wall");
  for (const auto& r : rows) {
    std::string infra = r.infra_failed ? fmt::format(" ({} infra)", r.infra_failed) : "";
    out += fmt::format("{:<{}}  {:>8}  {:>9}  {:>9.1f}%  {:>13.1f}  {:>11}{}\n", r.agent, width,
                       r.attempts, r.completed, 100.0 * r.completion_rate, r.mean_files_touched,
                       FormatDuration(r.median_wall_ms), infra);
  }
  if (std::any_of(rows.begin(), rows.end(),
                  [](const AgentRow& r) { return r.untestable_attempts > 0; })) {
    out +=
        "\ntasks with no FAIL_TO_PASS test (doing nothing completes them), not in the "
        "completion rate:\n";
    out += fmt::format("{:<{}}  {:>8}  {:>9}\n", "agent", width, "attempts", "completed");
    for (const auto& r : rows) {
      out += fmt::format("{:<{}}  {:>8}  {:>9}\n", r.agent, width, r.untestable_attempts,
                         r.untestable_completed);
    }
  }
  return out;
}

std::string DescribeUntestable(const v1::Run& run) {
  const int untestable = run.untestable_tasks_size();
  if (untestable == 0) return "";
  constexpr int kListed = 10;
  std::string ids;
  for (int i = 0; i < untestable && i < kListed; ++i) {
    ids += (i > 0 ? ", " : "") + run.untestable_tasks(i);
  }
  if (untestable > kListed) ids += fmt::format(" and {} more", untestable - kListed);
  const int per_task = std::max(1, run.agents_size() * std::max(1, run.samples()));
  const int run_tasks = run.attempt_count() / per_task;
  if (!run.include_untestable()) {
    return fmt::format(
        "left out {} of {} tasks: no FAIL_TO_PASS test (the base commit already passes every "
        "test that decides them, so doing nothing completes them): {}; --include-untestable "
        "runs them, reported apart",
        untestable, run_tasks + untestable, ids);
  }
  return fmt::format(
      "{} of {} tasks have no FAIL_TO_PASS test (doing nothing completes them): {}; their "
      "attempts are reported apart, not in the completion rate",
      untestable, run_tasks, ids);
}

std::string RenderJson(const v1::Run& run, const std::vector<AgentRow>& rows) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& r : rows) {
    out.push_back({{"run", run.id()},
                   {"suite", run.suite()},
                   {"agent", r.agent},
                   {"attempts", r.attempts},
                   {"finished", r.finished},
                   {"infra_failed", r.infra_failed},
                   {"completed", r.completed},
                   {"completion_rate", r.completion_rate},
                   {"mean_files_touched", r.mean_files_touched},
                   {"median_wall_ms", r.median_wall_ms},
                   {"untestable_attempts", r.untestable_attempts},
                   {"untestable_completed", r.untestable_completed}});
  }
  return out.dump(2) + "\n";
}

}  // namespace crucible::report
