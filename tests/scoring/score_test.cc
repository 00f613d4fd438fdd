#include "scoring/score.h"

#include <gtest/gtest.h>

#include "report/report.h"

namespace crucible {
namespace {

v1::GoldenTask Task() {
  v1::GoldenTask t;
  t.set_id("t-1");
  t.add_fail_to_pass("tests.a::test_new");
  t.add_pass_to_pass("tests.a::test_old");
  t.add_pass_to_pass("tests.b::test_other");
  return t;
}

v1::Evidence Evidence(v1::TestOutcome::Status f2p, v1::TestOutcome::Status p2p) {
  v1::Evidence e;
  e.add_files_touched("pkg/a.py");
  e.set_wall_ms(1500);
  auto add = [&](const char* id, v1::TestOutcome::Status s) {
    auto* t = e.mutable_tests()->add_tests();
    t->set_id(id);
    t->set_status(s);
  };
  add("tests.a::test_new", f2p);
  add("tests.a::test_old", p2p);
  add("tests.b::test_other", v1::TestOutcome::PASSED);
  return e;
}

TEST(ScoreAttempt, CompletedWhenEveryF2PAndP2PPasses) {
  auto s =
      scoring::ScoreAttempt(Task(), Evidence(v1::TestOutcome::PASSED, v1::TestOutcome::PASSED));
  EXPECT_TRUE(s.completed()) << s.reason();
  EXPECT_EQ(s.f2p_passed(), 1);
  EXPECT_EQ(s.p2p_passed(), 2);
  EXPECT_EQ(s.files_touched(), 1);
  EXPECT_EQ(s.wall_ms(), 1500);
}

TEST(ScoreAttempt, NotCompletedWhenTheNewTestStillFails) {
  auto s =
      scoring::ScoreAttempt(Task(), Evidence(v1::TestOutcome::FAILED, v1::TestOutcome::PASSED));
  EXPECT_FALSE(s.completed());
  EXPECT_EQ(s.f2p_passed(), 0);
  EXPECT_NE(s.reason().find("tests.a::test_new"), std::string::npos) << s.reason();
}

TEST(ScoreAttempt, RegressionInPassToPassFails) {
  auto s = scoring::ScoreAttempt(Task(), Evidence(v1::TestOutcome::PASSED, v1::TestOutcome::ERROR));
  EXPECT_FALSE(s.completed());
  EXPECT_EQ(s.p2p_passed(), 1);
  EXPECT_NE(s.reason().find("tests.a::test_old"), std::string::npos) << s.reason();
}

TEST(ScoreAttempt, MissingTestCountsAsNotPassed) {
  v1::Evidence e;  // the test run produced nothing
  auto s = scoring::ScoreAttempt(Task(), e);
  EXPECT_FALSE(s.completed());
}

TEST(ScoreAttempt, TestPatchThatDidNotApplyIsNotCompleted) {
  auto e = Evidence(v1::TestOutcome::PASSED, v1::TestOutcome::PASSED);
  e.set_test_patch_error("tests/test_a.py: patch does not apply");
  auto s = scoring::ScoreAttempt(Task(), e);
  EXPECT_FALSE(s.completed());
  EXPECT_NE(s.reason().find("did not apply"), std::string::npos);
}

TEST(ScoreAttempt, InfraErrorOfTheTestRunIsNotCompleted) {
  auto e = Evidence(v1::TestOutcome::PASSED, v1::TestOutcome::PASSED);
  e.mutable_tests()->set_infra_error("test command exited 1 but its report shows no failure");
  EXPECT_FALSE(scoring::ScoreAttempt(Task(), e).completed());
}

// A predictions agent without a patch for the task: nothing was tested; it
// is not completed, and said apart from a failure.
TEST(ScoreAttempt, NoSubmissionIsNotCompletedAndSaysSo) {
  v1::Evidence e;
  e.set_no_submission(true);
  auto s = scoring::ScoreAttempt(Task(), e);
  EXPECT_FALSE(s.completed());
  EXPECT_TRUE(s.no_submission());
  EXPECT_EQ(s.reason(), "no submission");
  // No trace: the trace dimensions are not measured, not 0.
  EXPECT_FALSE(s.dimensions().tool_calls().measured()) << s.dimensions().tool_calls().reason();
  EXPECT_FALSE(s.dimensions().plan().measured());
  EXPECT_FALSE(s.dimensions().rollback().measured());
  EXPECT_FALSE(s.dimensions().replay().measured());
}

// A predictions agent's patch that applied and was tested: no trace, so the
// trace dimensions read "not measured", as for the oracle.
TEST(ScoreAttempt, ATraceLessAgentHasItsTraceDimensionsNotMeasured) {
  auto s =
      scoring::ScoreAttempt(Task(), Evidence(v1::TestOutcome::PASSED, v1::TestOutcome::PASSED));
  EXPECT_TRUE(s.completed());
  EXPECT_FALSE(s.no_submission());
  EXPECT_FALSE(s.dimensions().tool_calls().measured()) << s.dimensions().tool_calls().reason();
  EXPECT_FALSE(s.dimensions().plan().measured());
  EXPECT_FALSE(s.dimensions().rollback().measured());
}

TEST(Summarize, OneRowPerAgentInRunOrderWithRatesAndMedians) {
  v1::Run run;
  run.set_id("r1");
  run.add_agents()->set_name("oracle");
  run.add_agents()->set_name("noop");
  std::vector<report::AttemptView> views;
  auto add = [&](const char* agent, bool completed, int64_t wall, int files,
                 v1::Attempt::State state = v1::Attempt::DONE) {
    report::AttemptView v;
    v.attempt.set_agent(agent);
    v.attempt.set_state(state);
    if (state == v1::Attempt::DONE) {
      v1::Score s;
      s.set_completed(completed);
      s.set_wall_ms(wall);
      s.set_files_touched(files);
      v.score = s;
    }
    views.push_back(v);
  };
  add("noop", false, 100, 0);
  add("oracle", true, 300, 2);
  add("oracle", true, 100, 1);
  add("oracle", false, 200, 3);
  add("noop", false, 0, 0, v1::Attempt::FAILED);
  auto rows = report::Summarize(run, views);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].agent, "oracle");
  EXPECT_EQ(rows[0].attempts, 3);
  EXPECT_EQ(rows[0].completed, 2);
  EXPECT_NEAR(rows[0].completion_rate, 2.0 / 3, 1e-9);
  EXPECT_EQ(rows[0].median_wall_ms, 200);
  EXPECT_NEAR(rows[0].mean_files_touched, 2.0, 1e-9);
  EXPECT_EQ(rows[1].agent, "noop");
  EXPECT_EQ(rows[1].attempts, 2);
  EXPECT_EQ(rows[1].infra_failed, 1);
  EXPECT_EQ(rows[1].completion_rate, 0);

  auto json = report::RenderJson(run, rows);
  EXPECT_NE(json.find("\"completion_rate\""), std::string::npos);
  auto table = report::RenderTable(rows);
  EXPECT_NE(table.find("66.7%"), std::string::npos) << table;
}

}  // namespace
}  // namespace crucible
