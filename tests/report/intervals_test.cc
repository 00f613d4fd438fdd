// Intervals, pass@k and runs in progress in `crucible report` (docs/reports.md,
// "Listing runs and drilling down"), from constructed attempts. The interval
// values are Wilson 95% intervals computed independently (Python, the formula
// of Wilson 1927 with z = 1.959963984540054).
#include <algorithm>
#include <sstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "report/report.h"
#include "tests/report/store_fixture.h"

namespace crucible::report {
namespace {

using fixture::Scored;
using ::testing::HasSubstr;
using ::testing::Not;

class IntervalsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    run_.set_id("r1");
    run_.set_suite("s");
    run_.set_samples(2);
    run_.set_state(v1::Run::RUNNING);
    run_.add_agents()->set_name("a");
    run_.add_agents()->set_name("b");
  }

  void Add(const std::string& agent, const std::string& task, int sample,
           std::optional<v1::Score> score, v1::Attempt::State state = v1::Attempt::DONE) {
    AttemptView v;
    v.attempt.set_run_id("r1");
    v.attempt.set_number(views_.size());
    v.attempt.set_agent(agent);
    v.attempt.set_task_id(task);
    v.attempt.set_sample(sample);
    v.attempt.set_state(state);
    v.score = std::move(score);
    views_.push_back(std::move(v));
    run_.set_attempt_count(static_cast<int>(views_.size()));
  }

  // Agent a: t-1 strict twice; t-2 loose only, then a failure; t-3 queued.
  // Agent b: nothing finished.
  void AddTwoSamples() {
    Add("a", "t-1", 0, Scored(true, true));
    Add("a", "t-1", 1, Scored(true, true));
    Add("b", "t-1", 0, std::nullopt, v1::Attempt::RUNNING);
    Add("b", "t-1", 1, std::nullopt, v1::Attempt::QUEUED);
    Add("a", "t-2", 0, Scored(true, false));
    Add("a", "t-2", 1, Scored(false, false));
    Add("b", "t-2", 0, std::nullopt, v1::Attempt::QUEUED);
    Add("b", "t-2", 1, std::nullopt, v1::Attempt::QUEUED);
    Add("a", "t-3", 0, std::nullopt, v1::Attempt::QUEUED);
  }

  v1::Run run_;
  std::vector<AttemptView> views_;
};

TEST_F(IntervalsTest, RatesCoverTheSettledAttemptsWithWilsonIntervals) {
  AddTwoSamples();
  auto rows = Summarize(run_, views_);
  ASSERT_EQ(rows.size(), 2u);
  const AgentRow& a = rows[0];
  EXPECT_EQ(a.attempts, 5);
  EXPECT_EQ(a.settled, 4);
  EXPECT_EQ(a.unfinished, 1);
  EXPECT_DOUBLE_EQ(a.completion_rate, 0.75);
  EXPECT_DOUBLE_EQ(a.strict_completion_rate, 0.5);
  ASSERT_TRUE(a.completion_ci.has_value());
  EXPECT_NEAR(a.completion_ci->low, 0.30064184258240184, 1e-9);  // Wilson 3 of 4
  EXPECT_NEAR(a.completion_ci->high, 0.9544127391902995, 1e-9);
  ASSERT_TRUE(a.strict_completion_ci.has_value());
  EXPECT_NEAR(a.strict_completion_ci->low, 0.15003898915214947, 1e-9);  // Wilson 2 of 4
  EXPECT_NEAR(a.strict_completion_ci->high, 0.8499610108478506, 1e-9);
  const AgentRow& b = rows[1];
  EXPECT_EQ(b.settled, 0);
  EXPECT_EQ(b.unfinished, 4);
  EXPECT_FALSE(b.completion_ci.has_value());
}

TEST_F(IntervalsTest, PassAtKPassHatKAndVarianceAcrossSamples) {
  AddTwoSamples();
  const AgentRow a = Summarize(run_, views_)[0];
  EXPECT_EQ(a.samples, 2);
  // Loose: t-1 passes 2 of 2, t-2 1 of 2; t-3 has no settled sample.
  ASSERT_EQ(a.pass_at_k.size(), 2u);
  EXPECT_DOUBLE_EQ(a.pass_at_k[0], 0.75);  // (1 + 0.5) / 2
  EXPECT_DOUBLE_EQ(a.pass_at_k[1], 1.0);
  ASSERT_EQ(a.pass_hat_k.size(), 2u);
  EXPECT_DOUBLE_EQ(a.pass_hat_k[0], 0.75);
  EXPECT_DOUBLE_EQ(a.pass_hat_k[1], 0.5);  // only t-1 passes both
  // Strict: t-1 2 of 2, t-2 0 of 2.
  ASSERT_EQ(a.strict_pass_at_k.size(), 2u);
  EXPECT_DOUBLE_EQ(a.strict_pass_at_k[1], 0.5);
  EXPECT_DOUBLE_EQ(a.strict_pass_hat_k[1], 0.5);
  EXPECT_EQ(a.pass_k_tasks, (std::vector<int>{2, 2}));
  ASSERT_TRUE(a.sample_variance.has_value());
  EXPECT_DOUBLE_EQ(*a.sample_variance, 0.25);  // t-1: 0, t-2: var(1, 0) = 0.5
  ASSERT_TRUE(a.strict_sample_variance.has_value());
  EXPECT_DOUBLE_EQ(*a.strict_sample_variance, 0.0);
}

TEST_F(IntervalsTest, OneSamplePerTaskHasNoPassAtK) {
  Add("a", "t-1", 0, Scored(true, true));
  Add("a", "t-2", 0, Scored(false, false));
  const AgentRow a = Summarize(run_, views_)[0];
  EXPECT_TRUE(a.pass_at_k.empty());
  EXPECT_FALSE(a.sample_variance.has_value());
  auto json = nlohmann::json::parse(RenderJson(run_, Summarize(run_, views_)));
  EXPECT_TRUE(json[0]["pass_at_k"].empty()) << json[0].dump();
  EXPECT_THAT(RenderTable(Summarize(run_, views_)), Not(HasSubstr("pass@k")));
}

TEST_F(IntervalsTest, EverySharesIntervalIsThere) {
  auto measured = [](bool regression, bool out_of_scope, int files) {
    v1::Score s = Scored(!regression, false);
    s.set_regression_measured(true);
    s.set_regression(regression);
    s.set_out_of_scope(out_of_scope);
    s.mutable_blast_radius()->set_files(files);
    return s;
  };
  Add("a", "t-1", 0, measured(true, true, 5));
  Add("a", "t-2", 0, measured(false, false, 1));
  Add("a", "t-3", 0, measured(false, false, 1));
  Add("a", "t-4", 0, measured(false, false, 1));
  views_[0].verdict = v1::Verdict();
  views_[0].verdict->set_verdict("reject");  // agrees: not strict, not accepted
  const AgentRow a = Summarize(run_, views_)[0];
  ASSERT_TRUE(a.regression_ci.has_value());
  EXPECT_NEAR(a.regression_ci->low, 0.04558726080970055, 1e-9);  // Wilson 1 of 4
  EXPECT_NEAR(a.regression_ci->high, 0.6993581574175981, 1e-9);
  ASSERT_TRUE(a.out_of_scope_ci.has_value());
  EXPECT_NEAR(a.out_of_scope_ci->high, 0.6993581574175981, 1e-9);
  ASSERT_TRUE(a.contained_ci.has_value());  // 3 of 4 contained
  EXPECT_NEAR(a.contained_ci->low, 0.30064184258240184, 1e-9);
  ASSERT_TRUE(a.human_agreement_ci.has_value());  // 1 of 1
  EXPECT_NEAR(a.human_agreement_ci->low, 0.20654931437723745, 1e-9);
  EXPECT_DOUBLE_EQ(a.human_agreement_ci->high, 1.0);
  EXPECT_FALSE(a.loose_rejected_ci.has_value());  // the rejected one did not pass

  auto json = nlohmann::json::parse(RenderJson(run_, Summarize(run_, views_)))[0];
  for (const char* key : {"completion_rate_ci", "strict_completion_rate_ci", "tests_pass_rate_ci",
                          "regression_rate_ci", "out_of_scope_rate_ci", "human_agreement_ci"}) {
    ASSERT_TRUE(json.contains(key)) << key;
    ASSERT_TRUE(json[key].is_array()) << key << " in " << json.dump();
    EXPECT_EQ(json[key].size(), 2u) << key;
  }
  EXPECT_NEAR(json["regression_rate_ci"][0].get<double>(), 0.04558726080970055, 1e-9);
  EXPECT_TRUE(json["blast_radius"]["contained_share_ci"].is_array()) << json.dump();
  EXPECT_TRUE(json["loose_rejected_share_ci"].is_null()) << json.dump();

  const std::string table = RenderTable(Summarize(run_, views_));
  EXPECT_THAT(table, HasSubstr("25.0% [5-70]")) << table;     // regression, out of scope
  EXPECT_THAT(table, HasSubstr("75.0% [30-95]")) << table;    // completion, contained
  EXPECT_THAT(table, HasSubstr("100.0% [21-100]")) << table;  // agreement
}

TEST_F(IntervalsTest, TableShowsIntervalsWithin120ColumnsAndNamesAnAgentWithNothingFinished) {
  AddTwoSamples();
  run_.mutable_agents(0)->set_name("a-rather-long-name1");
  for (auto& v : views_) {
    if (v.attempt.agent() == "a") v.attempt.set_agent("a-rather-long-name1");
  }
  const std::string table = RenderTable(Summarize(run_, views_));
  EXPECT_THAT(table, HasSubstr("75.0% [30-95]")) << table;
  EXPECT_THAT(table, HasSubstr("50.0% [15-85]")) << table;
  EXPECT_THAT(table, HasSubstr("no finished attempts yet (4 queued or running)")) << table;
  EXPECT_THAT(table, HasSubstr("pass@k")) << table;
  std::istringstream lines(table);
  for (std::string line; std::getline(lines, line);) {
    EXPECT_LE(line.size(), 120u) << line;
  }
}

TEST_F(IntervalsTest, RunInProgressIsSaidInTableAndJson) {
  AddTwoSamples();
  auto rows = Summarize(run_, views_);
  EXPECT_EQ(DescribeProgress(run_, rows),
            "run in progress: 4 of 9 attempts finished; the numbers cover those");
  auto json = nlohmann::json::parse(RenderJson(run_, rows));
  EXPECT_EQ(json[0]["in_progress"], true);
  EXPECT_EQ(json[0]["run_attempts_finished"], 4);
  EXPECT_EQ(json[0]["run_attempts"], 9);
  EXPECT_EQ(json[1]["settled"], 0);
  EXPECT_TRUE(json[1]["completion_rate_ci"].is_null());

  run_.set_state(v1::Run::CANCELLED);
  EXPECT_EQ(DescribeProgress(run_, rows),
            "run cancelled: 4 of 9 attempts finished; the numbers cover those");
}

TEST_F(IntervalsTest, FinishedRunSaysNothingAboutProgress) {
  run_.set_state(v1::Run::FINISHED);
  Add("a", "t-1", 0, Scored(true, true));
  Add("b", "t-1", 0, std::nullopt, v1::Attempt::FAILED);
  auto rows = Summarize(run_, views_);
  EXPECT_EQ(DescribeProgress(run_, rows), "");
  EXPECT_EQ(nlohmann::json::parse(RenderJson(run_, rows))[0]["in_progress"], false);
}

TEST(RateWithInterval, WholePercentBounds) {
  EXPECT_EQ(RateWithInterval(0.4, stats::Wilson(4, 10)), "40.0% [17-69]");
  EXPECT_EQ(RateWithInterval(1.0, stats::Wilson(3, 3)), "100.0% [44-100]");
  EXPECT_EQ(RateWithInterval(std::nullopt, std::nullopt), "-");
}

}  // namespace
}  // namespace crucible::report
