// Tokens and cost in `crucible report`, from evidence with known usage stored
// in a real RocksDB store: per agent (table and JSON) and per attempt.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "base/fs.h"
#include "report/report.h"
#include "storage/store.h"
#include "tests/report/store_fixture.h"
#include "tests/support/run_command.h"

namespace crucible::report {
namespace {

using ::testing::HasSubstr;
using testing::Quote;

v1::Usage MakeUsage(uint64_t in, uint64_t out, uint64_t cached, double cost, const char* source,
                    uint32_t calls) {
  v1::Usage u;
  u.set_tokens_in(in);
  u.set_tokens_out(out);
  u.set_tokens_cached(cached);
  u.set_cost_usd(cost);
  u.set_cost_source(source);
  u.set_llm_calls(calls);
  u.add_models("claude-sonnet-4-5");
  return u;
}

class UsageReportTest : public fixture::StoreTest {
 protected:
  void SetUp() override {
    StoreTest::SetUp();
    if (HasFatalFailure()) return;
    v1::Suite suite;
    suite.set_name("s");
    v1::GoldenTask task;
    task.set_id("t-1");
    task.add_fail_to_pass("tests::t");
    ASSERT_TRUE(store_->PutSuite(suite, {task}));
    run_.set_id("r1");
    run_.set_suite("s");
    for (const char* name : {"paid", "partly", "unknown"}) run_.add_agents()->set_name(name);
  }

  // An attempt of `agent`, finished, strict completion or not, with `usage`.
  void Add(const std::string& agent, bool strict, std::optional<v1::Usage> usage) {
    v1::Attempt a;
    a.set_run_id("r1");
    a.set_number(finished_.size());
    a.set_task_id("t-1");
    a.set_agent(agent);
    a.set_state(v1::Attempt::DONE);
    v1::Evidence e;
    if (usage) *e.mutable_usage() = *usage;
    v1::Score s;
    s.set_scoring_version(2);
    s.set_completed(strict);
    s.set_strict_completed(strict);
    s.set_merge_ready_round(strict ? 1 : 0);
    finished_.push_back({a, e, s});
  }

  void Store() {
    std::vector<v1::Attempt> queued;
    for (const auto& f : finished_) {
      queued.push_back(f.attempt);
      queued.back().set_state(v1::Attempt::QUEUED);
    }
    run_.set_attempt_count(static_cast<int>(queued.size()));
    ASSERT_TRUE(store_->CreateRun(run_, queued));
    for (const auto& f : finished_) {
      ASSERT_TRUE(store_->FinishAttempt(f.attempt, f.evidence, f.score));
    }
  }

  v1::Run run_;
  struct Finished {
    v1::Attempt attempt;
    v1::Evidence evidence;
    v1::Score score;
  };
  std::vector<Finished> finished_;
};

TEST_F(UsageReportTest, CostAndTokensPerAgentAndPerStrictCompletion) {
  // paid: 3 attempts, 2 strict completions, $0.30 + $0.50 + $0.20.
  Add("paid", true, MakeUsage(1000, 200, 600, 0.30, "agent", 2));
  Add("paid", true, MakeUsage(2000, 300, 0, 0.50, "price_table", 3));
  Add("paid", false, MakeUsage(500, 100, 100, 0.20, "agent", 1));
  // partly: one call of a model without a price; no strict completion.
  Add("partly", false, MakeUsage(4000, 400, 0, 0.05, "partial", 2));
  // unknown: no LLM call seen (a builtin, or an agent without telemetry).
  Add("unknown", true, std::nullopt);
  Add("unknown", false, v1::Usage());
  Store();

  auto view = LoadRun(*store_, "r1");
  ASSERT_TRUE(view) << view.error().ToString();
  ASSERT_TRUE(view->attempts[0].usage.has_value());
  auto rows = Summarize(view->run, view->attempts, view->contained_files);
  ASSERT_EQ(rows.size(), 3u);
  const AgentRow& paid = rows[0];
  EXPECT_EQ(paid.tokens_in, 3500u);
  EXPECT_EQ(paid.tokens_out, 600u);
  EXPECT_EQ(paid.tokens_cached, 700u);
  EXPECT_EQ(paid.llm_calls, 6u);
  ASSERT_TRUE(paid.cost_usd.has_value());
  EXPECT_NEAR(*paid.cost_usd, 1.00, 1e-9);
  ASSERT_TRUE(paid.cost_per_completion_usd.has_value());
  EXPECT_NEAR(*paid.cost_per_completion_usd, 0.50, 1e-9);  // $1.00 / 2 strict completions
  EXPECT_EQ(paid.cost_partial_attempts, 0);
  const AgentRow& partly = rows[1];
  EXPECT_NEAR(partly.cost_usd.value_or(-1), 0.05, 1e-9);
  EXPECT_EQ(partly.cost_partial_attempts, 1);
  EXPECT_FALSE(partly.cost_per_completion_usd.has_value());  // no strict completion
  const AgentRow& unknown = rows[2];
  EXPECT_FALSE(unknown.cost_usd.has_value());
  EXPECT_FALSE(unknown.cost_per_completion_usd.has_value());
  EXPECT_EQ(unknown.tokens_in, 0u);

  auto json = nlohmann::json::parse(RenderJson(view->run, rows));
  EXPECT_NEAR(json[0]["cost_usd"].get<double>(), 1.0, 1e-9);
  EXPECT_EQ(json[0]["tokens_in"], 3500);
  EXPECT_EQ(json[0]["tokens_out"], 600);
  EXPECT_EQ(json[0]["tokens_cached"], 700);
  EXPECT_NEAR(json[0]["cost_per_completion_usd"].get<double>(), 0.5, 1e-9);
  EXPECT_EQ(json[1]["cost_partial_attempts"], 1);
  EXPECT_TRUE(json[1]["cost_per_completion_usd"].is_null());
  EXPECT_TRUE(json[2]["cost_usd"].is_null());
  EXPECT_TRUE(json[2]["cost_per_completion_usd"].is_null());

  const std::string table = RenderTable(rows);
  EXPECT_THAT(table, HasSubstr("tokens and cost"));
  EXPECT_THAT(table, HasSubstr("$1.00"));
  EXPECT_THAT(table, HasSubstr("$0.5000"));
  EXPECT_THAT(table, HasSubstr("$0.0500*"));  // partial
  EXPECT_THAT(table, HasSubstr("$—"));        // unknown

  auto attempts = nlohmann::json::parse(RenderAttemptsJson(view->run, view->attempts));
  ASSERT_EQ(attempts.size(), 6u);
  EXPECT_NEAR(attempts[0]["cost_usd"].get<double>(), 0.30, 1e-9);
  EXPECT_EQ(attempts[0]["cost_source"], "agent");
  EXPECT_EQ(attempts[0]["tokens_in"], 1000);
  EXPECT_EQ(attempts[0]["tokens_cached"], 600);
  EXPECT_EQ(attempts[3]["cost_source"], "partial");
  EXPECT_TRUE(attempts[4]["cost_usd"].is_null());  // no usage at all
  EXPECT_TRUE(attempts[5]["cost_usd"].is_null());  // no LLM call
  const std::string by_attempt = RenderAttemptsTable(view->run, view->attempts);
  EXPECT_THAT(by_attempt, HasSubstr("$0.3000"));
  EXPECT_THAT(by_attempt, HasSubstr("$0.0500*"));

  // And through the binary, on the same database.
  store_.reset();
  auto out = testing::Sh(std::string(CRUCIBLE_BIN) + " report r1 --format json --db " + Quote(db_));
  ASSERT_EQ(out.status, 0) << out.text;
  auto cli = nlohmann::json::parse(out.text);
  EXPECT_NEAR(cli[0]["cost_usd"].get<double>(), 1.0, 1e-9);
  EXPECT_NEAR(cli[0]["cost_per_completion_usd"].get<double>(), 0.5, 1e-9);
  auto text = testing::Sh(std::string(CRUCIBLE_BIN) + " report r1 --db " + Quote(db_));
  ASSERT_EQ(text.status, 0) << text.text;
  EXPECT_THAT(text.text, HasSubstr("$0.0500*"));
}

}  // namespace
}  // namespace crucible::report
