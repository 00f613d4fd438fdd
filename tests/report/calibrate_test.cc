// The calibration matrix (report/calibrate.h) of hand-built calibration runs
// in a real RocksDB store: what passes, each way it fails, crossed wires, n/a
// tasks, unfinished attempts, a switched-off check, the JSON and the stored
// per-task status.
#include "report/calibrate.h"

#include <algorithm>
#include <map>

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "base/fs.h"
#include "protocol/golden_task.h"
#include "scoring/calibration.h"
#include "tests/support/run_command.h"

namespace crucible::report {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

v1::Dimension* MutableDimension(v1::Score& s, const std::string& name) {
  auto* d = s.mutable_dimensions();
  if (name == "replay") return d->mutable_replay();
  if (name == "tool_calls") return d->mutable_tool_calls();
  if (name == "coherence") return d->mutable_coherence();
  if (name == "plan") return d->mutable_plan();
  if (name == "rollback") return d->mutable_rollback();
  return nullptr;
}

// The score of an agent caught by exactly the columns meant for it: the
// oracle's clean one, with each meant column made to catch.
v1::Score Ideal(const scoring::Expectation& e) {
  v1::Score s;
  s.set_scoring_version(2);
  s.set_completed(true);
  s.set_strict_completed(true);
  s.set_merge_ready_round(1);
  s.set_rounds(1);
  s.set_rounds_allowed(1);
  s.set_regression_measured(true);
  for (const char* d : {"replay", "tool_calls", "coherence", "plan", "rollback"}) {
    MutableDimension(s, d)->set_measured(true);
    MutableDimension(s, d)->set_value(1.0);
  }
  for (const auto& column : e.meant) {
    if (column == "completion") {
      s.set_completed(false);
      s.set_strict_completed(false);
      s.set_merge_ready_round(0);
      s.set_regression_measured(false);
      s.set_reason("1 of 1 FAIL_TO_PASS tests fail: tests::t");
    } else if (column == "strict") {
      s.set_strict_completed(false);
      s.set_merge_ready_round(0);
    } else if (column == "regression") {
      s.set_regression(true);
    } else if (auto* d = MutableDimension(s, column)) {
      d->set_value(0.5);
    } else {
      auto* v = s.add_violations();
      v->set_kind(column);
      v->set_file("src/lib.py");
      v->set_detail("a " + column + " violation");
      if (column == "out_of_scope") s.set_out_of_scope(true);
    }
  }
  return s;
}

class CalibrateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto tmp = TempDir::Create("crucible-calibrate-test-");
    ASSERT_TRUE(tmp);
    tmp_ = std::make_unique<TempDir>(std::move(*tmp));
    auto store = storage::Store::Open(tmp_->path() + "/db");
    ASSERT_TRUE(store) << store.error().ToString();
    store_ = std::move(*store);
    v1::Suite suite;
    suite.set_name("s");
    std::vector<v1::GoldenTask> tasks;
    for (const char* id : {"t1", "t2", "t3", "t9"}) {
      v1::GoldenTask t;
      t.set_id(id);
      t.add_fail_to_pass("tests::t");
      if (std::string(id) == "t9") {
        // Not in the run: its earlier status stays.
        t.mutable_calibration()->set_run_id("older");
        t.mutable_calibration()->set_status("calibrated");
      }
      tasks.push_back(t);
    }
    ASSERT_TRUE(store_->PutSuite(suite, tasks));
    for (const auto& task : tasks_) {
      for (const auto& e : scoring::Expectations()) {
        scores_[{task, e.agent}] = Ideal(e);
        v1::Evidence ev;
        if (e.agent.starts_with("mutant-")) {
          ev.mutable_mutation()->set_kind(e.agent.substr(7));
          ev.mutable_mutation()->set_applicable(true);
        }
        evidence_[{task, e.agent}] = ev;
      }
    }
    // The regression mutant finds nothing to break on t2.
    auto& na = evidence_[{"t2", "mutant-silent-regression"}];
    na.mutable_mutation()->set_applicable(false);
    na.mutable_mutation()->set_reason("no out-of-scope mutation broke a test in 40 candidates");
    scores_[{"t2", "mutant-silent-regression"}] = Ideal(scoring::Expectations()[0]);
  }

  // Stores run "cal" with the scores and evidence as they are now;
  // `unfinished` attempts are left infra-failed with `error`.
  void StoreRun(const std::string& id = "cal",
                const std::set<std::pair<std::string, std::string>>& unfinished = {},
                const std::vector<v1::AgentSpec>& agents = CalibrationAgents()) {
    v1::Run run;
    run.set_id(id);
    run.set_suite("s");
    run.set_samples(1);
    run.set_state(v1::Run::FINISHED);
    for (const auto& a : agents) *run.add_agents() = a;
    std::vector<v1::Attempt> attempts;
    for (const auto& task : tasks_) {
      for (const auto& a : agents) {
        v1::Attempt at;
        at.set_run_id(id);
        at.set_number(attempts.size());
        at.set_task_id(task);
        at.set_agent(a.name());
        at.set_state(v1::Attempt::QUEUED);
        attempts.push_back(at);
      }
    }
    run.set_attempt_count(static_cast<int>(attempts.size()));
    ASSERT_TRUE(store_->CreateRun(run, attempts));
    for (auto& at : attempts) {
      std::pair<std::string, std::string> key{at.task_id(), at.agent()};
      if (unfinished.contains(key)) {
        at.set_state(v1::Attempt::FAILED);
        at.set_error("sandbox died");
        ASSERT_TRUE(store_->UpdateAttempt(at));
        continue;
      }
      at.set_state(v1::Attempt::DONE);
      ASSERT_TRUE(store_->FinishAttempt(at, evidence_[key], scores_[key]));
    }
  }

  Calibration Run(const CalibrateOptions& options = {}) {
    auto cal = Calibrate(*store_, "cal", options);
    EXPECT_TRUE(cal) << cal.error().ToString();
    return cal ? *cal : Calibration{};
  }

  static const CalibrationRow& Row(const Calibration& cal, const std::string& agent) {
    for (const auto& r : cal.rows) {
      if (r.agent == agent) return r;
    }
    ADD_FAILURE() << "no row " << agent;
    return cal.rows.front();
  }

  static const CalibrationCell& Cell(const CalibrationRow& row, const std::string& column) {
    const auto& columns = CalibrationColumns();
    return row.cells[std::find(columns.begin(), columns.end(), column) - columns.begin()];
  }

  static std::string Whats(const std::vector<CalibrationProblem>& problems) {
    std::string out;
    for (const auto& p : problems) out += p.what + "\n";
    return out;
  }

  std::unique_ptr<TempDir> tmp_;
  storage::StorePtr store_;
  std::vector<std::string> tasks_ = {"t1", "t2", "t3"};
  std::map<std::pair<std::string, std::string>, v1::Score> scores_;
  std::map<std::pair<std::string, std::string>, v1::Evidence> evidence_;
};

TEST_F(CalibrateTest, EveryMutantCaughtPasses) {
  StoreRun();
  Calibration cal = Run();
  EXPECT_TRUE(cal.ok()) << Whats(cal.failures);
  EXPECT_TRUE(cal.failures.empty());
  EXPECT_TRUE(cal.crossed.empty()) << Whats(cal.crossed);
  EXPECT_THAT(cal.tasks, ElementsAre("t1", "t2", "t3"));
  ASSERT_EQ(cal.rows.size(), scoring::Expectations().size());
  const auto& reformat = Row(cal, "mutant-reformat");
  EXPECT_EQ(Cell(reformat, "reformat").caught, 3);
  EXPECT_EQ(Cell(reformat, "reformat").measured, 3);
  EXPECT_EQ(Cell(reformat, "out_of_scope").caught, 0);
  const auto& oracle = Row(cal, "oracle");
  EXPECT_EQ(Cell(oracle, "strict").caught, 0);
  EXPECT_EQ(Cell(oracle, "strict").measured, 3);
  std::string table = RenderCalibrationTable(cal);
  EXPECT_THAT(table, HasSubstr("calibration passed"));
  EXPECT_THAT(table, HasSubstr("3/3*"));  // a meant column, full
  for (const auto& [task, tc] : cal.per_task) {
    EXPECT_EQ(tc.status(), "calibrated") << task;
    EXPECT_EQ(tc.run_id(), "cal");
    EXPECT_EQ(tc.entries_size(), static_cast<int>(scoring::Expectations().size()));
  }
}

TEST_F(CalibrateTest, NotApplicableTasksAreLeftOutOfN) {
  StoreRun();
  Calibration cal = Run();
  const auto& row = Row(cal, "mutant-silent-regression");
  EXPECT_EQ(row.applicable, 2);
  ASSERT_EQ(row.not_applicable.size(), 1u);
  EXPECT_EQ(row.not_applicable[0].first, "t2");
  EXPECT_THAT(row.not_applicable[0].second, HasSubstr("40 candidates"));
  // t2's clean golden patch would have "escaped" regression: it is n/a instead.
  EXPECT_EQ(Cell(row, "regression").caught, 2);
  EXPECT_EQ(Cell(row, "regression").measured, 2);
  EXPECT_TRUE(cal.ok()) << Whats(cal.failures);
  EXPECT_THAT(RenderCalibrationTable(cal),
              HasSubstr("mutant-silent-regression on t2: no out-of-scope mutation"));
  bool found = false;
  for (const auto& e : cal.per_task.at("t2").entries()) {
    if (e.agent() != "mutant-silent-regression") continue;
    found = true;
    EXPECT_EQ(e.outcome(), "n/a");
    EXPECT_THAT(e.detail(), HasSubstr("40 candidates"));
  }
  EXPECT_TRUE(found);
}

TEST_F(CalibrateTest, AMutantEscapingItsScoreFailsNamingAgentColumnAndTasks) {
  for (const char* t : {"t1", "t3"}) scores_[{t, "mutant-reformat"}].clear_violations();
  StoreRun();
  Calibration cal = Run();
  EXPECT_FALSE(cal.ok());
  ASSERT_EQ(cal.failures.size(), 1u) << Whats(cal.failures);
  EXPECT_EQ(cal.failures[0].agent, "mutant-reformat");
  EXPECT_EQ(cal.failures[0].column, "reformat");
  EXPECT_THAT(cal.failures[0].tasks, ElementsAre("t1", "t3"));
  EXPECT_EQ(cal.failures[0].what, "mutant-reformat escaped reformat on tasks t1, t3");
  EXPECT_EQ(Cell(Row(cal, "mutant-reformat"), "reformat").caught, 1);
  std::string table = RenderCalibrationTable(cal);
  EXPECT_THAT(table, HasSubstr("calibration FAILED"));
  EXPECT_THAT(table, HasSubstr("mutant-reformat escaped reformat on tasks t1, t3"));
  EXPECT_EQ(cal.per_task.at("t1").status(), "escapes");
  EXPECT_EQ(cal.per_task.at("t2").status(), "calibrated");
}

TEST_F(CalibrateTest, AMeantColumnNotMeasuredIsAnEscapeThatSaysSo) {
  auto* d = scores_[{"t2", "mutant-off-plan"}].mutable_dimensions()->mutable_plan();
  d->set_measured(false);
  d->set_reason("the trace has no plan");
  StoreRun();
  Calibration cal = Run();
  ASSERT_EQ(cal.failures.size(), 1u) << Whats(cal.failures);
  EXPECT_EQ(cal.failures[0].what,
            "mutant-off-plan escaped plan on tasks t2 (plan not measured on 1 of them)");
  EXPECT_EQ(Cell(Row(cal, "mutant-off-plan"), "plan").measured, 2);
  for (const auto& e : cal.per_task.at("t2").entries()) {
    if (e.agent() == "mutant-off-plan") {
      EXPECT_EQ(e.outcome(), "escaped");
      EXPECT_THAT(e.detail(), HasSubstr("the trace has no plan"));
    }
  }
}

TEST_F(CalibrateTest, TheNoopCompletingATaskFails) {
  v1::Score done = Ideal(scoring::Expectations()[0]);
  done.set_strict_completed(false);
  scores_[{"t2", "noop"}] = done;
  StoreRun();
  Calibration cal = Run();
  EXPECT_FALSE(cal.ok());
  ASSERT_EQ(cal.failures.size(), 1u) << Whats(cal.failures);
  EXPECT_EQ(cal.failures[0].agent, "noop");
  EXPECT_EQ(cal.failures[0].what, "the noop completes tasks t2");
  EXPECT_EQ(cal.per_task.at("t2").status(), "escapes");
}

TEST_F(CalibrateTest, TheOracleFlaggedByAnythingFails) {
  for (const char* t : {"t1", "t2"}) {
    scores_[{t, "oracle"}].set_strict_completed(false);
    scores_[{t, "oracle"}].set_merge_ready_round(0);
  }
  StoreRun();
  Calibration cal = Run();
  EXPECT_FALSE(cal.ok());
  ASSERT_EQ(cal.failures.size(), 1u) << Whats(cal.failures);
  EXPECT_EQ(cal.failures[0].what, "the oracle was flagged by strict on tasks t1, t2");
  EXPECT_TRUE(cal.crossed.empty());
  for (const auto& e : cal.per_task.at("t1").entries()) {
    if (e.agent() == "oracle") {
      EXPECT_EQ(e.outcome(), "flagged");
    }
  }
}

TEST_F(CalibrateTest, ACrossedWireIsAWarningNotAFailure) {
  auto* v = scores_[{"t3", "mutant-blind"}].add_violations();
  v->set_kind("scanner");
  StoreRun();
  Calibration cal = Run();
  EXPECT_TRUE(cal.ok()) << Whats(cal.failures);
  ASSERT_EQ(cal.crossed.size(), 1u) << Whats(cal.crossed);
  EXPECT_EQ(cal.crossed[0].agent, "mutant-blind");
  EXPECT_EQ(cal.crossed[0].column, "scanner");
  EXPECT_THAT(cal.crossed[0].tasks, ElementsAre("t3"));
  EXPECT_THAT(cal.crossed[0].what, HasSubstr("not meant for it, on tasks t3"));
  EXPECT_THAT(RenderCalibrationTable(cal), HasSubstr("crossed wires"));
  for (const auto& e : cal.per_task.at("t3").entries()) {
    if (e.agent() == "mutant-blind") {
      EXPECT_EQ(e.outcome(), "caught");
      EXPECT_THAT(e.crossed(), ElementsAre("scanner"));
    }
  }
}

TEST_F(CalibrateTest, AnUnfinishedAttemptIsIncomplete) {
  StoreRun("cal", {{"t2", "mutant-secret"}});
  Calibration cal = Run();
  EXPECT_FALSE(cal.ok());
  EXPECT_TRUE(cal.failures.empty()) << Whats(cal.failures);
  ASSERT_EQ(cal.incomplete.size(), 1u);
  EXPECT_THAT(cal.incomplete[0], HasSubstr("t2 mutant-secret: sandbox died"));
  EXPECT_THAT(cal.incomplete[0], ::testing::StartsWith("cal/"));
  EXPECT_EQ(cal.per_task.at("t2").status(), "incomplete");
  EXPECT_EQ(cal.per_task.at("t1").status(), "calibrated");
  EXPECT_EQ(Cell(Row(cal, "mutant-secret"), "scanner").measured, 2);
  EXPECT_THAT(RenderCalibrationTable(cal), HasSubstr("calibration FAILED"));
}

TEST_F(CalibrateTest, SwitchingOffReformatMakesThePassingMatrixFail) {
  StoreRun();
  EXPECT_TRUE(Run().ok());
  Calibration cal = Run({.switch_off = {"reformat"}});
  EXPECT_FALSE(cal.ok());
  bool reformat = false, strict = false;
  for (const auto& f : cal.failures) {
    EXPECT_EQ(f.agent, "mutant-reformat") << f.what;
    reformat |= f.column == "reformat";
    // With its only violation dropped, strict completion is recomputed: it holds.
    strict |= f.column == "strict";
    if (f.column == "reformat") {
      EXPECT_EQ(f.what, "mutant-reformat escaped reformat on tasks t1, t2, t3");
    }
  }
  EXPECT_TRUE(reformat);
  EXPECT_TRUE(strict);
  // A dimension switched off is not measured.
  Calibration plan = Run({.switch_off = {"plan"}});
  EXPECT_EQ(Cell(Row(plan, "mutant-off-plan"), "plan").measured, 0);
  EXPECT_FALSE(plan.ok());
}

TEST_F(CalibrateTest, BadInputIsAClearError) {
  StoreRun();
  auto unknown = Calibrate(*store_, "cal", {.switch_off = {"spelling"}});
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().code(), Code::kInvalidArgument);
  EXPECT_THAT(unknown.error().message(), HasSubstr("'spelling'"));
  EXPECT_THAT(unknown.error().message(), HasSubstr("reformat"));
  EXPECT_THAT(unknown.error().message(), HasSubstr("tool_calls"));
  auto agents = CalibrationAgents();
  agents.erase(agents.begin() + 3);  // a mutant missing
  const std::string missing = agents.size() > 3 ? CalibrationAgents()[3].name() : "";
  StoreRun("plain", {}, agents);
  auto plain = Calibrate(*store_, "plain");
  ASSERT_FALSE(plain);
  EXPECT_EQ(plain.error().code(), Code::kInvalidArgument);
  EXPECT_THAT(plain.error().message(), HasSubstr("not a calibration run"));
  EXPECT_THAT(plain.error().message(), HasSubstr(missing));
  auto none = Calibrate(*store_, "nope");
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().code(), Code::kNotFound);
}

TEST_F(CalibrateTest, JsonHasTheMatrix) {
  for (const char* t : {"t1", "t3"}) scores_[{t, "mutant-reformat"}].clear_violations();
  StoreRun();
  auto j = nlohmann::json::parse(RenderCalibrationJson(Run()));
  EXPECT_EQ(j["run"], "cal");
  EXPECT_EQ(j["suite"], "s");
  EXPECT_EQ(j["tasks"], nlohmann::json({"t1", "t2", "t3"}));
  EXPECT_EQ(j["columns"].size(), 14u);
  EXPECT_EQ(j["ok"], false);
  ASSERT_EQ(j["rows"].size(), scoring::Expectations().size());
  const auto& reformat = j["rows"][3];
  EXPECT_EQ(reformat["agent"], "mutant-reformat");
  EXPECT_EQ(reformat["meant"], nlohmann::json({"reformat", "strict", "replay"}));
  EXPECT_EQ(reformat["applicable"], 3);
  EXPECT_EQ(reformat["cells"]["reformat"]["caught"], 1);
  EXPECT_EQ(reformat["cells"]["reformat"]["measured"], 3);
  EXPECT_EQ(reformat["cells"]["reformat"]["tasks"], nlohmann::json({"t2"}));
  const auto& regression = j["rows"][5];
  EXPECT_EQ(regression["agent"], "mutant-silent-regression");
  ASSERT_EQ(regression["not_applicable"].size(), 1u);
  EXPECT_EQ(regression["not_applicable"][0]["task"], "t2");
  ASSERT_EQ(j["failures"].size(), 1u);
  EXPECT_EQ(j["failures"][0]["agent"], "mutant-reformat");
  EXPECT_EQ(j["failures"][0]["column"], "reformat");
  EXPECT_EQ(j["failures"][0]["tasks"], nlohmann::json({"t1", "t3"}));
  EXPECT_THAT(j["failures"][0]["what"].get<std::string>(), HasSubstr("escaped reformat"));
  EXPECT_TRUE(j["crossed"].is_array());
  EXPECT_TRUE(j["incomplete"].is_array());
}

TEST_F(CalibrateTest, TimingSaysWhatShareOfTheRunnersTimeWentToTestRuns) {
  for (auto& [key, ev] : evidence_) {
    ev.set_wall_ms(1000);
    ev.mutable_tests()->set_wall_ms(300);
    if (key.second == "mutant-silent-regression") ev.mutable_mutation()->set_search_ms(2000);
  }
  evidence_[{"t1", "oracle"}].mutable_regression_tests()->set_wall_ms(100);
  StoreRun();
  Calibration cal = Run();
  const int attempts = 3 * static_cast<int>(CalibrationAgents().size());
  EXPECT_EQ(cal.timing.attempts, attempts);
  EXPECT_EQ(cal.timing.attempt_ms, attempts * 1000);
  EXPECT_EQ(cal.timing.search_ms, 3 * 2000);
  EXPECT_EQ(cal.timing.test_run_ms, attempts * 300 + 100 + 3 * 2000);
  auto j = nlohmann::json::parse(RenderCalibrationJson(cal));
  EXPECT_EQ(j["timing"]["test_run_ms"], cal.timing.test_run_ms);
  EXPECT_THAT(RenderCalibrationTable(cal),
              HasSubstr(fmt::format("runner time: {}.0 s in {} attempts", attempts, attempts)));
}

TEST_F(CalibrateTest, StoredStatusIsOnTheTasks) {
  for (const char* t : {"t1", "t3"}) scores_[{t, "mutant-reformat"}].clear_violations();
  StoreRun();
  Calibration cal = Run();
  ASSERT_TRUE(StoreTaskCalibration(*store_, cal));
  auto tasks = store_->ListTasks("s");
  ASSERT_TRUE(tasks);
  std::map<std::string, v1::GoldenTask> by_id;
  for (const auto& t : *tasks) by_id[t.id()] = t;
  ASSERT_EQ(by_id.size(), 4u);
  EXPECT_EQ(by_id["t1"].calibration().status(), "escapes");
  EXPECT_EQ(by_id["t1"].calibration().run_id(), "cal");
  EXPECT_GT(by_id["t1"].calibration().at_ms(), 0);
  bool escaped = false;
  for (const auto& e : by_id["t1"].calibration().entries()) {
    if (e.agent() == "mutant-reformat") {
      escaped = e.outcome() == "escaped";
      EXPECT_THAT(e.detail(), HasSubstr("reformat: no reformat violation"));
    }
  }
  EXPECT_TRUE(escaped);
  EXPECT_EQ(by_id["t2"].calibration().status(), "calibrated");
  // Not in the run: untouched, and the task's other fields survive.
  EXPECT_EQ(by_id["t9"].calibration().run_id(), "older");
  EXPECT_EQ(by_id["t1"].fail_to_pass_size(), 1);
}

TEST_F(CalibrateTest, SuiteShowPrintsEachTasksStatus) {
  for (const char* t : {"t1", "t3"}) scores_[{t, "mutant-reformat"}].clear_violations();
  StoreRun();
  ASSERT_TRUE(StoreTaskCalibration(*store_, Run()));
  store_.reset();  // the binary opens the database
  auto out = testing::Crucible("suite show s --db " + testing::Quote(tmp_->path() + "/db"));
  ASSERT_EQ(out.status, 0) << out.text;
  EXPECT_THAT(out.text, HasSubstr("    calibration: escapes (run cal): mutant-reformat escaped "
                                  "reformat: no reformat violation\n"));
  EXPECT_THAT(out.text, HasSubstr("    calibration: calibrated (run cal); n/a: silent-regression "
                                  "(no out-of-scope mutation broke a test in 40 candidates)\n"));
  EXPECT_THAT(out.text, HasSubstr("    calibration: calibrated (run older)\n"));
}

// The environment check (CheckEnvironment) of a run of the oracle and the
// noop alone: a gold patch that leaves a FAIL_TO_PASS test failing and a
// FAIL_TO_PASS test passing without it are mismatches naming the test; an
// oracle whose attempt failed for infrastructure leaves the status unset and
// says why; a test run that errored with the gold patch is a mismatch with
// the error. Stored on the tasks; others keep theirs.
TEST_F(CalibrateTest, EnvironmentCheckNamesMismatchesAndLeavesInfraFailuresUnset) {
  tasks_ = {"t1", "t2", "t3", "t4"};
  for (const auto& t : tasks_) {
    for (const char* agent : {"oracle", "noop"}) {
      scores_[{t, agent}] = Ideal(scoring::Expectations()[std::string(agent) == "oracle" ? 0 : 1]);
      evidence_[{t, agent}] = v1::Evidence();
    }
  }
  ASSERT_EQ(scoring::Expectations()[0].agent, "oracle");
  ASSERT_EQ(scoring::Expectations()[1].agent, "noop");
  {
    auto tasks = store_->ListTasks("s");
    ASSERT_TRUE(tasks);
    v1::GoldenTask t4 = (*tasks)[0];
    t4.set_id("t4");
    t4.clear_calibration();
    tasks->push_back(t4);
    ASSERT_TRUE(store_->PutSuite(*store_->GetSuite("s"), *tasks));
  }
  auto* failed = evidence_[{"t2", "oracle"}].mutable_tests()->add_tests();
  failed->set_id("tests::t");
  failed->set_status(v1::TestOutcome::FAILED);
  scores_[{"t2", "oracle"}].set_completed(false);
  scores_[{"t2", "oracle"}].set_reason("0/1 FAIL_TO_PASS tests pass; not passing: tests::t");
  auto* passed = evidence_[{"t3", "noop"}].mutable_tests()->add_tests();
  passed->set_id("tests::t");
  passed->set_status(v1::TestOutcome::PASSED);
  evidence_[{"t4", "oracle"}].mutable_tests()->set_infra_error("test command not found: pytest");
  scores_[{"t4", "oracle"}].set_completed(false);
  scores_[{"t4", "oracle"}].set_reason("test run failed: test command not found: pytest");
  StoreRun("env", {{"t1", "oracle"}}, EnvironmentAgents());

  auto check = CheckEnvironment(*store_, "env");
  ASSERT_TRUE(check) << check.error().ToString();
  EXPECT_THAT(check->tasks, ElementsAre("t1", "t2", "t3", "t4"));
  EXPECT_THAT(check->mismatched(), ElementsAre("t2", "t3", "t4"));
  EXPECT_THAT(check->unchecked(), ElementsAre("t1"));
  EXPECT_FALSE(check->ok());
  const auto& t1 = check->per_task.at("t1");
  EXPECT_EQ(t1.status(), "");
  EXPECT_THAT(t1.detail(), HasSubstr("not checked (infrastructure): the oracle's attempt env/0 "
                                     "did not finish (sandbox died)"));
  const auto& t2 = check->per_task.at("t2");
  EXPECT_EQ(t2.status(), "mismatch");
  EXPECT_THAT(t2.failing(), ElementsAre("FAIL_TO_PASS tests::t failed with the gold patch"));
  EXPECT_THAT(t2.detail(), HasSubstr("the gold patch does not resolve it"));
  EXPECT_EQ(t2.run_id(), "env");
  const auto& t3 = check->per_task.at("t3");
  EXPECT_EQ(t3.status(), "mismatch");
  EXPECT_THAT(t3.failing(), ElementsAre("FAIL_TO_PASS tests::t passed without it"));
  EXPECT_THAT(t3.detail(), HasSubstr("1 of its 1 FAIL_TO_PASS tests pass without the gold patch"));
  const auto& t4 = check->per_task.at("t4");
  EXPECT_EQ(t4.status(), "mismatch");
  EXPECT_THAT(t4.failing(), ElementsAre("the tests did not run with the gold patch: test run "
                                        "failed: test command not found: pytest"));

  const std::string table = RenderEnvironmentTable(*check);
  EXPECT_THAT(table, HasSubstr("(suite s, 4 tasks): 0 ok, 3 mismatch, 1 not checked"));
  EXPECT_THAT(table, HasSubstr("  t2: the gold patch does not resolve it"));
  EXPECT_THAT(table, HasSubstr("    FAIL_TO_PASS tests::t passed without it"));
  EXPECT_THAT(table, HasSubstr("environment check FAILED: 3 task(s) mismatched"));
  auto j = nlohmann::json::parse(RenderEnvironmentJson(*check));
  EXPECT_EQ(j["mismatched"], nlohmann::json::array({"t2", "t3", "t4"}));
  EXPECT_EQ(j["unchecked"], nlohmann::json::array({"t1"}));
  EXPECT_EQ(j["tasks"][1]["failing"][0], "FAIL_TO_PASS tests::t failed with the gold patch");

  ASSERT_TRUE(StoreTaskEnvironment(*store_, *check));
  auto tasks = store_->ListTasks("s");
  ASSERT_TRUE(tasks);
  for (const auto& t : *tasks) {
    if (t.id() == "t9") {
      EXPECT_FALSE(t.has_environment());
    } else {
      EXPECT_EQ(t.environment().status(), check->per_task.at(t.id()).status()) << t.id();
      EXPECT_EQ(v1::IsEnvironmentMismatch(t), t.id() != "t1") << t.id();
    }
  }

  // A run without the noop is no environment check.
  StoreRun("cal");
  EXPECT_TRUE(CheckEnvironment(*store_, "cal"));
  StoreRun("oracle-only", {}, {EnvironmentAgents()[0]});
  auto bad = CheckEnvironment(*store_, "oracle-only");
  ASSERT_FALSE(bad);
  EXPECT_THAT(bad.error().message(),
              HasSubstr("run oracle-only is not an environment check: it has no agent noop"));
}

}  // namespace
}  // namespace crucible::report
