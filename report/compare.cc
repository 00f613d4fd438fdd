#include "report/compare.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdlib>
#include <deque>
#include <map>
#include <set>
#include <utility>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "report/csv.h"

namespace crucible::report {

namespace {

using Key = std::pair<std::string, int>;  // task, sample

bool IsCost(std::string_view metric) { return metric == "cost_per_attempt"; }

const v1::Dimension& DimensionNamed(const v1::Dimensions& d, std::string_view name) {
  if (name == "replay") return d.replay();
  if (name == "tool_calls") return d.tool_calls();
  if (name == "coherence") return d.coherence();
  if (name == "plan") return d.plan();
  return d.rollback();
}

// The attempt's value of `metric`, nullopt when it was not measured. The
// view has a score.
std::optional<double> ValueOf(std::string_view metric, const AttemptView& view) {
  const v1::Score& s = *view.score;
  if (metric == "loose_completion") return s.completed() ? 1 : 0;
  if (metric == "cost_per_attempt") {
    if (!view.usage || view.usage->cost_source().empty()) return std::nullopt;
    return view.usage->cost_usd();
  }
  // Scores before version 2 have none of the others.
  if (s.scoring_version() < 2) return std::nullopt;
  if (metric == "strict_completion") return s.strict_completed() ? 1 : 0;
  if (metric == "regression_rate") {
    if (!s.regression_measured()) return std::nullopt;
    return s.regression() ? 1 : 0;
  }
  if (metric == "out_of_scope_share") {
    if (!s.regression_measured()) return std::nullopt;
    return s.out_of_scope() ? 1 : 0;
  }
  const v1::Dimension& d = DimensionNamed(s.dimensions(), metric);
  if (!d.measured()) return std::nullopt;
  return d.value();
}

bool IsBinary(std::string_view metric) {
  return metric == "loose_completion" || metric == "strict_completion" ||
         metric == "regression_rate" || metric == "out_of_scope_share";
}

bool HigherIsBetter(std::string_view metric) {
  return metric != "regression_rate" && metric != "out_of_scope_share" && !IsCost(metric);
}

std::string AttemptId(const AttemptView& view) {
  return fmt::format("{}/{}", view.attempt.run_id(), view.attempt.number());
}

// One side's attempts on the run's testable tasks, by task and sample.
struct SideAttempts {
  const RunView* view = nullptr;
  std::map<Key, const AttemptView*> by_key;
  std::set<std::string> tasks;
};

SideAttempts Gather(const RunView& view, const std::string& agent) {
  SideAttempts out;
  out.view = &view;
  const std::set<std::string> untestable(view.run.untestable_tasks().begin(),
                                         view.run.untestable_tasks().end());
  for (const auto& a : view.attempts) {
    if (a.attempt.agent() != agent || untestable.contains(a.attempt.task_id())) continue;
    out.by_key[{a.attempt.task_id(), a.attempt.sample()}] = &a;
    out.tasks.insert(a.attempt.task_id());
  }
  return out;
}

Result<ComparedSide> Describe(const SideAttempts& g, const std::string& agent) {
  ComparedSide side;
  side.run_id = g.view->run.id();
  side.agent = agent;
  side.suite = g.view->run.suite();
  side.run_running = g.view->run.state() == v1::Run::RUNNING;
  side.samples = std::max(1, g.view->run.samples());
  for (const auto& a : g.view->run.agents()) {
    if (a.name() == agent) side.rounds = std::max(1, a.rounds());
  }
  std::map<std::string, std::pair<int, int>> per_task;  // task -> finished, completed
  std::map<std::string, std::vector<double>> outcomes;
  for (const auto& [key, a] : g.by_key) {
    ++side.attempts;
    if (a->attempt.state() == v1::Attempt::FAILED) ++side.infra_failed;
    if (!a->score) continue;
    ++side.finished;
    if (a->score->no_submission()) ++side.no_submission;
    auto& [n, c] = per_task[key.first];
    ++n;
    if (a->score->completed()) ++c;
    outcomes[key.first].push_back(a->score->completed() ? 1 : 0);
  }
  if (side.finished == 0) {
    return Fail(Code::kInvalidArgument,
                fmt::format("agent '{}' of run '{}' has no finished attempts ({} attempts: {} "
                            "infra-failed, {} not finished); nothing to compare",
                            agent, side.run_id, side.attempts, side.infra_failed,
                            side.attempts - side.infra_failed));
  }
  side.tasks = static_cast<int>(g.tasks.size());
  if (side.samples > 1) {
    for (int k = 1; k <= side.samples; ++k) {
      PassK p{.k = k};
      double at = 0, hat = 0;
      for (const auto& [task, nc] : per_task) {
        if (nc.first < k) continue;
        ++p.tasks;
        at += stats::PassAtK(nc.first, nc.second, k);
        hat += stats::PassHatK(nc.first, nc.second, k);
      }
      if (p.tasks == 0) continue;
      p.pass_at_k = at / p.tasks;
      p.pass_hat_k = hat / p.tasks;
      side.pass_k.push_back(p);
    }
    double sum = 0;
    int of = 0;
    for (const auto& [task, values] : outcomes) {
      if (values.size() < 2) continue;
      sum += stats::SampleVariance(values);
      ++of;
    }
    if (of > 0) side.completion_variance = sum / of;
  }
  return side;
}

struct Pair {
  const AttemptView* a;
  const AttemptView* b;
};

MetricComparison CompareMetric(std::string_view name, const std::vector<Pair>& pairs) {
  MetricComparison m;
  m.name = std::string(name);
  m.binary = IsBinary(name);
  m.higher_is_better = HigherIsBetter(name);
  // task -> sums of a and b and the pair count, in task order.
  std::map<std::string, std::array<double, 3>> per_task;
  double sum_a = 0, sum_b = 0;
  for (const Pair& p : pairs) {
    auto va = ValueOf(name, *p.a);
    auto vb = ValueOf(name, *p.b);
    if (!va || !vb) continue;
    ++m.pairs;
    sum_a += *va;
    sum_b += *vb;
    auto& t = per_task[p.a->attempt.task_id()];
    t[0] += *va;
    t[1] += *vb;
    t[2] += 1;
    if (*va > *vb) ++m.only_a;
    if (*vb > *va) ++m.only_b;
    if (m.binary && *va != *vb) {
      Flip f{.task_id = p.a->attempt.task_id(),
             .sample = p.a->attempt.sample(),
             .a_attempt = AttemptId(*p.a),
             .b_attempt = AttemptId(*p.b)};
      (*va > *vb ? m.flips_to_a : m.flips_to_b).push_back(std::move(f));
    }
  }
  if (m.pairs == 0) return m;
  m.tasks = static_cast<int>(per_task.size());
  m.a = sum_a / m.pairs;
  m.b = sum_b / m.pairs;
  std::vector<double> ta, tb, diff;
  int a_higher = 0, b_higher = 0;  // tasks
  bool one_pair_per_task = true;
  for (const auto& [task, t] : per_task) {
    ta.push_back(t[0] / t[2]);
    tb.push_back(t[1] / t[2]);
    diff.push_back(tb.back() - ta.back());
    if (diff.back() < 0) ++a_higher;
    if (diff.back() > 0) ++b_higher;
    one_pair_per_task = one_pair_per_task && t[2] == 1;
  }
  m.difference = stats::PairedBootstrap(ta, tb);
  // The test is over tasks, like the bootstrap: the samples of one task are
  // not independent. With one pair per task and a 0/1 metric it is McNemar's
  // exact test; otherwise the sign test on the per-task mean differences,
  // the same exact binomial test on the tasks where they differ.
  m.test = m.binary && one_pair_per_task ? "mcnemar_exact" : "sign_test";
  m.p = stats::McNemarExact(a_higher, b_higher);
  m.p_adjusted = m.p;
  if (m.binary) {
    m.a_ci = stats::Wilson(static_cast<int>(std::lround(sum_a)), m.pairs);
    m.b_ci = stats::Wilson(static_cast<int>(std::lround(sum_b)), m.pairs);
    // Planned from the per-attempt 0/1 differences over the tasks: with
    // several samples per task, the per-task means spread less, so this
    // errs on the side of a larger detectable difference.
    m.minimum_detectable = stats::MinimumDetectable(
        m.tasks, stats::PairedBinarySd(m.pairs, m.only_a, m.only_b, *m.a, *m.b));
  } else {
    double sd = stats::StdDev(diff);
    // No spread in the differences is no evidence of precision: fall back on
    // the sides being independent, and for a dimension (0..1) on its worst
    // case.
    if (sd <= 0) sd = std::sqrt(stats::SampleVariance(ta) + stats::SampleVariance(tb));
    if (sd <= 0 && !IsCost(name)) sd = std::sqrt(0.5);
    if (sd > 0) m.minimum_detectable = stats::MinimumDetectable(m.tasks, sd);
  }
  return m;
}

std::string Unit(std::string_view metric) { return IsCost(metric) ? "dollars" : "points"; }
double Scale(std::string_view metric) { return IsCost(metric) ? 1 : 100; }

// A number in the sentence's style: whole points, "-0" never.
std::string Whole(double v) {
  double r = std::round(v);
  if (r == 0) r = 0;
  return fmt::format("{:.0f}", r);
}

std::string FormatP(double p) {
  if (p < 0.001) return "< 0.001";
  if (p < 0.01) return fmt::format("= {:.3f}", p);
  return fmt::format("= {:.2f}", p);
}

void Decide(SideComparison& sc, const Comparison& c) {
  const MetricComparison* strict = nullptr;
  const MetricComparison* loose = nullptr;
  for (const auto& m : sc.metrics) {
    if (m.name == "strict_completion") strict = &m;
    if (m.name == "loose_completion") loose = &m;
  }
  const MetricComparison& h = strict && strict->pairs == sc.pairs ? *strict : *loose;
  sc.headline_metric = h.name;
  const ComparedSide& a = c.sides[sc.a];
  const ComparedSide& b = c.sides[sc.b];
  if (h.significant) {
    // In the sentence's direction: "14 points less, 95% CI 4 to 24".
    const double sign = h.difference.value >= 0 ? 1 : -1;
    const double low = sign > 0 ? h.difference.ci.low : -h.difference.ci.high;
    const double high = sign > 0 ? h.difference.ci.high : -h.difference.ci.low;
    sc.sentence =
        fmt::format("{} completes {} points {} than {}, 95% CI {} to {}, p {} ({}{})", SideName(b),
                    Whole(std::abs(h.difference.value) * 100), sign > 0 ? "more" : "less",
                    SideName(a), Whole(low * 100), Whole(high * 100), FormatP(h.p_adjusted),
                    h.name == "strict_completion" ? "strict completion" : "loose completion",
                    c.holm ? ", Holm-adjusted" : "");
  } else {
    sc.sentence = fmt::format(
        "these {} cannot be told apart: differences under {} points are not detectable with {} "
        "tasks",
        a.run_id == b.run_id ? "agents" : "runs",
        h.minimum_detectable ? Whole(std::min(100.0, *h.minimum_detectable * 100)) : "100",
        h.tasks);
  }
}

Result<SideComparison> ComparePair(const SideAttempts& ga, const SideAttempts& gb,
                                   const Comparison& c, size_t b_index) {
  SideComparison sc;
  sc.a = 0;
  sc.b = b_index;
  for (const auto& t : ga.tasks) sc.a_tasks_not_in_b += gb.tasks.contains(t) ? 0 : 1;
  for (const auto& t : gb.tasks) sc.b_tasks_not_in_a += ga.tasks.contains(t) ? 0 : 1;
  std::vector<Pair> pairs;
  std::set<std::string> tasks;
  for (const auto& [key, a] : ga.by_key) {
    auto it = gb.by_key.find(key);
    if (it == gb.by_key.end()) continue;
    const AttemptView* b = it->second;
    if (a->attempt.state() == v1::Attempt::FAILED || b->attempt.state() == v1::Attempt::FAILED) {
      ++sc.left_out_infra_failed;
    } else if (!a->score || !b->score) {
      ++sc.left_out_not_finished;
    } else {
      pairs.push_back({a, b});
      tasks.insert(key.first);
    }
  }
  const ComparedSide& sa = c.sides[0];
  const ComparedSide& sb = c.sides[b_index];
  if (pairs.empty()) {
    if (sc.a_tasks_not_in_b == static_cast<int>(ga.tasks.size())) {
      return Fail(Code::kInvalidArgument,
                  fmt::format("{} and {} share no task (suites '{}' and '{}'); nothing to compare",
                              SideName(sa), SideName(sb), sa.suite, sb.suite));
    }
    return Fail(Code::kInvalidArgument,
                fmt::format("{} and {} have no finished attempt on the same task and sample "
                            "({} pairs not finished, {} infra-failed); nothing to compare",
                            SideName(sa), SideName(sb), sc.left_out_not_finished,
                            sc.left_out_infra_failed));
  }
  sc.pairs = static_cast<int>(pairs.size());
  sc.tasks = static_cast<int>(tasks.size());
  for (auto name : kCompareMetrics) sc.metrics.push_back(CompareMetric(name, pairs));
  return sc;
}

}  // namespace

Result<Side> ParseSide(std::string_view text) {
  const auto colon = text.find(':');
  Side side;
  side.run_id = std::string(text.substr(0, colon));
  if (colon != std::string_view::npos) side.agent = std::string(text.substr(colon + 1));
  if (side.run_id.empty() || (colon != std::string_view::npos && side.agent.empty())) {
    return Fail(Code::kInvalidArgument,
                fmt::format("'{}' is not a side to compare: give RUN or RUN:AGENT", text));
  }
  return side;
}

std::string SideName(const ComparedSide& side) {
  return fmt::format("{}:{}", side.run_id, side.agent);
}

Result<Comparison> CompareViews(const std::vector<const RunView*>& views,
                                const std::vector<std::string>& agents) {
  if (views.size() < 2 || views.size() != agents.size()) {
    return Fail(Code::kInvalidArgument, "compare needs at least two sides");
  }
  Comparison c;
  std::vector<SideAttempts> gathered;
  for (size_t i = 0; i < views.size(); ++i) {
    gathered.push_back(Gather(*views[i], agents[i]));
    CRUCIBLE_ASSIGN_OR_RETURN(ComparedSide side, Describe(gathered.back(), agents[i]));
    if (side.run_running) {
      c.notes.push_back(fmt::format(
          "run {} is still running: {} compared over its {} finished attempts of {} ({} not "
          "finished yet)",
          side.run_id, SideName(side), side.finished, side.attempts,
          side.attempts - side.finished - side.infra_failed));
    }
    if (!c.sides.empty() && side.rounds != c.sides.front().rounds) {
      // Strict completion needs merge-ready in round 1 with review rounds
      // (docs/scoring.md), so it means something else at another setting.
      c.notes.push_back(fmt::format(
          "{} had {} review round{} and the baseline {} had {}: strict completion and review "
          "loops are not comparable across rounds settings (docs/review-loop.md)",
          SideName(side), side.rounds, side.rounds == 1 ? "" : "s", SideName(c.sides.front()),
          c.sides.front().rounds));
    }
    c.sides.push_back(std::move(side));
  }
  c.holm = c.sides.size() > 2;
  for (size_t b = 1; b < gathered.size(); ++b) {
    CRUCIBLE_ASSIGN_OR_RETURN(SideComparison sc, ComparePair(gathered[0], gathered[b], c, b));
    c.comparisons.push_back(std::move(sc));
  }
  // Holm over the comparisons with A, metric by metric.
  for (size_t m = 0; m < std::size(kCompareMetrics); ++m) {
    std::vector<double> p;
    for (const auto& sc : c.comparisons) p.push_back(sc.metrics[m].p);
    const std::vector<double> adjusted = stats::Holm(p);
    for (size_t i = 0; i < c.comparisons.size(); ++i) {
      MetricComparison& mc = c.comparisons[i].metrics[m];
      mc.p_adjusted = adjusted[i];
      mc.significant = mc.pairs > 0 && mc.p_adjusted < 0.05;
    }
  }
  if (c.holm) {
    c.notes.push_back(
        fmt::format("p-values are Holm-adjusted over the {} comparisons with {} (the baseline)",
                    c.comparisons.size(), SideName(c.sides[0])));
  }
  for (auto& sc : c.comparisons) Decide(sc, c);
  return c;
}

Result<Comparison> Compare(storage::Store& store, const std::vector<Side>& sides) {
  std::deque<RunView> loaded;
  std::map<std::string, const RunView*> by_id;
  std::vector<const RunView*> views;
  std::vector<std::string> agents;
  for (const Side& side : sides) {
    auto found = by_id.find(side.run_id);
    if (found == by_id.end()) {
      CRUCIBLE_ASSIGN_OR_RETURN(RunView view, LoadRun(store, side.run_id));
      loaded.push_back(std::move(view));
      found = by_id.emplace(side.run_id, &loaded.back()).first;
    }
    const RunView* view = found->second;
    std::vector<std::string> names;
    for (const auto& a : view->run.agents()) names.push_back(a.name());
    if (side.agent.empty()) {
      if (names.empty()) {
        return Fail(Code::kInvalidArgument,
                    fmt::format("run '{}' has no agents; nothing to compare", side.run_id));
      }
      for (const auto& name : names) {
        views.push_back(view);
        agents.push_back(name);
      }
    } else if (std::find(names.begin(), names.end(), side.agent) == names.end()) {
      return Fail(Code::kNotFound, fmt::format("agent '{}' not in run '{}' (its agents: {})",
                                               side.agent, side.run_id, fmt::join(names, ", ")));
    } else {
      views.push_back(view);
      agents.push_back(side.agent);
    }
  }
  if (views.size() < 2) {
    return Fail(Code::kInvalidArgument,
                fmt::format("nothing to compare: {} is one agent; give a second side (RUN or "
                            "RUN:AGENT), or a run with several agents",
                            views.empty() ? "" : views[0]->run.id() + ":" + agents[0]));
  }
  return CompareViews(views, agents);
}

namespace {

std::string RateCell(const MetricComparison& m, const std::optional<double>& v,
                     const std::optional<stats::Interval>& ci) {
  if (!v) return "-";
  if (IsCost(m.name)) return fmt::format("${:.4f}", *v);
  if (!ci) return fmt::format("{:.2f}", *v);
  return fmt::format("{:.1f}% [{:.0f}-{:.0f}]", *v * 100, ci->low * 100, ci->high * 100);
}

std::string DiffCell(const MetricComparison& m) {
  if (m.pairs == 0) return "-";
  const double s = Scale(m.name);
  if (IsCost(m.name)) {
    return fmt::format("{:+.4f} [{:+.4f}, {:+.4f}]", m.difference.value, m.difference.ci.low,
                       m.difference.ci.high);
  }
  return fmt::format("{:+.1f} [{:+.1f}, {:+.1f}]", m.difference.value * s, m.difference.ci.low * s,
                     m.difference.ci.high * s);
}

std::string DetectableCell(const MetricComparison& m) {
  if (!m.minimum_detectable) return "-";
  if (IsCost(m.name)) return fmt::format("${:.4f}", *m.minimum_detectable);
  // Beyond 100 points nothing on a 0..1 scale is detectable.
  if (*m.minimum_detectable > 1) return ">100";
  return fmt::format("{:.1f}", *m.minimum_detectable * 100);
}

std::string FlipList(const std::vector<Flip>& flips, bool with_samples) {
  std::string out;
  for (const auto& f : flips) {
    if (!out.empty()) out += "; ";
    out += f.task_id;
    if (with_samples) out += fmt::format("#{}", f.sample);
    out += fmt::format(" ({} vs {})", f.a_attempt, f.b_attempt);
  }
  return out;
}

// At most kFlipsShown flips a line each; the JSON and CSV list them all.
constexpr size_t kFlipsShown = 10;

std::string FlipLines(const std::vector<Flip>& flips, bool with_samples) {
  std::string out;
  for (size_t i = 0; i < flips.size() && i < kFlipsShown; ++i) {
    const Flip& f = flips[i];
    out += fmt::format("    {}  A {}  B {}\n",
                       with_samples ? fmt::format("{}#{}", f.task_id, f.sample) : f.task_id,
                       f.a_attempt, f.b_attempt);
  }
  if (flips.size() > kFlipsShown) {
    out +=
        fmt::format("    and {} more (--format json lists them all)\n", flips.size() - kFlipsShown);
  }
  return out;
}

bool SeveralSamples(const Comparison& c) {
  return std::any_of(c.sides.begin(), c.sides.end(), [](const auto& s) { return s.samples > 1; });
}

}  // namespace

std::string RenderComparisonTable(const Comparison& c) {
  std::string out;
  for (size_t i = 0; i < c.sides.size(); ++i) {
    const ComparedSide& s = c.sides[i];
    const std::string label = i == 0 ? "A" : c.sides.size() == 2 ? "B" : fmt::format("B{}", i);
    out += fmt::format("{:<3} {}  suite {}, {} tasks, {} of {} attempts finished{}{}{}\n", label,
                       SideName(s), s.suite, s.tasks, s.finished, s.attempts,
                       s.infra_failed ? fmt::format(", {} infra-failed", s.infra_failed) : "",
                       s.no_submission ? fmt::format(", no submission: {}", s.no_submission) : "",
                       s.run_running ? " (run still running)" : "");
  }
  const bool with_samples = SeveralSamples(c);
  for (const auto& sc : c.comparisons) {
    const ComparedSide& a = c.sides[sc.a];
    const ComparedSide& b = c.sides[sc.b];
    out += fmt::format("\n{} against {}: {} pairs over {} tasks\n", SideName(b), SideName(a),
                       sc.pairs, sc.tasks);
    if (sc.left_out_not_finished > 0) {
      out += fmt::format("  {} pairs left out: not finished\n", sc.left_out_not_finished);
    }
    if (sc.left_out_infra_failed > 0) {
      out += fmt::format("  {} pairs left out: infra-failed\n", sc.left_out_infra_failed);
    }
    if (sc.a_tasks_not_in_b > 0 || sc.b_tasks_not_in_a > 0) {
      out += fmt::format(
          "  tasks of one side only, left out: {} of A's {} tasks, {} of B's {} tasks\n",
          sc.a_tasks_not_in_b, a.tasks, sc.b_tasks_not_in_a, b.tasks);
    }
    out += fmt::format("  {:<19} {:>5}  {:<16} {:<16} {:<24} {:<9} {:>10}\n", "metric", "pairs",
                       "A", "B", "B - A [95% CI]", c.holm ? "p (Holm)" : "p", "detectable");
    for (const auto& m : sc.metrics) {
      out += fmt::format(
          "  {:<19} {:>5}  {:<16} {:<16} {:<24} {:<9} {:>10}\n", m.name, m.pairs,
          RateCell(m, m.a, m.a_ci), RateCell(m, m.b, m.b_ci), DiffCell(m),
          m.pairs
              ? fmt::format("{}{}",
                            m.p_adjusted < 0.001 ? "<0.001" : fmt::format("{:.3f}", m.p_adjusted),
                            m.significant ? "*" : "")
              : "-",
          DetectableCell(m));
    }
    out +=
        "  (rates and dimensions in points; p over tasks: McNemar exact for rates, sign test for "
        "means and for several samples; * p < 0.05)\n";
    for (const auto& m : sc.metrics) {
      if (!m.binary) continue;
      const char* verb = HigherIsBetter(m.name) ? "held" : "hit";
      for (const auto* flips : {&m.flips_to_b, &m.flips_to_a}) {
        if (flips->empty()) continue;
        out += fmt::format("  {} {} only by {} ({}):\n", m.name, verb,
                           flips == &m.flips_to_b ? "B" : "A", flips->size());
        out += FlipLines(*flips, with_samples);
      }
    }
  }
  if (with_samples) {
    out += "\npass@k and pass^k of loose completion (over tasks with k finished samples)\n";
    for (const auto& s : c.sides) {
      std::string line;
      for (const auto& p : s.pass_k) {
        line +=
            fmt::format("  k={}: {:.1f}% / {:.1f}%", p.k, p.pass_at_k * 100, p.pass_hat_k * 100);
      }
      if (s.completion_variance) {
        line += fmt::format("  per-task variance {:.3f}", *s.completion_variance);
      }
      out += fmt::format("  {}{}\n", SideName(s), line.empty() ? "  one sample" : line);
    }
  }
  if (!c.notes.empty()) out += "\n";
  for (const auto& n : c.notes) out += "note: " + n + "\n";
  out += "\n";
  for (const auto& sc : c.comparisons) out += sc.sentence + "\n";
  return out;
}

namespace {

nlohmann::json Optional(const std::optional<double>& v) {
  return v ? nlohmann::json(*v) : nlohmann::json(nullptr);
}

nlohmann::json IntervalJson(const std::optional<stats::Interval>& ci) {
  if (!ci) return nullptr;
  return nlohmann::json::array({ci->low, ci->high});
}

nlohmann::json FlipsJson(const std::vector<Flip>& flips) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& f : flips) {
    out.push_back(
        {{"task_id", f.task_id}, {"sample", f.sample}, {"a", f.a_attempt}, {"b", f.b_attempt}});
  }
  return out;
}

}  // namespace

std::string RenderComparisonJson(const Comparison& c) {
  nlohmann::json sides = nlohmann::json::array();
  for (const auto& s : c.sides) {
    nlohmann::json pass_k = nlohmann::json::array();
    for (const auto& p : s.pass_k) {
      pass_k.push_back({{"k", p.k},
                        {"tasks", p.tasks},
                        {"pass_at_k", p.pass_at_k},
                        {"pass_hat_k", p.pass_hat_k}});
    }
    sides.push_back({{"run", s.run_id},
                     {"agent", s.agent},
                     {"suite", s.suite},
                     {"run_running", s.run_running},
                     {"attempts", s.attempts},
                     {"finished", s.finished},
                     {"infra_failed", s.infra_failed},
                     {"no_submission", s.no_submission},
                     {"tasks", s.tasks},
                     {"samples", s.samples},
                     {"rounds", s.rounds},
                     {"pass_k", pass_k},
                     {"completion_variance", Optional(s.completion_variance)}});
  }
  nlohmann::json comparisons = nlohmann::json::array();
  for (const auto& sc : c.comparisons) {
    nlohmann::json metrics = nlohmann::json::object();
    for (const auto& m : sc.metrics) {
      metrics[m.name] = {{"binary", m.binary},
                         {"higher_is_better", m.higher_is_better},
                         {"pairs", m.pairs},
                         {"tasks", m.tasks},
                         {"a", Optional(m.a)},
                         {"b", Optional(m.b)},
                         {"a_ci", IntervalJson(m.a_ci)},
                         {"b_ci", IntervalJson(m.b_ci)},
                         {"difference", m.pairs ? nlohmann::json(m.difference.value) : nullptr},
                         {"difference_ci", m.pairs ? IntervalJson(m.difference.ci) : nullptr},
                         {"only_a", m.only_a},
                         {"only_b", m.only_b},
                         {"test", m.test},
                         {"p", m.p},
                         {"p_adjusted", m.p_adjusted},
                         {"significant", m.significant},
                         {"minimum_detectable", Optional(m.minimum_detectable)},
                         {"flips_to_a", FlipsJson(m.flips_to_a)},
                         {"flips_to_b", FlipsJson(m.flips_to_b)}};
    }
    comparisons.push_back({{"a", sc.a},
                           {"b", sc.b},
                           {"pairs", sc.pairs},
                           {"tasks", sc.tasks},
                           {"left_out",
                            {{"not_finished", sc.left_out_not_finished},
                             {"infra_failed", sc.left_out_infra_failed},
                             {"a_tasks_not_in_b", sc.a_tasks_not_in_b},
                             {"b_tasks_not_in_a", sc.b_tasks_not_in_a}}},
                           {"metrics", metrics},
                           {"headline_metric", sc.headline_metric},
                           {"sentence", sc.sentence}});
  }
  nlohmann::json out = {
      {"sides", sides}, {"comparisons", comparisons}, {"holm", c.holm}, {"notes", c.notes}};
  return out.dump(2) + "\n";
}

std::string RenderComparisonCsv(const Comparison& c) {
  std::string out = CsvRecord({"a",
                               "b",
                               "metric",
                               "pairs",
                               "tasks",
                               "a_value",
                               "a_low",
                               "a_high",
                               "b_value",
                               "b_low",
                               "b_high",
                               "difference",
                               "difference_low",
                               "difference_high",
                               "test",
                               "p",
                               "p_adjusted",
                               "significant",
                               "minimum_detectable",
                               "flips_to_a",
                               "flips_to_b",
                               "sentence"});
  auto num = [](const std::optional<double>& v) {
    return v ? fmt::format("{:.6g}", *v) : std::string();
  };
  for (const auto& sc : c.comparisons) {
    for (const auto& m : sc.metrics) {
      const bool any = m.pairs > 0;
      out += CsvRecord({SideName(c.sides[sc.a]),
                        SideName(c.sides[sc.b]),
                        m.name,
                        std::to_string(m.pairs),
                        std::to_string(m.tasks),
                        num(m.a),
                        num(m.a_ci ? std::optional(m.a_ci->low) : std::nullopt),
                        num(m.a_ci ? std::optional(m.a_ci->high) : std::nullopt),
                        num(m.b),
                        num(m.b_ci ? std::optional(m.b_ci->low) : std::nullopt),
                        num(m.b_ci ? std::optional(m.b_ci->high) : std::nullopt),
                        num(any ? std::optional(m.difference.value) : std::nullopt),
                        num(any ? std::optional(m.difference.ci.low) : std::nullopt),
                        num(any ? std::optional(m.difference.ci.high) : std::nullopt),
                        m.test,
                        num(any ? std::optional(m.p) : std::nullopt),
                        num(any ? std::optional(m.p_adjusted) : std::nullopt),
                        m.significant ? "yes" : "no",
                        num(m.minimum_detectable),
                        FlipList(m.flips_to_a, true),
                        FlipList(m.flips_to_b, true),
                        sc.sentence});
    }
  }
  return out;
}

Result<WorseGate> ParseWorseGate(std::string_view text) {
  const auto colon = text.rfind(':');
  if (colon == std::string_view::npos) {
    return Fail(
        Code::kInvalidArgument,
        fmt::format("--fail-if-worse '{}': give METRIC:POINTS, e.g. strict_completion:5", text));
  }
  WorseGate gate;
  gate.metric = std::string(text.substr(0, colon));
  if (std::find(std::begin(kCompareMetrics), std::end(kCompareMetrics), gate.metric) ==
      std::end(kCompareMetrics)) {
    return Fail(Code::kInvalidArgument,
                fmt::format("--fail-if-worse '{}': unknown metric '{}' (metrics: {})", text,
                            gate.metric, fmt::join(kCompareMetrics, ", ")));
  }
  const std::string number(text.substr(colon + 1));
  char* end = nullptr;
  gate.points = std::strtod(number.c_str(), &end);
  if (number.empty() || end != number.c_str() + number.size() || !std::isfinite(gate.points) ||
      gate.points < 0) {
    return Fail(Code::kInvalidArgument,
                fmt::format("--fail-if-worse '{}': '{}' is not a number of {} >= 0", text, number,
                            Unit(gate.metric)));
  }
  return gate;
}

std::vector<std::string> FailedGates(const Comparison& c, const std::vector<WorseGate>& gates) {
  std::vector<std::string> failed;
  for (const auto& sc : c.comparisons) {
    for (const auto& gate : gates) {
      auto it = std::find_if(sc.metrics.begin(), sc.metrics.end(),
                             [&](const auto& m) { return m.name == gate.metric; });
      if (it == sc.metrics.end() || it->pairs == 0 || !it->significant) continue;
      const MetricComparison& m = *it;
      const double s = Scale(m.name);
      const double limit = gate.points / s;
      // Worse: in the direction that is bad for this metric, by more than
      // the gate allows over the whole interval.
      const bool worse = m.higher_is_better
                             ? m.difference.value < 0 && m.difference.ci.high < -limit
                             : m.difference.value > 0 && m.difference.ci.low > limit;
      if (!worse) continue;
      failed.push_back(fmt::format(
          "{}: {} is {:.{}f} {} worse than {}, 95% CI {:+.{}f} to {:+.{}f}, p {}; the gate "
          "allows {:g}",
          m.name, SideName(c.sides[sc.b]), std::abs(m.difference.value) * s, IsCost(m.name) ? 4 : 1,
          Unit(m.name), SideName(c.sides[sc.a]), m.difference.ci.low * s, IsCost(m.name) ? 4 : 1,
          m.difference.ci.high * s, IsCost(m.name) ? 4 : 1, FormatP(m.p_adjusted), gate.points));
    }
  }
  return failed;
}

}  // namespace crucible::report
