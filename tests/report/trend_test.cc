// `crucible report --suite S --trend`: each agent's headline metrics per run
// of a suite, oldest first, from a real RocksDB store.
#include "report/trend.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "base/fs.h"
#include "storage/store.h"
#include "tests/report/store_fixture.h"
#include "tests/support/run_command.h"

namespace crucible::report {
namespace {

using ::testing::HasSubstr;
using testing::Quote;

class TrendTest : public fixture::StoreTest {
 protected:
  void SetUp() override {
    StoreTest::SetUp();
    if (HasFatalFailure()) return;
    for (const char* name : {"nightly", "empty"}) {
      v1::Suite suite;
      suite.set_name(name);
      v1::GoldenTask task;
      task.set_id("t-0");
      task.add_fail_to_pass("tests::t");
      ASSERT_TRUE(store_->PutSuite(suite, {task}));
    }
  }

  // Run `id` of suite nightly created at `created_ms`: for each agent, 10
  // attempts of which `completed[agent]` complete (strict too).
  void StoreRun(const std::string& id, int64_t created_ms,
                const std::vector<std::pair<std::string, int>>& completed,
                v1::Run::State state = v1::Run::FINISHED) {
    v1::Run run;
    run.set_id(id);
    run.set_suite("nightly");
    run.set_created_at_ms(created_ms);
    run.set_state(state);
    std::vector<v1::Attempt> attempts;
    for (const auto& [agent, n] : completed) {
      run.add_agents()->set_name(agent);
      for (int i = 0; i < 10; ++i) {
        v1::Attempt a;
        a.set_run_id(id);
        a.set_number(attempts.size());
        a.set_task_id("t-" + std::to_string(i));
        a.set_agent(agent);
        a.set_state(v1::Attempt::QUEUED);
        attempts.push_back(a);
      }
    }
    run.set_attempt_count(static_cast<int>(attempts.size()));
    ASSERT_TRUE(store_->CreateRun(run, attempts));
    for (auto a : attempts) {
      const int done = std::find_if(completed.begin(), completed.end(), [&](const auto& c) {
                         return c.first == a.agent();
                       })->second;
      const bool ok = static_cast<int>(a.number() % 10) < done;
      v1::Score s;
      s.set_scoring_version(2);
      s.set_completed(ok);
      s.set_strict_completed(ok);
      s.set_merge_ready_round(ok ? 1 : 0);
      s.set_regression_measured(true);
      s.set_regression(!ok && a.number() % 10 == 9);
      a.set_state(v1::Attempt::DONE);
      ASSERT_TRUE(store_->FinishAttempt(a, v1::Evidence(), s));
    }
  }

  void StoreNights() {
    // Stored out of order; created_at decides.
    StoreRun("night3", 3000, {{"a", 9}, {"b", 5}}, v1::Run::RUNNING);
    StoreRun("night1", 1000, {{"a", 4}, {"b", 5}});
    StoreRun("night2", 2000, {{"a", 7}});
  }
};

TEST_F(TrendTest, EachAgentPerRunOldestFirstWithIntervals) {
  StoreNights();
  auto trend = LoadTrend(*store_, "nightly");
  ASSERT_TRUE(trend) << trend.error().ToString();
  EXPECT_EQ(trend->runs_total, 3);
  ASSERT_EQ(trend->runs.size(), 3u);
  EXPECT_EQ(trend->runs[0].run_id, "night1");
  EXPECT_EQ(trend->runs[1].run_id, "night2");
  EXPECT_EQ(trend->runs[2].run_id, "night3");
  EXPECT_TRUE(trend->runs[2].running);
  EXPECT_EQ(trend->agents, (std::vector<std::string>{"a", "b"}));
  const TrendPoint& a1 = trend->runs[0].agents[0];
  EXPECT_EQ(a1.agent, "a");
  EXPECT_EQ(a1.attempts, 10);
  EXPECT_NEAR(a1.loose_rate, 0.4, 1e-12);
  // Wilson 4/10 (python3, Newcombe's formula): 0.1682 .. 0.6873.
  EXPECT_NEAR(a1.loose_ci.low, 0.1682, 1e-4);
  EXPECT_NEAR(a1.loose_ci.high, 0.6873, 1e-4);
  EXPECT_NEAR(*a1.regression_rate, 0.1, 1e-12);  // the 10th attempt of each
  EXPECT_NEAR(*a1.review_loops_mean, 1.0, 1e-12);
  EXPECT_FALSE(a1.cost_per_completion_usd);
  EXPECT_EQ(trend->runs[1].agents.size(), 1u);  // b was not in night2

  const std::string table = RenderTrendTable(*trend);
  EXPECT_THAT(table, HasSubstr("suite nightly: 3 of its 3 runs, oldest first"));
  EXPECT_THAT(table, HasSubstr("40.0% [17-69]"));
  EXPECT_THAT(table, HasSubstr("(running)"));
}

TEST_F(TrendTest, AgentAndLastNarrowIt) {
  StoreNights();
  auto b = LoadTrend(*store_, "nightly", {.agent = "b", .last = 0});
  ASSERT_TRUE(b) << b.error().ToString();
  ASSERT_EQ(b->runs.size(), 2u);  // the runs that have b
  EXPECT_EQ(b->runs[1].run_id, "night3");
  EXPECT_EQ(b->agents, std::vector<std::string>{"b"});
  auto last = LoadTrend(*store_, "nightly", {.agent = "", .last = 2});
  ASSERT_TRUE(last);
  ASSERT_EQ(last->runs.size(), 2u);
  EXPECT_EQ(last->runs[0].run_id, "night2");
  auto nobody = LoadTrend(*store_, "nightly", {.agent = "zed", .last = 0});
  ASSERT_FALSE(nobody);
  EXPECT_THAT(nobody.error().message(),
              HasSubstr("agent 'zed' is in no run of suite 'nightly' (its agents: a, b)"));
}

TEST_F(TrendTest, ThroughTheBinaryWithBadInput) {
  StoreNights();
  store_.reset();
  auto report = [&](const std::string& args) {
    return testing::Crucible("report " + args + " --db " + Quote(db_), std::chrono::seconds(60));
  };
  auto json = report("--suite nightly --trend --format json");
  ASSERT_EQ(json.status, 0) << json.text;
  auto j = nlohmann::json::parse(json.text);
  EXPECT_EQ(j["runs"][0]["run"], "night1");
  EXPECT_NEAR(j["runs"][2]["agents"][0]["loose_completion"].get<double>(), 0.9, 1e-12);
  EXPECT_EQ(j["runs"][0]["agents"][0]["loose_ci"].size(), 2u);

  auto csv = report("--suite nightly --trend --agent a --format csv");
  ASSERT_EQ(csv.status, 0) << csv.text;
  EXPECT_EQ(csv.text.rfind("run,created_at_ms,running,agent,", 0), 0u);
  EXPECT_THAT(csv.text, HasSubstr("\r\nnight2,2000,no,a,10,10,7,7,0.7,"));

  auto table = report("--suite nightly --trend --last 1");
  ASSERT_EQ(table.status, 0) << table.text;
  EXPECT_THAT(table.text, HasSubstr("1 of its 3 runs"));

  auto unknown = report("--suite nope --trend");
  EXPECT_EQ(unknown.status, 1);
  EXPECT_THAT(unknown.text, HasSubstr("suite 'nope' not found"));
  auto empty = report("--suite empty --trend");
  EXPECT_EQ(empty.status, 1);
  EXPECT_THAT(empty.text, HasSubstr("suite 'empty' has no runs yet"));
  auto half = report("--suite nightly");
  EXPECT_EQ(half.status, 1);
  EXPECT_THAT(half.text, HasSubstr("give a RUN, or --suite S --trend (--agent"));
  auto both = report("night1 --suite nightly --trend");
  EXPECT_EQ(both.status, 1);
  EXPECT_THAT(both.text, HasSubstr("not both"));
  auto neither = report("");
  EXPECT_EQ(neither.status, 1);
  EXPECT_THAT(neither.text, HasSubstr("give a RUN"));
  // The per-run report still works.
  auto run = report("night1");
  EXPECT_EQ(run.status, 0) << run.text;
}

}  // namespace
}  // namespace crucible::report
