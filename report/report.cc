#include "report/report.h"

#include <algorithm>
#include <cctype>
#include <map>
#include <set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "protocol/run_state.h"

namespace crucible::report {

namespace {

Spread SpreadOf(std::vector<int> v) {
  Spread s;
  if (v.empty()) return s;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  s.median = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2.0;
  s.p90 = v[(9 * n + 9) / 10 - 1];  // nearest rank: ceil(0.9 n)
  s.max = v.back();
  return s;
}

std::optional<double> Share(int part, int whole) {
  if (whole <= 0) return std::nullopt;
  return static_cast<double>(part) / whole;
}

// Sums of one dimension while summarizing.
struct MeanSum {
  double sum = 0;
  int covered = 0;
  int of = 0;
  DimensionMean Mean() const {
    DimensionMean m{.mean = std::nullopt, .covered = covered, .of = of};
    if (covered > 0) m.mean = sum / covered;
    return m;
  }
};

// Everything Summarize gathers for one agent before the rates.
struct Gathered {
  std::vector<int64_t> walls;
  int64_t files = 0;
  int out_of_scope = 0;
  int64_t merge_ready_rounds = 0;
  int merge_ready = 0;
  std::vector<int> blast_files, blast_modules, blast_lines, blast_broken;
  int contained = 0;
  std::array<MeanSum, 5> dimensions;
  std::map<std::string, std::map<std::string, MeanSum>> judges;
  double cost = 0;
  bool cost_known = false;
  // People's verdicts.
  int agreement_of = 0, agreed = 0;
  int64_t human_loops = 0;
};

// Whether `usage` carries a cost (reported, priced, or priced in part).
bool HasCost(const v1::Usage& usage) { return !usage.cost_source().empty(); }

void GatherUsage(const v1::Usage& u, AgentRow& row, Gathered& g) {
  if (u.llm_calls() > 0) ++row.usage_attempts;
  row.llm_calls += u.llm_calls();
  row.tokens_in += u.tokens_in();
  row.tokens_out += u.tokens_out();
  row.tokens_cached += u.tokens_cached();
  row.tokens_cache_write += u.tokens_cache_write();
  if (HasCost(u)) {
    g.cost += u.cost_usd();
    g.cost_known = true;
  }
  if (u.cost_source() == "partial") ++row.cost_partial_attempts;
}

// What people decided about one scored attempt.
void GatherVerdict(const AttemptView& view, AgentRow& row, Gathered& g) {
  if (!view.verdict) return;
  const v1::Score& score = *view.score;
  const std::string& verdict = view.verdict->verdict();
  const bool accepted = verdict == "accept";
  ++row.reviewed;
  if (accepted) {
    ++row.accepted;
    g.human_loops += 1 + view.needs_changes_before_accept;
  }
  if (verdict == "reject") ++row.rejected;
  if (verdict == "needs-changes") ++row.needs_changes;
  if (score.scoring_version() >= 2) {
    ++g.agreement_of;
    if (score.strict_completed() == accepted) ++g.agreed;
  }
  if (score.completed()) {
    ++row.loose_reviewed;
    if (!accepted) ++row.loose_rejected;
  }
}

void Gather(const AttemptView& view, int contained_files, AgentRow& row, Gathered& g) {
  const v1::Score& score = *view.score;
  GatherVerdict(view, row, g);
  g.files += score.files_touched();
  g.walls.push_back(score.wall_ms());
  if (score.scoring_version() < 2) {
    ++row.old_scores;
    return;
  }
  if (score.strict_completed()) ++row.strict_completed;
  if (score.regression_measured()) {
    ++row.regression_measured;
    if (score.regression()) ++row.regressions;
    if (score.out_of_scope()) ++g.out_of_scope;
  }
  const int round = score.merge_ready_round();
  if (round > 0) {
    ++g.merge_ready;
    g.merge_ready_rounds += round;
  }
  ++(round == 0   ? row.merge_ready_never
     : round == 1 ? row.merge_ready_round_1
     : round == 2 ? row.merge_ready_round_2
                  : row.merge_ready_round_3);
  if (!score.strict_completed()) {
    const auto& b = score.blast_radius();
    ++row.blast_attempts;
    g.blast_files.push_back(b.files());
    g.blast_modules.push_back(b.modules());
    g.blast_lines.push_back(b.lines());
    g.blast_broken.push_back(b.broken_tests());
    if (b.files() <= contained_files) ++g.contained;
  }
  for (size_t i = 0; i < g.dimensions.size(); ++i) {
    const auto& d = DimensionAt(score.dimensions(), i);
    auto& m = g.dimensions[i];
    ++m.of;
    if (d.measured()) {
      ++m.covered;
      m.sum += d.value();
    }
  }
  for (const auto& v : score.violations()) ++row.violations[v.kind()];
  for (const auto& tag : FailureModesOf(view)) {
    ++row.failure_modes[tag];
    if (std::find(score.failure_modes().begin(), score.failure_modes().end(), tag) ==
        score.failure_modes().end()) {
      ++row.failure_modes_by_people[tag];
    }
  }
  for (const auto& j : score.judge()) {
    auto& m = g.judges[j.judge()][j.dimension()];
    ++m.covered;
    m.sum += j.score();
  }
}

std::optional<stats::Interval> WilsonOf(int part, int whole) {
  if (whole <= 0) return std::nullopt;
  return stats::Wilson(part, whole);
}

// pass@k, pass^k and the per-task variance across samples of one agent, from
// the (loose, strict) outcomes of the settled samples of each task.
void PassAtK(const std::map<std::string, std::vector<std::pair<bool, bool>>>& tasks,
             AgentRow& row) {
  for (const auto& [task, samples] : tasks) {
    row.samples = std::max(row.samples, static_cast<int>(samples.size()));
  }
  if (row.samples < 2) {
    row.samples = std::min(row.samples, 1);
    return;
  }
  const size_t kmax = static_cast<size_t>(row.samples);
  row.pass_at_k.assign(kmax, 0);
  row.pass_hat_k.assign(kmax, 0);
  row.strict_pass_at_k.assign(kmax, 0);
  row.strict_pass_hat_k.assign(kmax, 0);
  row.pass_k_tasks.assign(kmax, 0);
  double variance = 0, strict_variance = 0;
  int varied = 0;
  for (const auto& [task, samples] : tasks) {
    const int n = static_cast<int>(samples.size());
    int loose = 0, strict = 0;
    std::vector<double> loose_values, strict_values;
    for (const auto& [l, st] : samples) {
      loose += l;
      strict += st;
      loose_values.push_back(l ? 1 : 0);
      strict_values.push_back(st ? 1 : 0);
    }
    for (int k = 1; k <= n; ++k) {
      row.pass_at_k[k - 1] += stats::PassAtK(n, loose, k);
      row.pass_hat_k[k - 1] += stats::PassHatK(n, loose, k);
      row.strict_pass_at_k[k - 1] += stats::PassAtK(n, strict, k);
      row.strict_pass_hat_k[k - 1] += stats::PassHatK(n, strict, k);
      ++row.pass_k_tasks[k - 1];
    }
    if (n >= 2) {
      variance += stats::SampleVariance(loose_values);
      strict_variance += stats::SampleVariance(strict_values);
      ++varied;
    }
  }
  for (size_t k = 0; k < kmax; ++k) {
    const int of = row.pass_k_tasks[k];
    row.pass_at_k[k] /= of;
    row.pass_hat_k[k] /= of;
    row.strict_pass_at_k[k] /= of;
    row.strict_pass_hat_k[k] /= of;
  }
  row.sample_variance = variance / varied;
  row.strict_sample_variance = strict_variance / varied;
}

}  // namespace

const v1::Dimension& DimensionAt(const v1::Dimensions& d, size_t i) {
  switch (i) {
    case 0:
      return d.replay();
    case 1:
      return d.tool_calls();
    case 2:
      return d.coherence();
    case 3:
      return d.plan();
    default:
      return d.rollback();
  }
}

std::vector<AgentRow> Summarize(const v1::Run& run, const std::vector<AttemptView>& attempts,
                                int contained_files) {
  std::vector<AgentRow> rows;
  std::map<std::string, size_t> index;
  auto row_for = [&](const std::string& agent) -> AgentRow& {
    auto [it, inserted] = index.emplace(agent, rows.size());
    if (inserted) {
      rows.emplace_back();
      rows.back().agent = agent;
    }
    return rows[it->second];
  };
  for (const auto& a : run.agents()) {
    AgentRow& row = row_for(a.name());
    row.prediction_warnings.assign(a.prediction_warnings().begin(), a.prediction_warnings().end());
  }

  const std::set<std::string> untestable(run.untestable_tasks().begin(),
                                         run.untestable_tasks().end());
  std::map<std::string, Gathered> gathered;
  // agent -> task -> (loose, strict) of each settled sample.
  std::map<std::string, std::map<std::string, std::vector<std::pair<bool, bool>>>> outcomes;
  for (const auto& view : attempts) {
    AgentRow& row = row_for(view.attempt.agent());
    const bool settled = v1::IsSettled(view.attempt);
    if (!settled) ++row.unfinished;
    if (untestable.contains(view.attempt.task_id())) {
      ++row.untestable_attempts;
      if (view.score && view.score->completed()) ++row.untestable_completed;
      continue;
    }
    ++row.attempts;
    if (settled) {
      ++row.settled;
      outcomes[row.agent][view.attempt.task_id()].emplace_back(
          view.score && view.score->completed(),
          view.score && view.score->scoring_version() >= 2 && view.score->strict_completed());
    }
    if (view.usage) GatherUsage(*view.usage, row, gathered[row.agent]);
    if (view.attempt.state() == v1::Attempt::FAILED) ++row.infra_failed;
    if (!view.score) continue;
    ++row.finished;
    if (view.score->no_submission()) {
      // Counted against the completion rate, with nothing else to measure.
      ++row.no_submission;
      continue;
    }
    if (view.score->completed()) ++row.completed;
    Gather(view, contained_files, row, gathered[row.agent]);
  }
  for (auto& row : rows) {
    Gathered& g = gathered[row.agent];
    if (row.settled > 0) {
      row.completion_rate = static_cast<double>(row.completed) / row.settled;
      row.strict_completion_rate = static_cast<double>(row.strict_completed) / row.settled;
      row.completion_ci = stats::Wilson(row.completed, row.settled);
      row.strict_completion_ci = stats::Wilson(row.strict_completed, row.settled);
    }
    row.tests_pass_rate = row.completion_rate;
    row.out_of_scope = g.out_of_scope;
    row.contained = g.contained;
    row.agreement_of = g.agreement_of;
    row.agreed = g.agreed;
    row.regression_ci = WilsonOf(row.regressions, row.regression_measured);
    row.out_of_scope_ci = WilsonOf(row.out_of_scope, row.regression_measured);
    row.contained_ci = WilsonOf(row.contained, row.blast_attempts);
    row.human_agreement_ci = WilsonOf(row.agreed, row.agreement_of);
    row.loose_rejected_ci = WilsonOf(row.loose_rejected, row.loose_reviewed);
    PassAtK(outcomes[row.agent], row);
    row.regression_rate = Share(row.regressions, row.regression_measured);
    row.out_of_scope_rate = Share(g.out_of_scope, row.regression_measured);
    if (g.merge_ready > 0) {
      row.review_loops_mean = static_cast<double>(g.merge_ready_rounds) / g.merge_ready;
    }
    row.blast_files = SpreadOf(g.blast_files);
    row.blast_modules = SpreadOf(g.blast_modules);
    row.blast_lines = SpreadOf(g.blast_lines);
    row.blast_broken_tests = SpreadOf(g.blast_broken);
    row.contained_share = Share(g.contained, row.blast_attempts);
    row.human_agreement = Share(g.agreed, g.agreement_of);
    row.loose_rejected_share = Share(row.loose_rejected, row.loose_reviewed);
    if (row.accepted > 0) {
      row.human_review_loops_mean = static_cast<double>(g.human_loops) / row.accepted;
    }
    for (size_t i = 0; i < g.dimensions.size(); ++i) row.dimensions[i] = g.dimensions[i].Mean();
    if (g.cost_known) {
      row.cost_usd = g.cost;
      if (row.strict_completed > 0) row.cost_per_completion_usd = g.cost / row.strict_completed;
    }
    const int scored_v2 = row.finished - row.old_scores;
    for (auto& [judge, dims] : g.judges) {
      for (auto& [dim, sum] : dims) {
        sum.of = scored_v2;
        row.judges[judge][dim] = sum.Mean();
      }
    }
    auto& w = g.walls;
    if (!w.empty()) {
      row.mean_files_touched = static_cast<double>(g.files) / w.size();
      std::sort(w.begin(), w.end());
      size_t n = w.size();
      row.median_wall_ms = n % 2 ? w[n / 2] : (w[n / 2 - 1] + w[n / 2]) / 2;
    }
  }
  return rows;
}

void AttachVerdicts(std::vector<AttemptView>& views, const std::vector<v1::Verdict>& verdicts) {
  std::map<uint64_t, std::vector<const v1::Verdict*>> by_attempt;
  for (const auto& v : verdicts) by_attempt[v.attempt()].push_back(&v);
  for (auto& view : views) {
    view.verdict.reset();
    view.needs_changes_before_accept = 0;
    auto it = by_attempt.find(view.attempt.number());
    if (it == by_attempt.end()) continue;
    if (view.attempt.run_id() != it->second.front()->run_id()) continue;
    // In time order; of equal times, in the order added.
    std::vector<const v1::Verdict*> ordered = it->second;
    std::stable_sort(
        ordered.begin(), ordered.end(),
        [](const v1::Verdict* a, const v1::Verdict* b) { return a->at_ms() < b->at_ms(); });
    view.verdict = *ordered.back();
    for (const v1::Verdict* v : ordered) {
      if (v->verdict() == "accept") break;
      if (v->verdict() == "needs-changes") ++view.needs_changes_before_accept;
    }
  }
}

std::vector<std::string> FailureModesOf(const AttemptView& view) {
  std::set<std::string> modes;
  if (view.score)
    modes.insert(view.score->failure_modes().begin(), view.score->failure_modes().end());
  if (view.verdict) {
    for (const auto& tag : view.verdict->tags()) {
      if (tag.starts_with("-")) {
        modes.erase(tag.substr(1));
      } else if (!tag.empty()) {
        modes.insert(tag);
      }
    }
  }
  return {modes.begin(), modes.end()};
}

Result<RunView> LoadRun(storage::Store& store, const std::string& run_id) {
  RunView out;
  CRUCIBLE_ASSIGN_OR_RETURN(out.run, store.GetRun(run_id));
  CRUCIBLE_ASSIGN_OR_RETURN(auto attempts, store.ListAttempts(run_id));
  if (auto suite = store.GetSuite(out.run.suite())) {
    const auto& review = suite->review();
    if (review.has_contained_files()) out.contained_files = review.contained_files();
  } else if (suite.error().code() != Code::kNotFound) {
    return Fail(suite.error());
  }
  out.attempts.reserve(attempts.size());
  for (auto& a : attempts) {
    AttemptView v{.attempt = std::move(a), .score = std::nullopt};
    if (v.attempt.state() == v1::Attempt::DONE) {
      auto score = store.GetScore(run_id, v.attempt.number());
      if (score) {
        v.score = std::move(*score);
      } else if (score.error().code() != Code::kNotFound) {
        return Fail(score.error());
      }
      auto evidence = store.GetEvidence(run_id, v.attempt.number());
      if (evidence) {
        if (evidence->has_usage()) v.usage = std::move(*evidence->mutable_usage());
      } else if (evidence.error().code() != Code::kNotFound) {
        return Fail(evidence.error());
      }
    }
    out.attempts.push_back(std::move(v));
  }
  CRUCIBLE_ASSIGN_OR_RETURN(std::vector<v1::Verdict> verdicts, store.ListVerdicts(run_id));
  AttachVerdicts(out.attempts, verdicts);
  return out;
}

Result<AttemptDetail> LoadAttemptDetail(storage::Store& store, const std::string& run_id,
                                        uint64_t number, bool with_events) {
  CRUCIBLE_ASSIGN_OR_RETURN(v1::Run run, store.GetRun(run_id));
  AttemptDetail out;
  auto attempt = store.GetAttempt(run_id, number);
  if (!attempt) {
    if (attempt.error().code() != Code::kNotFound) return Fail(attempt.error());
    const int count = run.attempt_count();
    return Fail(
        Code::kNotFound,
        count > 0
            ? fmt::format("attempt {}/{} not found (the run has {} attempts, 0 to {})", run_id,
                          number, count, count - 1)
            : fmt::format("attempt {}/{} not found (the run has no attempts)", run_id, number));
  }
  out.view.attempt = std::move(*attempt);
  if (auto score = store.GetScore(run_id, number)) {
    out.view.score = std::move(*score);
  } else if (score.error().code() != Code::kNotFound) {
    return Fail(score.error());
  }
  if (auto evidence = store.GetEvidence(run_id, number)) {
    if (evidence->has_usage()) out.view.usage = evidence->usage();
    out.evidence = std::move(*evidence);
  } else if (evidence.error().code() != Code::kNotFound) {
    return Fail(evidence.error());
  }
  if (auto task = store.GetTask(run.suite(), out.view.attempt.task_id())) {
    out.task = std::move(*task);
  } else if (task.error().code() != Code::kNotFound) {
    return Fail(task.error());
  }
  CRUCIBLE_ASSIGN_OR_RETURN(std::vector<v1::Verdict> verdicts, store.ListVerdicts(run_id));
  std::vector<AttemptView> one{out.view};
  AttachVerdicts(one, verdicts);
  out.view = std::move(one.front());
  if (with_events) {
    CRUCIBLE_ASSIGN_OR_RETURN(out.events, store.ListEvents(run_id, number));
  }
  return out;
}

Result<std::vector<AgentRow>> SummarizeRun(storage::Store& store, const std::string& run_id) {
  CRUCIBLE_ASSIGN_OR_RETURN(RunView view, LoadRun(store, run_id));
  return Summarize(view.run, view.attempts, view.contained_files);
}

namespace {

std::string FormatDuration(int64_t ms) {
  if (ms < 1000) return fmt::format("{}ms", ms);
  if (ms < 60'000) return fmt::format("{:.1f}s", ms / 1000.0);
  return fmt::format("{}m{:02}s", ms / 60'000, (ms / 1000) % 60);
}

}  // namespace

namespace {

std::string Percent(std::optional<double> rate) {
  return rate ? fmt::format("{:.1f}%", 100.0 * *rate) : "-";
}

std::string MeanCell(const DimensionMean& m) {
  if (!m.mean) return m.of > 0 ? fmt::format("- (0/{})", m.of) : "-";
  return fmt::format("{:.2f} ({}/{})", *m.mean, m.covered, m.of);
}

// "$0.0123" below a dollar, "$12.34" above; "$—" unknown; "*" when some
// calls were not priced.
std::string CostCell(std::optional<double> cost, bool partial) {
  if (!cost) return "$—";
  const char* mark = partial ? "*" : "";
  return *cost < 1 ? fmt::format("${:.4f}{}", *cost, mark) : fmt::format("${:.2f}{}", *cost, mark);
}

std::string Counts(const std::map<std::string, int>& counts) {
  std::string out;
  for (const auto& [name, n] : counts)
    out += fmt::format("{}{} {}", out.empty() ? "" : ", ", name, n);
  return out;
}

}  // namespace

std::string RateWithInterval(std::optional<double> rate, std::optional<stats::Interval> ci) {
  if (!rate) return "-";
  if (!ci) return Percent(rate);
  return fmt::format("{} [{:.0f}-{:.0f}]", Percent(rate), 100.0 * ci->low, 100.0 * ci->high);
}

std::string DescribeProgress(const v1::Run& run, const std::vector<AgentRow>& rows) {
  int total = 0, unfinished = 0;
  for (const auto& r : rows) {
    total += r.attempts + r.untestable_attempts;
    unfinished += r.unfinished;
  }
  if (run.state() != v1::Run::RUNNING && unfinished == 0) return "";
  return fmt::format("run {}: {} of {} attempts finished; the numbers cover those",
                     run.state() == v1::Run::CANCELLED ? "cancelled" : "in progress",
                     total - unfinished, total);
}

namespace {

// The pass@k table and the variance across samples, when an agent has
// several samples of a task.
std::string RenderSamples(const std::vector<AgentRow>& rows, size_t width) {
  std::string out =
      "\nseveral samples per task: pass@k (at least one of k samples passes) and pass^k (all k "
      "pass),\nthe mean over tasks of the unbiased estimators; loose (tests pass) and strict\n";
  out += fmt::format("{:<{}}  {:>2}  {:>12}  {:>12}  {:>13}  {:>13}  {:>5}\n", "agent", width, "k",
                     "pass@k loose", "pass^k loose", "pass@k strict", "pass^k strict", "tasks");
  for (const auto& r : rows) {
    for (size_t k = 0; k < r.pass_at_k.size(); ++k) {
      out += fmt::format("{:<{}}  {:>2}  {:>12}  {:>12}  {:>13}  {:>13}  {:>5}\n",
                         k == 0 ? r.agent : "", width, k + 1, Percent(r.pass_at_k[k]),
                         Percent(r.pass_hat_k[k]), Percent(r.strict_pass_at_k[k]),
                         Percent(r.strict_pass_hat_k[k]), r.pass_k_tasks[k]);
    }
  }
  for (const auto& r : rows) {
    if (!r.sample_variance) continue;
    out += fmt::format("{}: mean variance across samples of a task {:.3f} loose, {:.3f} strict\n",
                       r.agent, *r.sample_variance, *r.strict_sample_variance);
  }
  return out;
}

}  // namespace

std::string RenderTable(const std::vector<AgentRow>& rows) {
  size_t width = 5;
  for (const auto& r : rows) width = std::max(width, r.agent.size());
  std::string out = fmt::format(
      "{:<{}}  {:>8}  {:>9}  {:>15}  {:>15}  {:>15}  {:>5}  {:>5}  {:>7}\n", "agent", width,
      "attempts", "completed", "completion", "strict", "regression", "loops", "blast", "wall");
  int old_scores = 0;
  for (const auto& r : rows) {
    old_scores += r.old_scores;
    if (r.settled == 0) {
      out += r.unfinished > 0
                 ? fmt::format("{:<{}}  no finished attempts yet ({} queued or running)\n", r.agent,
                               width, r.unfinished)
                 : fmt::format("{:<{}}  no attempts\n", r.agent, width);
      continue;
    }
    const bool scored_v2 = r.finished > r.old_scores;
    std::string infra = r.infra_failed ? fmt::format(" ({} infra)", r.infra_failed) : "";
    if (r.no_submission) infra += fmt::format(" (no submission: {})", r.no_submission);
    out += fmt::format(
        "{:<{}}  {:>8}  {:>9}  {:>15}  {:>15}  {:>15}  {:>5}  {:>5}  {:>7}{}\n", r.agent, width,
        r.attempts, r.completed, RateWithInterval(r.completion_rate, r.completion_ci),
        scored_v2 ? RateWithInterval(r.strict_completion_rate, r.strict_completion_ci) : "-",
        RateWithInterval(r.regression_rate, r.regression_ci),
        r.review_loops_mean ? fmt::format("{:.2f}", *r.review_loops_mean) : "-",
        r.blast_attempts ? fmt::format("{:g}", r.blast_files.median) : "-",
        FormatDuration(r.median_wall_ms), infra);
  }
  out +=
      "completion: the tests pass (loose); strict: and no violation, merge-ready in round 1;\n"
      "regression: of the attempts whose FAIL_TO_PASS tests pass; loops: mean review rounds to\n"
      "merge-ready; blast: median files changed by the attempts that are not strict completions;\n"
      "wall: median wall time; [low-high]: 95% interval (Wilson)\n";
  if (std::any_of(rows.begin(), rows.end(), [](const AgentRow& r) { return r.no_submission; })) {
    out +=
        "no submission: tasks the predictions file gave no patch for; counted against the "
        "completion rate, apart from failures\n";
  }
  for (const auto& r : rows) {
    if (r.prediction_warnings.empty()) continue;
    out += fmt::format("\npredictions file of {}: {} warnings\n", r.agent,
                       r.prediction_warnings.size());
    for (const auto& w : r.prediction_warnings) out += "  " + w + "\n";
  }

  if (std::any_of(rows.begin(), rows.end(), [](const AgentRow& r) {
        return r.regression_measured > 0 || r.blast_attempts > 0;
      })) {
    out += fmt::format("\n{:<{}}  {:>15}  {:>15}\n", "agent", width, "out of scope", "contained");
    for (const auto& r : rows) {
      if (r.settled == 0) continue;
      out += fmt::format("{:<{}}  {:>15}  {:>15}\n", r.agent, width,
                         RateWithInterval(r.out_of_scope_rate, r.out_of_scope_ci),
                         RateWithInterval(r.contained_share, r.contained_ci));
    }
    out +=
        "out of scope: of the attempts whose FAIL_TO_PASS tests pass, the share with an "
        "out-of-scope change;\ncontained: of the attempts that are not strict completions, the "
        "share within the suite's contained_files\n";
  }
  if (std::any_of(rows.begin(), rows.end(), [](const AgentRow& r) { return r.samples > 1; })) {
    out += RenderSamples(rows, width);
  }

  out += fmt::format("\ndimensions: mean (attempts measured/scored)\n{:<{}}", "agent", width);
  for (auto name : kDimensionNames) out += fmt::format("  {:<13}", name);
  while (out.back() == ' ') out.pop_back();
  out += "\n";
  for (const auto& r : rows) {
    std::string line = fmt::format("{:<{}}", r.agent, width);
    for (const auto& d : r.dimensions) line += fmt::format("  {:<13}", MeanCell(d));
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line + "\n";
  }

  if (std::any_of(rows.begin(), rows.end(), [](const AgentRow& r) {
        return !r.violations.empty() || !r.failure_modes.empty() || !r.judges.empty();
      })) {
    out += "\n";
    for (const auto& r : rows) {
      std::vector<std::string> parts;
      if (!r.violations.empty()) parts.push_back("violations: " + Counts(r.violations));
      if (!r.failure_modes.empty()) {
        std::string modes;
        for (const auto& [name, n] : r.failure_modes) {
          auto people = r.failure_modes_by_people.find(name);
          modes += fmt::format("{}{} {}", modes.empty() ? "" : ", ", name, n);
          if (people != r.failure_modes_by_people.end()) {
            modes += fmt::format(" ({} by people)", people->second);
          }
        }
        parts.push_back("failure modes: " + modes);
      }
      for (const auto& [judge, dims] : r.judges) {
        std::string j = "judge " + judge + ":";
        for (const auto& [dim, m] : dims) j += fmt::format(" {} {}", dim, MeanCell(m));
        parts.push_back(j);
      }
      if (!parts.empty()) out += fmt::format("{}: {}\n", r.agent, fmt::join(parts, "; "));
    }
  }
  if (std::any_of(rows.begin(), rows.end(), [](const AgentRow& r) {
        return r.usage_attempts > 0 || r.cost_usd.has_value();
      })) {
    out += fmt::format("\ntokens and cost (* some LLM calls unpriced: a lower bound)\n");
    out +=
        fmt::format("{:<{}}  {:>9}  {:>12}  {:>12}  {:>12}  {:>12}  {:>16}\n", "agent", width,
                    "llm calls", "tokens in", "cached", "tokens out", "cost", "per strict compl");
    for (const auto& r : rows) {
      const bool partial = r.cost_partial_attempts > 0;
      out += fmt::format("{:<{}}  {:>9}  {:>12}  {:>12}  {:>12}  {:>12}  {:>16}\n", r.agent, width,
                         r.llm_calls, r.tokens_in, r.tokens_cached, r.tokens_out,
                         CostCell(r.cost_usd, partial),
                         r.cost_usd ? CostCell(r.cost_per_completion_usd, partial) : "$—");
    }
  }
  if (std::any_of(rows.begin(), rows.end(), [](const AgentRow& r) { return r.reviewed > 0; })) {
    out += "\nreview-bar gap: what people decided (the latest verdict of each attempt)\n";
    out += fmt::format("{:<{}}  {:>8}  {:>8}  {:>15}  {:>24}  {:>11}\n", "agent", width, "reviewed",
                       "accepted", "agreement", "loose but rejected", "human loops");
    for (const auto& r : rows) {
      const std::string loose =
          r.loose_rejected_share
              ? fmt::format("{} ({}/{})",
                            RateWithInterval(r.loose_rejected_share, r.loose_rejected_ci),
                            r.loose_rejected, r.loose_reviewed)
              : "-";
      out += fmt::format(
          "{:<{}}  {:>8}  {:>8}  {:>15}  {:>24}  {:>11}\n", r.agent, width, r.reviewed, r.accepted,
          RateWithInterval(r.human_agreement, r.human_agreement_ci), loose,
          r.human_review_loops_mean ? fmt::format("{:.2f}", *r.human_review_loops_mean) : "-");
    }
    out +=
        "agreement: the share of reviewed attempts where strict completion and the person agree\n"
        "(strict and accepted, or not strict and not accepted); loose but rejected: of the\n"
        "attempts whose tests pass, the share people rejected or sent back, the number public\n"
        "benchmarks hide. Failure-mode counts above include people's tags (\"by people\").\n";
  }
  if (old_scores > 0) {
    out += fmt::format(
        "\n{} scores were written by an older scoring version (no strict completion, violations "
        "or dimensions): `crucible rescore RUN` recomputes them\n",
        old_scores);
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

std::string DescribeMismatched(const v1::Run& run) {
  const int mismatched = run.mismatched_tasks_size();
  if (mismatched == 0) return "";
  constexpr int kListed = 10;
  std::string ids;
  for (int i = 0; i < mismatched && i < kListed; ++i) {
    ids += (i > 0 ? ", " : "") + run.mismatched_tasks(i);
  }
  if (mismatched > kListed) ids += fmt::format(" and {} more", mismatched - kListed);
  if (!run.include_mismatched()) {
    return fmt::format(
        "{} task{} left out: environment mismatch (the gold patch does not resolve {}, or "
        "FAIL_TO_PASS tests pass without it; `crucible suite show` names the tests): {}; "
        "--include-mismatched runs them",
        mismatched, mismatched == 1 ? "" : "s", mismatched == 1 ? "it" : "them", ids);
  }
  return fmt::format(
      "{} task{} with an environment mismatch included (--include-mismatched): {}; their "
      "verdicts may blame the agent for the environment",
      mismatched, mismatched == 1 ? "" : "s", ids);
}

namespace {

nlohmann::json OrNull(std::optional<double> v) { return v ? nlohmann::json(*v) : nullptr; }

nlohmann::json CiJson(const std::optional<stats::Interval>& ci) {
  return ci ? nlohmann::json::array({ci->low, ci->high}) : nlohmann::json(nullptr);
}

nlohmann::json MeanJson(const DimensionMean& m) {
  return {{"mean", OrNull(m.mean)}, {"covered", m.covered}, {"of", m.of}};
}

void AddSpread(nlohmann::json& out, const std::string& name, const Spread& s) {
  out[name + "_median"] = s.median;
  out[name + "_p90"] = s.p90;
  out[name + "_max"] = s.max;
}

}  // namespace

std::string RenderJson(const v1::Run& run, const std::vector<AgentRow>& rows) {
  nlohmann::json out = nlohmann::json::array();
  int run_attempts = 0, unfinished = 0;
  for (const auto& r : rows) {
    run_attempts += r.attempts + r.untestable_attempts;
    unfinished += r.unfinished;
  }
  const bool in_progress = run.state() == v1::Run::RUNNING || unfinished > 0;
  for (const auto& r : rows) {
    nlohmann::json blast = {{"attempts", r.blast_attempts},
                            {"contained_share", OrNull(r.contained_share)},
                            {"contained_share_ci", CiJson(r.contained_ci)}};
    AddSpread(blast, "files", r.blast_files);
    AddSpread(blast, "modules", r.blast_modules);
    AddSpread(blast, "lines", r.blast_lines);
    AddSpread(blast, "broken_tests", r.blast_broken_tests);
    nlohmann::json dimensions = nlohmann::json::object();
    for (size_t i = 0; i < kDimensionNames.size(); ++i) {
      dimensions[std::string(kDimensionNames[i])] = MeanJson(r.dimensions[i]);
    }
    nlohmann::json judges = nlohmann::json::object();
    for (const auto& [judge, dims] : r.judges) {
      for (const auto& [dim, m] : dims) judges[judge][dim] = MeanJson(m);
    }
    out.push_back({{"run", run.id()},
                   {"suite", run.suite()},
                   {"agent", r.agent},
                   {"attempts", r.attempts},
                   {"finished", r.finished},
                   {"infra_failed", r.infra_failed},
                   {"no_submission", r.no_submission},
                   {"prediction_warnings", r.prediction_warnings},
                   {"completed", r.completed},
                   {"completion_rate", r.completion_rate},
                   {"mean_files_touched", r.mean_files_touched},
                   {"median_wall_ms", r.median_wall_ms},
                   {"untestable_attempts", r.untestable_attempts},
                   {"untestable_completed", r.untestable_completed},
                   {"old_scores", r.old_scores},
                   {"strict_completed", r.strict_completed},
                   {"strict_completion_rate", r.strict_completion_rate},
                   {"tests_pass_rate", r.tests_pass_rate},
                   {"regression_measured", r.regression_measured},
                   {"regression_rate", OrNull(r.regression_rate)},
                   {"out_of_scope_rate", OrNull(r.out_of_scope_rate)},
                   {"review_loops_mean", OrNull(r.review_loops_mean)},
                   {"review_loops",
                    {{"1", r.merge_ready_round_1},
                     {"2", r.merge_ready_round_2},
                     {"3", r.merge_ready_round_3},
                     {"never", r.merge_ready_never}}},
                   {"blast_radius", blast},
                   {"dimensions", dimensions},
                   {"violations", r.violations},
                   {"failure_modes", r.failure_modes},
                   {"judges", judges},
                   {"llm_calls", r.llm_calls},
                   {"tokens_in", r.tokens_in},
                   {"tokens_out", r.tokens_out},
                   {"tokens_cached", r.tokens_cached},
                   {"tokens_cache_write", r.tokens_cache_write},
                   {"cost_usd", OrNull(r.cost_usd)},
                   {"cost_partial_attempts", r.cost_partial_attempts},
                   {"cost_per_completion_usd", OrNull(r.cost_per_completion_usd)},
                   {"failure_modes_by_people", r.failure_modes_by_people},
                   {"reviewed", r.reviewed},
                   {"accepted", r.accepted},
                   {"rejected", r.rejected},
                   {"needs_changes", r.needs_changes},
                   {"human_agreement", OrNull(r.human_agreement)},
                   {"loose_reviewed", r.loose_reviewed},
                   {"loose_rejected", r.loose_rejected},
                   {"loose_rejected_share", OrNull(r.loose_rejected_share)},
                   {"human_review_loops_mean", OrNull(r.human_review_loops_mean)}});
    nlohmann::json& j = out.back();
    j["in_progress"] = in_progress;
    j["run_attempts"] = run_attempts;
    j["run_attempts_finished"] = run_attempts - unfinished;
    j["settled"] = r.settled;
    j["unfinished"] = r.unfinished;
    j["completion_rate_ci"] = CiJson(r.completion_ci);
    j["tests_pass_rate_ci"] = CiJson(r.completion_ci);
    j["strict_completion_rate_ci"] = CiJson(r.strict_completion_ci);
    j["regression_rate_ci"] = CiJson(r.regression_ci);
    j["out_of_scope_rate_ci"] = CiJson(r.out_of_scope_ci);
    j["human_agreement_ci"] = CiJson(r.human_agreement_ci);
    j["loose_rejected_share_ci"] = CiJson(r.loose_rejected_ci);
    j["samples"] = r.samples;
    j["pass_at_k"] = r.pass_at_k;
    j["pass_hat_k"] = r.pass_hat_k;
    j["strict_pass_at_k"] = r.strict_pass_at_k;
    j["strict_pass_hat_k"] = r.strict_pass_hat_k;
    j["pass_k_tasks"] = r.pass_k_tasks;
    j["sample_variance"] = OrNull(r.sample_variance);
    j["strict_sample_variance"] = OrNull(r.strict_sample_variance);
    j["mismatched_tasks"] =
        std::vector<std::string>(run.mismatched_tasks().begin(), run.mismatched_tasks().end());
    j["include_mismatched"] = run.include_mismatched();
    j["mismatched_note"] = DescribeMismatched(run);
  }
  return out.dump(2) + "\n";
}

namespace {

void AddUsage(nlohmann::json& j, const std::optional<v1::Usage>& usage) {
  if (!usage) {
    for (const char* key : {"cost_usd", "cost_source", "tokens_in", "tokens_out", "tokens_cached",
                            "tokens_cache_write", "llm_calls"}) {
      j[key] = nullptr;
    }
    j["models"] = nlohmann::json::array();
    return;
  }
  const v1::Usage& u = *usage;
  j["cost_usd"] = HasCost(u) ? nlohmann::json(u.cost_usd()) : nullptr;
  j["cost_source"] = u.cost_source();
  j["tokens_in"] = u.tokens_in();
  j["tokens_out"] = u.tokens_out();
  j["tokens_cached"] = u.tokens_cached();
  j["tokens_cache_write"] = u.tokens_cache_write();
  j["llm_calls"] = u.llm_calls();
  j["models"] = std::vector<std::string>(u.models().begin(), u.models().end());
}

nlohmann::json AttemptJson(const v1::Run& run, const std::set<std::string>& untestable,
                           const AttemptView& view) {
  const v1::Attempt& a = view.attempt;
  nlohmann::json j = {{"run", run.id()},
                      {"attempt_id", a.number()},
                      {"attempt_ref", fmt::format("{}/{}", a.run_id(), a.number())},
                      {"agent", a.agent()},
                      {"task_id", a.task_id()},
                      {"sample", a.sample()},
                      {"state", v1::Attempt::State_Name(a.state())},
                      {"untestable", untestable.contains(a.task_id())},
                      {"scored", view.score.has_value()}};
  AddUsage(j, view.usage);
  if (view.verdict) {
    const v1::Verdict& v = *view.verdict;
    j["verdict"] = v.verdict();
    j["verdict_tags"] = std::vector<std::string>(v.tags().begin(), v.tags().end());
    j["verdict_reviewer"] = v.reviewer();
    j["verdict_note"] = v.note();
    j["verdict_at_ms"] = v.at_ms();
  } else {
    j["verdict"] = nullptr;
    j["verdict_tags"] = nlohmann::json::array();
    j["verdict_reviewer"] = nullptr;
    j["verdict_note"] = nullptr;
    j["verdict_at_ms"] = nullptr;
  }
  j["needs_changes_before_accept"] = view.needs_changes_before_accept;
  if (!view.score) {
    for (const char* key : {"scoring_version", "tests_passed", "strict_completed", "regression",
                            "dimensions", "blast_radius", "rollback", "merge_ready_round"}) {
      j[key] = nullptr;
    }
    j["reason"] = a.error();
    for (const char* key : {"violations", "findings", "failure_modes", "not_measurable"}) {
      j[key] = nlohmann::json::array();
    }
    return j;
  }
  const v1::Score& s = *view.score;
  j["scoring_version"] = s.scoring_version();
  j["tests_passed"] = s.completed();
  j["strict_completed"] = s.strict_completed();
  j["regression"] = s.regression_measured() ? nlohmann::json(s.regression()) : nullptr;
  j["reason"] = s.reason();
  nlohmann::json violations = nlohmann::json::array();
  for (const auto& v : s.violations()) {
    violations.push_back(
        {{"kind", v.kind()}, {"file", v.file()}, {"line", v.line()}, {"detail", v.detail()}});
  }
  j["violations"] = std::move(violations);
  nlohmann::json findings = nlohmann::json::array();
  for (const auto& f : s.findings()) {
    findings.push_back({{"rule", f.rule()},
                        {"severity", f.severity()},
                        {"file", f.file()},
                        {"line", f.line()},
                        {"match", f.match()}});
  }
  j["findings"] = std::move(findings);
  nlohmann::json dimensions = nlohmann::json::object();
  for (size_t i = 0; i < kDimensionNames.size(); ++i) {
    const auto& d = DimensionAt(s.dimensions(), i);
    dimensions[std::string(kDimensionNames[i])] =
        d.measured() ? nlohmann::json(d.value()) : nullptr;
  }
  j["dimensions"] = std::move(dimensions);
  j["failure_modes"] = FailureModesOf(view);
  const auto& b = s.blast_radius();
  j["blast_radius"] = {{"files", b.files()},
                       {"modules", b.modules()},
                       {"lines", b.lines()},
                       {"broken_tests", b.broken_tests()}};
  if (s.dimensions().rollback().measured()) {
    const auto& r = s.rollback();
    j["rollback"] = {{"failures", r.failures()},
                     {"edits_per_failure", r.edits_per_failure()},
                     {"revert_ratio", r.revert_ratio()},
                     {"pile_on", r.pile_on()}};
  } else {
    j["rollback"] = nullptr;
  }
  j["merge_ready_round"] = s.merge_ready_round();
  j["not_measurable"] =
      std::vector<std::string>(s.not_measurable().begin(), s.not_measurable().end());
  return j;
}

std::set<std::string> UntestableOf(const v1::Run& run) {
  return {run.untestable_tasks().begin(), run.untestable_tasks().end()};
}

}  // namespace

std::string RenderAttemptsJson(const v1::Run& run, const std::vector<AttemptView>& attempts) {
  const auto untestable = UntestableOf(run);
  nlohmann::json out = nlohmann::json::array();
  for (const auto& view : attempts) out.push_back(AttemptJson(run, untestable, view));
  return out.dump(2) + "\n";
}

std::string RenderAttemptsTable(const v1::Run& run, const std::vector<AttemptView>& attempts) {
  const auto untestable = UntestableOf(run);
  size_t agent_width = 5, task_width = 4, ref_width = 7;
  for (const auto& v : attempts) {
    ref_width =
        std::max(ref_width, fmt::formatted_size("{}/{}", v.attempt.run_id(), v.attempt.number()));
    agent_width = std::max(agent_width, v.attempt.agent().size());
    task_width = std::max(task_width, v.attempt.task_id().size());
  }
  std::string out = fmt::format("{:<{}}  {:<{}}  {:<{}}  {:>6}  {:<6}  {:<6}  {:>9}  {}\n",
                                "attempt", ref_width, "agent", agent_width, "task", task_width,
                                "sample", "tests", "strict", "cost", "violations, failure modes");
  for (const auto& v : attempts) {
    const v1::Attempt& a = v.attempt;
    std::string tests = "-", strict = "-", notes;
    if (v.score) {
      const v1::Score& s = *v.score;
      tests = s.completed() ? "pass" : "fail";
      strict = s.scoring_version() < 2 ? "?" : s.strict_completed() ? "yes" : "no";
      std::map<std::string, int> kinds;
      for (const auto& x : s.violations()) ++kinds[x.kind()];
      notes = Counts(kinds);
      const std::vector<std::string> modes = FailureModesOf(v);
      if (!modes.empty()) {
        notes += fmt::format("{}[{}]", notes.empty() ? "" : " ", fmt::join(modes, ", "));
      }
    } else {
      notes = v1::Attempt::State_Name(a.state());
      std::transform(notes.begin(), notes.end(), notes.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    }
    if (untestable.contains(a.task_id())) notes += notes.empty() ? "untestable" : " (untestable)";
    if (v.verdict) {
      notes += fmt::format("{}verdict {} by {}", notes.empty() ? "" : " ", v.verdict->verdict(),
                           v.verdict->reviewer());
    }
    const bool priced = v.usage && HasCost(*v.usage);
    const std::string cost =
        CostCell(priced ? std::optional<double>(v.usage->cost_usd()) : std::nullopt,
                 priced && v.usage->cost_source() == "partial");
    std::string line =
        fmt::format("{:<{}}  {:<{}}  {:<{}}  {:>6}  {:<6}  {:<6}  {:>9}  {}",
                    fmt::format("{}/{}", a.run_id(), a.number()), ref_width, a.agent(), agent_width,
                    a.task_id(), task_width, a.sample(), tests, strict, cost, notes);
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line + "\n";
  }
  return out;
}

}  // namespace crucible::report
