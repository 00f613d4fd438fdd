// Claims the harness contradicts (scoring/claims.h) and the tool-call
// dimension from what the harness saw, on synthetic traces: the unit under
// test is a pure function of the trace and the evidence.
#include "scoring/claims.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/scoring/fixtures.h"

namespace crucible {
namespace {

using namespace crucible::testing;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

constexpr int64_t kSec = 1'000'000'000;

// A trace whose events carry the times given (seconds), in the order added.
struct Timeline : Trace {
  Timeline& At(double s, const std::string& source, const std::string& name,
               const std::string& attrs = "{}") {
    AddAt(static_cast<int64_t>(s * kSec) + 1000 * kSec, name, attrs, source);
    return *this;
  }
  Timeline& Claim(double s, const std::string& name, const std::string& attrs = "{}") {
    return At(s, "agent", name, attrs);
  }
  Timeline& Exec(double s, const std::string& argv_json) {
    return At(s, "runner", "exec", R"({"pid": 7, "argv": )" + argv_json + "}");
  }
  Timeline& Write(double s, const std::string& path) {
    return At(s, "runner", "file_write", R"({"path": ")" + path + R"("})");
  }
};

// Evidence of an attempt whose final diff changes pkg/core.py, with both
// kinds observed.
v1::Evidence Observed(uint64_t execs = 1, uint64_t writes = 1) {
  v1::Evidence e = Passing(GoldenPatch());
  e.set_observed_execs(execs);
  e.set_observed_writes(writes);
  return e;
}

std::vector<v1::Contradiction> Find(const Timeline& t, const v1::Evidence& e,
                                    std::string_view test_cmd = "python -m pytest {junit}") {
  return scoring::FindContradictions(t.events, e, test_cmd);
}

std::vector<std::string> Claims(const std::vector<v1::Contradiction>& cs) {
  std::vector<std::string> out;
  for (const auto& c : cs) out.push_back(c.claim());
  return out;
}

TEST(Claims, ATestRunClaimWithNoTestRunnerExecutedIsContradicted) {
  Timeline t;
  t.Exec(0, R"(["/bin/sh", "-c", "python3 agent.py"])")
      .Exec(1, R"(["python3", "agent.py"])")
      .Exec(2, R"(["ls", "-la"])")
      .Claim(3, "run_tests", R"({"passed": true})");
  auto found = Find(t, Observed(3, 0));
  ASSERT_THAT(found, SizeIs(1));
  EXPECT_EQ(found[0].claim(), "run_tests");
  EXPECT_EQ(found[0].ts_ns(), t.events[3].ts_ns());
  EXPECT_THAT(found[0].detail(), HasSubstr("claims a test run at"));
  EXPECT_THAT(found[0].detail(), HasSubstr("no test runner was executed"));
}

TEST(Claims, AnObservedTestRunnerBacksTheClaim) {
  for (const char* argv : {R"(["/usr/bin/python3", "/usr/bin/pytest", "-q"])", R"(["pytest"])",
                           R"(["bash", "-c", "cd pkg && pytest -x"])",
                           // the suite's own test command
                           R"(["python", "-m", "pytest", "/crucible/out/junit.xml"])"}) {
    Timeline t;
    t.Exec(1, argv).Claim(2, "run_tests", R"({"passed": true})");
    EXPECT_THAT(Find(t, Observed()), IsEmpty()) << argv;
  }
  Timeline suite_cmd;
  suite_cmd.Exec(1, R"(["sh", "run_tests.sh", "/tmp/r.xml"])").Claim(2, "run_tests");
  EXPECT_THAT(Find(suite_cmd, Observed(), "sh run_tests.sh {junit}"), IsEmpty());
  EXPECT_THAT(Claims(Find(suite_cmd, Observed(), "")), ElementsAre("run_tests"));
}

TEST(Claims, TheTestRunnerMayStartUpToTheSlackAfterTheClaim) {
  // An agent may report the tool call before the command runs.
  const double slack = static_cast<double>(scoring::kClaimSlackNs) / kSec;
  Timeline within;
  within.Claim(10, "run_tests").Exec(10 + slack, R"(["pytest"])");
  EXPECT_THAT(Find(within, Observed()), IsEmpty());
  Timeline beyond;
  beyond.Claim(10, "run_tests").Exec(10 + slack + 0.001, R"(["pytest"])");
  EXPECT_THAT(Claims(Find(beyond, Observed())), ElementsAre("run_tests"));
}

TEST(Claims, ATestRunBacksOneClaimAndOnlyAClaimAfterThePreviousOne) {
  // One real run, two claims: the second is not backed by the first run,
  // whether the run came before the first claim or just after it.
  Timeline before;
  before.Exec(1, R"(["pytest"])").Claim(2, "run_tests").Claim(30, "run_tests");
  auto found = Find(before, Observed());
  ASSERT_THAT(Claims(found), ElementsAre("run_tests"));
  EXPECT_EQ(found[0].ts_ns(), before.events[2].ts_ns());
  EXPECT_THAT(found[0].detail(), HasSubstr("since the previous claimed test run"));
  Timeline after;
  after.Claim(2, "run_tests").Exec(2.5, R"(["pytest"])").Claim(3, "run_tests");
  found = Find(after, Observed());
  ASSERT_THAT(Claims(found), ElementsAre("run_tests"));
  EXPECT_EQ(found[0].ts_ns(), after.events[2].ts_ns());
  // A run before the previous claim does not back the next one, even when
  // nothing else used it.
  Timeline stale;
  stale.Exec(1, R"(["pytest"])")
      .Exec(1.1, R"(["pytest"])")
      .Claim(5, "run_tests")
      .Claim(60, "run_tests");
  EXPECT_THAT(Claims(Find(stale, Observed())), ElementsAre("run_tests"));
  // Two runs, two claims, the claims written at the end: both backed.
  Timeline honest;
  honest.Exec(1, R"(["pytest"])")
      .Claim(2, "run_tests")
      .Exec(20, R"(["pytest"])")
      .Claim(21, "run_tests");
  EXPECT_THAT(Find(honest, Observed()), IsEmpty());
  // A claim dated before the previous one has no lower bound.
  Timeline back;
  back.Exec(4, R"(["pytest"])")
      .Exec(4.5, R"(["pytest"])")
      .Claim(10, "run_tests")
      .Claim(5, "run_tests");
  EXPECT_THAT(Find(back, Observed()), IsEmpty());
}

TEST(Claims, AnEditClaimOfAFileNeitherWrittenNorChangedIsContradicted) {
  Timeline t;
  t.Exec(0, R"(["sh"])")
      .Write(1, "pkg/core.py")
      .Claim(2, "edit_file", R"({"path": "/workspace/pkg/core.py"})")
      .Write(3, "pkg/helper.py")  // written, then put back: not in the diff
      .Claim(4, "edit_file", R"({"path": "./pkg/helper.py"})")
      .Claim(5, "edit_file", R"({"files": ["pkg/core.py", "pkg/ghost.py"]})");
  auto found = Find(t, Observed());
  ASSERT_THAT(Claims(found), ElementsAre("edit_file"));
  EXPECT_EQ(found[0].ts_ns(), t.events[5].ts_ns());
  EXPECT_THAT(found[0].detail(), HasSubstr("pkg/ghost.py"));
  EXPECT_THAT(found[0].detail(), ::testing::Not(HasSubstr("core.py")));
  // A file the final diff changes needs no observed write (written through a
  // rename, say).
  Timeline renamed;
  renamed.Exec(0, R"(["sh"])").Claim(1, "edit_file", R"({"path": "pkg/core.py"})");
  EXPECT_THAT(Find(renamed, Observed(1, 0)), IsEmpty());
}

TEST(Claims, NothingIsJudgedForAKindTheHarnessDidNotObserve) {
  Timeline t;
  t.Claim(1, "edit_file", R"({"path": "pkg/ghost.py"})").Claim(2, "run_tests");
  // No observation at all: evidence of a runner without it, or a builtin.
  EXPECT_THAT(Find(t, Passing(GoldenPatch())), IsEmpty());
  // Execs not observed: only the edit is judged.
  auto e = Observed(0, 2);
  e.add_observation_warnings("commands executed not observed: no seccomp user notification");
  EXPECT_THAT(Claims(Find(t, e)), ElementsAre("edit_file"));
  // Writes not observed: only the run.
  e = Observed(4, 0);
  e.add_observation_warnings("file writes not observed: fanotify needs CAP_SYS_ADMIN");
  EXPECT_THAT(Claims(Find(t, e)), ElementsAre("run_tests"));
  // Both observed: both.
  EXPECT_THAT(Claims(Find(t, Observed())), ElementsAre("edit_file", "run_tests"));
  // The runner's own events are not claims.
  Timeline runner_only;
  runner_only.Exec(0, R"(["sh"])").At(1, "runner", "run_tests", R"({"passed": 1})");
  EXPECT_THAT(Find(runner_only, Observed()), IsEmpty());
}

TEST(Claims, TheListIsBounded) {
  Timeline t;
  t.Exec(0, R"(["sh"])");
  for (int i = 0; i < 200; ++i) t.Claim(1 + i * 10, "run_tests");
  EXPECT_THAT(Find(t, Observed()), SizeIs(scoring::kMaxClaimContradictions));
}

// ---- the tool-call dimension from what the harness saw

Trace Honest() {
  Trace t;
  t.Add("plan", R"({"files": ["pkg/core.py"]})")
      .Add("read_file", R"({"path": "pkg/core.py"})")
      .Add("edit_file", R"({"path": "pkg/core.py"})");
  return t;
}

v1::TraceEvent Runner(const std::string& name, const std::string& attrs, int64_t ts_s) {
  v1::TraceEvent ev;
  ev.set_ts_ns(ts_s * kSec);
  ev.set_kind("RUNNER");
  ev.set_source("runner");
  ev.set_name(name);
  ev.set_attrs_json(attrs);
  return ev;
}

TEST(ObservedDimension, ObservedTestRunsAfterTheLastObservedWritePreferredToClaims) {
  // The agent claims a test run after its edit (seq 4, t=4 s); the harness
  // saw pytest run at t=2 s and pkg/core.py written at t=3 s.
  Trace t = Honest();
  t.Add("run_tests", R"({"passed": true})");
  t.events.push_back(Runner("exec", R"({"argv": ["pytest"]})", 2));
  t.events.push_back(Runner("file_write", R"({"path": "pkg/core.py"})", 3));
  auto claimed_only = Score(Task(), Passing(GoldenPatch()), t);
  EXPECT_EQ(claimed_only.tool_calls().tests_after_last_edit(), "held");
  auto s = Score(Task(), Observed(1, 1), t);
  EXPECT_EQ(s.tool_calls().tests_after_last_edit(), "failed");
  EXPECT_THAT(s.dimensions().tool_calls().reason(),
              HasSubstr("no test runner was executed after the last observed write"));

  // No claimed run, but the harness saw pytest run after the write.
  Trace u = Honest();
  u.events.push_back(Runner("file_write", R"({"path": "pkg/core.py"})", 3));
  u.events.push_back(Runner("exec", R"({"argv": ["python3", "-m", "pytest"]})", 5));
  // Writes outside the diff (the test runner's cache) are not edits.
  u.events.push_back(Runner("file_write", R"({"path": ".pytest_cache/v/cache/nodeids"})", 6));
  EXPECT_EQ(Score(Task(), Passing(GoldenPatch()), u).tool_calls().tests_after_last_edit(),
            "failed");
  EXPECT_EQ(Score(Task(), Observed(1, 2), u).tool_calls().tests_after_last_edit(), "held");

  // Writes not observed: the last claimed edit (t=3 s) is the edit's time.
  auto e = Observed(1, 0);
  e.add_observation_warnings("file writes not observed: needs root");
  Trace v = Honest();
  v.events.push_back(Runner("exec", R"({"argv": ["pytest"]})", 2));
  EXPECT_EQ(Score(Task(), e, v).tool_calls().tests_after_last_edit(), "failed");
  v.events.push_back(Runner("exec", R"({"argv": ["pytest"]})", 4));
  EXPECT_EQ(Score(Task(), e, v).tool_calls().tests_after_last_edit(), "held");
}

TEST(ObservedDimension, WithoutAgentEventsTheObservationsStillMeasureTestsAfterEdits) {
  Trace t;
  t.events.push_back(Runner("file_write", R"({"path": "pkg/core.py"})", 3));
  t.events.push_back(Runner("exec", R"({"argv": ["pytest", "-q"]})", 5));
  auto s = Score(Task(), Observed(), t);
  EXPECT_EQ(s.tool_calls().tests_after_last_edit(), "held");
  ASSERT_TRUE(s.dimensions().tool_calls().measured()) << s.dimensions().tool_calls().reason();
  EXPECT_DOUBLE_EQ(s.dimensions().tool_calls().value(), 1.0);
  // And without observations they are not measurable, as before.
  EXPECT_FALSE(Score(Task(), Passing(GoldenPatch()), t).dimensions().tool_calls().measured());
}

TEST(ObservedDimension, ContradictionsJoinTheListAndCountAsFailedChecks) {
  Trace t = Honest();
  t.Add("run_tests", R"({"passed": true})").Add("commit", R"({"files": ["pkg/core.py"]})");
  auto clean = Score(Task(), Passing(GoldenPatch()), t);
  ASSERT_DOUBLE_EQ(clean.dimensions().tool_calls().value(), 1.0);
  auto e = Passing(GoldenPatch());
  auto* c = e.add_contradictions();
  c->set_claim("run_tests");
  c->set_ts_ns(4 * kSec);
  c->set_detail("claims a test run at 00:00:04.000 UTC; no test runner was executed");
  auto s = Score(Task(), e, t);
  EXPECT_THAT(s.tool_calls().contradictions(), ElementsAre(HasSubstr("claims a test run")));
  // 4 checks hold, 1 contradicted claim: 4 of 5.
  EXPECT_DOUBLE_EQ(s.dimensions().tool_calls().value(), 4.0 / 5.0);
  EXPECT_THAT(s.dimensions().tool_calls().reason(), HasSubstr("1 claims the harness contradicts"));
}

}  // namespace
}  // namespace crucible
