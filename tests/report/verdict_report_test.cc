// The review-bar gap in `crucible report`: people's verdicts (stored with
// Store::AddVerdicts in a real RocksDB store) against the automated strict
// completion, per agent (table and JSON) and per attempt.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "base/fs.h"
#include "report/report.h"
#include "storage/store.h"

namespace crucible::report {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

class VerdictReportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto tmp = TempDir::Create("crucible-verdict-report-test-");
    ASSERT_TRUE(tmp);
    tmp_ = std::make_unique<TempDir>(std::move(*tmp));
    auto store = storage::Store::Open(tmp_->path() + "/db");
    ASSERT_TRUE(store) << store.error().ToString();
    store_ = std::move(*store);
    run_.set_id("r1");
    run_.set_suite("s");
    run_.add_agents()->set_name("a");
    run_.add_agents()->set_name("b");
  }

  // A finished attempt of `agent`: loose (the tests pass) and strict or not,
  // with the failure modes the evidence derived.
  void Add(const std::string& agent, bool loose, bool strict, std::vector<std::string> modes = {}) {
    v1::Attempt a;
    a.set_run_id("r1");
    a.set_number(attempts_.size());
    a.set_task_id("t-" + std::to_string(attempts_.size()));
    a.set_agent(agent);
    a.set_state(v1::Attempt::DONE);
    v1::Score s;
    s.set_scoring_version(2);
    s.set_completed(loose);
    s.set_strict_completed(strict);
    s.set_merge_ready_round(strict ? 1 : 0);
    for (auto& m : modes) s.add_failure_modes(m);
    attempts_.push_back(a);
    scores_.push_back(s);
  }

  void Store() {
    std::vector<v1::Attempt> queued = attempts_;
    for (auto& a : queued) a.set_state(v1::Attempt::QUEUED);
    run_.set_attempt_count(static_cast<int>(queued.size()));
    ASSERT_TRUE(store_->CreateRun(run_, queued));
    for (size_t i = 0; i < attempts_.size(); ++i) {
      ASSERT_TRUE(store_->FinishAttempt(attempts_[i], v1::Evidence(), scores_[i]));
    }
  }

  void Decide(uint64_t attempt, const std::string& verdict, int64_t at_ms,
              std::vector<std::string> tags = {}) {
    v1::Verdict v;
    v.set_run_id("r1");
    v.set_attempt(attempt);
    v.set_verdict(verdict);
    v.set_at_ms(at_ms);
    v.set_reviewer("ana");
    v.set_note("note " + std::to_string(attempt));
    for (auto& t : tags) v.add_tags(t);
    ASSERT_TRUE(store_->AddVerdicts({v}));
  }

  std::unique_ptr<TempDir> tmp_;
  storage::StorePtr store_;
  v1::Run run_;
  std::vector<v1::Attempt> attempts_;
  std::vector<v1::Score> scores_;
};

TEST_F(VerdictReportTest, AgreementLooseButRejectedHumanLoopsAndPeoplesTags) {
  Add("a", true, true);                         // 0: strict
  Add("a", true, false);                        // 1: loose only
  Add("a", true, false);                        // 2: loose only
  Add("a", false, false);                       // 3: tests fail
  Add("a", true, true, {"instruction-drift"});  // 4: strict, a derived mode
  Add("a", false, false, {"scope-creep"});      // 5: tests fail, no verdict
  Add("b", true, true);                         // 6: no verdict
  Store();
  Decide(0, "needs-changes", 100);
  Decide(0, "accept", 200);                   // latest: accept, after 1 needs-changes
  Decide(1, "reject", 100, {"scope-creep"});  // a person adds scope-creep
  Decide(2, "accept", 100);
  Decide(3, "needs-changes", 300);
  Decide(3, "reject", 100);  // added later, but earlier: not the latest
  Decide(4, "accept", 100, {"-instruction-drift", "context-blindness"});

  auto view = LoadRun(*store_, "r1");
  ASSERT_TRUE(view) << view.error().ToString();
  ASSERT_EQ(view->attempts.size(), 7u);
  ASSERT_TRUE(view->attempts[0].verdict);
  EXPECT_EQ(view->attempts[0].verdict->verdict(), "accept");
  EXPECT_EQ(view->attempts[0].needs_changes_before_accept, 1);
  EXPECT_EQ(view->attempts[3].verdict->verdict(), "needs-changes");
  EXPECT_FALSE(view->attempts[5].verdict);
  EXPECT_THAT(FailureModesOf(view->attempts[4]), ElementsAre("context-blindness"));

  auto rows = Summarize(view->run, view->attempts, view->contained_files);
  ASSERT_EQ(rows.size(), 2u);
  const AgentRow& a = rows[0];
  // Reviewed: attempts 0-4. Latest verdicts: accept, reject, accept,
  // needs-changes, accept.
  EXPECT_EQ(a.reviewed, 5);
  EXPECT_EQ(a.accepted, 3);
  EXPECT_EQ(a.rejected, 1);
  EXPECT_EQ(a.needs_changes, 1);
  // Agreement: 0 strict+accept yes, 1 !strict+reject yes, 2 !strict+accept
  // no, 3 !strict+needs-changes yes, 4 strict+accept yes: 4/5.
  ASSERT_TRUE(a.human_agreement);
  EXPECT_DOUBLE_EQ(*a.human_agreement, 0.8);
  // Loose: 0, 1, 2, 4; of those people did not accept 1: 1/4.
  EXPECT_EQ(a.loose_reviewed, 4);
  EXPECT_EQ(a.loose_rejected, 1);
  ASSERT_TRUE(a.loose_rejected_share);
  EXPECT_DOUBLE_EQ(*a.loose_rejected_share, 0.25);
  // Human loops over the accepted 0, 2, 4: (1+1) + 1 + 1 = 4, over 3.
  ASSERT_TRUE(a.human_review_loops_mean);
  EXPECT_DOUBLE_EQ(*a.human_review_loops_mean, 4.0 / 3.0);
  // Failure modes: scope-creep on 1 (a person's) and 5 (derived);
  // context-blindness on 4 (a person's); instruction-drift removed on 4.
  EXPECT_EQ(a.failure_modes,
            (std::map<std::string, int>{{"context-blindness", 1}, {"scope-creep", 2}}));
  EXPECT_EQ(a.failure_modes_by_people,
            (std::map<std::string, int>{{"context-blindness", 1}, {"scope-creep", 1}}));
  const AgentRow& b = rows[1];
  EXPECT_EQ(b.reviewed, 0);
  EXPECT_FALSE(b.human_agreement);
  EXPECT_FALSE(b.loose_rejected_share);
  EXPECT_FALSE(b.human_review_loops_mean);

  const std::string table = RenderTable(rows);
  EXPECT_THAT(table, HasSubstr("review-bar gap"));
  EXPECT_THAT(table, HasSubstr("agreement"));
  EXPECT_THAT(table, HasSubstr("80.0%"));
  EXPECT_THAT(table, HasSubstr("25.0% [5-70] (1/4)"));
  EXPECT_THAT(table, HasSubstr("1.33"));
  EXPECT_THAT(table, HasSubstr("scope-creep 2 (1 by people)"));
  EXPECT_THAT(table, HasSubstr("the number public\nbenchmarks hide"));

  auto json = nlohmann::json::parse(RenderJson(view->run, rows));
  EXPECT_EQ(json[0]["reviewed"], 5);
  EXPECT_EQ(json[0]["accepted"], 3);
  EXPECT_EQ(json[0]["rejected"], 1);
  EXPECT_EQ(json[0]["needs_changes"], 1);
  EXPECT_DOUBLE_EQ(json[0]["human_agreement"].get<double>(), 0.8);
  EXPECT_EQ(json[0]["loose_reviewed"], 4);
  EXPECT_DOUBLE_EQ(json[0]["loose_rejected_share"].get<double>(), 0.25);
  EXPECT_DOUBLE_EQ(json[0]["human_review_loops_mean"].get<double>(), 4.0 / 3.0);
  EXPECT_EQ(json[0]["failure_modes"]["scope-creep"], 2);
  EXPECT_EQ(json[0]["failure_modes_by_people"]["scope-creep"], 1);
  EXPECT_TRUE(json[1]["human_agreement"].is_null());
  EXPECT_TRUE(json[1]["loose_rejected_share"].is_null());
  EXPECT_TRUE(json[1]["human_review_loops_mean"].is_null());

  auto attempts = nlohmann::json::parse(RenderAttemptsJson(view->run, view->attempts));
  EXPECT_EQ(attempts[1]["verdict"], "reject");
  EXPECT_EQ(attempts[1]["verdict_tags"], nlohmann::json({"scope-creep"}));
  EXPECT_EQ(attempts[1]["verdict_reviewer"], "ana");
  EXPECT_EQ(attempts[1]["verdict_note"], "note 1");
  EXPECT_EQ(attempts[1]["verdict_at_ms"], 100);
  EXPECT_EQ(attempts[1]["failure_modes"], nlohmann::json({"scope-creep"}));
  EXPECT_EQ(attempts[4]["failure_modes"], nlohmann::json({"context-blindness"}));
  EXPECT_TRUE(attempts[5]["verdict"].is_null());
  EXPECT_TRUE(attempts[5]["verdict_at_ms"].is_null());
  EXPECT_EQ(attempts[5]["verdict_tags"], nlohmann::json::array());
  const std::string by_attempt = RenderAttemptsTable(view->run, view->attempts);
  EXPECT_THAT(by_attempt, HasSubstr("verdict needs-changes by ana"));
}

TEST_F(VerdictReportTest, NoVerdictNoReviewBarGapBlock) {
  Add("a", true, false, {"scope-creep"});
  Store();
  auto view = LoadRun(*store_, "r1");
  ASSERT_TRUE(view) << view.error().ToString();
  auto rows = Summarize(view->run, view->attempts, view->contained_files);
  const std::string table = RenderTable(rows);
  EXPECT_THAT(table, Not(HasSubstr("review-bar gap")));
  EXPECT_THAT(table, HasSubstr("scope-creep 1"));
  EXPECT_THAT(table, Not(HasSubstr("by people")));
}

}  // namespace
}  // namespace crucible::report
