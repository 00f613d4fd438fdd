// A predictions agent's run in a real store: the no-submission count of
// `crucible report` and the summary of `crucible report --format swebench`.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <optional>

#include "report/report.h"
#include "report/swebench.h"
#include "tests/report/store_fixture.h"

namespace crucible::report {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using json = nlohmann::json;

class SwebenchReportTest : public fixture::StoreTest {
 protected:
  void SetUp() override {
    fixture::StoreTest::SetUp();
    run_.set_id("r1");
    run_.set_suite("s");
    run_.set_samples(2);
    v1::AgentSpec* preds = run_.add_agents();
    preds->set_name("mine");
    preds->set_model("org/model-7");
    preds->set_command("predictions:/p.jsonl");
    for (const char* id : {"t-res", "t-unres", "t-empty", "t-noapply", "t-infra"}) {
      (*preds->mutable_predictions())[id].set_patch(std::string(id) == "t-empty" ? "" : "diff");
    }
    preds->add_prediction_warnings("/p.jsonl:7: instance t-res: given again (first on line 1)");
    run_.add_agents()->set_name("other");
  }

  // Attempt of `agent` on `task`, sample `sample`, finished as given.
  void Add(const std::string& agent, const std::string& task, int sample, v1::Attempt::State state,
           v1::Evidence evidence, v1::Score score) {
    v1::Attempt a;
    a.set_run_id("r1");
    a.set_number(attempts_.size());
    a.set_task_id(task);
    a.set_agent(agent);
    a.set_sample(sample);
    a.set_state(state);
    attempts_.push_back(a);
    evidence_.push_back(std::move(evidence));
    scores_.push_back(std::move(score));
  }

  void Store() {
    std::vector<v1::Attempt> queued = attempts_;
    for (auto& a : queued) a.set_state(v1::Attempt::QUEUED);
    run_.set_attempt_count(static_cast<int>(queued.size()));
    ASSERT_TRUE(store_->CreateRun(run_, queued));
    for (size_t i = 0; i < attempts_.size(); ++i) {
      if (attempts_[i].state() == v1::Attempt::QUEUED) continue;
      if (attempts_[i].state() == v1::Attempt::FAILED) {
        ASSERT_TRUE(store_->UpdateAttempt(attempts_[i]));
        continue;
      }
      ASSERT_TRUE(store_->FinishAttempt(attempts_[i], evidence_[i], scores_[i]));
    }
  }

  void AddPredictionsRun() {
    v1::Evidence tested;
    v1::Evidence empty;
    empty.set_no_submission(true);
    v1::Score no_sub;
    no_sub.set_scoring_version(2);
    no_sub.set_no_submission(true);
    no_sub.set_reason("no submission");
    v1::Evidence noapply;
    noapply.set_diff_error("the prediction does not apply: patch does not apply to a.py");
    Add("mine", "t-res", 0, v1::Attempt::DONE, tested, fixture::Scored(true, true));
    Add("mine", "t-res", 1, v1::Attempt::DONE, tested, fixture::Scored(false, false));
    Add("mine", "t-unres", 0, v1::Attempt::DONE, tested, fixture::Scored(false, false));
    Add("mine", "t-unres", 1, v1::Attempt::DONE, tested, fixture::Scored(true, true));
    Add("mine", "t-empty", 0, v1::Attempt::DONE, empty, no_sub);
    Add("mine", "t-noapply", 0, v1::Attempt::DONE, noapply, fixture::Scored(false, false));
    Add("mine", "t-infra", 0, v1::Attempt::FAILED, {}, {});
    Add("mine", "t-none", 0, v1::Attempt::DONE, empty, no_sub);  // not in the file
    Add("other", "t-res", 0, v1::Attempt::DONE, tested, fixture::Scored(true, true));
    Add("other", "t-empty", 0, v1::Attempt::QUEUED, {}, {});
    Store();
  }

  v1::Run run_;
  std::vector<v1::Attempt> attempts_;
  std::vector<v1::Evidence> evidence_;
  std::vector<v1::Score> scores_;
};

TEST_F(SwebenchReportTest, TheSummaryMapsEveryOutcomeAsTheHarnessDoes) {
  AddPredictionsRun();
  auto reports = SwebenchReports(*store_, "r1");
  ASSERT_TRUE(reports) << reports.error().ToString();
  ASSERT_EQ(reports->size(), 2u);
  EXPECT_EQ((*reports)[0].agent, "mine");
  EXPECT_EQ((*reports)[0].file_name, "org__model-7.r1.json");
  EXPECT_EQ((*reports)[1].file_name, "other.r1.json");
  json j = json::parse((*reports)[0].json);
  EXPECT_EQ(j["total_instances"], 6);
  EXPECT_EQ(j["submitted_instances"], 5);
  EXPECT_EQ(j["completed_instances"], 2);
  EXPECT_EQ(j["resolved_instances"], 1);
  EXPECT_EQ(j["unresolved_instances"], 1);
  EXPECT_EQ(j["empty_patch_instances"], 1);
  EXPECT_EQ(j["error_instances"], 2);
  EXPECT_EQ(j["resolved_ids"], json({"t-res"}));  // the first sample only
  EXPECT_EQ(j["unresolved_ids"], json({"t-unres"}));
  EXPECT_EQ(j["completed_ids"], json({"t-res", "t-unres"}));
  EXPECT_EQ(j["empty_patch_ids"], json({"t-empty"}));
  EXPECT_EQ(j["error_ids"], json({"t-infra", "t-noapply"}));
  EXPECT_EQ(j["incomplete_ids"], json({"t-none"}));
  EXPECT_EQ(j["submitted_ids"], json({"t-empty", "t-infra", "t-noapply", "t-res", "t-unres"}));
  EXPECT_EQ(j["schema_version"], 2);
  json other = json::parse((*reports)[1].json);
  EXPECT_EQ(other["resolved_ids"], json({"t-res"}));
  EXPECT_EQ(other["incomplete_ids"], json({"t-empty"}));  // not finished yet
  json all = json::parse(SwebenchReportsByAgent(*reports));
  EXPECT_EQ(all["mine"], j);
  EXPECT_EQ(all["other"], other);
  EXPECT_FALSE(SwebenchReports(*store_, "nope"));
}

// A no-submission attempt counts against the completion rate and is shown
// apart from failures; the file's warnings show in the report.
TEST_F(SwebenchReportTest, NoSubmissionCountsAgainstTheRateAndIsShownApart) {
  AddPredictionsRun();
  auto view = LoadRun(*store_, "r1");
  ASSERT_TRUE(view) << view.error().ToString();
  auto rows = Summarize(view->run, view->attempts, view->contained_files);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].no_submission, 2);
  EXPECT_EQ(rows[0].attempts, 8);
  EXPECT_DOUBLE_EQ(rows[0].completion_rate, 2.0 / 8);
  const std::string table = RenderTable(rows);
  EXPECT_THAT(table, HasSubstr("no submission: 2"));
  EXPECT_THAT(table, HasSubstr("/p.jsonl:7: instance t-res: given again"));
  json j = json::parse(RenderJson(view->run, rows));
  EXPECT_EQ(j[0]["no_submission"], 2);
  EXPECT_EQ(j[0]["prediction_warnings"],
            json({"/p.jsonl:7: instance t-res: given again (first on line 1)"}));
  EXPECT_EQ(j[1]["no_submission"], 0);
}

// The summary follows SWE-bench's resolution rule over the recorded test
// outcomes (swebench/harness/grading.py): a skipped PASS_TO_PASS test keeps
// an instance resolved there, while Crucible's completion counts it broken.
// The difference is named; a skipped FAIL_TO_PASS test, a failed or missing
// test resolve nothing under either rule.
TEST_F(SwebenchReportTest, ResolutionFollowsTheHarnessRuleAndNamesWhereCrucibleDiffers) {
  v1::Suite suite;
  suite.set_name("s");
  std::vector<v1::GoldenTask> tasks;
  for (const char* id : {"t-skip-p2p", "t-skip-f2p", "t-missing", "t-clean"}) {
    v1::GoldenTask t;
    t.set_suite("s");
    t.set_id(id);
    t.add_fail_to_pass("f");
    t.add_pass_to_pass("p");
    tasks.push_back(t);
  }
  ASSERT_TRUE(store_->PutSuite(suite, tasks));
  run_.mutable_agents()->RemoveLast();  // "mine" alone
  run_.mutable_agents(0)->clear_predictions();
  auto tested = [](v1::TestOutcome::Status f, std::optional<v1::TestOutcome::Status> p) {
    v1::Evidence ev;
    ev.mutable_tests()->set_report_found(true);
    auto* ft = ev.mutable_tests()->add_tests();
    ft->set_id("f");
    ft->set_status(f);
    if (p) {
      auto* pt = ev.mutable_tests()->add_tests();
      pt->set_id("p");
      pt->set_status(*p);
    }
    return ev;
  };
  v1::Score broken = fixture::Scored(false, false);
  broken.set_reason("0/1 PASS_TO_PASS tests pass; broken: p");
  Add("mine", "t-skip-p2p", 0, v1::Attempt::DONE,
      tested(v1::TestOutcome::PASSED, v1::TestOutcome::SKIPPED), broken);
  Add("mine", "t-skip-f2p", 0, v1::Attempt::DONE,
      tested(v1::TestOutcome::SKIPPED, v1::TestOutcome::PASSED), fixture::Scored(false, false));
  Add("mine", "t-missing", 0, v1::Attempt::DONE, tested(v1::TestOutcome::PASSED, std::nullopt),
      fixture::Scored(false, false));
  Add("mine", "t-clean", 0, v1::Attempt::DONE,
      tested(v1::TestOutcome::PASSED, v1::TestOutcome::PASSED), fixture::Scored(true, true));
  Store();
  auto reports = SwebenchReports(*store_, "r1");
  ASSERT_TRUE(reports) << reports.error().ToString();
  ASSERT_EQ(reports->size(), 1u);
  json j = json::parse((*reports)[0].json);
  EXPECT_EQ(j["resolved_ids"], json({"t-clean", "t-skip-p2p"}));
  EXPECT_EQ(j["unresolved_ids"], json({"t-missing", "t-skip-f2p"}));
  EXPECT_THAT((*reports)[0].differences,
              ElementsAre("instance t-skip-p2p: resolved by SWE-bench's rule, not completed by "
                          "Crucible's (0/1 PASS_TO_PASS tests pass; broken: p)"));
}

}  // namespace
}  // namespace crucible::report
