// Report generation for a large run: 5 agents x 200 tasks x 3 samples (3,000
// attempts) stored through storage::Store, each with a 50-line diff, 30 test
// outcomes, LLM usage and a 100-event trace, and scored by the current
// scoring (report::RescoreRun), so outcomes, violations, dimensions and
// failure modes vary as in a real run. Times, best of 3 each with the store
// opened afresh: the JSON per agent (LoadRun, Summarize, RenderJson), the
// JSON per attempt (LoadRun, RenderAttemptsJson) and the HTML page
// (RenderRunHtml, which loads what it shows itself); prints their sizes.
// Aims (issue 14): JSON under 1 s, HTML under 3 s.
//
// Usage: report_bench [HTML_OUT]   (HTML_OUT: where to leave the page, for a
// browser to load; by default it is not kept)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "base/fs.h"
#include "report/html.h"
#include "report/report.h"
#include "report/rescore.h"
#include "scoring/score.h"
#include "storage/store.h"

namespace crucible {
namespace {

constexpr int kAgents = 5;
constexpr int kTasks = 200;
constexpr int kSamples = 3;
constexpr int kTests = 30;
constexpr int kTraceEvents = 100;
constexpr char kRun[] = "r-report-bench";

// A deterministic spread of outcomes: agent a solves a task with a chance
// that grows with a (30% to 70%), varying by task and sample.
bool Solves(int agent, int task, int sample) {
  const unsigned h = static_cast<unsigned>(task * 2654435761u + sample * 40503u + agent * 97u);
  return static_cast<int>((h >> 7) % 100) < 30 + 10 * agent;
}

// A unified diff of pkg/mod_N.py replacing 25 lines with 25 others (50
// changed lines), as git writes it; `extra` also touches docs/notes.md (an
// out-of-scope change).
std::string Diff(int task, bool agent, bool extra) {
  std::string d = fmt::format(
      "diff --git a/pkg/mod_{0}.py b/pkg/mod_{0}.py\n"
      "index 1a2b3c4..5d6e7f8 100644\n"
      "--- a/pkg/mod_{0}.py\n"
      "+++ b/pkg/mod_{0}.py\n"
      "@@ -10,27 +10,27 @@ def helper():\n"
      " context_before = 1\n",
      task);
  for (int i = 0; i < 25; ++i) d += fmt::format("-    value_{} = compute({})\n", i, i);
  for (int i = 0; i < 25; ++i) {
    d += fmt::format("+    value_{} = compute({}, strict={})\n", i, i, agent ? "True" : "False");
  }
  d += " context_after = 2\n";
  if (extra) {
    d += "diff --git a/docs/notes.md b/docs/notes.md\n"
         "index 0000001..0000002 100644\n"
         "--- a/docs/notes.md\n"
         "+++ b/docs/notes.md\n"
         "@@ -1,2 +1,3 @@\n"
         " # Notes\n"
         "+compute is strict now.\n"
         " end\n";
  }
  return d;
}

v1::GoldenTask Task(int n) {
  v1::GoldenTask t;
  t.set_suite("bench");
  t.set_id(fmt::format("{:04}-make-compute-strict", n));
  t.set_intent(fmt::format("Make compute() in pkg/mod_{}.py strict, as issue #{} asks.", n, n));
  t.set_source_patch(Diff(n, /*agent=*/true, /*extra=*/false));
  t.add_source_files(fmt::format("pkg/mod_{}.py", n));
  t.add_test_files(fmt::format("tests/test_mod_{}.py", n));
  for (int i = 0; i < kTests; ++i) {
    auto id = fmt::format("tests.test_mod_{}::test_{}", n, i);
    if (i < 2) {
      t.add_fail_to_pass(id);
    } else {
      t.add_pass_to_pass(id);
    }
  }
  return t;
}

v1::Evidence Evidence(const v1::GoldenTask& task, int agent, int n, int sample) {
  const bool solves = Solves(agent, n, sample);
  const bool extra = (n + sample + agent) % 7 == 0;
  v1::Evidence e;
  const std::string diff = Diff(n, /*agent=*/solves, extra);
  e.set_final_diff(diff);
  e.set_diff_bytes(diff.size());
  std::string error;
  for (auto& c : scoring::DescribeChanges(diff, &error)) *e.add_changes() = std::move(c);
  for (auto& c : scoring::DescribeChanges(task.source_patch(), &error)) {
    *e.add_golden_changes() = std::move(c);
  }
  e.add_files_touched(fmt::format("pkg/mod_{}.py", n));
  if (extra) e.add_files_touched("docs/notes.md");
  for (int i = 0; i < kTests; ++i) {
    auto* t = e.mutable_tests()->add_tests();
    t->set_id(fmt::format("tests.test_mod_{}::test_{}", n, i));
    const bool fails = (i == 0 && !solves) || (i == 5 && (n + agent) % 11 == 0);
    t->set_status(fails ? v1::TestOutcome::FAILED : v1::TestOutcome::PASSED);
    t->set_time_s(0.01);
  }
  e.mutable_tests()->set_report_found(true);
  e.set_wall_ms(20'000 + 1'000 * ((n * 7 + agent * 3 + sample) % 40));
  e.set_trace_events(kTraceEvents);
  auto* usage = e.mutable_usage();
  usage->set_llm_calls(10 + (n + sample) % 20);
  usage->set_tokens_in(20'000 + 1'000 * ((n + agent) % 30));
  usage->set_tokens_out(2'000 + 100 * ((n + sample) % 30));
  usage->set_cost_usd(0.02 * (agent + 1) + 0.001 * (n % 30));
  usage->set_cost_source("agent");
  usage->add_models(fmt::format("model-{}", agent));
  return e;
}

std::vector<v1::TraceEvent> Trace(int n) {
  std::vector<v1::TraceEvent> out(kTraceEvents);
  const std::string path = fmt::format("pkg/mod_{}.py", n);
  for (int i = 0; i < kTraceEvents; ++i) {
    auto& ev = out[i];
    ev.set_seq(i);
    ev.set_ts_ns(1'000'000'000LL * (i + 1));
    ev.set_kind("TOOL");
    ev.set_source("agent");
    ev.set_span_id(fmt::format("s{}", i));
    if (i == 0) {
      ev.set_name("plan");
      ev.set_kind("AGENT");
      ev.set_attrs_json(fmt::format(R"({{"files":["{}"]}})", path));
    } else if (i % 4 == 1) {
      ev.set_name("read_file");
      ev.set_attrs_json(fmt::format(R"({{"path":"{}"}})", path));
    } else if (i % 4 == 2) {
      ev.set_name("edit_file");
      ev.set_attrs_json(fmt::format(R"({{"path":"{}","lines":2}})", path));
    } else if (i % 4 == 3) {
      ev.set_name("run_tests");
      ev.set_attrs_json(i % 8 == 3 ? R"({"failed":1,"passed":29})" : R"({"failed":0,"passed":30})");
    } else {
      ev.set_name("search");
      ev.set_attrs_json(R"({"query":"compute"})");
    }
  }
  return out;
}

double Seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

Status Store(const std::string& db) {
  CRUCIBLE_ASSIGN_OR_RETURN(auto store, storage::Store::Open(db));
  v1::Suite suite;
  suite.set_name("bench");
  std::vector<v1::GoldenTask> tasks;
  for (int i = 0; i < kTasks; ++i) tasks.push_back(Task(i));
  CRUCIBLE_RETURN_IF_ERROR(store->PutSuite(suite, tasks));
  v1::Run run;
  run.set_id(kRun);
  run.set_suite("bench");
  for (int a = 0; a < kAgents; ++a) run.add_agents()->set_name(fmt::format("agent-{}", a));
  run.set_samples(kSamples);
  const int attempts = kAgents * kTasks * kSamples;
  run.set_attempt_count(attempts);
  // In the order the coordinator creates them: task, sample, agent.
  std::vector<v1::Attempt> list(attempts);
  for (int i = 0; i < attempts; ++i) {
    list[i].set_run_id(kRun);
    list[i].set_number(i);
    list[i].set_agent(fmt::format("agent-{}", i % kAgents));
    list[i].set_sample((i / kAgents) % kSamples);
    list[i].set_task_id(tasks[i / (kAgents * kSamples)].id());
    list[i].set_state(v1::Attempt::QUEUED);
  }
  CRUCIBLE_RETURN_IF_ERROR(store->CreateRun(run, list));
  store->SetGroupCommit(true);
  for (int i = 0; i < attempts; ++i) {
    const int n = i / (kAgents * kSamples);
    CRUCIBLE_RETURN_IF_ERROR(store->AppendEvents(kRun, i, Trace(n)));
    v1::Attempt a = list[i];
    a.set_state(v1::Attempt::DONE);
    const v1::Evidence evidence = Evidence(tasks[n], i % kAgents, n, list[i].sample());
    v1::Score first;  // replaced below by the current scoring's
    first.set_wall_ms(evidence.wall_ms());
    CRUCIBLE_RETURN_IF_ERROR(store->FinishAttempt(a, evidence, first));
  }
  store->SetGroupCommit(false);
  CRUCIBLE_ASSIGN_OR_RETURN(auto rescored, report::RescoreRun(*store, kRun, {}));
  if (rescored.rescored != static_cast<size_t>(attempts)) {
    return Fail(Code::kInternal,
                fmt::format("scored {} of {} attempts", rescored.rescored, attempts));
  }
  return {};
}

// Runs `render` 3 times, each on the store opened afresh (as the CLI does),
// and prints the best time and the output's size.
Status Time(const std::string& db, const char* what,
            const std::function<Result<std::string>(storage::Store&)>& render,
            std::string* output) {
  double best = 1e9;
  for (int i = 0; i < 3; ++i) {
    CRUCIBLE_ASSIGN_OR_RETURN(
        auto store, storage::Store::Open(db, {.create_if_missing = false, .read_only = true}));
    auto start = std::chrono::steady_clock::now();
    CRUCIBLE_ASSIGN_OR_RETURN(*output, render(*store));
    best = std::min(best, Seconds(start));
  }
  std::printf("%-44s %6.3f s  %9.1f KB\n", what, best, output->size() / 1024.0);
  return {};
}

int Main(int argc, char** argv) {
  const std::string html_out = argc > 1 ? argv[1] : "";
  auto fail = [](const Error& e) {
    std::fprintf(stderr, "report_bench: %s\n", e.ToString().c_str());
    return 1;
  };
  auto tmp = TempDir::Create("crucible-report-bench-");
  if (!tmp) return fail(tmp.error());
  const std::string db = tmp->path() + "/db";
  auto start = std::chrono::steady_clock::now();
  if (auto st = Store(db); !st) return fail(st.error());
  std::printf(
      "stored and scored %d attempts (%d agents x %d tasks x %d samples; %d tests, %d trace "
      "events each) in %.1f s\n",
      kAgents * kTasks * kSamples, kAgents, kTasks, kSamples, kTests, kTraceEvents, Seconds(start));
  {
    auto store = storage::Store::Open(db, {.create_if_missing = false, .read_only = true});
    if (!store) return fail(store.error());
    auto rows = report::SummarizeRun(**store, kRun);
    if (!rows) return fail(rows.error());
    std::string line = "completion (loose/strict):";
    for (const auto& r : *rows) {
      line += fmt::format(" {} {:.0f}%/{:.0f}%", r.agent, 100 * r.completion_rate,
                          100 * r.strict_completion_rate);
    }
    std::printf("%s\n", line.c_str());
  }

  std::string out;
  auto agents_json = [](storage::Store& store) -> Result<std::string> {
    CRUCIBLE_ASSIGN_OR_RETURN(auto view, report::LoadRun(store, kRun));
    auto rows = report::Summarize(view.run, view.attempts, view.contained_files);
    return report::RenderJson(view.run, rows);
  };
  if (auto st = Time(db, "JSON per agent (LoadRun+Summarize+RenderJson)", agents_json, &out); !st)
    return fail(st.error());
  auto attempts_json = [](storage::Store& store) -> Result<std::string> {
    CRUCIBLE_ASSIGN_OR_RETURN(auto view, report::LoadRun(store, kRun));
    return report::RenderAttemptsJson(view.run, view.attempts);
  };
  if (auto st = Time(db, "JSON per attempt (LoadRun+RenderAttemptsJson)", attempts_json, &out); !st)
    return fail(st.error());
  auto html = [](storage::Store& store) { return report::RenderRunHtml(store, kRun); };
  if (auto st = Time(db, "HTML page (RenderRunHtml)", html, &out); !st) return fail(st.error());
  if (!html_out.empty()) {
    if (auto st = WriteFile(html_out, out); !st) return fail(st.error());
    std::printf("HTML page written to %s\n", html_out.c_str());
  }
  return 0;
}

}  // namespace
}  // namespace crucible

int main(int argc, char** argv) { return crucible::Main(argc, argv); }
