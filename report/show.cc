#include "report/show.h"

#include <algorithm>
#include <map>
#include <set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "protocol/run_state.h"
#include "scoring/calibration.h"

namespace crucible::report {

namespace {

using nlohmann::json;

std::string Ref(const AttemptDetail& d) {
  return fmt::format("{}/{}", d.view.attempt.run_id(), d.view.attempt.number());
}

std::string StateName(const v1::Attempt& a) { return v1::Attempt::State_Name(a.state()); }

std::vector<std::string> SplitLines(const std::string& text) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t next = text.find('\n', pos);
    if (next == std::string::npos) next = text.size();
    out.push_back(text.substr(pos, next - pos));
    pos = next + 1;
  }
  return out;
}

// Fits `s` into `width` columns (tabs as two spaces), cut with "…" when longer.
std::string Fit(std::string s, size_t width) {
  std::string out;
  for (char c : s) out += c == '\t' ? std::string("  ") : std::string(1, c);
  if (out.size() > width) out = out.substr(0, width - 1) + "~";
  return out;
}

std::string StatusName(v1::TestOutcome::Status s) {
  switch (s) {
    case v1::TestOutcome::PASSED:
      return "pass";
    case v1::TestOutcome::FAILED:
      return "fail";
    case v1::TestOutcome::ERROR:
      return "error";
    case v1::TestOutcome::SKIPPED:
      return "skipped";
    default:
      return "unknown";
  }
}

// One test of the task with its outcome in the attempt's test runs.
struct TestLine {
  std::string group;  // FAIL_TO_PASS, PASS_TO_PASS, regression
  std::string id;
  std::string status;  // pass, fail, error, skipped, unknown, missing
};

std::vector<TestLine> Tests(const AttemptDetail& d) {
  std::vector<TestLine> out;
  if (!d.evidence) return out;
  std::map<std::string, std::string> outcome;
  for (const auto& t : d.evidence->tests().tests()) outcome[t.id()] = StatusName(t.status());
  std::map<std::string, std::string> regression;
  for (const auto& t : d.evidence->regression_tests().tests()) {
    regression[t.id()] = StatusName(t.status());
  }
  auto add = [&](const char* group, const auto& ids, const std::map<std::string, std::string>& in) {
    for (const auto& id : ids) {
      auto it = in.find(id);
      out.push_back({group, id, it == in.end() ? "missing" : it->second});
    }
  };
  if (d.task) {
    add("FAIL_TO_PASS", d.task->fail_to_pass(), outcome);
    add("PASS_TO_PASS", d.task->pass_to_pass(), outcome);
    add("regression", d.task->regression_tests(), regression);
  } else {
    std::vector<std::string> ids;
    for (const auto& [id, status] : outcome) ids.push_back(id);
    add("test", ids, outcome);
  }
  std::stable_sort(out.begin(), out.end(), [](const TestLine& a, const TestLine& b) {
    return (a.status != "pass") > (b.status != "pass");
  });
  return out;
}

// A short summary of an event's attrs: its scalar keys as k=v.
std::string EventSummary(const v1::TraceEvent& e, size_t width) {
  if (e.attrs_json().empty()) return "";
  json attrs = json::parse(e.attrs_json(), nullptr, /*allow_exceptions=*/false);
  if (attrs.is_discarded() || !attrs.is_object()) return Fit(e.attrs_json(), width);
  std::string out;
  for (const auto& [key, value] : attrs.items()) {
    if (value.is_object() || value.is_array()) continue;
    std::string v = value.is_string() ? value.get<std::string>()
                                      : value.dump(-1, ' ', false, json::error_handler_t::replace);
    std::replace(v.begin(), v.end(), '\n', ' ');
    out += fmt::format("{}{}={}", out.empty() ? "" : " ", key, v);
    if (out.size() > width) break;
  }
  return Fit(out, width);
}

double OffsetMs(const v1::TraceEvent& e, int64_t t0) { return (e.ts_ns() - t0) / 1e6; }

std::string DimensionCell(const v1::Dimension& d) {
  if (d.measured()) return fmt::format("{:.2f}", d.value());
  return d.reason().empty() ? "null" : fmt::format("null ({})", d.reason());
}

std::string CostText(const v1::Usage& u) {
  const std::string cost = u.cost_source().empty()
                               ? "cost unknown"
                               : fmt::format("${:.4f}{}", u.cost_usd(),
                                             u.cost_source() == "partial" ? " (partial)" : "");
  return fmt::format("{} LLM calls, {} tokens in ({} cached), {} out, {}", u.llm_calls(),
                     u.tokens_in(), u.tokens_cached(), u.tokens_out(), cost);
}

// The files of both diffs: the agent's in order, then the golden-only ones.
struct DiffPair {
  std::string path;
  std::string agent;   // empty: the agent did not touch it
  std::string golden;  // empty: the golden change does not
};

std::vector<DiffPair> PairDiffs(const AttemptDetail& d) {
  std::vector<DiffPair> out;
  std::map<std::string, size_t> index;
  if (d.evidence) {
    for (auto& f : SplitDiff(d.evidence->final_diff())) {
      index[f.path] = out.size();
      out.push_back({f.path, std::move(f.text), ""});
    }
  }
  if (d.task) {
    for (auto& f : SplitDiff(d.task->source_patch())) {
      auto it = index.find(f.path);
      if (it != index.end()) {
        out[it->second].golden = std::move(f.text);
      } else {
        out.push_back({f.path, "", std::move(f.text)});
      }
    }
  }
  return out;
}

std::string RenderDiffs(const AttemptDetail& d, const ShowOptions& options) {
  std::string out;
  const auto pairs = PairDiffs(d);
  const bool side = options.columns >= kSideBySideColumns;
  if (d.evidence && !d.evidence->diff_error().empty()) {
    out += fmt::format("the agent's diff: {}\n", d.evidence->diff_error());
  } else if (d.evidence && d.evidence->final_diff().empty() && d.evidence->diff_bytes() > 0) {
    out += fmt::format("the agent's diff ({} bytes) was not stored: {}\n", d.evidence->diff_bytes(),
                       d.evidence->truncated());
  }
  if (!d.task) out += "the golden diff is unknown: the task is gone from the suite\n";
  if (pairs.empty()) return out + "no file changed on either side\n";
  for (const auto& p : pairs) {
    const char* who = p.agent.empty()    ? "golden only: the agent did not touch it"
                      : p.golden.empty() ? "agent only: the golden change does not touch it"
                                         : "agent | golden";
    out += fmt::format("=== {}  ({})\n", p.path, who);
    if (!side || p.agent.empty() || p.golden.empty()) {
      if (!p.agent.empty()) {
        if (!p.golden.empty()) out += "--- agent\n";
        out += p.agent;
        if (!p.agent.ends_with('\n')) out += "\n";
      }
      if (!p.golden.empty()) {
        if (!p.agent.empty()) out += "--- golden\n";
        out += p.golden;
        if (!p.golden.ends_with('\n')) out += "\n";
      }
      continue;
    }
    const size_t half = static_cast<size_t>((options.columns - 3) / 2);
    const auto left = SplitLines(p.agent), right = SplitLines(p.golden);
    for (size_t i = 0; i < std::max(left.size(), right.size()); ++i) {
      std::string l = i < left.size() ? Fit(left[i], half) : "";
      std::string r = i < right.size() ? Fit(right[i], half) : "";
      std::string line = fmt::format("{:<{}} | {}", l, half, r);
      while (!line.empty() && line.back() == ' ') line.pop_back();
      out += line + "\n";
    }
  }
  return out;
}

}  // namespace

std::vector<FileDiff> SplitDiff(const std::string& diff) {
  std::vector<FileDiff> out;
  size_t pos = 0;
  while (pos < diff.size()) {
    size_t next = diff.find('\n', pos);
    const size_t end = next == std::string::npos ? diff.size() : next + 1;
    const std::string_view line(diff.data() + pos, end - pos);
    if (line.starts_with("diff --git ")) {
      std::string_view rest = line.substr(11);
      while (!rest.empty() && (rest.back() == '\n' || rest.back() == '\r')) rest.remove_suffix(1);
      const size_t b = rest.rfind(" b/");
      std::string path(b == std::string_view::npos ? rest : rest.substr(b + 3));
      out.push_back({std::move(path), ""});
    } else if (out.empty()) {
      out.push_back({"(diff)", ""});
    }
    out.back().text.append(line);
    pos = end;
  }
  return out;
}

std::string RenderShow(const v1::Run& run, const AttemptDetail& d, const ShowOptions& options) {
  const v1::Attempt& a = d.view.attempt;
  std::string out = fmt::format("attempt {}  {}  agent {}  task {}  sample {}", Ref(d),
                                StateName(a), a.agent(), a.task_id(), a.sample());
  if (d.view.score) {
    out += fmt::format("  rounds {}/{}", d.view.score->rounds(),
                       std::max(d.view.score->rounds_allowed(), d.view.score->rounds()));
  }
  out += fmt::format("\nrun {}  suite {}\n", run.id(), run.suite());
  if (!v1::IsSettled(d.view.attempt)) {
    out += fmt::format(
        "this attempt is still running ({}): what is stored so far is shown below; scores, tests "
        "and the diff come when it finishes\n",
        StateName(a));
  }
  if (a.state() == v1::Attempt::FAILED) {
    out += fmt::format("infrastructure failure: {}\n", a.error().empty() ? "-" : a.error());
  }

  out += "\nintent\n";
  if (d.task) {
    for (const auto& line : SplitLines(d.task->intent())) {
      out += line.empty() ? "\n" : "  " + line + "\n";
    }
  } else {
    out += fmt::format("  unknown: task {} is gone from suite {}\n", a.task_id(), run.suite());
  }

  if (d.evidence && d.evidence->has_mutation()) {
    // A calibration mutant (docs/scoring.md "Calibration"): what it planted.
    const v1::Mutation& m = d.evidence->mutation();
    out += fmt::format("\nmutation {}\n", m.kind());
    if (m.applicable()) {
      out += fmt::format("  {}\n", m.description());
      if (!m.file().empty()) {
        out += m.line() > 0 ? fmt::format("  at {}:{}\n", m.file(), m.line())
                            : fmt::format("  in {}\n", m.file());
      }
    } else {
      out += fmt::format("  not applicable: {}\n", m.reason());
    }
  }

  out += "\nscores\n";
  if (const auto& score = d.view.score) {
    const v1::Score& s = *score;
    if (s.no_submission()) {
      out +=
          "  no submission: the predictions file has no patch for this task; nothing was "
          "applied or tested\n";
    }
    out += fmt::format("  loose: {} (FAIL_TO_PASS {}/{}, PASS_TO_PASS {}/{})\n",
                       s.completed() ? "pass" : "fail", s.f2p_passed(), s.f2p_total(),
                       s.p2p_passed(), s.p2p_total());
    out += fmt::format("  strict: {}\n", s.scoring_version() < 2 ? "unknown (old score)"
                                         : s.strict_completed()  ? "yes"
                                                                 : "no");
    if (!s.reason().empty()) out += fmt::format("  reason: {}\n", s.reason());
    if (s.regression_measured()) {
      out +=
          fmt::format("  regression: {} (regression tests {}/{})\n", s.regression() ? "yes" : "no",
                      s.regression_passed(), s.regression_total());
    }
    for (size_t i = 0; i < kDimensionNames.size(); ++i) {
      out += fmt::format("  {:<11} {}\n", kDimensionNames[i],
                         DimensionCell(DimensionAt(s.dimensions(), i)));
    }
    const auto& b = s.blast_radius();
    out += fmt::format("  blast radius: {} files, {} modules, {} lines, {} broken tests\n",
                       b.files(), b.modules(), b.lines(), b.broken_tests());
    out += fmt::format("  merge-ready round: {}\n",
                       s.merge_ready_round() > 0 ? std::to_string(s.merge_ready_round()) : "never");
    for (const auto& j : s.judge()) {
      out += fmt::format("  judge {} {}: {:.2f}\n", j.judge(), j.dimension(), j.score());
    }
    if (!s.failure_modes().empty() || d.view.verdict) {
      const auto modes = FailureModesOf(d.view);
      if (!modes.empty()) out += fmt::format("  failure modes: {}\n", fmt::join(modes, ", "));
    }
  } else {
    out += "  none yet\n";
  }
  if (d.view.usage && (d.view.usage->llm_calls() > 0 || !d.view.usage->cost_source().empty())) {
    out += fmt::format("  cost: {}\n", CostText(*d.view.usage));
  }

  if (d.view.verdict) {
    const v1::Verdict& v = *d.view.verdict;
    out += fmt::format("\nverdict: {} by {}", v.verdict(), v.reviewer());
    if (!v.tags().empty()) out += fmt::format(" [{}]", fmt::join(v.tags(), ", "));
    if (!v.note().empty()) out += fmt::format(": {}", v.note());
    out += "\n";
  }

  const auto tests = Tests(d);
  if (!tests.empty()) {
    out += "\ntests (failing first)\n";
    // Passing PASS_TO_PASS tests are many and say little: past a few, one
    // line counts them (--format json lists every test).
    constexpr int kPassingListed = 5;
    const int passing_p2p =
        static_cast<int>(std::count_if(tests.begin(), tests.end(), [](const TestLine& t) {
          return t.group == "PASS_TO_PASS" && t.status == "pass";
        }));
    const bool fold = passing_p2p > kPassingListed;
    for (const auto& t : tests) {
      if (fold && t.group == "PASS_TO_PASS" && t.status == "pass") continue;
      out += fmt::format("  {:<7} {:<12} {}\n", t.status, t.group, t.id);
    }
    if (fold) {
      out += fmt::format("  pass    PASS_TO_PASS {} more tests (--format json lists them)\n",
                         passing_p2p);
    }
  }

  if (d.view.score && (!d.view.score->violations().empty() || !d.view.score->findings().empty())) {
    out += "\nviolations and findings\n";
    for (const auto& v : d.view.score->violations()) {
      out += fmt::format("  {:<16} {}:{}  {}\n", v.kind(), v.file(), v.line(), v.detail());
    }
    for (const auto& f : d.view.score->findings()) {
      out += fmt::format("  {} {:<14} {}:{}  {}\n", f.severity(), f.rule(), f.file(), f.line(),
                         f.match());
    }
  }

  if (d.evidence || d.task) {
    out += fmt::format("\ndiff: the agent's{}\n", options.columns >= kSideBySideColumns
                                                      ? " (left) beside the golden (right)"
                                                      : ", then the golden");
    out += RenderDiffs(d, options);
  }

  const size_t n = d.events.size();
  out += fmt::format("\ntrace: {} events\n", n);
  if (n > 0) {
    const int64_t t0 = d.events.front().ts_ns();
    const size_t ends = static_cast<size_t>(std::max(1, options.trace_ends));
    const size_t summary_width = static_cast<size_t>(std::max(20, options.columns - 40));
    auto line = [&](const v1::TraceEvent& e) {
      std::string s = fmt::format("  +{:>9.3f}s  {:<6} {:<16} {}", OffsetMs(e, t0) / 1000.0,
                                  e.kind(), e.name(), EventSummary(e, summary_width));
      while (!s.empty() && s.back() == ' ') s.pop_back();
      return s + "\n";
    };
    if (n <= 2 * ends + 1) {
      for (const auto& e : d.events) out += line(e);
    } else {
      for (size_t i = 0; i < ends; ++i) out += line(d.events[i]);
      out += fmt::format("  ... {} events ... (`crucible trace {}` prints them all)\n",
                         n - 2 * ends, Ref(d));
      for (size_t i = n - ends; i < n; ++i) out += line(d.events[i]);
    }
  }
  return out;
}

std::string RenderShowJson(const v1::Run& run, const AttemptDetail& d) {
  const v1::Attempt& a = d.view.attempt;
  json out = {{"attempt_id", Ref(d)},
              {"run", run.id()},
              {"suite", run.suite()},
              {"number", a.number()},
              {"state", StateName(a)},
              {"finished", v1::IsSettled(d.view.attempt)},
              {"agent", a.agent()},
              {"task", a.task_id()},
              {"sample", a.sample()},
              {"error", a.error()},
              {"intent", d.task ? json(d.task->intent()) : json(nullptr)}};
  if (d.view.score) {
    const v1::Score& s = *d.view.score;
    json dims = json::object();
    for (size_t i = 0; i < kDimensionNames.size(); ++i) {
      const auto& dim = DimensionAt(s.dimensions(), i);
      dims[std::string(kDimensionNames[i])] = dim.measured() ? json(dim.value()) : json(nullptr);
    }
    json judges = json::array();
    for (const auto& j : s.judge()) {
      judges.push_back({{"judge", j.judge()}, {"dimension", j.dimension()}, {"score", j.score()}});
    }
    out["rounds"] = s.rounds();
    out["scores"] = {
        {"loose", s.completed()},
        {"strict", s.scoring_version() >= 2 ? json(s.strict_completed()) : json(nullptr)},
        {"reason", s.reason()},
        {"no_submission", s.no_submission()},
        {"f2p_passed", s.f2p_passed()},
        {"f2p_total", s.f2p_total()},
        {"p2p_passed", s.p2p_passed()},
        {"p2p_total", s.p2p_total()},
        {"regression", s.regression_measured() ? json(s.regression()) : json(nullptr)},
        {"dimensions", dims},
        {"blast_radius",
         {{"files", s.blast_radius().files()},
          {"modules", s.blast_radius().modules()},
          {"lines", s.blast_radius().lines()},
          {"broken_tests", s.blast_radius().broken_tests()}}},
        {"merge_ready_round", s.merge_ready_round()},
        {"judges", judges},
        {"failure_modes", FailureModesOf(d.view)}};
    json violations = json::array();
    for (const auto& v : s.violations()) {
      violations.push_back(
          {{"kind", v.kind()}, {"file", v.file()}, {"line", v.line()}, {"detail", v.detail()}});
    }
    out["violations"] = violations;
    json findings = json::array();
    for (const auto& f : s.findings()) {
      findings.push_back({{"rule", f.rule()},
                          {"severity", f.severity()},
                          {"file", f.file()},
                          {"line", f.line()},
                          {"match", f.match()}});
    }
    out["findings"] = findings;
  } else {
    out["rounds"] = nullptr;
    out["scores"] = nullptr;
    out["violations"] = json::array();
    out["findings"] = json::array();
  }
  if (d.view.usage) {
    const v1::Usage& u = *d.view.usage;
    out["cost"] = {{"cost_usd", u.cost_source().empty() ? json(nullptr) : json(u.cost_usd())},
                   {"cost_source", u.cost_source()},
                   {"llm_calls", u.llm_calls()},
                   {"tokens_in", u.tokens_in()},
                   {"tokens_out", u.tokens_out()}};
  } else {
    out["cost"] = nullptr;
  }
  if (d.view.verdict) {
    const v1::Verdict& v = *d.view.verdict;
    out["verdict"] = {{"verdict", v.verdict()},
                      {"reviewer", v.reviewer()},
                      {"tags", std::vector<std::string>(v.tags().begin(), v.tags().end())},
                      {"note", v.note()},
                      {"at_ms", v.at_ms()}};
  } else {
    out["verdict"] = nullptr;
  }
  json tests = json::array();
  for (const auto& t : Tests(d)) {
    tests.push_back({{"group", t.group}, {"id", t.id}, {"status", t.status}});
  }
  out["tests"] = tests;
  if (d.evidence && d.evidence->has_mutation()) {
    out["mutation"] = json::parse(scoring::MutationJson(d.evidence->mutation()));
  } else {
    out["mutation"] = nullptr;
  }
  json files = json::array();
  for (const auto& p : PairDiffs(d)) {
    files.push_back({{"path", p.path}, {"agent", !p.agent.empty()}, {"golden", !p.golden.empty()}});
  }
  out["diff"] = {{"agent", d.evidence ? json(d.evidence->final_diff()) : json(nullptr)},
                 {"golden", d.task ? json(d.task->source_patch()) : json(nullptr)},
                 {"files", files}};
  json events = json::array();
  const int64_t t0 = d.events.empty() ? 0 : d.events.front().ts_ns();
  for (const auto& e : d.events) {
    events.push_back({{"offset_ms", OffsetMs(e, t0)},
                      {"kind", e.kind()},
                      {"name", e.name()},
                      {"summary", EventSummary(e, 200)}});
  }
  out["events"] = events;
  return out.dump(2, ' ', false, json::error_handler_t::replace) + "\n";
}

}  // namespace crucible::report
