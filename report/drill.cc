#include "report/drill.h"

#include <algorithm>
#include <ctime>
#include <map>
#include <set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "protocol/run_state.h"
#include "report/csv.h"

namespace crucible::report {

namespace {

std::string IsoTime(int64_t ms) {
  if (ms <= 0) return "-";
  const std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string Num(double v) { return fmt::format("{}", v); }
std::string Opt(std::optional<double> v) { return v ? Num(*v) : ""; }
std::string Low(const std::optional<stats::Interval>& ci) { return ci ? Num(ci->low) : ""; }
std::string High(const std::optional<stats::Interval>& ci) { return ci ? Num(ci->high) : ""; }

nlohmann::json CiJson(const std::optional<stats::Interval>& ci) {
  return ci ? nlohmann::json::array({ci->low, ci->high}) : nlohmann::json(nullptr);
}

}  // namespace

std::string AttemptRef(const v1::Attempt& attempt) {
  return fmt::format("{}/{}", attempt.run_id(), attempt.number());
}

Result<std::vector<RunListing>> ListRunListings(storage::Store& store, const std::string& suite,
                                                size_t limit) {
  CRUCIBLE_ASSIGN_OR_RETURN(std::vector<v1::Run> runs, store.ListRuns());
  std::erase_if(runs, [&](const v1::Run& r) { return !suite.empty() && r.suite() != suite; });
  std::sort(runs.begin(), runs.end(), [](const v1::Run& a, const v1::Run& b) {
    if (a.created_at_ms() != b.created_at_ms()) return a.created_at_ms() > b.created_at_ms();
    return a.id() > b.id();
  });
  if (limit > 0 && runs.size() > limit) runs.resize(limit);
  std::vector<RunListing> out;
  out.reserve(runs.size());
  for (const auto& run : runs) {
    CRUCIBLE_ASSIGN_OR_RETURN(RunView view, LoadRun(store, run.id()));
    RunListing listing;
    listing.rows = Summarize(view.run, view.attempts, view.contained_files);
    listing.attempts = static_cast<int>(view.attempts.size());
    for (const auto& a : view.attempts) listing.finished += v1::IsSettled(a.attempt);
    listing.run = std::move(view.run);
    out.push_back(std::move(listing));
  }
  return out;
}

std::string RenderRunsTable(const std::vector<RunListing>& runs, const std::string& empty) {
  if (runs.empty()) return empty + "\n";
  size_t id_width = 3, suite_width = 5, agent_width = 5;
  for (const auto& l : runs) {
    id_width = std::max(id_width, l.run.id().size());
    suite_width = std::max(suite_width, l.run.suite().size());
    for (const auto& r : l.rows) agent_width = std::max(agent_width, r.agent.size());
  }
  auto line = [&](const std::string& id, const std::string& created, const std::string& suite,
                  const std::string& state, const std::string& attempts, const std::string& agent,
                  const std::string& rest) {
    std::string s =
        fmt::format("{:<{}}  {:<20}  {:<{}}  {:<9}  {:>8}  {:<{}}  {}", id, id_width, created,
                    suite, suite_width, state, attempts, agent, agent_width, rest);
    while (!s.empty() && s.back() == ' ') s.pop_back();
    return s + "\n";
  };
  std::string out = line("run", "created (UTC)", "suite", "state", "attempts", "agent",
                         fmt::format("{:>15}  {:>15}", "strict", "loose"));
  for (const auto& l : runs) {
    bool first = true;
    auto run_cols = [&](const std::string& agent, const std::string& rest) {
      out += first ? line(l.run.id(), IsoTime(l.run.created_at_ms()), l.run.suite(),
                          v1::RunStateName(l.run.state()),
                          fmt::format("{}/{}", l.finished, l.attempts), agent, rest)
                   : line("", "", "", "", "", agent, rest);
      first = false;
    };
    if (l.rows.empty()) run_cols("-", "");
    for (const auto& r : l.rows) {
      if (r.settled == 0) {
        run_cols(r.agent, "no finished attempts");
        continue;
      }
      run_cols(r.agent,
               fmt::format("{:>15}  {:>15}",
                           RateWithInterval(r.strict_completion_rate, r.strict_completion_ci),
                           RateWithInterval(r.completion_rate, r.completion_ci)));
    }
  }
  return out;
}

std::string RenderRunsJson(const std::vector<RunListing>& runs) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& l : runs) {
    nlohmann::json agents = nlohmann::json::array();
    for (const auto& r : l.rows) {
      agents.push_back({{"agent", r.agent},
                        {"attempts", r.attempts},
                        {"settled", r.settled},
                        {"completed", r.completed},
                        {"completion_rate", r.completion_rate},
                        {"completion_rate_ci", CiJson(r.completion_ci)},
                        {"strict_completed", r.strict_completed},
                        {"strict_completion_rate", r.strict_completion_rate},
                        {"strict_completion_rate_ci", CiJson(r.strict_completion_ci)}});
    }
    out.push_back({{"run", l.run.id()},
                   {"created", IsoTime(l.run.created_at_ms())},
                   {"created_at_ms", l.run.created_at_ms()},
                   {"suite", l.run.suite()},
                   {"state", v1::RunStateName(l.run.state())},
                   {"attempts", l.attempts},
                   {"finished", l.finished},
                   {"agents", std::move(agents)}});
  }
  return out.dump(2) + "\n";
}

std::string RenderRunsCsv(const std::vector<RunListing>& runs) {
  std::string out = CsvRecord({"run", "created", "suite", "state", "attempts", "finished", "agent",
                               "agent_attempts", "settled", "strict_completion_rate",
                               "strict_completion_rate_low", "strict_completion_rate_high",
                               "completion_rate", "completion_rate_low", "completion_rate_high"});
  for (const auto& l : runs) {
    for (const auto& r : l.rows) {
      const bool any = r.settled > 0;
      out += CsvRecord({l.run.id(), IsoTime(l.run.created_at_ms()), l.run.suite(),
                        v1::RunStateName(l.run.state()), std::to_string(l.attempts),
                        std::to_string(l.finished), r.agent, std::to_string(r.attempts),
                        std::to_string(r.settled), any ? Num(r.strict_completion_rate) : "",
                        Low(r.strict_completion_ci), High(r.strict_completion_ci),
                        any ? Num(r.completion_rate) : "", Low(r.completion_ci),
                        High(r.completion_ci)});
    }
  }
  return out;
}

char OutcomeSymbol(const AttemptView& view) {
  const auto state = view.attempt.state();
  if (state == v1::Attempt::FAILED) return '!';
  if (state != v1::Attempt::DONE) return '.';
  if (!view.score || !view.score->completed()) return 'x';
  return view.score->scoring_version() >= 2 && view.score->strict_completed() ? 'S' : 'L';
}

std::string OutcomeName(const AttemptView& view) {
  switch (OutcomeSymbol(view)) {
    case 'S':
      return "strict";
    case 'L':
      return "loose";
    case 'x':
      return "failed";
    case '!':
      return "infra";
    default:
      return "unfinished";
  }
}

namespace {

// The attempts of each task (in the order tasks first appear), then of each
// agent, in sample order.
struct Matrix {
  std::vector<std::string> tasks;
  std::vector<std::string> agents;
  std::map<std::string, std::map<std::string, std::vector<const AttemptView*>>> cells;
};

Matrix BuildMatrix(const v1::Run& run, const std::vector<AttemptView>& attempts) {
  Matrix m;
  std::set<std::string> seen_agents;
  for (const auto& a : run.agents()) {
    if (seen_agents.insert(a.name()).second) m.agents.push_back(a.name());
  }
  for (const auto& v : attempts) {
    const std::string& task = v.attempt.task_id();
    if (!m.cells.contains(task)) m.tasks.push_back(task);
    if (seen_agents.insert(v.attempt.agent()).second) m.agents.push_back(v.attempt.agent());
    m.cells[task][v.attempt.agent()].push_back(&v);
  }
  for (auto& [task, by_agent] : m.cells) {
    for (auto& [agent, cell] : by_agent) {
      std::stable_sort(cell.begin(), cell.end(), [](const AttemptView* a, const AttemptView* b) {
        return a->attempt.sample() < b->attempt.sample();
      });
    }
  }
  return m;
}

// "0-3", or "0,2,5" when not consecutive.
std::string Numbers(std::vector<uint64_t> n) {
  std::sort(n.begin(), n.end());
  if (n.empty()) return "";
  if (n.back() - n.front() + 1 == n.size()) {
    return n.size() == 1 ? std::to_string(n.front()) : fmt::format("{}-{}", n.front(), n.back());
  }
  return fmt::format("{}", fmt::join(n, ","));
}

}  // namespace

std::string RenderTaskMatrix(const v1::Run& run, const std::vector<AttemptView>& attempts) {
  const Matrix m = BuildMatrix(run, attempts);
  const std::set<std::string> untestable(run.untestable_tasks().begin(),
                                         run.untestable_tasks().end());
  size_t task_width = 4;
  for (const auto& t : m.tasks) task_width = std::max(task_width, t.size() + 2);
  std::vector<size_t> widths;
  for (const auto& agent : m.agents) {
    size_t w = std::max<size_t>(agent.size(), std::max(1, run.samples()));
    for (const auto& [task, by_agent] : m.cells) {
      auto it = by_agent.find(agent);
      if (it != by_agent.end()) w = std::max(w, it->second.size());
    }
    widths.push_back(w);
  }
  std::string out = fmt::format("{:<{}}", "task", task_width);
  for (size_t i = 0; i < m.agents.size(); ++i)
    out += fmt::format("  {:<{}}", m.agents[i], widths[i]);
  out += "  attempts\n";
  for (const auto& task : m.tasks) {
    std::string line =
        fmt::format("{:<{}}", untestable.contains(task) ? task + " u" : task, task_width);
    std::vector<uint64_t> numbers;
    const auto& by_agent = m.cells.at(task);
    for (size_t i = 0; i < m.agents.size(); ++i) {
      std::string cell;
      auto it = by_agent.find(m.agents[i]);
      if (it != by_agent.end()) {
        for (const AttemptView* v : it->second) {
          cell += OutcomeSymbol(*v);
          numbers.push_back(v->attempt.number());
        }
      }
      line += fmt::format("  {:<{}}", cell.empty() ? "-" : cell, widths[i]);
    }
    line += fmt::format("  {}/{}", run.id(), Numbers(numbers));
    out += line + "\n";
  }
  out += fmt::format(
      "\nS strict completion, L loose only (the tests pass), x failed, ! infrastructure failure,\n"
      ". not finished; one symbol per sample, in sample order{}.\n"
      "`crucible show {}/N` shows an attempt; `--format json` names each cell's attempts.\n",
      untestable.empty() ? "" : "; u: untestable task (not in the completion rate)", run.id());
  return out;
}

std::string RenderTaskMatrixJson(const v1::Run& run, const std::vector<AttemptView>& attempts) {
  const Matrix m = BuildMatrix(run, attempts);
  const std::set<std::string> untestable(run.untestable_tasks().begin(),
                                         run.untestable_tasks().end());
  nlohmann::json tasks = nlohmann::json::array();
  for (const auto& task : m.tasks) {
    nlohmann::json agents = nlohmann::json::object();
    for (const auto& [agent, cell] : m.cells.at(task)) {
      nlohmann::json list = nlohmann::json::array();
      for (const AttemptView* v : cell) {
        list.push_back({{"attempt_id", AttemptRef(v->attempt)},
                        {"sample", v->attempt.sample()},
                        {"outcome", OutcomeName(*v)}});
      }
      agents[agent] = std::move(list);
    }
    tasks.push_back(
        {{"task", task}, {"untestable", untestable.contains(task)}, {"agents", std::move(agents)}});
  }
  nlohmann::json out = {
      {"run", run.id()}, {"suite", run.suite()}, {"agents", m.agents}, {"tasks", std::move(tasks)}};
  return out.dump(2) + "\n";
}

std::string RenderAgentsCsv(const v1::Run& run, const std::vector<AgentRow>& rows) {
  std::vector<std::string> header = {"run",
                                     "suite",
                                     "agent",
                                     "attempts",
                                     "settled",
                                     "unfinished",
                                     "infra_failed",
                                     "completed",
                                     "completion_rate",
                                     "completion_rate_low",
                                     "completion_rate_high",
                                     "strict_completed",
                                     "strict_completion_rate",
                                     "strict_completion_rate_low",
                                     "strict_completion_rate_high",
                                     "regression_measured",
                                     "regressions",
                                     "regression_rate",
                                     "regression_rate_low",
                                     "regression_rate_high",
                                     "out_of_scope_rate",
                                     "out_of_scope_rate_low",
                                     "out_of_scope_rate_high",
                                     "review_loops_mean",
                                     "blast_files_median",
                                     "contained_share",
                                     "contained_share_low",
                                     "contained_share_high"};
  for (auto name : kDimensionNames) header.push_back(std::string(name));
  for (const char* h :
       {"mean_files_touched", "median_wall_ms", "cost_usd", "cost_per_completion_usd", "reviewed",
        "human_agreement", "human_agreement_low", "human_agreement_high", "pass_at_k", "pass_hat_k",
        "sample_variance"}) {
    header.push_back(h);
  }
  std::string out = CsvRecord(header);
  for (const auto& r : rows) {
    const bool any = r.settled > 0;
    std::vector<std::string> f = {run.id(),
                                  run.suite(),
                                  r.agent,
                                  std::to_string(r.attempts),
                                  std::to_string(r.settled),
                                  std::to_string(r.unfinished),
                                  std::to_string(r.infra_failed),
                                  std::to_string(r.completed),
                                  any ? Num(r.completion_rate) : "",
                                  Low(r.completion_ci),
                                  High(r.completion_ci),
                                  std::to_string(r.strict_completed),
                                  any ? Num(r.strict_completion_rate) : "",
                                  Low(r.strict_completion_ci),
                                  High(r.strict_completion_ci),
                                  std::to_string(r.regression_measured),
                                  std::to_string(r.regressions),
                                  Opt(r.regression_rate),
                                  Low(r.regression_ci),
                                  High(r.regression_ci),
                                  Opt(r.out_of_scope_rate),
                                  Low(r.out_of_scope_ci),
                                  High(r.out_of_scope_ci),
                                  Opt(r.review_loops_mean),
                                  r.blast_attempts ? Num(r.blast_files.median) : "",
                                  Opt(r.contained_share),
                                  Low(r.contained_ci),
                                  High(r.contained_ci)};
    for (const auto& d : r.dimensions) f.push_back(Opt(d.mean));
    f.push_back(Num(r.mean_files_touched));
    f.push_back(std::to_string(r.median_wall_ms));
    f.push_back(Opt(r.cost_usd));
    f.push_back(Opt(r.cost_per_completion_usd));
    f.push_back(std::to_string(r.reviewed));
    f.push_back(Opt(r.human_agreement));
    f.push_back(Low(r.human_agreement_ci));
    f.push_back(High(r.human_agreement_ci));
    // pass@k and pass^k of k = 1, 2, ... as "k=1:0.75;k=2:1".
    auto ks = [](const std::vector<double>& v) {
      std::string s;
      for (size_t k = 0; k < v.size(); ++k)
        s += fmt::format("{}k={}:{}", k ? ";" : "", k + 1, v[k]);
      return s;
    };
    f.push_back(ks(r.pass_at_k));
    f.push_back(ks(r.pass_hat_k));
    f.push_back(Opt(r.sample_variance));
    out += CsvRecord(f);
  }
  return out;
}

std::string RenderAttemptsCsv(const v1::Run& run, const std::vector<AttemptView>& attempts,
                              bool by_task) {
  std::vector<const AttemptView*> order;
  if (by_task) {
    const Matrix m = BuildMatrix(run, attempts);
    for (const auto& task : m.tasks) {
      const auto& by_agent = m.cells.at(task);
      for (const auto& agent : m.agents) {
        auto it = by_agent.find(agent);
        if (it != by_agent.end()) order.insert(order.end(), it->second.begin(), it->second.end());
      }
    }
  } else {
    for (const auto& v : attempts) order.push_back(&v);
  }
  const std::set<std::string> untestable(run.untestable_tasks().begin(),
                                         run.untestable_tasks().end());
  std::vector<std::string> header = {"run",
                                     "attempt_id",
                                     "task",
                                     "agent",
                                     "sample",
                                     "state",
                                     "outcome",
                                     "untestable",
                                     "tests_passed",
                                     "strict_completed",
                                     "f2p_passed",
                                     "f2p_total",
                                     "p2p_passed",
                                     "p2p_total",
                                     "regression",
                                     "files_touched",
                                     "blast_files",
                                     "blast_lines",
                                     "merge_ready_round",
                                     "violations",
                                     "failure_modes",
                                     "wall_ms"};
  for (auto name : kDimensionNames) header.push_back(std::string(name));
  for (const char* h : {"cost_usd", "verdict", "reason"}) header.push_back(h);
  std::string out = CsvRecord(header);
  for (const AttemptView* v : order) {
    const v1::Attempt& a = v->attempt;
    std::vector<std::string> f = {run.id(),
                                  AttemptRef(a),
                                  a.task_id(),
                                  a.agent(),
                                  std::to_string(a.sample()),
                                  v1::Attempt::State_Name(a.state()),
                                  OutcomeName(*v),
                                  untestable.contains(a.task_id()) ? "true" : "false"};
    if (v->score) {
      const v1::Score& s = *v->score;
      const bool v2 = s.scoring_version() >= 2;
      std::vector<std::string> kinds;
      for (const auto& x : s.violations()) kinds.push_back(x.kind());
      const auto modes = FailureModesOf(*v);
      for (const std::string& x :
           {std::string(s.completed() ? "true" : "false"),
            v2 ? std::string(s.strict_completed() ? "true" : "false") : std::string(),
            std::to_string(s.f2p_passed()), std::to_string(s.f2p_total()),
            std::to_string(s.p2p_passed()), std::to_string(s.p2p_total()),
            s.regression_measured() ? std::string(s.regression() ? "true" : "false")
                                    : std::string(),
            std::to_string(s.files_touched()), std::to_string(s.blast_radius().files()),
            std::to_string(s.blast_radius().lines()), std::to_string(s.merge_ready_round()),
            fmt::format("{}", fmt::join(kinds, ";")), fmt::format("{}", fmt::join(modes, ";")),
            std::to_string(s.wall_ms())}) {
        f.push_back(x);
      }
      const v1::Dimensions& d = s.dimensions();
      for (const v1::Dimension* dim :
           {&d.replay(), &d.tool_calls(), &d.coherence(), &d.plan(), &d.rollback()}) {
        f.push_back(dim->measured() ? Num(dim->value()) : "");
      }
    } else {
      f.resize(f.size() + 14 + kDimensionNames.size());
    }
    f.push_back(v->usage && !v->usage->cost_source().empty() ? Num(v->usage->cost_usd()) : "");
    f.push_back(v->verdict ? v->verdict->verdict() : "");
    f.push_back(v->score ? v->score->reason() : a.error());
    out += CsvRecord(f);
  }
  return out;
}

}  // namespace crucible::report
