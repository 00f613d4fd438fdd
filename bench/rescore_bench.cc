// `crucible rescore` of a large stored run: 10,000 finished attempts (by
// default), each with realistic evidence (a 50-line diff, 30 test outcomes)
// and a 200-event trace, stored with an old score (scoring version 0).
// Prints the time to rescore them all through report::RescoreRun, dry run
// and storing, and, given the crucible binary, through `crucible rescore`.
//
// Usage: rescore_bench [ATTEMPTS] [CRUCIBLE_BIN]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "base/fs.h"
#include "report/rescore.h"
#include "scoring/score.h"
#include "storage/store.h"

namespace crucible {
namespace {

constexpr int kTasks = 100;
constexpr int kTests = 30;
constexpr int kTraceEvents = 200;

// A unified diff of pkg/mod_N.py replacing 25 lines with 25 others (50
// changed lines), as git writes it.
std::string Diff(int task, bool agent) {
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
  return d;
}

v1::GoldenTask Task(int n) {
  v1::GoldenTask t;
  t.set_suite("bench");
  t.set_id(fmt::format("{:04}-task", n));
  t.set_intent("make compute strict");
  t.set_source_patch(Diff(n, /*agent=*/false));
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

v1::Evidence Evidence(const v1::GoldenTask& task, int n, int attempt) {
  v1::Evidence e;
  const std::string diff = Diff(n, /*agent=*/true);
  e.set_final_diff(diff);
  e.set_diff_bytes(diff.size());
  std::string error;
  for (auto& c : scoring::DescribeChanges(diff, &error)) *e.add_changes() = std::move(c);
  for (auto& c : scoring::DescribeChanges(task.source_patch(), &error)) {
    *e.add_golden_changes() = std::move(c);
  }
  e.add_files_touched(fmt::format("pkg/mod_{}.py", n));
  for (int i = 0; i < kTests; ++i) {
    auto* t = e.mutable_tests()->add_tests();
    t->set_id(fmt::format("tests.test_mod_{}::test_{}", n, i));
    // Every third attempt still fails one FAIL_TO_PASS test.
    t->set_status(i == 0 && attempt % 3 == 0 ? v1::TestOutcome::FAILED : v1::TestOutcome::PASSED);
    t->set_time_s(0.01);
  }
  e.mutable_tests()->set_report_found(true);
  e.set_wall_ms(30'000);
  e.set_trace_events(kTraceEvents);
  return e;
}

std::vector<v1::TraceEvent> Trace(int n) {
  std::vector<v1::TraceEvent> out(kTraceEvents);
  const std::string path = fmt::format("pkg/mod_{}.py", n);
  for (int i = 0; i < kTraceEvents; ++i) {
    auto& ev = out[i];
    ev.set_seq(i);
    ev.set_ts_ns(1'000'000LL * (i + 1));
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

int Main(int argc, char** argv) {
  const int attempts = argc > 1 ? std::atoi(argv[1]) : 10'000;
  const std::string crucible = argc > 2 ? argv[2] : "";
  auto tmp = TempDir::Create("crucible-rescore-bench-");
  if (!tmp) {
    std::fprintf(stderr, "%s\n", tmp.error().ToString().c_str());
    return 1;
  }
  const std::string db = tmp->path() + "/db";
  auto fail = [](const Error& e) {
    std::fprintf(stderr, "rescore_bench: %s\n", e.ToString().c_str());
    return 1;
  };
  {
    auto store = storage::Store::Open(db);
    if (!store) return fail(store.error());
    auto start = std::chrono::steady_clock::now();
    v1::Suite suite;
    suite.set_name("bench");
    std::vector<v1::GoldenTask> tasks;
    for (int i = 0; i < kTasks; ++i) tasks.push_back(Task(i));
    if (auto st = (*store)->PutSuite(suite, tasks); !st) return fail(st.error());
    v1::Run run;
    run.set_id("r-bench");
    run.set_suite("bench");
    run.add_agents()->set_name("agent");
    run.set_samples(attempts / kTasks + 1);
    run.set_attempt_count(attempts);
    std::vector<v1::Attempt> list(attempts);
    for (int i = 0; i < attempts; ++i) {
      list[i].set_run_id("r-bench");
      list[i].set_number(i);
      list[i].set_task_id(tasks[i % kTasks].id());
      list[i].set_agent("agent");
      list[i].set_sample(i / kTasks);
      list[i].set_state(v1::Attempt::QUEUED);
    }
    if (auto st = (*store)->CreateRun(run, list); !st) return fail(st.error());
    (*store)->SetGroupCommit(true);
    for (int i = 0; i < attempts; ++i) {
      const int n = i % kTasks;
      if (auto st = (*store)->AppendEvents("r-bench", i, Trace(n)); !st) return fail(st.error());
      v1::Attempt a = list[i];
      a.set_state(v1::Attempt::DONE);
      const v1::Evidence evidence = Evidence(tasks[n], n, i);
      v1::Score old;  // as the first scoring wrote it
      old.set_completed(i % 3 != 0);
      old.set_wall_ms(evidence.wall_ms());
      if (auto st = (*store)->FinishAttempt(a, evidence, old); !st) return fail(st.error());
    }
    (*store)->SetGroupCommit(false);
    std::printf("stored %d attempts (%d tasks, %d tests, %d trace events each) in %.1f s\n",
                attempts, kTasks, kTests, kTraceEvents, Seconds(start));
  }

  for (bool dry_run : {true, false}) {
    auto store = storage::Store::Open(db);
    if (!store) return fail(store.error());
    auto start = std::chrono::steady_clock::now();
    auto summary = report::RescoreRun(**store, "r-bench", {.dry_run = dry_run});
    if (!summary) return fail(summary.error());
    const double s = Seconds(start);
    std::printf("RescoreRun%s: %zu attempts in %.2f s (%.0f us each), %zu changed\n",
                dry_run ? " --dry-run" : "", summary->rescored, s, 1e6 * s / summary->rescored,
                summary->changed.size());
  }

  if (!crucible.empty()) {
    const std::string cmd = fmt::format("{} rescore r-bench --db {} > /dev/null", crucible, db);
    auto start = std::chrono::steady_clock::now();
    const int status = std::system(cmd.c_str());
    std::printf("crucible rescore (CLI, every score already current): %.2f s, exit status %d\n",
                Seconds(start), status);
  }
  return 0;
}

}  // namespace
}  // namespace crucible

int main(int argc, char** argv) { return crucible::Main(argc, argv); }
