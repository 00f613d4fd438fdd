// Scoring one attempt (docs/benchmarks.md, "Scoring"): ScoreAttempt on a
// 1,000-line diff over 20 files and a 5,000-event agent trace, tests
// excluded (their outcomes are evidence). The aim is under 5 ms.
#include <benchmark/benchmark.h>
#include <fmt/format.h>

#include "scoring/score.h"

namespace crucible {
namespace {

constexpr int kFiles = 20;
constexpr int kLinesPerFile = 50;  // 25 removed and 25 added: 1,000 lines in all

std::string Diff(const std::string& prefix) {
  std::string d;
  for (int f = 0; f < kFiles; ++f) {
    const std::string path = fmt::format("{}/mod{}/file{}.py", prefix, f % 4, f);
    d += fmt::format(
        "diff --git a/{0} b/{0}\nindex 1111111..2222222 100644\n--- a/{0}\n+++ b/{0}\n", path);
    // Five hunks of five removed and five added lines each.
    for (int h = 0; h < 5; ++h) {
      d += fmt::format("@@ -{0},5 +{0},5 @@\n", 1 + h * 20);
      for (int i = 0; i < 5; ++i) d += fmt::format("-    value_{} = compute({}, {})\n", i, f, h);
      for (int i = 0; i < 5; ++i) {
        d += fmt::format("+    value_{} = compute_checked({}, {}, key=\"k{}\")\n", i, f, h, i);
      }
    }
  }
  return d;
}

std::vector<v1::TraceEvent> Trace(int n) {
  std::vector<v1::TraceEvent> events;
  events.reserve(n);
  events.emplace_back();
  events.back().set_name("plan");
  events.back().set_attrs_json(R"({"files": ["pkg/"], "text": "Fix compute in every module"})");
  for (int i = 1; i < n; ++i) {
    v1::TraceEvent ev;
    const std::string path = fmt::format("pkg/mod{}/file{}.py", i % 4, i % kFiles);
    switch (i % 5) {
      case 0:
        ev.set_name("read_file");
        ev.set_attrs_json(fmt::format(R"({{"path": "{}"}})", path));
        break;
      case 1:
        ev.set_name("search");
        ev.set_attrs_json(R"({"query": "compute("})");
        break;
      case 2:
        ev.set_name("edit_file");
        ev.set_attrs_json(fmt::format(R"({{"path": "{}", "files": ["{}"]}})", path, path));
        break;
      case 3:
        ev.set_name("llm_call");
        ev.set_attrs_json(R"({"model": "m", "tokens_in": 1200, "tokens_out": 300})");
        break;
      default:
        ev.set_name("run_tests");
        ev.set_attrs_json(fmt::format(R"({{"passed": {}, "failed": {}, "exit_code": {}}})", 40,
                                      i % 3, i % 3 ? 1 : 0));
    }
    events.push_back(std::move(ev));
  }
  for (int i = 0; i < n; ++i) {
    events[i].set_seq(i + 1);
    events[i].set_ts_ns(1'000'000'000LL * (i + 1));
    events[i].set_kind("TOOL");
    events[i].set_source("agent");
  }
  return events;
}

void BM_ScoreAttempt(benchmark::State& state) {
  const bool stored_changes = state.range(0) != 0;
  v1::GoldenTask task;
  task.set_source_patch(Diff("pkg").substr(0, 4000));
  task.set_source_patch(task.source_patch().substr(0, task.source_patch().rfind("diff --git")));
  for (int i = 0; i < 200; ++i) {
    task.add_pass_to_pass(fmt::format("tests.test_m::test_{}", i));
  }
  task.add_fail_to_pass("tests.test_m::test_new");
  v1::Evidence e;
  e.set_final_diff(Diff("pkg"));
  std::string error;
  if (stored_changes) {
    for (auto& c : scoring::DescribeChanges(e.final_diff(), &error))
      *e.add_changes() = std::move(c);
    for (auto& c : scoring::DescribeChanges(task.source_patch(), &error)) {
      *e.add_golden_changes() = std::move(c);
    }
  }
  for (const auto& id : task.pass_to_pass()) {
    auto* t = e.mutable_tests()->add_tests();
    t->set_id(id);
    t->set_status(v1::TestOutcome::PASSED);
  }
  auto* t = e.mutable_tests()->add_tests();
  t->set_id("tests.test_m::test_new");
  t->set_status(v1::TestOutcome::PASSED);
  e.mutable_static_facts();
  const auto trace = Trace(static_cast<int>(state.range(1)));
  const v1::ReviewRules rules;
  for (auto _ : state) {
    auto score = scoring::ScoreAttempt(
        scoring::AttemptInput{.task = task, .evidence = e, .trace = trace, .rules = rules});
    benchmark::DoNotOptimize(score);
  }
}
// {stored per-file changes (1) or derived from the diff (0), trace events}
BENCHMARK(BM_ScoreAttempt)
    ->Args({1, 5000})
    ->Args({0, 5000})
    ->Args({1, 0})
    ->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace crucible

BENCHMARK_MAIN();
