// Listing runs, the agent x task matrix and the CSVs (report/drill.h): from
// constructed attempts, and runs stored in a real RocksDB store.
#include "report/drill.h"

#include <algorithm>
#include <sstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "base/fs.h"
#include "tests/report/store_fixture.h"

namespace crucible::report {
namespace {

using fixture::Scored;
using ::testing::HasSubstr;
using ::testing::StartsWith;

std::vector<std::string> Lines(const std::string& text, const char* end = "\n") {
  std::vector<std::string> out;
  size_t pos = 0;
  const std::string sep = end;
  while (pos < text.size()) {
    size_t next = text.find(sep, pos);
    if (next == std::string::npos) next = text.size();
    out.push_back(text.substr(pos, next - pos));
    pos = next + sep.size();
  }
  return out;
}

class MatrixTest : public ::testing::Test {
 protected:
  void SetUp() override {
    run_.set_id("r1");
    run_.set_suite("s");
    run_.set_samples(2);
    run_.add_agents()->set_name("a");
    run_.add_agents()->set_name("b");
    // Task-major, then agent, then sample, as runs number their attempts.
    Add("t-1", "a", 0, Scored(true, true));
    Add("t-1", "a", 1, Scored(true, false));
    Add("t-1", "b", 0, std::nullopt, v1::Attempt::FAILED);
    Add("t-1", "b", 1, std::nullopt, v1::Attempt::QUEUED);
    v1::Score failed = Scored(false, false);
    failed.set_reason("2 of 3 FAIL_TO_PASS tests fail: \"test_x\", test_y");
    Add("t-2", "a", 0, failed);
    Add("t-2", "a", 1, Scored(false, false));
    Add("t-2", "b", 0, Scored(true, true));
    Add("t-2", "b", 1, Scored(true, true));
  }

  void Add(const std::string& task, const std::string& agent, int sample,
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
  }

  v1::Run run_;
  std::vector<AttemptView> views_;
};

TEST_F(MatrixTest, OutcomeSymbols) {
  EXPECT_EQ(OutcomeSymbol(views_[0]), 'S');
  EXPECT_EQ(OutcomeSymbol(views_[1]), 'L');
  EXPECT_EQ(OutcomeSymbol(views_[2]), '!');
  EXPECT_EQ(OutcomeSymbol(views_[3]), '.');
  EXPECT_EQ(OutcomeSymbol(views_[4]), 'x');
  EXPECT_EQ(OutcomeName(views_[1]), "loose");
  EXPECT_EQ(OutcomeName(views_[3]), "unfinished");
  EXPECT_EQ(AttemptRef(views_[5].attempt), "r1/5");
}

TEST_F(MatrixTest, TableHasOneLinePerTaskACellPerAgentAndALegend) {
  const std::string table = RenderTaskMatrix(run_, views_);
  auto lines = Lines(table);
  ASSERT_GE(lines.size(), 4u) << table;
  EXPECT_THAT(lines[0], StartsWith("task")) << table;
  EXPECT_THAT(lines[0], HasSubstr("a")) << table;
  EXPECT_THAT(lines[1], StartsWith("t-1")) << table;
  EXPECT_THAT(lines[1], HasSubstr("SL")) << table;
  EXPECT_THAT(lines[1], HasSubstr("!.")) << table;
  EXPECT_THAT(lines[1], HasSubstr("r1/0-3")) << table;  // the row's attempts
  EXPECT_THAT(lines[2], StartsWith("t-2")) << table;
  EXPECT_THAT(lines[2], HasSubstr("xx")) << table;
  EXPECT_THAT(lines[2], HasSubstr("SS")) << table;
  EXPECT_THAT(table, HasSubstr("S strict")) << table;
  EXPECT_THAT(table, HasSubstr("L loose only")) << table;
  EXPECT_THAT(table, HasSubstr("! infrastructure")) << table;
  EXPECT_THAT(table, HasSubstr("crucible show r1/N")) << table;
}

TEST_F(MatrixTest, JsonNamesEveryCellsAttempts) {
  auto json = nlohmann::json::parse(RenderTaskMatrixJson(run_, views_));
  ASSERT_EQ(json["tasks"].size(), 2u) << json.dump();
  EXPECT_EQ(json["tasks"][0]["task"], "t-1");
  const auto& cell = json["tasks"][0]["agents"]["b"];
  ASSERT_EQ(cell.size(), 2u) << json.dump();
  EXPECT_EQ(cell[0]["attempt_id"], "r1/2");
  EXPECT_EQ(cell[0]["sample"], 0);
  EXPECT_EQ(cell[0]["outcome"], "infra");
  EXPECT_EQ(cell[1]["outcome"], "unfinished");
  EXPECT_EQ(json["tasks"][1]["agents"]["a"][0]["outcome"], "failed");
}

TEST_F(MatrixTest, AttemptsCsvQuotesAsRfc4180AndOrdersByTask) {
  // Attempt order differs from task order: t-2 first.
  std::rotate(views_.begin(), views_.begin() + 4, views_.end());
  const std::string by_attempt = RenderAttemptsCsv(run_, views_, false);
  auto lines = Lines(by_attempt, "\r\n");
  ASSERT_EQ(lines.size(), 9u) << by_attempt;
  EXPECT_THAT(lines[0], StartsWith("run,attempt_id,task,agent,sample,state,outcome,"));
  EXPECT_THAT(lines[1], StartsWith("r1,r1/4,t-2,a,0,DONE,failed,"));
  EXPECT_THAT(by_attempt, HasSubstr("\"2 of 3 FAIL_TO_PASS tests fail: \"\"test_x\"\", test_y\""));
  const std::string by_task = RenderAttemptsCsv(run_, views_, true);
  lines = Lines(by_task, "\r\n");
  ASSERT_EQ(lines.size(), 9u) << by_task;
  EXPECT_THAT(lines[1], StartsWith("r1,r1/4,t-2,a,0,"));
  EXPECT_THAT(lines[3], StartsWith("r1,r1/6,t-2,b,0,"));
  EXPECT_THAT(lines[5], StartsWith("r1,r1/0,t-1,a,0,"));
}

TEST_F(MatrixTest, AgentsCsvHasAHeaderAndARowPerAgentWithIntervals) {
  const std::string csv = RenderAgentsCsv(run_, Summarize(run_, views_));
  auto lines = Lines(csv, "\r\n");
  ASSERT_EQ(lines.size(), 3u) << csv;
  EXPECT_THAT(lines[0], StartsWith("run,suite,agent,attempts,"));
  EXPECT_THAT(lines[0], HasSubstr("completion_rate,completion_rate_low,completion_rate_high"));
  EXPECT_THAT(lines[1], StartsWith("r1,s,a,4,"));
  EXPECT_THAT(lines[2], StartsWith("r1,s,b,4,"));
}

class RunsListingTest : public fixture::StoreTest {
 protected:
  void SetUp() override {
    StoreTest::SetUp();
    if (HasFatalFailure()) return;
    for (const char* suite : {"s", "s2"}) {
      v1::Suite s;
      s.set_name(suite);
      v1::GoldenTask task;
      task.set_id("t-1");
      task.add_fail_to_pass("tests::t");
      ASSERT_TRUE(store_->PutSuite(s, {task}));
    }
  }

  // A run of `suite` created at `created_ms` with one attempt per agent, the
  // first `finished` of them finished (strict completions).
  void AddRun(const std::string& id, const std::string& suite, int64_t created_ms,
              const std::vector<std::string>& agents, size_t finished, v1::Run::State state) {
    v1::Run run;
    run.set_id(id);
    run.set_suite(suite);
    run.set_samples(1);
    run.set_created_at_ms(created_ms);
    run.set_state(state);
    run.set_attempt_count(static_cast<int>(agents.size()));
    std::vector<v1::Attempt> attempts;
    for (const auto& agent : agents) {
      run.add_agents()->set_name(agent);
      v1::Attempt a;
      a.set_run_id(id);
      a.set_number(attempts.size());
      a.set_task_id("t-1");
      a.set_agent(agent);
      a.set_state(v1::Attempt::QUEUED);
      attempts.push_back(a);
    }
    ASSERT_TRUE(store_->CreateRun(run, attempts));
    for (size_t i = 0; i < finished; ++i) {
      attempts[i].set_state(v1::Attempt::DONE);
      ASSERT_TRUE(store_->FinishAttempt(attempts[i], v1::Evidence(), Scored(true, true)));
    }
  }
};

TEST_F(RunsListingTest, EmptyDatabaseSaysSo) {
  auto runs = ListRunListings(*store_, "", 0);
  ASSERT_TRUE(runs) << runs.error().ToString();
  EXPECT_TRUE(runs->empty());
  EXPECT_EQ(RenderRunsTable(*runs, "no runs in the database"), "no runs in the database\n");
  EXPECT_EQ(nlohmann::json::parse(RenderRunsJson(*runs)), nlohmann::json::array());
}

TEST_F(RunsListingTest, NewestFirstWithSuiteFilterLimitAndHeadlineNumbers) {
  AddRun("r-old", "s", 1'700'000'000'000, {"oracle", "noop"}, 2, v1::Run::FINISHED);
  AddRun("r-new", "s", 1'800'000'000'000, {"oracle"}, 0, v1::Run::RUNNING);
  AddRun("r-other", "s2", 1'750'000'000'000, {"oracle"}, 1, v1::Run::FINISHED);
  auto runs = ListRunListings(*store_, "", 0);
  ASSERT_TRUE(runs) << runs.error().ToString();
  ASSERT_EQ(runs->size(), 3u);
  EXPECT_EQ((*runs)[0].run.id(), "r-new");
  EXPECT_EQ((*runs)[1].run.id(), "r-other");
  EXPECT_EQ((*runs)[2].run.id(), "r-old");
  EXPECT_EQ((*runs)[2].finished, 2);
  EXPECT_EQ((*runs)[2].attempts, 2);

  auto of_s = ListRunListings(*store_, "s", 1);
  ASSERT_TRUE(of_s);
  ASSERT_EQ(of_s->size(), 1u);
  EXPECT_EQ((*of_s)[0].run.id(), "r-new");

  const std::string table = RenderRunsTable(*runs, "");
  EXPECT_THAT(table, HasSubstr("2023-11-14T22:13:20Z")) << table;  // 1.7e12 ms
  EXPECT_THAT(table, HasSubstr("running")) << table;
  EXPECT_THAT(table, HasSubstr("0/1")) << table;
  EXPECT_THAT(table, HasSubstr("2/2")) << table;
  EXPECT_THAT(table, HasSubstr("100.0% [21-100]")) << table;
  EXPECT_THAT(table, HasSubstr("no finished attempts")) << table;
  auto lines = Lines(table);
  const auto old_line = std::find_if(lines.begin(), lines.end(),
                                     [](const std::string& l) { return l.starts_with("r-old"); });
  ASSERT_NE(old_line, lines.end()) << table;
  EXPECT_THAT(*old_line, HasSubstr("oracle"));
  EXPECT_THAT(*(old_line + 1), HasSubstr("noop"));
  EXPECT_THAT(*(old_line + 1), ::testing::Not(HasSubstr("r-old")));

  auto json = nlohmann::json::parse(RenderRunsJson(*runs));
  ASSERT_EQ(json.size(), 3u);
  EXPECT_EQ(json[2]["run"], "r-old");
  EXPECT_EQ(json[2]["created"], "2023-11-14T22:13:20Z");
  EXPECT_EQ(json[2]["state"], "finished");
  EXPECT_EQ(json[2]["agents"][1]["agent"], "noop");
  EXPECT_EQ(json[2]["agents"][1]["strict_completion_rate"], 1.0);
  EXPECT_TRUE(json[2]["agents"][1]["strict_completion_rate_ci"].is_array());

  auto csv = Lines(RenderRunsCsv(*runs), "\r\n");
  ASSERT_EQ(csv.size(), 5u);  // header + 4 agents
  EXPECT_THAT(csv[0], StartsWith("run,created,suite,state,attempts,finished,agent,"));
}

}  // namespace
}  // namespace crucible::report
