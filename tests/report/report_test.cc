// The per-agent metrics and the per-attempt view of docs/scoring.md,
// from constructed scores.
#include "report/report.h"
#include "tests/report/store_fixture.h"

#include <sstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace crucible::report {
namespace {

using fixture::Scored;
using ::testing::HasSubstr;
using ::testing::Not;

v1::Dimension Measured(double value) {
  v1::Dimension d;
  d.set_measured(true);
  d.set_value(value);
  return d;
}

v1::Dimension Null(const char* why) {
  v1::Dimension d;
  d.set_reason(why);
  return d;
}

void AddViolation(v1::Score& s, const char* kind, const char* file, int line) {
  auto* v = s.add_violations();
  v->set_kind(kind);
  v->set_file(file);
  v->set_line(line);
  v->set_detail(std::string(kind) + " in " + file);
}

void SetBlast(v1::Score& s, int files, int modules, int lines, int broken) {
  auto* b = s.mutable_blast_radius();
  b->set_files(files);
  b->set_modules(modules);
  b->set_lines(lines);
  b->set_broken_tests(broken);
}

class SummarizeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    run_.set_id("r1");
    run_.set_suite("s");
    run_.add_agents()->set_name("a");
    run_.add_agents()->set_name("b");
  }

  void Add(const std::string& agent, std::optional<v1::Score> score,
           const std::string& task = "t-1", v1::Attempt::State state = v1::Attempt::DONE) {
    AttemptView v;
    v.attempt.set_run_id("r1");
    v.attempt.set_number(views_.size());
    v.attempt.set_agent(agent);
    v.attempt.set_task_id(task);
    v.attempt.set_state(state);
    v.score = std::move(score);
    views_.push_back(std::move(v));
  }

  v1::Run run_;
  std::vector<AttemptView> views_;
};

TEST_F(SummarizeTest, StrictAndLooseCompletionOverTheAgentsAttempts) {
  Add("a", Scored(true, true));
  Add("a", Scored(true, false));  // passes the tests with a violation
  Add("a", Scored(false, false));
  Add("a", std::nullopt, "t-1", v1::Attempt::FAILED);  // infrastructure failure
  auto rows = Summarize(run_, views_);
  ASSERT_EQ(rows.size(), 2u);
  const AgentRow& a = rows[0];
  EXPECT_EQ(a.attempts, 4);
  EXPECT_EQ(a.completed, 2);
  EXPECT_EQ(a.strict_completed, 1);
  EXPECT_DOUBLE_EQ(a.completion_rate, 0.5);
  EXPECT_DOUBLE_EQ(a.tests_pass_rate, 0.5);
  EXPECT_DOUBLE_EQ(a.strict_completion_rate, 0.25);
  EXPECT_EQ(rows[1].attempts, 0);
  EXPECT_EQ(rows[1].strict_completion_rate, 0);
}

TEST_F(SummarizeTest, RegressionRateIsOverTheAttemptsWhereItWasMeasured) {
  auto measured = [](bool regression, bool out_of_scope) {
    v1::Score s = Scored(!regression, false);
    s.set_regression_measured(true);
    s.set_regression(regression);
    s.set_out_of_scope(out_of_scope);
    return s;
  };
  Add("a", measured(true, true));
  Add("a", measured(false, false));
  Add("a", measured(false, true));
  Add("a", measured(false, false));
  Add("a", Scored(false, false));  // FAIL_TO_PASS failing: not measured
  v1::Score unmeasured_but_flagged = Scored(false, false);
  unmeasured_but_flagged.set_regression(true);  // ignored without regression_measured
  Add("a", unmeasured_but_flagged);
  auto rows = Summarize(run_, views_);
  EXPECT_EQ(rows[0].regression_measured, 4);
  EXPECT_EQ(rows[0].regressions, 1);
  ASSERT_TRUE(rows[0].regression_rate.has_value());
  EXPECT_DOUBLE_EQ(*rows[0].regression_rate, 0.25);
  ASSERT_TRUE(rows[0].out_of_scope_rate.has_value());
  EXPECT_DOUBLE_EQ(*rows[0].out_of_scope_rate, 0.5);
  // No measured attempt: no rate, not zero.
  EXPECT_FALSE(rows[1].regression_rate.has_value());
  EXPECT_FALSE(rows[1].out_of_scope_rate.has_value());
}

TEST_F(SummarizeTest, ReviewLoopsAreTheMeanRoundOfTheMergeReadyAttempts) {
  for (int round : {1, 1, 2, 3, 4, 0, 0}) {
    v1::Score s = Scored(round > 0, round == 1);
    s.set_merge_ready_round(round);
    Add("a", s);
  }
  Add("b", Scored(false, false));
  auto rows = Summarize(run_, views_);
  ASSERT_TRUE(rows[0].review_loops_mean.has_value());
  EXPECT_DOUBLE_EQ(*rows[0].review_loops_mean, (1 + 1 + 2 + 3 + 4) / 5.0);
  EXPECT_EQ(rows[0].merge_ready_round_1, 2);
  EXPECT_EQ(rows[0].merge_ready_round_2, 1);
  EXPECT_EQ(rows[0].merge_ready_round_3, 2);  // 3 and 4: "3 or later"
  EXPECT_EQ(rows[0].merge_ready_never, 2);
  EXPECT_FALSE(rows[1].review_loops_mean.has_value());
  EXPECT_EQ(rows[1].merge_ready_never, 1);
}

TEST_F(SummarizeTest, BlastRadiusCountsOnlyAttemptsThatAreNotStrictCompletions) {
  v1::Score strict = Scored(true, true);
  SetBlast(strict, 40, 40, 400, 40);  // a strict completion: left out
  Add("a", strict);
  const int files[] = {1, 2, 3, 5, 8, 0, 13, 2, 4, 30};
  for (int i = 0; i < 10; ++i) {
    v1::Score s = Scored(i % 2 == 0, false);
    SetBlast(s, files[i], files[i] / 2, 10 * files[i], i);
    Add("a", s);
  }
  auto rows = Summarize(run_, views_, /*contained_files=*/2);
  const AgentRow& a = rows[0];
  EXPECT_EQ(a.blast_attempts, 10);
  // Sorted: 0 1 2 2 3 4 5 8 13 30.
  EXPECT_DOUBLE_EQ(a.blast_files.median, 3.5);
  EXPECT_DOUBLE_EQ(a.blast_files.p90, 13);  // nearest rank: the 9th of 10
  EXPECT_DOUBLE_EQ(a.blast_files.max, 30);
  EXPECT_DOUBLE_EQ(a.blast_lines.max, 300);
  EXPECT_DOUBLE_EQ(a.blast_modules.max, 15);
  EXPECT_DOUBLE_EQ(a.blast_broken_tests.max, 9);
  EXPECT_DOUBLE_EQ(a.blast_broken_tests.median, 4.5);
  ASSERT_TRUE(a.contained_share.has_value());
  EXPECT_DOUBLE_EQ(*a.contained_share, 0.4);  // 0, 1, 2, 2
  // The suite's threshold, when it sets one.
  auto wider = Summarize(run_, views_, /*contained_files=*/5);
  EXPECT_DOUBLE_EQ(*wider[0].contained_share, 0.7);
  EXPECT_FALSE(rows[1].contained_share.has_value());
}

TEST_F(SummarizeTest, DimensionMeansLeaveOutTheAttemptsThatDidNotMeasureThem) {
  v1::Score s1 = Scored(true, true);
  *s1.mutable_dimensions()->mutable_replay() = Measured(1.0);
  *s1.mutable_dimensions()->mutable_tool_calls() = Measured(0.5);
  *s1.mutable_dimensions()->mutable_plan() = Null("no plan event");
  v1::Score s2 = Scored(false, false);
  *s2.mutable_dimensions()->mutable_replay() = Measured(0.2);
  *s2.mutable_dimensions()->mutable_tool_calls() = Null("no trace");
  *s2.mutable_dimensions()->mutable_coherence() = Measured(0.0);  // measured zero counts
  Add("a", s1);
  Add("a", s2);
  Add("a", Scored(false, false));  // nothing measured
  auto rows = Summarize(run_, views_);
  const auto& d = rows[0].dimensions;
  ASSERT_TRUE(d[0].mean.has_value());
  EXPECT_DOUBLE_EQ(*d[0].mean, 0.6);  // replay: (1.0 + 0.2) / 2
  EXPECT_EQ(d[0].covered, 2);
  EXPECT_EQ(d[0].of, 3);
  EXPECT_DOUBLE_EQ(*d[1].mean, 0.5);  // tool_calls: the null is not a zero
  EXPECT_EQ(d[1].covered, 1);
  ASSERT_TRUE(d[2].mean.has_value());
  EXPECT_DOUBLE_EQ(*d[2].mean, 0.0);
  EXPECT_EQ(d[2].covered, 1);
  EXPECT_FALSE(d[3].mean.has_value());  // plan: nobody measured it
  EXPECT_EQ(d[3].covered, 0);
  EXPECT_EQ(d[3].of, 3);
  EXPECT_FALSE(d[4].mean.has_value());
}

TEST_F(SummarizeTest, ViolationsFailureModesAndJudgesAreCounted) {
  v1::Score s1 = Scored(true, false);
  AddViolation(s1, "out_of_scope", "docs/x.md", 0);
  AddViolation(s1, "out_of_scope", "setup.cfg", 0);
  AddViolation(s1, "reformat", "pkg/a.py", 12);
  s1.add_failure_modes("scope-creep");
  auto* j = s1.add_judge();
  j->set_judge("llm");
  j->set_dimension("plan");
  j->set_score(0.5);
  v1::Score s2 = Scored(false, false);
  AddViolation(s2, "broken_import", "pkg/b.py", 3);
  s2.add_failure_modes("scope-creep");
  s2.add_failure_modes("hallucinated-api");
  j = s2.add_judge();
  j->set_judge("llm");
  j->set_dimension("plan");
  j->set_score(1.0);
  Add("a", s1);
  Add("a", s2);
  Add("a", Scored(true, true));
  auto rows = Summarize(run_, views_);
  const AgentRow& a = rows[0];
  EXPECT_EQ(a.violations, (std::map<std::string, int>{
                              {"broken_import", 1}, {"out_of_scope", 2}, {"reformat", 1}}));
  EXPECT_EQ(a.failure_modes,
            (std::map<std::string, int>{{"hallucinated-api", 1}, {"scope-creep", 2}}));
  const DimensionMean& plan = a.judges.at("llm").at("plan");
  ASSERT_TRUE(plan.mean.has_value());
  EXPECT_DOUBLE_EQ(*plan.mean, 0.75);
  EXPECT_EQ(plan.covered, 2);
  EXPECT_EQ(plan.of, 3);
}

TEST_F(SummarizeTest, UntestableTasksAndOldScoresStayApart) {
  run_.add_untestable_tasks("t-free");
  v1::Score free = Scored(true, false);
  AddViolation(free, "out_of_scope", "docs/x.md", 0);
  free.set_regression_measured(true);
  free.set_regression(true);
  *free.mutable_dimensions()->mutable_replay() = Measured(0.0);
  Add("a", free, "t-free");
  v1::Score old;  // scoring version 0: completion only
  old.set_completed(true);
  old.set_wall_ms(500);
  Add("a", old);
  Add("a", Scored(true, true));
  auto rows = Summarize(run_, views_);
  const AgentRow& a = rows[0];
  EXPECT_EQ(a.untestable_attempts, 1);
  EXPECT_EQ(a.untestable_completed, 1);
  EXPECT_EQ(a.attempts, 2);
  EXPECT_EQ(a.completed, 2);
  EXPECT_EQ(a.old_scores, 1);
  EXPECT_EQ(a.strict_completed, 1);
  EXPECT_TRUE(a.violations.empty());
  EXPECT_EQ(a.regression_measured, 0);
  EXPECT_EQ(a.dimensions[0].of, 1);  // the old score has no dimensions to count
  EXPECT_EQ(a.dimensions[0].covered, 0);
  EXPECT_NE(RenderTable(rows).find("older scoring version"), std::string::npos);
}

TEST_F(SummarizeTest, JsonKeepsTodaysKeysAndAddsTheMetrics) {
  v1::Score s = Scored(true, false);
  s.set_regression_measured(true);
  AddViolation(s, "reformat", "pkg/a.py", 3);
  s.add_failure_modes("scope-creep");
  SetBlast(s, 3, 1, 20, 0);
  *s.mutable_dimensions()->mutable_replay() = Measured(0.7);
  Add("a", s);
  Add("a", Scored(true, true));
  auto json = nlohmann::json::parse(RenderJson(run_, Summarize(run_, views_)));
  ASSERT_EQ(json.size(), 2u);
  const auto& a = json[0];
  for (const char* key : {"run",
                          "suite",
                          "agent",
                          "attempts",
                          "finished",
                          "infra_failed",
                          "completed",
                          "completion_rate",
                          "mean_files_touched",
                          "median_wall_ms",
                          "untestable_attempts",
                          "untestable_completed",
                          "strict_completion_rate",
                          "tests_pass_rate",
                          "regression_rate",
                          "review_loops_mean",
                          "blast_radius",
                          "dimensions",
                          "violations",
                          "failure_modes"}) {
    EXPECT_TRUE(a.contains(key)) << key << " missing in " << a.dump();
  }
  EXPECT_EQ(a["agent"], "a");
  EXPECT_EQ(a["completion_rate"], 1.0);
  EXPECT_EQ(a["tests_pass_rate"], 1.0);
  EXPECT_EQ(a["strict_completion_rate"], 0.5);
  EXPECT_EQ(a["regression_rate"], 0.0);
  EXPECT_EQ(a["review_loops_mean"], 1.0);
  EXPECT_EQ(a["blast_radius"]["files_median"], 3.0);
  EXPECT_EQ(a["blast_radius"]["files_p90"], 3.0);
  EXPECT_EQ(a["blast_radius"]["contained_share"], 0.0);
  for (const char* dim : {"replay", "tool_calls", "coherence", "plan", "rollback"}) {
    ASSERT_TRUE(a["dimensions"].contains(dim)) << dim;
    EXPECT_EQ(a["dimensions"][dim]["of"], 2) << dim;
  }
  EXPECT_EQ(a["dimensions"]["replay"]["mean"], 0.7);
  EXPECT_EQ(a["dimensions"]["replay"]["covered"], 1);
  EXPECT_TRUE(a["dimensions"]["plan"]["mean"].is_null());
  EXPECT_EQ(a["dimensions"]["plan"]["covered"], 0);
  EXPECT_EQ(a["violations"]["reformat"], 1);
  EXPECT_EQ(a["failure_modes"]["scope-creep"], 1);
  // An agent without attempts: rates of nothing are null, not zero.
  const auto& b = json[1];
  EXPECT_TRUE(b["regression_rate"].is_null());
  EXPECT_TRUE(b["review_loops_mean"].is_null());
  EXPECT_TRUE(b["blast_radius"]["contained_share"].is_null());
  EXPECT_TRUE(b["dimensions"]["replay"]["mean"].is_null());
  EXPECT_TRUE(b["violations"].is_object());
}

TEST_F(SummarizeTest, TableShowsBothRatesAndTheCoverageOfEachDimension) {
  for (int i = 0; i < 10; ++i) {
    v1::Score s = Scored(true, i < 8);
    if (i < 9) *s.mutable_dimensions()->mutable_replay() = Measured(i < 5 ? 1.0 : 0.6);
    Add("a-rather-long-agent-name", s);
  }
  run_.add_agents()->set_name("a-rather-long-agent-name");
  Add("b", Scored(false, false));
  auto table = RenderTable(Summarize(run_, views_));
  EXPECT_THAT(table, HasSubstr("completion"));
  EXPECT_THAT(table, HasSubstr("strict"));
  EXPECT_THAT(table, HasSubstr("100.0%"));       // loose
  EXPECT_THAT(table, HasSubstr("80.0%"));        // strict
  EXPECT_THAT(table, HasSubstr("0.82 (9/10)"));  // replay: (5 x 1.0 + 4 x 0.6) / 9
  EXPECT_THAT(table, HasSubstr("- (0/10)"));     // a dimension nobody measured
  EXPECT_THAT(table, Not(HasSubstr("0.00 (0/10)")));
  std::istringstream lines(table);
  for (std::string line; std::getline(lines, line);) {
    EXPECT_LE(line.size(), 120u) << line;
    if (!line.empty()) {
      EXPECT_NE(line.back(), ' ') << "trailing blanks: '" << line << "'";
    }
  }
}

TEST_F(SummarizeTest, ByAttemptJsonHasOneObjectPerAttempt) {
  v1::Score s = Scored(true, false);
  AddViolation(s, "out_of_scope", "docs/notes.md", 0);
  auto* f = s.add_findings();
  f->set_rule("secret.aws-access-key");
  f->set_severity("error");
  f->set_file("pkg/a.py");
  f->set_line(7);
  f->set_match("AKIA************MPLE");
  s.set_regression_measured(true);
  s.set_regression(true);
  s.add_failure_modes("scope-creep");
  SetBlast(s, 2, 2, 14, 1);
  *s.mutable_dimensions()->mutable_replay() = Measured(0.5);
  *s.mutable_dimensions()->mutable_rollback() = Measured(0.0);
  s.mutable_rollback()->set_failures(2);
  s.mutable_rollback()->set_edits_per_failure(3.5);
  s.mutable_rollback()->set_pile_on(true);
  Add("a", s, "t-7");
  views_.back().attempt.set_sample(1);
  Add("b", Scored(false, false));  // nothing measured: nulls
  Add("b", std::nullopt, "t-2", v1::Attempt::FAILED);
  views_.back().attempt.set_error("runner lost");
  auto json = nlohmann::json::parse(RenderAttemptsJson(run_, views_));
  ASSERT_EQ(json.size(), 3u);
  const auto& a = json[0];
  EXPECT_EQ(a["attempt_id"], 0);
  EXPECT_EQ(a["attempt_ref"], "r1/0");  // as `crucible show` takes it
  EXPECT_EQ(a["agent"], "a");
  EXPECT_EQ(a["task_id"], "t-7");
  EXPECT_EQ(a["sample"], 1);
  EXPECT_EQ(a["tests_passed"], true);
  EXPECT_EQ(a["strict_completed"], false);
  EXPECT_EQ(a["regression"], true);
  ASSERT_EQ(a["violations"].size(), 1u);
  EXPECT_EQ(a["violations"][0]["kind"], "out_of_scope");
  EXPECT_EQ(a["violations"][0]["file"], "docs/notes.md");
  EXPECT_EQ(a["violations"][0]["line"], 0);
  EXPECT_EQ(a["violations"][0]["detail"], "out_of_scope in docs/notes.md");
  ASSERT_EQ(a["findings"].size(), 1u);
  EXPECT_EQ(a["findings"][0]["rule"], "secret.aws-access-key");
  EXPECT_EQ(a["findings"][0]["severity"], "error");
  EXPECT_EQ(a["findings"][0]["line"], 7);
  EXPECT_EQ(a["findings"][0]["match"], "AKIA************MPLE");
  EXPECT_EQ(a["dimensions"]["replay"], 0.5);
  EXPECT_EQ(a["dimensions"]["rollback"], 0.0);
  EXPECT_TRUE(a["dimensions"]["plan"].is_null());
  EXPECT_EQ(a["failure_modes"], nlohmann::json::array({"scope-creep"}));
  EXPECT_EQ(a["blast_radius"],
            nlohmann::json({{"files", 2}, {"modules", 2}, {"lines", 14}, {"broken_tests", 1}}));
  EXPECT_EQ(a["rollback"]["edits_per_failure"], 3.5);
  EXPECT_EQ(a["rollback"]["revert_ratio"], 0.0);
  EXPECT_EQ(a["rollback"]["pile_on"], true);

  const auto& b = json[1];
  EXPECT_TRUE(b["regression"].is_null());  // not measured
  EXPECT_TRUE(b["rollback"].is_null());
  for (const char* dim : {"replay", "tool_calls", "coherence", "plan", "rollback"}) {
    EXPECT_TRUE(b["dimensions"][dim].is_null()) << dim;
  }
  const auto& c = json[2];
  EXPECT_EQ(c["state"], "FAILED");
  EXPECT_EQ(c["scored"], false);
  EXPECT_TRUE(c["tests_passed"].is_null());
  EXPECT_EQ(c["reason"], "runner lost");

  auto table = RenderAttemptsTable(run_, views_);
  EXPECT_EQ(std::count(table.begin(), table.end(), '\n'), 4) << table;  // header + 3
  EXPECT_THAT(table, HasSubstr("out_of_scope 1 [scope-creep]"));
  EXPECT_THAT(table, HasSubstr("\nr1/2 "));  // attempts named as `crucible show` takes them
  EXPECT_THAT(table, HasSubstr("failed"));
}

}  // namespace
}  // namespace crucible::report
