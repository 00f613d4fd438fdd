// `crucible runs`, `crucible report --by task / --format csv` and
// `crucible show` through the real binary, on a store written through
// storage::Store: a run in progress with finished, failed and queued
// attempts, their evidence, scores and trace events.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "base/fs.h"
#include "storage/store.h"
#include "tests/support/run_command.h"

namespace crucible {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using testing::Quote;

class DrillCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto tmp = TempDir::Create("crucible-drill-cli-test-");
    ASSERT_TRUE(tmp);
    tmp_ = std::make_unique<TempDir>(std::move(*tmp));
    db_ = tmp_->path() + "/db";
  }

  // Suite "s" with tasks t-1 and t-2; run r1 of agents a and b, one sample:
  // t-1/a strict (with a diff and 40 trace events), t-1/b failed tests,
  // t-2/a infrastructure failure, t-2/b queued. The run is still RUNNING.
  void Populate() {
    auto opened = storage::Store::Open(db_);
    ASSERT_TRUE(opened) << opened.error().ToString();
    auto& store = *opened;
    v1::Suite suite;
    suite.set_name("s");
    std::vector<v1::GoldenTask> tasks;
    for (const char* id : {"t-1", "t-2"}) {
      v1::GoldenTask t;
      t.set_suite("s");
      t.set_id(id);
      t.set_intent(std::string("Fix the slug helper for ") + id);
      t.set_source_patch(
          "diff --git a/pkg/util.py b/pkg/util.py\n--- a/pkg/util.py\n+++ b/pkg/util.py\n"
          "@@ -1 +1 @@\n-old\n+golden\n");
      t.add_fail_to_pass("tests::test_slug");
      tasks.push_back(t);
    }
    ASSERT_TRUE(store->PutSuite(suite, tasks));
    v1::Run run;
    run.set_id("r1");
    run.set_suite("s");
    run.set_samples(1);
    run.set_created_at_ms(1'700'000'000'000);
    run.set_state(v1::Run::RUNNING);
    run.add_agents()->set_name("a");
    run.add_agents()->set_name("b");
    run.set_attempt_count(4);
    std::vector<v1::Attempt> attempts;
    for (const char* task : {"t-1", "t-2"}) {
      for (const char* agent : {"a", "b"}) {
        v1::Attempt a;
        a.set_run_id("r1");
        a.set_number(attempts.size());
        a.set_task_id(task);
        a.set_agent(agent);
        a.set_state(v1::Attempt::QUEUED);
        attempts.push_back(a);
      }
    }
    ASSERT_TRUE(store->CreateRun(run, attempts));
    auto finish = [&](size_t i, bool pass) {
      attempts[i].set_state(v1::Attempt::DONE);
      v1::Evidence e;
      e.set_final_diff(
          "diff --git a/pkg/util.py b/pkg/util.py\n--- a/pkg/util.py\n+++ b/pkg/util.py\n"
          "@@ -1 +1 @@\n-old\n+agent\n");
      auto* t = e.mutable_tests()->add_tests();
      t->set_id("tests::test_slug");
      t->set_status(pass ? v1::TestOutcome::PASSED : v1::TestOutcome::FAILED);
      v1::Score s;
      s.set_scoring_version(2);
      s.set_completed(pass);
      s.set_strict_completed(pass);
      s.set_merge_ready_round(pass ? 1 : 0);
      s.set_f2p_total(1);
      s.set_f2p_passed(pass ? 1 : 0);
      s.set_reason(pass ? "" : "tests::test_slug fails, \"as before\"");
      ASSERT_TRUE(store->FinishAttempt(attempts[i], e, s));
    };
    finish(0, true);
    finish(1, false);
    attempts[2].set_state(v1::Attempt::FAILED);
    attempts[2].set_error("runner lost");
    ASSERT_TRUE(store->UpdateAttempt(attempts[2]));
    std::vector<v1::TraceEvent> events;
    for (int i = 0; i < 40; ++i) {
      v1::TraceEvent ev;
      ev.set_ts_ns(5'000'000'000LL + i * 100'000'000LL);
      ev.set_kind("TOOL");
      ev.set_name(i == 0 ? "plan" : "read_file");
      ev.set_source("agent");
      ev.set_seq(i);
      events.push_back(ev);
    }
    ASSERT_TRUE(store->AppendEvents("r1", 0, events));
  }

  testing::CommandOutput Crucible(const std::string& args) {
    return testing::Crucible(args + " --db " + Quote(db_));
  }

  std::unique_ptr<TempDir> tmp_;
  std::string db_;
};

TEST_F(DrillCliTest, RunsOnAnEmptyDatabaseSaysSo) {
  ASSERT_TRUE(storage::Store::Open(db_));
  auto out = Crucible("runs");
  EXPECT_EQ(out.status, 0) << out.text;
  EXPECT_THAT(out.text, HasSubstr("no runs in the database")) << out.text;
  out = Crucible("runs --suite nope");
  EXPECT_NE(out.status, 0) << out.text;
  EXPECT_THAT(out.text, HasSubstr("nope")) << out.text;
}

TEST_F(DrillCliTest, RunsListsTheRunInEveryFormat) {
  Populate();
  auto table = Crucible("runs");
  ASSERT_EQ(table.status, 0) << table.text;
  EXPECT_THAT(table.text, HasSubstr("r1")) << table.text;
  EXPECT_THAT(table.text, HasSubstr("2023-11-14T22:13:20Z")) << table.text;
  EXPECT_THAT(table.text, HasSubstr("running")) << table.text;
  EXPECT_THAT(table.text, HasSubstr("3/4")) << table.text;
  auto json = Crucible("runs --format json --suite s --limit 5");
  ASSERT_EQ(json.status, 0) << json.text;
  auto parsed = nlohmann::json::parse(json.text);
  ASSERT_EQ(parsed.size(), 1u);
  EXPECT_EQ(parsed[0]["agents"][0]["strict_completion_rate"], 0.5);
  auto csv = Crucible("runs --format csv");
  ASSERT_EQ(csv.status, 0) << csv.text;
  EXPECT_THAT(csv.text, HasSubstr("run,created,suite,state,attempts,finished,agent,"));
  EXPECT_THAT(csv.text, HasSubstr("\r\nr1,2023-11-14T22:13:20Z,s,running,4,3,a,"));
}

TEST_F(DrillCliTest, ReportSaysTheRunIsInProgressAndDrillsDownByTask) {
  Populate();
  auto table = Crucible("report r1");
  ASSERT_EQ(table.status, 0) << table.text;
  EXPECT_THAT(table.text,
              HasSubstr("run in progress: 3 of 4 attempts finished; the numbers cover those"));
  EXPECT_THAT(table.text, HasSubstr("50.0% [9-91]")) << table.text;  // Wilson 1 of 2

  auto matrix = Crucible("report r1 --by task");
  ASSERT_EQ(matrix.status, 0) << matrix.text;
  EXPECT_THAT(matrix.text, HasSubstr("t-1    S  x  r1/0-1")) << matrix.text;
  EXPECT_THAT(matrix.text, HasSubstr("t-2    !  .  r1/2-3")) << matrix.text;
  auto json = Crucible("report r1 --by task --format json");
  ASSERT_EQ(json.status, 0) << json.text;
  auto parsed = nlohmann::json::parse(json.text);
  EXPECT_EQ(parsed["tasks"][1]["agents"]["b"][0]["attempt_id"], "r1/3");
  auto csv = Crucible("report r1 --by task --format csv");
  ASSERT_EQ(csv.status, 0) << csv.text;
  EXPECT_THAT(csv.text, HasSubstr("r1,r1/1,t-1,b,0,DONE,failed,"));
  EXPECT_THAT(csv.text, HasSubstr(",\"tests::test_slug fails, \"\"as before\"\"\"\r\n"));

  auto agents = Crucible("report r1 --format csv");
  ASSERT_EQ(agents.status, 0) << agents.text;
  EXPECT_THAT(agents.text, HasSubstr("run,suite,agent,attempts,"));
  auto attempts = Crucible("report r1 --by attempt --format csv");
  ASSERT_EQ(attempts.status, 0) << attempts.text;
  EXPECT_THAT(attempts.text, HasSubstr("r1,r1/2,t-2,a,0,FAILED,infra,"));
  auto by_attempt = Crucible("report r1 --by attempt");
  EXPECT_THAT(by_attempt.text, HasSubstr("\nr1/3 ")) << by_attempt.text;
}

TEST_F(DrillCliTest, ShowPrintsAnAttempt) {
  Populate();
  auto out = Crucible("show r1/0 --width 100 --trace-ends 5");
  ASSERT_EQ(out.status, 0) << out.text;
  EXPECT_THAT(out.text, HasSubstr("attempt r1/0  DONE  agent a  task t-1"));
  EXPECT_THAT(out.text, HasSubstr("Fix the slug helper for t-1"));
  EXPECT_THAT(out.text, HasSubstr("pass    FAIL_TO_PASS tests::test_slug"));
  EXPECT_THAT(out.text, HasSubstr("+agent"));
  EXPECT_THAT(out.text, HasSubstr("+golden"));
  EXPECT_THAT(out.text, HasSubstr("trace: 40 events"));
  EXPECT_THAT(out.text, HasSubstr("... 30 events ..."));
  auto json = Crucible("show r1:1 --format json");
  ASSERT_EQ(json.status, 0) << json.text;
  EXPECT_EQ(nlohmann::json::parse(json.text)["attempt_id"], "r1/1");
  auto queued = Crucible("show r1/3");
  ASSERT_EQ(queued.status, 0) << queued.text;
  EXPECT_THAT(queued.text, HasSubstr("still running (QUEUED)"));
}

TEST_F(DrillCliTest, ShowNamesWhatIsWrongWithItsArgument) {
  Populate();
  auto bad = Crucible("show r1");
  EXPECT_EQ(bad.status, 1) << bad.text;
  EXPECT_THAT(bad.text, HasSubstr("attempt 'r1': expected RUN/NUMBER")) << bad.text;
  auto unknown = Crucible("show nope/0");
  EXPECT_EQ(unknown.status, 1) << unknown.text;
  EXPECT_THAT(unknown.text, HasSubstr("run 'nope' not found")) << unknown.text;
  auto range = Crucible("show r1/9");
  EXPECT_EQ(range.status, 1) << range.text;
  EXPECT_THAT(range.text, HasSubstr("the run has 4 attempts, 0 to 3")) << range.text;
}

}  // namespace
}  // namespace crucible
