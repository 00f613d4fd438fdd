// The trace dimensions of one attempt: tool calls, plan and rollback
// (docs/scoring.md, "The five dimensions").
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/scoring/fixtures.h"

namespace crucible {
namespace {

using namespace crucible::testing;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

// An agent that plans, reads, edits, tests and commits the golden fix.
Trace Disciplined() {
  Trace t;
  t.Add("plan", R"({"files": ["pkg/core.py"], "text": "Handle b=None in pkg/core.py"})")
      .Add("read_file", R"({"path": "pkg/core.py"})")
      .Add("search", R"({"query": "subtract"})")
      .Add("edit_file", R"({"path": "pkg/core.py"})")
      .Add("run_tests", R"({"passed": true, "failed": 0})")
      .Add("commit", R"({"files": ["pkg/core.py"]})")
      .Add("run_tests", R"({"passed": 3, "failed": 0, "exit_code": 0})", "runner");
  return t;
}

TEST(Dimensions, ADisciplinedTraceHoldsEveryToolCallCheck) {
  auto s = Score(Task(), Passing(GoldenPatch()), Disciplined());
  const auto& tc = s.tool_calls();
  EXPECT_EQ(tc.read_before_edit(), "held");
  EXPECT_EQ(tc.edits_on_plan(), "held");
  EXPECT_EQ(tc.tests_after_last_edit(), "held");
  EXPECT_EQ(tc.commit_matches_diff(), "held");
  EXPECT_THAT(tc.contradictions(), IsEmpty());
  ASSERT_TRUE(s.dimensions().tool_calls().measured()) << s.dimensions().tool_calls().reason();
  EXPECT_DOUBLE_EQ(s.dimensions().tool_calls().value(), 1.0);
  ASSERT_TRUE(s.dimensions().plan().measured()) << s.dimensions().plan().reason();
  EXPECT_DOUBLE_EQ(s.dimensions().plan().value(), 1.0);
  EXPECT_FALSE(s.dimensions().rollback().measured());
  EXPECT_THAT(s.dimensions().rollback().reason(), HasSubstr("never failed"));
  EXPECT_FALSE(s.has_rollback());
  EXPECT_THAT(s.failure_modes(), IsEmpty());
}

TEST(Dimensions, WithoutATraceTheTraceDimensionsAreNullNotZero) {
  auto s = Score(Task(), Passing(GoldenPatch()));
  for (const auto* d :
       {&s.dimensions().tool_calls(), &s.dimensions().plan(), &s.dimensions().rollback()}) {
    EXPECT_FALSE(d->measured());
    EXPECT_THAT(d->reason(), HasSubstr("no agent event"));
  }
  EXPECT_EQ(s.tool_calls().read_before_edit(), "");
  // The runner's own events are not the agent's.
  Trace runner_only;
  runner_only.Add("run_tests", R"({"failed": 3})", "runner");
  EXPECT_FALSE(
      Score(Task(), Passing(GoldenPatch()), runner_only).dimensions().rollback().measured());
}

TEST(Dimensions, AnEditBeforeAnyReadFailsButANewFileNeedsNoRead) {
  Trace t;
  t.Add("plan", R"({"files": ["pkg/"]})")
      .Add("edit_file", R"({"path": "/workspace/pkg/new_helper.py"})")
      .Add("edit_file", R"({"path": "./pkg/core.py"})")
      .Add("read_file", R"({"path": "pkg/core.py"})")
      .Add("run_tests", R"({"ok": true})");
  auto s = Score(Task(), Passing(GoldenPatch() + Create("pkg/new_helper.py", {"X = 1"})), t);
  EXPECT_EQ(s.tool_calls().read_before_edit(), "failed");
  EXPECT_THAT(s.dimensions().tool_calls().reason(), HasSubstr("pkg/core.py"));
  EXPECT_THAT(s.dimensions().tool_calls().reason(), ::testing::Not(HasSubstr("new_helper")));
  EXPECT_EQ(s.tool_calls().edits_on_plan(), "held");    // "pkg/" names the directory
  EXPECT_EQ(s.tool_calls().commit_matches_diff(), "");  // no commit event
  EXPECT_DOUBLE_EQ(s.dimensions().tool_calls().value(), 2.0 / 3.0);
}

TEST(Dimensions, NoTestRunAfterTheLastEditFails) {
  Trace t;
  t.Add("read_file", R"({"path": "pkg/core.py"})")
      .Add("run_tests", R"({"failed": 0})")
      .Add("edit_file", R"({"path": "pkg/core.py"})");
  auto s = Score(Task(), Passing(GoldenPatch()), t);
  EXPECT_EQ(s.tool_calls().tests_after_last_edit(), "failed");
  EXPECT_EQ(s.tool_calls().read_before_edit(), "held");
  EXPECT_DOUBLE_EQ(s.dimensions().tool_calls().value(), 0.5);
  EXPECT_THAT(s.dimensions().tool_calls().reason(), HasSubstr("no run_tests after the last edit"));
}

TEST(Dimensions, ACommitThatDoesNotHoldTheDiffFailsAndItsClaimIsFlagged) {
  auto trace = Disciplined();
  trace.Add("commit", R"({"files": ["pkg/imaginary.py"]})");
  auto s = Score(Task(), Passing(GoldenPatch()), trace);
  EXPECT_EQ(s.tool_calls().commit_matches_diff(), "failed");
  ASSERT_THAT(s.tool_calls().contradictions(), ElementsAre(HasSubstr("pkg/imaginary.py")));
}

TEST(Dimensions, AFileTheDiffChangesThatNoEditNamesIsAContradiction) {
  const std::string diff = GoldenPatch() + Modify("pkg/util.py", 3, {"a"}, {"b"});
  auto s = Score(Task(), Passing(diff), Disciplined());
  ASSERT_THAT(s.tool_calls().contradictions(), ElementsAre(HasSubstr("pkg/util.py")));
  // The plan check uses what the harness saw, not the edit claims.
  EXPECT_EQ(s.tool_calls().edits_on_plan(), "failed");
  EXPECT_EQ(s.tool_calls().commit_matches_diff(), "failed");
}

TEST(Dimensions, APlanThatMissesAChangedFileIsInstructionDrift) {
  const std::string diff = GoldenPatch() + Modify("web/views.py", 3, {"a"}, {"b"});
  auto s = Score(Task(), Passing(diff), Disciplined());
  ASSERT_TRUE(s.dimensions().plan().measured());
  EXPECT_DOUBLE_EQ(s.dimensions().plan().value(), 0.5);
  EXPECT_THAT(s.dimensions().plan().reason(), HasSubstr("web/views.py"));
  EXPECT_THAT(s.failure_modes(), ::testing::Contains("instruction-drift"));
}

TEST(Dimensions, APlanThatLeavesOutAGoldenFileLosesPointThree) {
  Trace t;
  t.Add("plan", R"({"steps": ["add a test in tests/test_core.py", {"text": "run it"}]})");
  auto s = Score(Task(), Passing(Create("tests/test_core.py", {"def test(): pass"})), t);
  ASSERT_TRUE(s.dimensions().plan().measured()) << s.dimensions().plan().reason();
  EXPECT_DOUBLE_EQ(s.dimensions().plan().value(), 0.7);
  EXPECT_THAT(s.dimensions().plan().reason(), HasSubstr("pkg/core.py"));
  // Both at once: 1 - 0.5 - 0.3.
  Trace wrong;
  wrong.Add("plan", R"({"text": "Rewrite README.md."})");
  auto w = Score(Task(), Passing(GoldenPatch() + Modify("docs/x.md", 1, {"a"}, {"b"})), wrong);
  EXPECT_NEAR(w.dimensions().plan().value(), 0.2, 1e-9);
}

TEST(Dimensions, APlanNamesFilesByPathByNameInItsTextOrByDirectory) {
  for (const char* attrs : {R"({"files": ["pkg/core.py"]})", R"({"path": "core.py"})",
                            R"({"text": "Fix subtract in core.py."})", R"({"files": ["pkg/"]})",
                            R"({"steps": ["open pkg/core.py", "fix it"]})"}) {
    Trace t;
    t.Add("plan", attrs);
    auto s = Score(Task(), Passing(GoldenPatch()), t);
    EXPECT_DOUBLE_EQ(s.dimensions().plan().value(), 1.0)
        << attrs << ": " << s.dimensions().plan().reason();
  }
  Trace t;
  t.Add("plan", R"({"text": "Fix mycore.py and core.pyc"})");
  EXPECT_DOUBLE_EQ(Score(Task(), Passing(GoldenPatch()), t).dimensions().plan().value(), 0.2);
}

TEST(Dimensions, WithoutAPlanOrWithAnEmptyOneThePlanIsNull) {
  Trace none;
  none.Add("edit_file", R"({"path": "pkg/core.py"})");
  auto s = Score(Task(), Passing(GoldenPatch()), none);
  EXPECT_FALSE(s.dimensions().plan().measured());
  EXPECT_THAT(s.dimensions().plan().reason(), HasSubstr("no plan event"));
  EXPECT_EQ(s.tool_calls().edits_on_plan(), "");

  Trace empty;
  empty.Add("plan", R"({"model": "x"})");
  auto e = Score(Task(), Passing(GoldenPatch()), empty);
  EXPECT_FALSE(e.dimensions().plan().measured());
  EXPECT_TRUE(NotMeasurable(e, "plan: the plan event (seq 1) has none of files, path, text, steps"))
      << AllNotMeasurable(e);

  // A plan by rule, naming no file, cannot drift from the diff's files.
  Trace by_rule;
  by_rule.Add("plan", R"({"steps": ["rename `subtract` to `sub` in the non-test .py files",
                                    "run the visible tests"]})");
  auto r = Score(Task(), Passing(GoldenPatch()), by_rule);
  EXPECT_FALSE(r.dimensions().plan().measured());
  EXPECT_THAT(r.dimensions().plan().reason(), HasSubstr("names no file"));
  EXPECT_EQ(r.tool_calls().edits_on_plan(), "");
  EXPECT_THAT(r.failure_modes(), ::testing::Not(::testing::Contains("instruction-drift")));

  // One file name in the text is enough to hold the plan to it.
  Trace named;
  named.Add("plan", R"({"text": "fix pkg/api.py, then run the tests."})");
  auto n = Score(Task(), Passing(GoldenPatch()), named);
  ASSERT_TRUE(n.dimensions().plan().measured());
  EXPECT_DOUBLE_EQ(n.dimensions().plan().value(), 0.2);  // 1 - 0.5 - 0.3
  EXPECT_THAT(n.failure_modes(), ::testing::Contains("instruction-drift"));
}

TEST(Dimensions, EditsPilingOnAFailureWithoutARevert) {
  Trace t;
  t.Add("read_file", R"({"path": "pkg/core.py"})")
      .Add("run_tests", R"({"failed": 2})")
      .Add("edit_file", R"({"path": "pkg/core.py"})")
      .Add("edit_file", R"({"path": "pkg/core.py"})")
      .Add("edit_file", R"({"path": "pkg/core.py"})")
      .Add("run_tests", R"({"failed": 1})")
      .Add("edit_file", R"({"path": "pkg/core.py"})")
      .Add("edit_file", R"({"path": "pkg/core.py"})")
      .Add("edit_file", R"({"path": "pkg/core.py"})")
      .Add("run_tests", R"({"failed": 0})");
  auto s = Score(Task(), Passing(GoldenPatch()), t);
  ASSERT_TRUE(s.has_rollback());
  EXPECT_EQ(s.rollback().failures(), 2);
  EXPECT_DOUBLE_EQ(s.rollback().edits_per_failure(), 3.0);
  EXPECT_DOUBLE_EQ(s.rollback().revert_ratio(), 0.0);
  EXPECT_TRUE(s.rollback().pile_on());
  ASSERT_TRUE(s.dimensions().rollback().measured());
  EXPECT_NEAR(s.dimensions().rollback().value(), 2.0 / 3.0, 1e-9);
  EXPECT_THAT(s.dimensions().rollback().reason(), HasSubstr("pile-on"));
}

TEST(Dimensions, ARevertAfterAFailureIsNoPileOn) {
  Trace t;
  t.Add("run_tests", R"({"exit_code": 1})")
      .Add("edit_file", R"({"path": "pkg/core.py"})")
      .Add("revert", R"({"path": "pkg/core.py"})")
      .Add("edit_file", R"({"path": "pkg/core.py"})")
      .Add("run_tests", R"({"exit_code": 1})")  // followed by a run: not counted
      .Add("run_tests", R"({"exit_code": 1})")
      .Add("edit_file", R"({"path": "pkg/core.py"})");  // a failure left at the end counts
  auto s = Score(Task(), Passing(GoldenPatch()), t);
  ASSERT_TRUE(s.has_rollback());
  EXPECT_EQ(s.rollback().failures(), 2);
  EXPECT_DOUBLE_EQ(s.rollback().edits_per_failure(), 2.0);
  EXPECT_DOUBLE_EQ(s.rollback().revert_ratio(), 0.5);
  EXPECT_FALSE(s.rollback().pile_on());
  EXPECT_DOUBLE_EQ(s.dimensions().rollback().value(), 1.0);
}

TEST(Dimensions, EachFailureRuleOfARunTestsEvent) {
  for (const char* failed : {R"({"failed": 1})", R"({"passed": false})", R"({"ok": false})",
                             R"({"exit_code": 2})", R"({"passed": 4, "failed": 1})"}) {
    Trace t;
    t.Add("run_tests", failed).Add("edit_file", R"({"path": "pkg/core.py"})");
    auto s = Score(Task(), Passing(GoldenPatch()), t);
    EXPECT_TRUE(s.dimensions().rollback().measured()) << failed;
    EXPECT_EQ(s.rollback().failures(), 1) << failed;
  }
  for (const char* passed : {R"({"failed": 0})", R"({"passed": true})", R"({"ok": true})",
                             R"({"exit_code": 0})", R"({"passed": 4})"}) {
    Trace t;
    t.Add("run_tests", passed).Add("edit_file", R"({"path": "pkg/core.py"})");
    auto s = Score(Task(), Passing(GoldenPatch()), t);
    EXPECT_FALSE(s.dimensions().rollback().measured()) << passed;
    EXPECT_THAT(s.dimensions().rollback().reason(), HasSubstr("never failed")) << passed;
  }
}

TEST(Dimensions, EventsMissingTheFieldsACheckNeedsAreNamed) {
  Trace t;
  t.Add("edit_file", R"({"note": "somewhere"})")
      .Add("run_tests", R"({"duration": 3})")
      .Add("commit", R"({"message": "fix"})")
      .Add("read_file", "not json");
  auto s = Score(Task(), Passing(GoldenPatch()), t);
  EXPECT_TRUE(
      NotMeasurable(s, "rollback: 1 run_tests events have none of failed, passed, ok, exit_code"))
      << AllNotMeasurable(s);
  EXPECT_TRUE(NotMeasurable(s, "tool calls: 1 edit_file events name no path or files"))
      << AllNotMeasurable(s);
  EXPECT_TRUE(NotMeasurable(s, "tool calls: the commit events name no path or files"))
      << AllNotMeasurable(s);
  EXPECT_TRUE(NotMeasurable(s, "trace: 1 agent events have attrs that are not a JSON object"))
      << AllNotMeasurable(s);
  EXPECT_EQ(s.tool_calls().read_before_edit(), "");
  EXPECT_EQ(s.tool_calls().commit_matches_diff(), "");
  EXPECT_EQ(s.tool_calls().tests_after_last_edit(), "held");
  EXPECT_FALSE(s.dimensions().rollback().measured());
}

TEST(Dimensions, EventsOutOfOrderMakeTheTimelineNotMeasurable) {
  Trace t;
  t.Add("read_file", R"({"path": "pkg/core.py"})")
      .Add("run_tests", R"({"failed": 1})")
      .Add("edit_file", R"({"path": "pkg/core.py"})")
      .Add("run_tests", R"({"failed": 0})");
  t.events[2].set_ts_ns(1);  // the edit claims a time before the first event
  auto s = Score(Task(), Passing(GoldenPatch()), t);
  EXPECT_TRUE(NotMeasurable(s, "trace: events out of order (event seq 3 (edit_file)"))
      << AllNotMeasurable(s);
  EXPECT_FALSE(s.dimensions().rollback().measured());
  EXPECT_THAT(s.dimensions().rollback().reason(), HasSubstr("out of order"));
  EXPECT_EQ(s.tool_calls().read_before_edit(), "");
  EXPECT_EQ(s.tool_calls().tests_after_last_edit(), "");
}

}  // namespace
}  // namespace crucible
