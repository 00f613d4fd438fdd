// What a review round costs beyond the agent and the tests
// (docs/review-loop.md): an attempt with two rounds on a synthetic repository
// of FILES files (round 1 breaks a visible test, round 2 mends it when the
// feedback names it), run through PerformAttempt with the real sandbox.
// For each round, from its evidence: the CI stage's own cost (a checkout of
// the base commit, the diff applied, the static checks), the CI test run
// itself, and the review stage (the review bar, a reviewer when given);
// medians over RUNS attempts. The test run is the yardstick: the overhead is
// the share of a round's CI and review that is not the tests.
//
// Usage: review_round_bench [FILES] [RUNS]   (defaults 2000 and 5; needs root)
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "agent-runner/attempt.h"
#include "base/fs.h"

namespace {

using namespace crucible;

constexpr char kRunTests[] = R"(#!/bin/sh
body=''; status=0
for t in tests/test_*.sh; do
  [ -f "$t" ] || continue
  n=$(basename "$t" .sh); n=${n#test_}
  if sh "$t" >/dev/null 2>&1; then
    body="$body<testcase classname=\"tests\" name=\"$n\"/>"
  else
    body="$body<testcase classname=\"tests\" name=\"$n\"><failure message=\"failed\"/></testcase>"
    status=1
  fi
done
printf '<testsuite name="tests">%s</testsuite>\n' "$body" > "$1"
exit $status
)";

int Sh(const std::string& command) { return std::system(command.c_str()); }

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

}  // namespace

int main(int argc, char** argv) {
  const int files = argc > 1 ? std::atoi(argv[1]) : 2000;
  const int runs = argc > 2 ? std::atoi(argv[2]) : 5;
  if (::geteuid() != 0) {
    std::fprintf(stderr, "review_round_bench needs root (the sandbox)\n");
    return 2;
  }
  auto dir = TempDir::Create("crucible-review-bench-");
  if (!dir) return 1;
  const std::string repo = dir->path() + "/repo";
  (void)MakeDirs(repo + "/src");
  (void)MakeDirs(repo + "/tests");
  std::string line(60, 'x');
  for (int i = 0; i < files; ++i) {
    std::string body;
    for (int l = 0; l < 40; ++l) body += fmt::format("def f{}_{}(): return '{}'\n", i, l, line);
    (void)WriteFile(fmt::format("{}/src/m{:05}.py", repo, i), body);
  }
  (void)WriteFile(repo + "/run_tests.sh", kRunTests);
  (void)WriteFile(repo + "/value.txt", "1\n");
  (void)WriteFile(repo + "/lib.txt", "helper\n");
  for (int t = 0; t < 20; ++t)
    (void)WriteFile(fmt::format("{}/tests/test_lib{}.sh", repo, t), "grep -qx helper lib.txt\n");
  if (Sh("cd " + repo +
         " && git init -q && git -c user.name=b -c user.email=b@b add -A && git -c user.name=b "
         "-c user.email=b@b commit -qm base") != 0)
    return 1;
  auto head = Sh("cd " + repo + " && git rev-parse HEAD > ../head");
  (void)head;
  std::string base = ReadFile(dir->path() + "/head").value_or("");
  while (!base.empty() && base.back() == '\n') base.pop_back();

  v1::GoldenTask task;
  task.set_suite("s");
  task.set_id("t");
  task.set_repo_path(repo);
  task.set_base_commit(base);
  task.set_intent("Set the value to 2.");
  task.set_source_patch(
      "diff --git a/value.txt b/value.txt\n--- a/value.txt\n+++ b/value.txt\n"
      "@@ -1 +1 @@\n-1\n+2\n");
  task.set_test_patch(
      "diff --git a/tests/test_value.sh b/tests/test_value.sh\nnew file mode 100644\n"
      "--- /dev/null\n+++ b/tests/test_value.sh\n@@ -0,0 +1 @@\n+grep -qx 2 value.txt\n");
  task.add_fail_to_pass("tests::value");
  task.set_test_cmd("sh run_tests.sh {junit}");
  task.set_test_timeout_s(120);

  v1::AgentSpec agent;
  agent.set_name("a");
  agent.set_rounds(2);
  agent.set_timeout_s(120);
  agent.set_command(
      "echo 2 > value.txt; if grep -q '\"round\": 1,' \"$CRUCIBLE_TASK\"; then echo broken > "
      "lib.txt; else echo helper > lib.txt; fi");

  std::vector<double> setup, tests, review, overhead_share, attempt_ms;
  for (int r = 0; r < runs; ++r) {
    runner::AttemptContext ctx;
    ctx.workdir = fmt::format("{}/attempt-{}", dir->path(), r);
    ctx.emit = [](v1::TraceEvent) {};
    auto e = runner::PerformAttempt(task, agent, ctx);
    if (!e) {
      std::fprintf(stderr, "attempt failed: %s\n", e.error().ToString().c_str());
      return 1;
    }
    if (e->rounds_size() != 2) {
      std::fprintf(stderr, "expected 2 rounds, got %d\n", e->rounds_size());
      return 1;
    }
    attempt_ms.push_back(static_cast<double>(e->wall_ms()));
    for (const auto& round : e->rounds()) {
      const double t = static_cast<double>(round.ci().wall_ms());
      const double s = static_cast<double>(round.ci_wall_ms()) - t;
      const double rv = static_cast<double>(round.review_wall_ms());
      setup.push_back(s);
      tests.push_back(t);
      review.push_back(rv);
      overhead_share.push_back((s + rv) / (s + rv + t));
    }
    (void)RemoveAll(ctx.workdir);
  }
  std::printf("repository: %d files of 40 lines, 20 visible tests; %d attempts of 2 rounds\n",
              files, runs);
  std::printf("per round (median of %zu):\n", setup.size());
  std::printf("  CI tree (checkout, diff, static checks)  %8.1f ms\n", Median(setup));
  std::printf("  CI test run (the yardstick)              %8.1f ms\n", Median(tests));
  std::printf("  review stage (review bar)                %8.1f ms\n", Median(review));
  std::printf("  overhead beyond the tests                %8.1f %%\n",
              100 * Median(overhead_share));
  std::printf("whole attempt (2 rounds + hidden tests)    %8.1f ms\n", Median(attempt_ms));
  return 0;
}
